"""Past its queue limit a version sheds load at once (503 + Retry-After) and recovers right after."""

from __future__ import annotations

import threading
import time

import numpy as np
import requests

from tests.e2e.conftest import LIMITS


def test_overload_is_shed_fast_and_recovers(url):
    batch = np.zeros((64, 28, 28), dtype=np.uint8).tobytes()  # 64 images; the queue holds LIMITS["max_queue_images"]
    clients = 48
    barrier = threading.Barrier(clients)
    outcomes: list[tuple[int, float, str | None, dict]] = []
    lock = threading.Lock()

    def client():
        session = requests.Session()
        barrier.wait(timeout=30)
        for _ in range(4):
            started = time.perf_counter()
            response = session.post(f"{url}/models/clothes/v1", data=batch, headers={"content-type": "application/octet-stream"}, timeout=30)
            with lock:
                outcomes.append((response.status_code, time.perf_counter() - started, response.headers.get("Retry-After"), response.json()))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(outcomes) == clients * 4
    statuses = {status for status, *_ in outcomes}
    assert statuses <= {200, 503}, statuses
    shed = [o for o in outcomes if o[0] == 503]
    assert shed, f"{clients} clients x 64 images never exceeded a queue of {LIMITS['max_queue_images']}"
    assert all(retry_after and "overloaded" in body["error"] for _, _, retry_after, body in shed)
    assert max(seconds for _, seconds, *_ in shed) < 2.0  # refused at once, not after a timeout
    assert any(o[0] == 200 for o in outcomes)

    recovered = requests.post(f"{url}/models/clothes/v1", data=batch, headers={"content-type": "application/octet-stream"}, timeout=30)
    assert recovered.status_code == 200
