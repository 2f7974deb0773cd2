"""Benchmarks of the served models: throughput and latency per scenario and protocol on ONNX Runtime and
TensorFlow, against hand-written peers (bench/handwritten.py), the course's Flask baseline and a bare ASGI
floor; cold start; memory per process.

    make bench                                        # .venv/bin/python -m bench.run
    .venv/bin/python -m bench.run --quick --only json,v2-binary-1 --servers served,floor
    .venv/bin/python -m bench.memory                  # memory per process only
"""
