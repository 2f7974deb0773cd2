"""Benchmark the served clothes service against the course's Flask baseline and a bare Starlette floor.

    make bench                                                   # all scenarios, 30 s per run
    .venv/bin/python -m bench.run --quick                        # 5 s per run
    .venv/bin/python -m bench.run --only json,coldstart --servers served,floor --duration 10
    .venv/bin/python -m bench.run --connections json=128 --connections batch256=4

Each server is started alone (served, baseline, floor, one after another), receives every selected
scenario through wrk, and is stopped (with every process it started) before the next starts. Then the
in-process batch rate and the remaining cold starts are measured. Prints the tables and the targets'
PASS/FAIL, writes docs/benchmarks.md (between its bench markers) and docs/benchmarks.png. Exits 0.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import servers
from bench.bodies import write_bodies
from bench.load import WrkError, run_wrk
from bench.report import (
    COLD_START, LOAD_SCENARIOS, Results, machine_description, results_sections, summary_line, targets, targets_table,
    write_markdown, write_plot,
)

SCENARIOS = (*LOAD_SCENARIOS, COLD_START)
DEFAULT_CONNECTIONS = {"json": 64, "png": 64, "batch256": 8}
DEFAULT_REPORT = servers.ROOT / "docs" / "benchmarks.md"


def comma_list(choices: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(choices)}; got {text!r}")
        return names

    return parse


def connection_override(text: str) -> tuple[str, int]:
    scenario, _, count = text.partition("=")
    if scenario not in LOAD_SCENARIOS or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"expected SCENARIO=N with SCENARIO one of {', '.join(LOAD_SCENARIOS)}; got {text!r}")
    return scenario, int(count)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 30, or 5 with --quick)")
    parser.add_argument("--quick", action="store_true", help="5 s wrk runs")
    parser.add_argument("--only", type=comma_list(SCENARIOS), default=list(SCENARIOS), metavar="SCENARIO[,...]",
                        help=f"scenarios to run, of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--servers", type=comma_list(servers.NAMES), default=list(servers.NAMES), metavar="SERVER[,...]",
                        help=f"servers to measure, of {', '.join(servers.NAMES)} (default: all)")
    parser.add_argument("--connections", type=connection_override, action="append", default=[], metavar="SCENARIO=N",
                        help=f"wrk connections of a scenario (defaults: {DEFAULT_CONNECTIONS})")
    parser.add_argument("--cold-starts", type=int, default=3, help="launches of `bentoml serve` timed to /readyz (default 3)")
    parser.add_argument("--inprocess-seconds", type=float, default=5.0, help="duration of the in-process batch measurement")
    parser.add_argument("--timeout", type=int, default=10, help="wrk's per-request timeout in seconds (default 10)")
    parser.add_argument("--ready-timeout", type=float, default=300, help="seconds a server may take to become ready")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="markdown report; the plot goes next to it as .png")
    args = parser.parse_args(argv)
    args.duration = args.duration or (5 if args.quick else 30)
    if args.duration < 1 or args.cold_starts < 0:
        parser.error("--duration must be >= 1 and --cold-starts >= 0")
    args.connections = {**DEFAULT_CONNECTIONS, **dict(args.connections)}
    return args


def measure_server(name: str, results: Results, args: argparse.Namespace, log_dir: Path) -> None:
    """Start one server, run every selected load scenario against it, stop it."""
    load_scenarios = [s for s in LOAD_SCENARIOS if s in results.scenarios]
    timing_cold_start = name == "served" and COLD_START in results.scenarios and args.cold_starts > 0
    if not load_scenarios and not timing_cold_start:
        return
    print(f"[{name}] starting", flush=True)
    with servers.launch(name, log_dir, args.ready_timeout) as server:
        print(f"[{name}] ready after {server.ready_after_s:.1f} s on {server.url}", flush=True)
        if timing_cold_start:
            results.cold_starts_s.append(server.ready_after_s)
        for scenario in load_scenarios:
            body = results.bodies[scenario]
            status, answer = servers.probe(server.predict_url, body.path, body.content_type)
            if status is None or status >= 400:
                results.notes.append(f"{scenario} on {name}: a probe request got {status}: `{' '.join(answer.split())[:160]}`")
            try:
                result = run_wrk(server.predict_url, body, args.connections[scenario], args.duration, args.timeout)
            except WrkError as exc:
                results.notes.append(f"{scenario} on {name}: wrk failed: {exc}")
                continue
            results.load.setdefault(scenario, {})[name] = result
            print(f"[{name}] {scenario}: {result.requests_per_s:,.1f} req/s, p99 {result.p99_ms:.1f} ms, "
                  f"{result.errors} errors ({result.status_text()})", flush=True)
    if server.killed_after_grace:
        results.notes.append(f"{name}: {server.killed_after_grace} process(es) still running {servers.STOP_GRACE_S} s "
                             "after SIGTERM were killed (SIGKILL)")


def measure_cold_starts(results: Results, args: argparse.Namespace, log_dir: Path) -> None:
    while len(results.cold_starts_s) < args.cold_starts:
        with servers.launch("served", log_dir, args.ready_timeout) as server:
            results.cold_starts_s.append(server.ready_after_s)
        print(f"[served] cold start {len(results.cold_starts_s)}: {server.ready_after_s:.1f} s", flush=True)


def measure_inprocess(results: Results, args: argparse.Namespace) -> None:
    command = [sys.executable, "-m", "bench.inprocess", "--seconds", str(args.inprocess_seconds)]
    print("[in-process] measuring batched inference", flush=True)
    try:
        finished = subprocess.run(command, cwd=servers.ROOT, env=servers.server_environment(), capture_output=True,
                                  text=True, timeout=args.inprocess_seconds + 180)
    except subprocess.TimeoutExpired:
        results.notes.append(f"in-process measurement did not finish within {args.inprocess_seconds + 180:.0f} s")
        return
    if finished.returncode != 0:
        results.notes.append(f"in-process measurement failed: {finished.stderr.strip()[-500:]}")
        return
    results.inprocess = json.loads(finished.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace, results: Results, log_dir: Path) -> None:
    for name in results.servers:
        try:
            measure_server(name, results, args, log_dir)
        except servers.ServerNotReady as exc:  # the other servers are still measured
            results.notes.append(f"{name} was not measured: {exc}")
            print(f"[{name}] {exc}\n{exc.log_tail}", file=sys.stderr, flush=True)
    if "batch256" in results.scenarios and "served" in results.servers:
        measure_inprocess(results, args)
    if COLD_START in results.scenarios and "served" in results.servers:
        try:
            measure_cold_starts(results, args, log_dir)
        except servers.ServerNotReady as exc:
            results.notes.append(f"cold start {len(results.cold_starts_s) + 1} not measured: {exc}")
            print(f"[served] {exc}\n{exc.log_tail}", file=sys.stderr, flush=True)


def stop_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through the `launch` blocks, which stop the servers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    command = shlex.join([".venv/bin/python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)])
    with tempfile.TemporaryDirectory(prefix="clothes-bench-") as temporary:
        work_dir = Path(temporary)
        results = Results(
            command=command, started=datetime.datetime.now().astimezone(), scenarios=args.only,
            servers=[name for name in servers.NAMES if name in args.servers], duration_s=args.duration,
            connections=args.connections, bodies=write_bodies(work_dir), machine=machine_description(),
        )
        run(args, results, work_dir)
    results.machine["load average at end (1, 5, 15 min)"] = ", ".join(f"{load:.2f}" for load in os.getloadavg())

    print()
    for section in results_sections(results):
        print(section + "\n")
    checked = targets(results)
    print(targets_table(checked) + "\n")
    for note in results.notes:
        print(f"note: {note}")
    plot_path = args.report.with_suffix(".png")
    has_plot = write_plot(results, plot_path)
    write_markdown(results, args.report, plot_path.name if has_plot else None)
    print(f"\nwrote {args.report}" + (f" and {plot_path}" if has_plot else ""))
    print(summary_line(checked))
    return 0


if __name__ == "__main__":
    sys.exit(main())
