"""What monitoring costs per request: the served JSON scenario with one feature on and off.

    python -m bench.monitoring_cost                       # drift monitoring; clothes v1, 2 rounds of 30 s each way; updates docs/lifecycle.md
    python -m bench.monitoring_cost --feature feedback    # recording every answer for the feedback join
    python -m bench.monitoring_cost --feature ood         # every answer's out-of-distribution score
    python -m bench.monitoring_cost --model damage --version v2 --seconds 10 --no-report

Both runs are `bentoml serve` with the repository's configuration (bench/servers.py: served, ONNX
Runtime); the "off" run turns the feature off: ``monitoring.enabled: false`` (Prometheus counters
only: no drift window, no gauges, no data log), ``feedback.enabled: false`` (answers not recorded,
no join) or every model's ``ood.enabled: false`` (no score). Runs alternate (on, off, on, off) so that drifts of the machine's speed hit both alike. The
body is one held-out example of the model as the course's JSON, in its card's shape
(bench/bodies.py); wrk sends no request id, so each answer gets a new one, as most clients' do. The
report goes between the feature's markers in docs/lifecycle.md (``cost:begin`` for clothes' drift
monitoring, ``feedback-cost:begin`` for its feedback, ``cost:<model>:begin`` for another model).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

from bench import servers
from bench.bodies import write_bodies
from bench.drift import DEFAULT_MODEL, REPORT, has_markers, markers, write_report
from bench.load import run_wrk
from bench.scenarios import Scenario
from config.settings import load_yaml
from training import recipes

# feature -> (its markers in docs/lifecycle.md, its target cost per request)
FEATURES = {"monitoring": ("cost", 0.10), "feedback": ("feedback-cost", 0.05), "ood": ("ood-cost", 0.05)}


def turned_off(directory: Path, feature: str) -> Path:
    """The repository's configuration with ``feature`` off: a top-level section's ``enabled``, or every model's ``ood.enabled``."""
    if feature != "ood":
        return servers.write_config(directory, changes={feature: {"enabled": False}})
    path = servers.write_config(directory)
    config = load_yaml(path.read_text(), path)
    for model in config["models"].values():
        model["ood"] = {**model.get("ood", {}), "enabled": False}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=recipes.names(), help=f"a model with a recipe (default {DEFAULT_MODEL})")
    parser.add_argument("--version", default="v1")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--feature", choices=sorted(FEATURES), default="monitoring", help="what is turned off in the 'off' runs (default monitoring)")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    section, target = FEATURES[args.feature]
    begin, end = markers(args.model, section)
    if not args.no_report and not has_markers(begin, end):
        parser.error(f"{REPORT.relative_to(servers.ROOT)} has no {begin} ... {end} for {args.model}: add them, or pass --no-report")
    work = Path(tempfile.mkdtemp(prefix="monitoring-cost-"))
    scenario = Scenario("json", args.model, args.version, "course", "json", 1, args.connections, "one example as the course's JSON")
    body = write_bodies(work, [scenario])["json"]
    (work / "off").mkdir()
    off_config = turned_off(work / "off", args.feature)
    variants = {"on": {}, "off": {"MODEL_SERVER_CONFIG": str(off_config)}}
    runs: dict[str, list] = {"on": [], "off": []}
    for _ in range(args.rounds):
        for name, env in variants.items():
            with servers.launch("served", work, env=env) as server:
                result = run_wrk(server.url + scenario.path, body, args.connections, args.seconds, 10)
            runs[name].append(result)
            print(f"{args.feature} {name}: {result.requests_per_s:,.0f} req/s, p99 {result.p99_ms:.1f} ms, {result.errors} errors", flush=True)
    rate = {name: sum(r.requests_per_s for r in rs) / len(rs) for name, rs in runs.items()}
    p99 = {name: max(r.p99_ms for r in rs) for name, rs in runs.items()}
    cost = rate["off"] / rate["on"] - 1  # extra time per request with monitoring on
    text = "\n".join(
        [
            f"Measured by `python -m bench.monitoring_cost`: wrk, {args.model} {args.version}, JSON single images, {args.connections} connections, "
            f"{args.rounds} alternating rounds of {args.seconds} s per setting.",
            "",
            f"| {args.feature} | req/s (mean) | worst p99 ms | errors |",
            "|---|---:|---:|---:|",
            *(f"| {name} | {rate[name]:,.0f} | {p99[name]:.1f} | {sum(r.errors for r in runs[name])} |" for name in runs),
            "",
            f"**Cost of {args.feature} per request: {cost:+.1%}** (time per request, on vs off; target <= {target:.0%}).",
        ]
    )
    print(text)
    if not args.no_report:
        write_report(text, begin=begin, end=end)
    return 0


if __name__ == "__main__":
    sys.exit(main())
