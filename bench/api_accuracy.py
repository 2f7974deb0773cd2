"""Accuracy through the running API against the accuracy recorded offline, on the model's full held-out set.

Every held-out example the card's figure was measured on (its ``metrics.test_images``, the first ones
of the recipe's held-out split) is sent the course's way, one request each: ``requests.post(url,
json={"image": x.tolist()})`` with raw values in the card's range (0..255), in the card's shape (a grey
image as height x width). The served answer must agree with the figure training stored in the card.

    make serve &                                   # or any running service
    .venv/bin/python -m bench.api_accuracy --url http://127.0.0.1:3000 --versions v1 v2
    .venv/bin/python -m bench.api_accuracy --model damage --versions v1 v2
"""

from __future__ import annotations

import argparse
import concurrent.futures
import threading
import time

import numpy as np
import requests

from training import recipes


def classify_all(url: str, model: str, version: str, images: np.ndarray, threads: int = 16) -> np.ndarray:
    session_per_thread: dict[int, requests.Session] = {}

    def classify(index: int) -> int:
        session = session_per_thread.setdefault(threading.get_ident(), requests.Session())
        response = session.post(f"{url}/models/{model}/{version}", json={"image": images[index].tolist()}, timeout=60)
        response.raise_for_status()
        return response.json()["predictions"][0]["class_id"]

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return np.fromiter(pool.map(classify, range(len(images))), dtype=np.int64, count=len(images))


def course_examples(card: dict, examples: np.ndarray) -> np.ndarray:
    """The examples in the card's input shape, a grey image without its channel axis (as the course sends it)."""
    shape = tuple(card["input"]["shape"])
    if card["input"]["kind"] == "image" and shape[-1] == 1:
        shape = shape[:-1]
    return examples.reshape(len(examples), *shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--model", default="clothes", choices=recipes.names(), help="a model with a recipe (default clothes)")
    parser.add_argument("--versions", nargs="+", default=["v1", "v2"])
    args = parser.parse_args()
    data = recipes.get(args.model).load_data(allow_download=False)
    print(f"| {args.model} version | offline accuracy (stored) | API accuracy | JSON requests | agree | seconds |")
    print("|---|---|---|---:|---|---:|")
    for version in args.versions:
        card = requests.get(f"{args.url}/models/{args.model}/{version}", timeout=30).json()
        count = card["metrics"].get("test_images", len(data.x_test))
        images, labels = course_examples(card, data.x_test[:count]), data.y_test[:count]
        if labels.max() >= len(card["output"]["labels"]):
            raise SystemExit(f"{args.model} {version}: the data has label {labels.max()}, the card {len(card['output']['labels'])} labels")
        started = time.perf_counter()
        predicted = classify_all(args.url, args.model, version, images)
        seconds = time.perf_counter() - started
        served = float(np.mean(predicted == labels))
        offline = card["metrics"]["accuracy"]
        print(f"| {version} | {offline:.4f} | {served:.4f} | {count:,} | {abs(served - offline) < 1e-9} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
