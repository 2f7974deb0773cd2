"""Benchmark the served models (ONNX Runtime and TensorFlow) against hand-written peers, the course's Flask baseline and a bare ASGI floor.

    make bench                                                   # every scenario and server, 30 s per run
    .venv/bin/python -m bench.run --quick                        # 5 s per run, one cold start per served server
    .venv/bin/python -m bench.run --only json,v2-binary-1,coldstart --servers served,floor --duration 10
    .venv/bin/python -m bench.run --connections json=128 --connections batch256=4
    # the served service beside the hand-written peers, single JSON images only:
    .venv/bin/python -m bench.run --only json --servers served,handwritten-1,handwritten-2 --seconds 5 --report /tmp/peers.md
    # gRPC beside HTTP's binary tensors only, the report outside docs/:
    .venv/bin/python -m bench.run --only v2-binary-1,grpc-v2-1,v2-binary-256,grpc-v2-256 --servers served --seconds 20 --report /tmp/grpc.md

Each server is started alone (served, served-tensorflow, handwritten-1, handwritten-2, baseline, floor,
one after another), receives every selected scenario it answers (bench/scenarios.py; the hand-written
peers of bench/handwritten.py, on 1 and 2 uvicorn workers, and the baseline have only clothes v1's
course route, only the served servers speak gRPC; the report's rows say n/a elsewhere) through wrk, or bench/grpc_load.py for the gRPC ones (their
connections being calls in flight, over --grpc-processes processes), and is stopped (with every
process it started) before the next starts. A served server's launch also times its cold start (to
/readyz, then to a first prediction) and reads its memory per process before the load (``memory``).
Then the in-process batch rate of each engine and the remaining cold starts are measured. Prints the
tables and the targets' PASS/FAIL, writes docs/benchmarks.md (between its bench markers) and
docs/benchmarks.png. Exits 0.
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

from bench import memory, servers
from bench.bodies import write_bodies
from bench.grpc_load import DEFAULT_PROCESSES as DEFAULT_GRPC_PROCESSES
from bench.grpc_load import GrpcLoadError, run_grpc
from bench.load import WrkError, run_wrk
from bench.report import ColdStart, Results, machine_description, results_sections, summary_line, targets, targets_table, write_markdown, write_plot
from bench.scenarios import COLD_START, FIRST_PREDICTION, LOAD, MEMORY, NAMES

SCENARIOS = NAMES
DEFAULT_CONNECTIONS = {name: scenario.connections for name, scenario in LOAD.items()}
DEFAULT_REPORT = servers.ROOT / "docs" / "benchmarks.md"
INPROCESS_SCENARIO = "batch256"  # the in-process rate is measured on this scenario's version and batch


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
    if scenario not in LOAD or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"expected SCENARIO=N with SCENARIO one of {', '.join(LOAD)}; got {text!r}")
    return scenario, int(count)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", "--seconds", type=int, help="seconds per load run, wrk or gRPC (default 30, or 5 with --quick)")
    parser.add_argument("--quick", action="store_true", help="5 s wrk runs, one cold start per served server, 2 s in-process")
    parser.add_argument("--only", type=comma_list(SCENARIOS), default=list(SCENARIOS), metavar="SCENARIO[,...]", help=f"scenarios to run, of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument(
        "--servers", type=comma_list(servers.NAMES), default=list(servers.NAMES), metavar="SERVER[,...]", help=f"servers to measure, of {', '.join(servers.NAMES)} (default: all)"
    )
    parser.add_argument(
        "--connections",
        type=connection_override,
        action="append",
        default=[],
        metavar="SCENARIO=N",
        help=f"wrk connections of a scenario, calls in flight of a gRPC one (defaults: {DEFAULT_CONNECTIONS})",
    )
    parser.add_argument(
        "--grpc-processes",
        type=int,
        default=DEFAULT_GRPC_PROCESSES,
        help=f"load generator processes of the gRPC scenarios, sharing their calls in flight (default {DEFAULT_GRPC_PROCESSES})",
    )
    parser.add_argument("--cold-starts", type=int, help="launches of each served server timed to /readyz (default 3, or 1 with --quick)")
    parser.add_argument("--inprocess-seconds", type=float, help="duration of each in-process batch measurement (default 5, or 2 with --quick)")
    parser.add_argument("--timeout", type=int, default=10, help="wrk's per-request timeout, a gRPC call's deadline, in seconds (default 10)")
    parser.add_argument("--ready-timeout", type=float, default=300, help="seconds a server may take to become ready")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="markdown report; the plot goes next to it as .png")
    args = parser.parse_args(argv)
    args.duration = args.duration or (5 if args.quick else 30)
    args.cold_starts = (1 if args.quick else 3) if args.cold_starts is None else args.cold_starts
    args.inprocess_seconds = args.inprocess_seconds or (2.0 if args.quick else 5.0)
    if args.duration < 1 or args.cold_starts < 0 or args.grpc_processes < 1:
        parser.error("--duration and --grpc-processes must be >= 1 and --cold-starts >= 0")
    args.connections = {**DEFAULT_CONNECTIONS, **dict(args.connections)}
    return args


def measure_server(name: str, results: Results, args: argparse.Namespace, log_dir: Path) -> None:
    """Start one server; time its cold start and read its memory (served servers), run every selected
    load scenario it answers against it, stop it."""
    load_scenarios = [s for s in results.load_scenarios if servers.serves(name, LOAD[s])]
    served = name in servers.ENGINES
    timing_cold_start = served and COLD_START in results.scenarios and args.cold_starts > 0
    reading_memory = served and MEMORY in results.scenarios
    if not load_scenarios and not timing_cold_start and not reading_memory:
        return
    print(f"[{name}] starting", flush=True)
    with servers.launch(name, log_dir, args.ready_timeout) as server:
        print(f"[{name}] ready after {server.ready_after_s:.1f} s on {server.url}", flush=True)
        if timing_cold_start:
            record_cold_start(server, results)
        if served:
            record_engines(server, results)
        if reading_memory:
            results.memory[name] = memory.measure(server)
            print(
                f"[{name}] memory: {len(results.memory[name].processes)} processes, RSS {memory.mib(results.memory[name].total_rss)} MiB, "
                f"PSS {memory.mib(results.memory[name].total_pss)} MiB",
                flush=True,
            )
        for scenario in load_scenarios:
            run_scenario(server, scenario, results, args)
    if server.killed_after_grace:
        results.notes.append(f"{name}: {server.killed_after_grace} process(es) still running {servers.STOP_GRACE_S} s after SIGTERM were killed (SIGKILL)")


def run_scenario(server: servers.Server, scenario: str, results: Results, args: argparse.Namespace) -> None:
    if LOAD[scenario].grpc:
        return run_grpc_scenario(server, scenario, results, args)
    body, url = results.bodies[scenario], server.url + LOAD[scenario].path
    status, answer = servers.probe(url, body)
    if status is None or status >= 300:
        results.notes.append(f"{scenario} on {server.name}: a probe request got {status}: `{' '.join(answer.split())[:160]}`")
    try:
        result = run_wrk(url, body, args.connections[scenario], args.duration, args.timeout)
    except WrkError as exc:
        results.notes.append(f"{scenario} on {server.name}: wrk failed: {exc}")
        return
    results.load.setdefault(scenario, {})[server.name] = result
    print(
        f"[{server.name}] {scenario}: {result.requests_per_s:,.1f} req/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, {result.errors} errors ({result.status_text()})",
        flush=True,
    )


def run_grpc_scenario(server: servers.Server, scenario: str, results: Results, args: argparse.Namespace) -> None:
    """The gRPC load of one scenario on the server's gRPC port; its first worker's warm-up call is the probe."""
    try:
        result = run_grpc(server.grpc_target, LOAD[scenario], results.bodies[scenario], args.connections[scenario], args.duration, args.timeout, args.grpc_processes)
    except GrpcLoadError as exc:
        results.notes.append(f"{scenario} on {server.name}: the gRPC load failed: {exc}")
        return
    if result.probe != "OK":
        results.notes.append(f"{scenario} on {server.name}: the warm-up call got {' '.join(result.probe.split())[:160]}")
    for code, detail in result.details.items():
        results.notes.append(f"{scenario} on {server.name}: {code}: `{' '.join(detail.split())[:160]}`")
    results.load.setdefault(scenario, {})[server.name] = result
    print(
        f"[{server.name}] {scenario}: {result.requests_per_s:,.1f} req/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
        f"{result.errors} errors ({result.status_text()}), client CPU {result.client_cpu_share:.2f} cores",
        flush=True,
    )


def record_cold_start(server: servers.Server, results: Results) -> None:
    scenario = LOAD[FIRST_PREDICTION]
    first = server.time_first_prediction(scenario.path, results.bodies[FIRST_PREDICTION])
    if first is None:
        results.notes.append(f"coldstart on {server.name}: no 2xx answer to {scenario.path} within a minute of /readyz")
    results.cold_starts.setdefault(server.name, []).append(ColdStart(server.ready_after_s, first))
    print(
        f"[{server.name}] cold start {len(results.cold_starts[server.name])}: /readyz after {server.ready_after_s:.1f} s, "
        f"first prediction after {'-' if first is None else f'{first:.1f}'} s",
        flush=True,
    )


def record_engines(server: servers.Server, results: Results) -> None:
    """What each runner hosts, and a note for every version not on the server's engine."""
    try:
        hosted = memory.hosted_versions(server.url)
    except OSError as exc:
        results.notes.append(f"{server.name}: could not list its versions: {exc}")
        return
    results.engines[server.name] = hosted
    engine = servers.ENGINES[server.name]
    for runner, what in hosted.items():
        if f"({engine})" not in what:
            results.notes.append(f"{server.name}: {runner} hosts {what}, not on {engine} (a version without a verified ONNX export runs on TensorFlow)")


