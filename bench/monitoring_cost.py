"""What drift monitoring costs per request: the served JSON scenario with monitoring on and off.

    python -m bench.monitoring_cost            # 2 rounds of 30 s each way; updates docs/lifecycle.md

Both runs are `bentoml serve` with the repository's configuration; the "off" run sets
``monitoring.enabled: false`` (Prometheus counters only: no drift window, no gauges, no data
log). Runs alternate (on, off, on, off) so that drifts of the machine's speed hit both alike.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

from bench import servers
from bench.bodies import write_bodies
from bench.drift import write_report
from bench.load import run_wrk

BEGIN, END = "<!-- cost:begin -->", "<!-- cost:end -->"


def config_without_monitoring(directory: Path) -> Path:
    config = yaml.safe_load((servers.ROOT / "configuration.yaml").read_text())
    config["monitoring"]["enabled"] = False
    monitor = config["entry"]["monitoring"]["options"]
    monitor["log_config_file"] = str(servers.ROOT / monitor["log_config_file"])
    config["promotion_record"] = str(servers.ROOT / config["promotion_record"])
    path = directory / "configuration.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="monitoring-cost-"))
    body = write_bodies(work)["json"]
    variants = {"on": {}, "off": {"MODEL_SERVER_CONFIG": str(config_without_monitoring(work))}}
    runs: dict[str, list] = {"on": [], "off": []}
    for _ in range(args.rounds):
        for name, env in variants.items():
            with servers.launch("served", work, env=env) as server:
                result = run_wrk(server.predict_url, body, args.connections, args.seconds, 10)
            runs[name].append(result)
            print(f"monitoring {name}: {result.requests_per_s:,.0f} req/s, p99 {result.p99_ms:.1f} ms, {result.errors} errors", flush=True)
    rate = {name: sum(r.requests_per_s for r in rs) / len(rs) for name, rs in runs.items()}
    p99 = {name: max(r.p99_ms for r in rs) for name, rs in runs.items()}
    cost = rate["off"] / rate["on"] - 1  # extra time per request with monitoring on
    text = "\n".join([
        f"Measured by `python -m bench.monitoring_cost`: wrk, JSON single images, {args.connections} connections, "
        f"{args.rounds} alternating rounds of {args.seconds} s per setting.",
        "",
        "| monitoring | req/s (mean) | worst p99 ms | errors |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {rate[name]:,.0f} | {p99[name]:.1f} | {sum(r.errors for r in runs[name])} |" for name in runs),
        "",
        f"**Cost of monitoring per request: {cost:+.1%}** (time per request, on vs off; target <= 10%).",
    ])
    print(text)
    if not args.no_report:
        write_report(text, begin=BEGIN, end=END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
