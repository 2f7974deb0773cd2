"""Throughput and latency benchmarks of the clothes service against a Flask baseline and a bare floor.

    make bench                                        # .venv/bin/python -m bench.run
    .venv/bin/python -m bench.run --quick --only json --servers served,floor
"""