def measure_cold_starts(results: Results, args: argparse.Namespace, log_dir: Path) -> None:
    for name in [s for s in results.servers if s in servers.ENGINES]:
        while len(results.cold_starts.get(name, [])) < args.cold_starts:
            with servers.launch(name, log_dir, args.ready_timeout) as server:
                record_cold_start(server, results)


def measure_inprocess(results: Results, args: argparse.Namespace) -> None:
    scenario = LOAD[INPROCESS_SCENARIO]
    for name in [s for s in results.servers if s in servers.ENGINES]:
        engine = servers.ENGINES[name]
        command = [
            sys.executable,
            "-m",
            "bench.inprocess",
            "--model",
            scenario.model,
            "--version",
            scenario.version,
            "--engine",
            engine,
            "--batch",
            str(scenario.examples),
            "--seconds",
            str(args.inprocess_seconds),
        ]
        print(f"[in-process] measuring batched inference on {engine}", flush=True)
        try:
            finished = subprocess.run(command, cwd=servers.ROOT, env=servers.server_environment(), capture_output=True, text=True, timeout=args.inprocess_seconds + 180)
        except subprocess.TimeoutExpired:
            results.notes.append(f"in-process measurement on {engine} did not finish within {args.inprocess_seconds + 180:.0f} s")
            continue
        if finished.returncode != 0:
            results.notes.append(f"in-process measurement on {engine} failed: {finished.stderr.strip()[-500:]}")
            continue
        measured = json.loads(finished.stdout.strip().splitlines()[-1])
        results.inprocess[measured["engine"]] = measured


