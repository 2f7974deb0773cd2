"""Hostile requests for the binary tensor data extension (POST /v2/models/<name>/infer) against a real
`bentoml serve`: each is a fast 400 naming what disagrees, and the served tree's memory stays flat
(sampled from /proc, tests/e2e/memory.py): nothing is allocated from a declared size.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import requests

from tests.e2e.conftest import report_figures
from tests.e2e.memory import MIB, MemorySampler, mib

FAST_SECONDS = 1.0  # measured: a few milliseconds each
# Allocating the 2**40-element shape would take terabytes; a valid 8-image request, well under 1 MB. The
# tree's RSS also moves with what runs beside the request: two entry workers, each refreshing its drift
# gauges on a thread (a window copy, the other worker's window, scipy's tests): 16.2 MiB seen once, with
# no process's peak (HWM) growing.
WINDOW_BUDGET = 32 * MIB


def binary_request(shape: list, datatype: str = "UINT8", size: int | None = None, data: bytes = b"", header_length: int | None = None) -> tuple[bytes, dict]:
    """A request as tritonclient frames it: the JSON, then the bytes; Inference-Header-Content-Length; no content type."""
    header = json.dumps({"inputs": [{"name": "input", "shape": shape, "datatype": datatype, "parameters": {"binary_data_size": len(data) if size is None else size}}]}).encode()
    return header + data, {"Inference-Header-Content-Length": str(len(header) if header_length is None else header_length)}


@pytest.fixture(scope="module")
def target(url, server):
    """The first served model's infer URL and its input shape (from its card)."""
    model = requests.get(f"{url}/models", timeout=30).json()["models"][0]
    shape = requests.get(f"{url}/models/{model['name']}/{model['versions'][0]}", timeout=30).json()["input"]["shape"]
    return f"{url}/v2/models/{model['name']}/infer", shape


def test_hostile_binary_requests_are_fast_400s_with_flat_memory(server, target):
    infer, shape = target
    one = int(np.prod(shape))
    image = bytes(one)
    cases = {
        "header length beyond the body": (binary_request([1, *shape], data=image, header_length=10**12), "exceeds the body's"),
        "element count disagrees with the bytes": (binary_request([2, *shape], data=image), f"needs {2 * one} bytes, got {one}"),
        "a shape of 2**40 elements": (binary_request([2**40 // one, *shape], data=image), "bytes, got"),
        "binary_data_size of 2**40": (binary_request([1, *shape], size=2**40, data=image), "binary_data_size is 1099511627776 bytes"),
        "an unknown datatype": (binary_request([1, *shape], datatype="FP128", data=image), "datatype FP128 is not accepted"),
    }
    valid = binary_request([8, *shape], data=bytes(8 * one))
    for _ in range(3):  # warm-up: allocator and code paths, not counted as growth
        assert requests.post(infer, data=valid[0], headers=valid[1], timeout=30).status_code == 200
    rows = []
    with MemorySampler(server.process.pid) as memory:
        for label, ((body, headers), fragment) in cases.items():
            with memory.window(label) as window:
                started = time.perf_counter()
                response = requests.post(infer, data=body, headers=headers, timeout=30)
                seconds = time.perf_counter() - started
            rows.append(f"  {label:42} {response.status_code} {seconds * 1000:7.1f} ms  RSS +{mib(window.rss_growth)}  {response.json().get('error', '')[:90]}")
            assert response.status_code == 400 and fragment in response.json()["error"], (label, response.text)
            assert seconds < FAST_SECONDS, (label, seconds)
            assert window.rss_growth < WINDOW_BUDGET and window.hwm_growth < WINDOW_BUDGET, (label, mib(window.rss_growth), mib(window.hwm_growth))
        assert memory.alive()
    report_figures("hostile binary tensor requests (test_protocols_hostile.py):\n" + "\n".join(rows))
    assert requests.post(infer, data=valid[0], headers=valid[1], timeout=30).status_code == 200
