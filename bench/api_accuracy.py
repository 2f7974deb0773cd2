"""Accuracy through the running API against the accuracy recorded offline, on the full test set.

Every test image is sent the course's way, one request each: ``requests.post(url, json={"image": x.tolist()})``
with raw 0..255 values. The served answer must agree with the figure training stored.

    make serve &                                   # or any running service
    .venv/bin/python -m bench.api_accuracy --url http://127.0.0.1:3000 --versions v1 v2
"""

from __future__ import annotations

import argparse
import concurrent.futures
import time

import numpy as np
import requests

from models.recipes.clothes import load_data


def classify_all(url: str, version: str, images: np.ndarray, threads: int = 16) -> np.ndarray:
    session_per_thread: dict[int, requests.Session] = {}

    def classify(index: int) -> int:
        import threading

        session = session_per_thread.setdefault(threading.get_ident(), requests.Session())
        response = session.post(f"{url}/models/clothes/{version}", json={"image": images[index].tolist()}, timeout=60)
        response.raise_for_status()
        return response.json()["predictions"][0]["class_id"]

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return np.fromiter(pool.map(classify, range(len(images))), dtype=np.int64, count=len(images))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--versions", nargs="+", default=["v1", "v2"])
    args = parser.parse_args()
    data = load_data()
    print("| version | offline accuracy (stored) | API accuracy (10,000 JSON requests) | agree | seconds |")
    print("|---|---|---|---|---|")
    for version in args.versions:
        offline = requests.get(f"{args.url}/models/clothes/{version}", timeout=30).json()["metrics"]["accuracy"]
        started = time.perf_counter()
        predicted = classify_all(args.url, version, data.x_test)
        seconds = time.perf_counter() - started
        served = float(np.mean(predicted == data.y_test))
        print(f"| {version} | {offline:.4f} | {served:.4f} | {abs(served - offline) < 1e-9} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