def run(args: argparse.Namespace, results: Results, log_dir: Path) -> None:
    for name in results.servers:
        try:
            measure_server(name, results, args, log_dir)
        except servers.ServerNotReady as exc:  # the other servers are still measured
            results.notes.append(f"{name} was not measured: {exc}")
            print(f"[{name}] {exc}\n{exc.log_tail}", file=sys.stderr, flush=True)
    if INPROCESS_SCENARIO in results.scenarios:
        measure_inprocess(results, args)
    if COLD_START in results.scenarios:
        try:
            measure_cold_starts(results, args, log_dir)
        except servers.ServerNotReady as exc:
            results.notes.append(f"a cold start was not measured: {exc}")
            print(f"[coldstart] {exc}\n{exc.log_tail}", file=sys.stderr, flush=True)


def stop_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through the `launch` blocks, which stop the servers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    command = shlex.join([".venv/bin/python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)])
    with tempfile.TemporaryDirectory(prefix="model-server-bench-") as temporary:
        work_dir = Path(temporary)
        wanted = [s for s in LOAD if s in args.only or (s == FIRST_PREDICTION and COLD_START in args.only)]
        results = Results(
            command=command,
            started=datetime.datetime.now().astimezone(),
            scenarios=args.only,
            servers=[name for name in servers.NAMES if name in args.servers],
            duration_s=args.duration,
            connections=args.connections,
            grpc_processes=args.grpc_processes,
            bodies=write_bodies(work_dir, [LOAD[s] for s in wanted]),
            machine=machine_description(),
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
