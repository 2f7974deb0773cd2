"""Tables, target checks, the markdown report and its plot, from the results of one benchmark run.

>>> print(scenario_section(results, "json"))           # a markdown table, readable in a terminal too
>>> write_markdown(results, Path("docs/benchmarks.md"), "benchmarks.png")  # replaces only the part between the markers
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import math
import os
import platform
import statistics
import subprocess
from pathlib import Path

from bench.bodies import Body
from bench.grpc_load import GrpcResult
from bench.load import WrkResult
from bench.memory import SETTLE_S, TreeMemory
from bench.memory import comparison as memory_comparison
from bench.memory import table as memory_table
from bench.scenarios import COLD_START, FIRST_PREDICTION, LOAD, MEMORY
from bench.servers import ENGINES, HANDWRITTEN, serves

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
SERVED, SERVED_TF = "served", "served-tensorflow"
HANDWRITTEN_1, HANDWRITTEN_2 = HANDWRITTEN  # the hand-written peers, 1 and 2 uvicorn workers
NOT_SERVED = "n/a"  # a server without the scenario's route or protocol
SERVER_ROLES = {
    SERVED: "the real service, `bentoml serve service:ModelServer` with the repository's configuration.yaml (as `make serve`), "
    "every version on ONNX Runtime (`runners.engine: onnxruntime`, the default)",
    SERVED_TF: "the same configuration with `runners.engine: tensorflow`: every version on TensorFlow",
    "served-process": "the same configuration with `runners.placement: process`: every version in a runner process of its own, an HTTP hop per call",
    "served-2": "the same configuration with `entry.workers: 2`: two entry workers, each with every version's engine in process",
    HANDWRITTEN_1: "the hand-written peer, as a user would write it (bench/handwritten.py): Starlette on uvicorn, 1 worker, "
    "onnxruntime (intra_op_num_threads=1) on clothes v1's stored model.onnx, orjson; the course's route only (JSON, raw uint8 batches, "
    "image uploads grey-resized with PIL), no validation, inference on the event loop; n/a in the other scenarios",
    HANDWRITTEN_2: "the same hand-written peer on `uvicorn --workers 2`: one model session per worker process",
    "baseline": "the course's way: Flask's threaded dev server, `model.predict` per request, clothes v1 only (bench/baseline_flask.py)",
    "floor": "bare Starlette on uvicorn, 1 worker: parses each scenario's body into numpy (orjson, multipart, PIL, binary tensors) and answers, no model (bench/floor.py)",
}


@dataclasses.dataclass(frozen=True)
class ColdStart:
    ready_s: float  # launch to the first 200 on /readyz
    first_prediction_s: float | None  # launch to the first 2xx prediction


@dataclasses.dataclass
class Results:
    command: str
    started: datetime.datetime
    scenarios: list[str]
    servers: list[str]
    duration_s: int
    connections: dict[str, int]
    bodies: dict[str, Body]
    load: dict[str, dict[str, WrkResult | GrpcResult]] = dataclasses.field(default_factory=dict)
    cold_starts: dict[str, list[ColdStart]] = dataclasses.field(default_factory=dict)  # per served server
    inprocess: dict[str, dict] = dataclasses.field(default_factory=dict)  # per engine
    memory: dict[str, TreeMemory] = dataclasses.field(default_factory=dict)  # per served server
    engines: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)  # served server -> runner -> what it hosts
    notes: list[str] = dataclasses.field(default_factory=list)
    machine: dict[str, str] = dataclasses.field(default_factory=dict)
    grpc_processes: int = 1  # load generator processes of the gRPC scenarios (bench/grpc_load.py)

    @property
    def load_scenarios(self) -> list[str]:
        return [s for s in LOAD if s in self.scenarios]

    def result(self, scenario: str, server: str) -> WrkResult | GrpcResult | None:
        return self.load.get(scenario, {}).get(server)

    def images_per_s(self, scenario: str, server: str) -> float | None:
        result = self.result(scenario, server)
        return None if result is None else result.ok_per_s * self.bodies[scenario].examples

    def ratio(self, scenario: str, server: str, other: str) -> float | None:
        """Successful requests/s of ``server`` over those of ``other`` in one scenario."""
        mine, theirs = self.result(scenario, server), self.result(scenario, other)
        if mine is None or theirs is None or theirs.ok_per_s == 0:
            return None
        return mine.ok_per_s / theirs.ok_per_s

    def twin_ratio(self, scenario: str, server: str = SERVED) -> float | None:
        """Successful requests/s of a gRPC scenario over those of its HTTP twin, on one server."""
        twin = LOAD[scenario].twin
        mine, theirs = self.result(scenario, server), self.result(twin, server) if twin else None
        if mine is None or theirs is None or theirs.ok_per_s == 0:
            return None
        return mine.ok_per_s / theirs.ok_per_s

    def inprocess_ratio(self, server: str = SERVED, scenario: str = "batch256") -> float | None:
        """Images/s of a served server's batches over its engine's in-process rate, when that was measured
        on the scenario's version and batch size."""
        served = self.images_per_s(scenario, server)
        measured = self.inprocess.get(ENGINES.get(server, ""))
        about = LOAD[scenario]
        if served is None or not measured or (measured["model"], measured["version"], measured["batch_images"]) != (about.model, about.version, about.examples):
            return None
        return served / measured["images_per_s"]

    def cold_start_median_s(self, server: str = SERVED, field: str = "ready_s") -> float | None:
        samples = [value for sample in self.cold_starts.get(server, []) if (value := getattr(sample, field)) is not None]
        return statistics.median(samples) if samples else None


@dataclasses.dataclass(frozen=True)
class Target:
    scenario: str
    description: str
    measured: str
    passed: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]


def machine_description() -> dict[str, str]:
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
    cpu_models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
    os_release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    wrk_banner = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()
    return {
        "CPUs (nproc)": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "CPU model": cpu_models[0] if cpu_models else "unknown",
        "memory": f"{_kib_to_gib(meminfo['MemTotal'])} GiB total, {_kib_to_gib(meminfo['MemAvailable'])} GiB available",
        "load average at start (1, 5, 15 min)": ", ".join(f"{load:.2f}" for load in os.getloadavg()),
        "OS": os_release.get("PRETTY_NAME", "unknown").strip('"'),
        "kernel": platform.release(),
        "Python": platform.python_version(),
        **{module: _version(module) for module in ("onnxruntime", "tensorflow", "keras", "bentoml", "flask", "uvicorn", "starlette")},
        "wrk": " ".join(wrk_banner[0].split()[:3]) if wrk_banner else "unknown",
    }


def _kib_to_gib(value: str) -> str:
    return f"{int(value.split()[0]) / 2**20:.1f}"


def _version(module: str) -> str:
    """The version of the installed distribution providing ``module`` (tensorflow may be tensorflow-cpu)."""
    distributions = importlib.metadata.packages_distributions().get(module)
    if not distributions:
        return "not installed"
    return f"{importlib.metadata.version(distributions[0])} ({distributions[0]})"


def markdown_table(headers: list[str], rows: list[list[str]], numeric: bool = False) -> str:
    """A markdown table; ``numeric`` right-aligns every column but the first."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if i and numeric else "---" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def milliseconds(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g} x"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def errors_text(result: WrkResult | GrpcResult) -> str:
    if result.errors == 0:
        return "0"
    if isinstance(result, GrpcResult):  # by gRPC status code
        return f"{result.errors} ({', '.join(result.error_parts())})"
    parts = [f"{status}: {count}" for status, count in sorted(result.statuses.items()) if not 200 <= status < 300]
    if result.socket_errors:
        parts.append(f"socket: {result.socket_errors}")
    return f"{result.errors} ({', '.join(parts)})"


def comparable_ratios(results: Results, scenario: str) -> list[tuple[str, float]]:
    """Every ratio of successful requests/s this scenario measured: each served server over the
    hand-written peers, the floor and the baseline, and ONNX Runtime over TensorFlow."""
    pairs = [(s, other) for s in (SERVED, SERVED_TF) for other in (HANDWRITTEN_1, HANDWRITTEN_2, "floor", "baseline")] + [(SERVED, SERVED_TF)]
    found = []
    for server, other in pairs:
        value = results.ratio(scenario, server, other)
        if value is not None:
            found.append((f"{server}/{other}", value))
    return found


def scenario_section(results: Results, scenario: str) -> str:
    body = results.bodies[scenario]
    about = LOAD[scenario]
    batch = body.examples > 1
    headers = ["server", "req/s", "ok req/s", *(["images/s"] if batch else []), "p50 ms", "p90 ms", "p99 ms", "errors"]
    rows = []
    for server in results.servers:
        result = results.result(scenario, server)
        if result is None:
            if not serves(server, about):  # said, not left out
                rows.append([server, *[NOT_SERVED] * (len(headers) - 2), f"{NOT_SERVED}: {'no gRPC' if about.grpc else 'no such route'}"])
            continue
        images = [rate(results.images_per_s(scenario, server))] if batch else []
        rows.append(
            [
                server,
                rate(result.requests_per_s),
                rate(result.ok_per_s),
                *images,
                milliseconds(result.p50_ms),
                milliseconds(result.p90_ms),
                milliseconds(result.p99_ms),
                errors_text(result),
            ]
        )
    ratios = [f"{name} {times(value)}" for name, value in comparable_ratios(results, scenario)]
    for server in (SERVED, SERVED_TF):
        if batch and (value := results.inprocess_ratio(server, scenario)) is not None:
            ratios.append(f"{server}/in-process {times(value)} (images/s over {ENGINES[server]}'s in-process rate)")
    if about.grpc:
        ratios += [f"{server} gRPC/HTTP {about.twin} {times(value)}" for server in (SERVED, SERVED_TF) if (value := results.twin_ratio(scenario, server)) is not None]
        measured = [r for server in results.servers if isinstance(r := results.result(scenario, server), GrpcResult)]
        title = (
            f"### {scenario}: {about.model} {about.version}, gRPC `{about.path.lstrip('/')}`\n\n"
            f"{about.about}; {results.connections[scenario]} unary calls in flight from {results.grpc_processes} grpc.aio "
            f"process(es), one channel each, {results.duration_s} s (bench/grpc_load.py)"
            + (f"; load generator CPU {', '.join(f'{r.client_cpu_share:.2f}' for r in measured)} cores" if measured else "")
            + "."
        )
    else:
        content_type = body.content_type.split(";")[0] or "no content type"
        title = (
            f"### {scenario}: {about.model} {about.version}, `POST {about.path}`\n\n"
            f"{about.about}; {content_type}{', ' + ', '.join(body.headers) if body.headers else ''}; "
            f"{results.connections[scenario]} connections, {results.duration_s} s."
        )
    table = markdown_table(headers, rows, numeric=True) if rows else "Not measured (see the notes)."
    return f"{title}\n\n{table}" + (f"\n\nRatios of successful requests/s: {'; '.join(ratios)}." if ratios else "")


def grpc_section(results: Results) -> str:
    """Each measured gRPC scenario beside its HTTP twin (same version, same examples per request), per served server."""
    rows = []
    for scenario in results.load_scenarios:
        about = LOAD[scenario]
        if not about.grpc:
            continue
        for server in (SERVED, SERVED_TF):
            grpc, http = results.result(scenario, server), results.result(about.twin, server) if about.twin else None
            if grpc is None:
                continue
            examples = results.bodies[scenario].examples
            rows.append(
                [
                    scenario,
                    about.twin or "-",
                    server,
                    str(examples),
                    rate(grpc.ok_per_s),
                    rate(http.ok_per_s) if http else "-",
                    times(results.twin_ratio(scenario, server)),
                    rate(grpc.ok_per_s * examples),
                    rate(http.ok_per_s * examples) if http else "-",
                    milliseconds(grpc.p99_ms),
                    milliseconds(http.p99_ms) if http else "-",
                    errors_text(grpc),
                ]
            )
    if not rows:
        return ""
    headers = [
        "gRPC scenario",
        "HTTP twin",
        "server",
        "batch",
        "gRPC ok req/s",
        "HTTP ok req/s",
        "gRPC / HTTP",
        "gRPC images/s",
        "HTTP images/s",
        "gRPC p99 ms",
        "HTTP p99 ms",
        "gRPC errors",
    ]
    return "### gRPC beside HTTP: the same version and batch, successful requests/s\n\n" + markdown_table(headers, rows, numeric=True)


def overview_section(results: Results) -> str:
    """One row per scenario: successful requests/s per server, and the ratios."""
    servers = [s for s in results.servers if any(results.result(sc, s) for sc in results.load_scenarios)]
    if not servers:
        return ""
    headers = [
        "scenario",
        *servers,
        "ONNX / TF",
        "served / hand-written 1-worker",
        "served / hand-written 2-worker",
        "served / floor",
        "served / baseline",
        "served p99 ms",
        "TF p99 ms",
    ]
    rows = []
    for scenario in results.load_scenarios:
        served, tensorflow = results.result(scenario, SERVED), results.result(scenario, SERVED_TF)
        rows.append(
            [
                scenario,
                *(rate(r.ok_per_s) if (r := results.result(scenario, s)) else "-" if serves(s, LOAD[scenario]) else NOT_SERVED for s in servers),
                times(results.ratio(scenario, SERVED, SERVED_TF)),
                peer_ratio(results, scenario, HANDWRITTEN_1),
                peer_ratio(results, scenario, HANDWRITTEN_2),
                times(results.ratio(scenario, SERVED, "floor")),
                times(results.ratio(scenario, SERVED, "baseline")),
                milliseconds(served.p99_ms) if served else "-",
                milliseconds(tensorflow.p99_ms) if tensorflow else "-",
            ]
        )
    return "### Overview: successful requests/s\n\n" + markdown_table(headers, rows, numeric=True)


def peer_ratio(results: Results, scenario: str, peer: str) -> str:
    """served over a hand-written peer in one scenario; n/a where the peer has no route for it."""
    return times(results.ratio(scenario, SERVED, peer)) if serves(peer, LOAD[scenario]) else NOT_SERVED


def cold_start_section(results: Results) -> str:
    rows = []
    for server, samples in results.cold_starts.items():
        rows.append(
            [
                server,
                ", ".join(seconds(s.ready_s) for s in samples),
                seconds(results.cold_start_median_s(server)),
                ", ".join(seconds(s.first_prediction_s) for s in samples),
                seconds(results.cold_start_median_s(server, "first_prediction_s")),
            ]
        )
    table = markdown_table(["server", "to /readyz 200", "median", f"to the first prediction ({LOAD[FIRST_PREDICTION].path})", "median"], rows) if rows else "Not measured."
    return (
        "### coldstart: `bentoml serve` launch to the first 200 on /readyz, and to the first prediction\n\n"
        "Every configured version loaded in its runner; the first launch of each server is also the one its load runs used.\n\n"
        f"{table}"
    )


def inprocess_section(results: Results) -> str:
    rows = [
        [m["engine"], f"{m['model']} {m['version']}", str(m["threads"]), str(m["batch_images"]), str(m["calls"]), str(m["seconds"]), str(m["ms_per_call"]), rate(m["images_per_s"])]
        for m in results.inprocess.values()
    ]
    onnx, tensorflow = results.inprocess.get("onnxruntime"), results.inprocess.get("tensorflow")
    ratio = f"\n\nONNX Runtime / TensorFlow: {times(onnx['images_per_s'] / tensorflow['images_per_s'])}." if onnx and tensorflow else ""
    return (
        "### In-process batched inference (`python -m bench.inprocess`: `models.engines.load`, no HTTP)\n\n"
        + markdown_table(["engine", "version", "threads", "batch", "calls", "seconds", "ms per call", "images/s"], rows, numeric=True)
        + ratio
    )


def memory_section(results: Results) -> str:
    """A row per process (workers of one service summed): both engines side by side when both were
    measured, else the one measured."""
    parts = [
        "### memory: RSS and PSS per process, every configured version loaded (`python -m bench.memory`)\n\n"
        f"Read from /proc {SETTLE_S:g} s after /readyz is 200 (and after the cold start's first prediction when "
        "coldstart runs too), before the load runs. "
        "PSS splits shared pages between the processes mapping them: its total is what the tree costs; "
        "RSS counts shared libraries in every process."
    ]
    if SERVED in results.memory and SERVED_TF in results.memory:
        parts.append(memory_comparison(results.memory[SERVED], results.memory[SERVED_TF]))
    else:
        parts += [memory_table(tree) for tree in results.memory.values()] or ["Not measured."]
    return "\n\n".join(parts)


def targets(results: Results) -> list[Target]:
    json_served = results.result("json", SERVED)
    json_floor = results.ratio("json", SERVED, "floor")
    json_baseline = results.ratio("json", SERVED, "baseline")
    json_peer_1, json_peer_2 = results.ratio("json", SERVED, HANDWRITTEN_1), results.ratio("json", SERVED, HANDWRITTEN_2)
    png_floor = results.ratio("png", SERVED, "floor")
    batch_ratio = results.inprocess_ratio(SERVED)
    cold_median = results.cold_start_median_s(SERVED)
    floors = {scenario: results.ratio(scenario, SERVED, "floor") for scenario in ("v2-binary-1", "tfserving-predict", "damage-jpeg")}
    tree = results.memory.get(SERVED)
    pss_mb = tree.total_pss / 1e6 if tree is not None and tree.total_pss is not None else None
    grpc_single, grpc_ratio = results.result("grpc-v2-1", SERVED), results.twin_ratio("grpc-v2-1")
    served_runs = [r for scenario in results.load.values() for server, r in scenario.items() if server in (SERVED, SERVED_TF)]
    served_errors = sum(r.errors for r in served_runs)
    return [
        Target("json", "served errors == 0", "-" if json_served is None else str(json_served.errors), None if json_served is None else json_served.errors == 0),
        Target("json", "served p99 <= 100 ms", "-" if json_served is None else f"{json_served.p99_ms:.1f} ms", None if json_served is None else json_served.p99_ms <= 100),
        Target("json", "served >= 0.30 x floor", times(json_floor), None if json_floor is None else json_floor >= 0.30),
        Target("json", "served >= 40 x baseline", times(json_baseline), None if json_baseline is None else json_baseline >= 40),
        Target("json", "served / hand-written 1-worker >= 1.0", times(json_peer_1), None if json_peer_1 is None else json_peer_1 >= 1.0),
        Target("json", "served / hand-written 2-worker >= 0.8", times(json_peer_2), None if json_peer_2 is None else json_peer_2 >= 0.8),
        Target(
            "json",
            "served p99 <= 30 ms (beside the hand-written peers)",
            "-" if json_served is None else f"{json_served.p99_ms:.1f} ms",
            None if json_served is None else json_served.p99_ms <= 30,
        ),
        Target("png", "served >= 0.20 x floor", times(png_floor), None if png_floor is None else png_floor >= 0.20),
        *[Target(scenario, "served >= 0.6 x floor", times(ratio), None if ratio is None else ratio >= 0.6) for scenario, ratio in floors.items()],
        Target("batch256", "served images/s >= 0.8 x in-process (ONNX Runtime)", times(batch_ratio), None if batch_ratio is None else batch_ratio >= 0.8),
        Target("every scenario", "served and served-tensorflow errors == 0", str(served_errors) if served_runs else "-", None if not served_runs else served_errors == 0),
        Target(
            "grpc-v2-1",
            "served gRPC ok req/s >= HTTP v2-binary-1's (same run)",
            "-" if grpc_ratio is None else f"{times(grpc_ratio)}, p99 {grpc_single.p99_ms:.1f} ms",
            None if grpc_ratio is None else grpc_ratio >= 1,
        ),
        Target(COLD_START, "served median to /readyz <= 2 s", seconds(cold_median), None if cold_median is None else cold_median <= 2),
        Target(MEMORY, "served tree PSS <= 500 MB", "-" if pss_mb is None else f"{pss_mb:,.0f} MB", None if pss_mb is None else pss_mb <= 500),
    ]


def targets_table(checked: list[Target]) -> str:
    return markdown_table(
        ["scenario", "target", "measured", "verdict"],
        [[t.scenario, t.description, t.measured, t.verdict] for t in checked],
    )


def summary_line(checked: list[Target]) -> str:
    counts = {verdict: sum(t.verdict == verdict for t in checked) for verdict in ("PASS", "FAIL", "SKIP")}
    failed = [f"{t.scenario}: {t.description}" for t in checked if t.passed is False]
    return "bench: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + (f" (failed: {'; '.join(failed)})" if failed else "")


def results_sections(results: Results) -> list[str]:
    sections = [overview_section(results)] if results.load else []
    sections += [section for section in (grpc_section(results),) if section]
    sections += [scenario_section(results, s) for s in results.load_scenarios]
    if results.inprocess:
        sections.append(inprocess_section(results))
    if COLD_START in results.scenarios:
        sections.append(cold_start_section(results))
    if MEMORY in results.scenarios:
        sections.append(memory_section(results))
    return sections


def engines_text(results: Results) -> str:
    lines = [f"- {server}: {', '.join(sorted(hosted.values()))}" for server, hosted in results.engines.items()]
    return "\n".join(lines) or "- (no served server was started)"


def generated_markdown(results: Results, plot_name: str | None) -> str:
    checked = targets(results)
    setup = "\n".join(f"- {key}: {value}" for key, value in results.machine.items())
    roles = "\n".join(f"- **{name}**: {SERVER_ROLES[name]}" for name in results.servers)
    notes = "\n".join(f"- {note}" for note in results.notes) or "- none"
    plot = f"\n\n![successful requests/s per scenario and server, memory per engine]({plot_name})" if plot_name else ""
    return f"""{BEGIN}
_Generated by `bench/run.py`; edit outside the `bench:begin`/`bench:end` markers only._

- Date: {results.started.isoformat(timespec="seconds")}
- Command: `{results.command}`
- Load: `wrk --latency -t2`, {results.duration_s} s per run; servers measured one after another on the same
  machine with the same bodies; ok req/s counts 2xx responses only (bench/post.lua counts every status), and ratios and images/s use it.
  The gRPC scenarios: bench/grpc_load.py, {results.grpc_processes} grpc.aio process(es) with one channel each and the scenario's
  calls in flight shared among them, every answer checked (status OK, output shape); ok req/s counts OK, well-formed answers.

## Machine

{setup}

## Servers

{roles}

What each served version ran on (as the entry reported it, GET /models/<name>):

{engines_text(results)}

## Results

{chr(10).join(s + chr(10) for s in results_sections(results))}
## Targets

{targets_table(checked)}

{summary_line(checked)}

Notes and problems:

{notes}{plot}
{END}"""


def write_markdown(results: Results, path: Path, plot_name: str | None) -> None:
    """Replace the generated part of ``path``; keep everything outside the markers (e.g. ## Findings)."""
    generated = generated_markdown(results, plot_name)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# Benchmarks\n\n{generated}\n\n## Findings\n\n_Written by hand; kept by `make bench`._\n")
        return
    text = path.read_text()
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        path.write_text(before + generated + after)
    else:
        path.write_text(text.rstrip("\n") + "\n\n" + generated + "\n")


def write_plot(results: Results, path: Path) -> bool:
    """Grouped bars of successful requests/s per scenario and server (log scale) and, when measured, the
    memory (PSS, else RSS) of each served tree by process; False when nothing was measured."""
    scenarios = [s for s in results.load_scenarios if results.load.get(s)]
    if not scenarios and not results.memory:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [name for name, present in (("load", scenarios), ("memory", results.memory)) if present]
    figure, axes = plt.subplots(
        1, len(panels), figsize=(11 if len(panels) == 1 else 15, 5), gridspec_kw={"width_ratios": [3, 1][: len(panels)]} if len(panels) == 2 else None, squeeze=False
    )
    axes = dict(zip(panels, axes[0], strict=True))
    if "load" in axes:
        plot_load(axes["load"], results, scenarios)
    if "memory" in axes:
        plot_memory(axes["memory"], results)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def plot_load(axes, results: Results, scenarios: list[str]) -> None:
    servers = [s for s in results.servers if any(results.result(sc, s) for sc in scenarios)]
    width = 0.8 / max(len(servers), 1)
    for index, server in enumerate(servers):
        positions = [i + (index - (len(servers) - 1) / 2) * width for i in range(len(scenarios))]
        values = [r.ok_per_s if (r := results.result(s, server)) and r.ok_per_s > 0 else math.nan for s in scenarios]
        bars = axes.bar(positions, values, width, label=server, color=f"C{list(SERVER_ROLES).index(server)}")  # one colour per server in every run
        axes.bar_label(bars, labels=["" if math.isnan(v) else rate(v) for v in values], fontsize=7, rotation=90, padding=2)
    axes.set_xticks(range(len(scenarios)), scenarios, rotation=20)
    axes.set_yscale("log")
    axes.set_ylim(1, axes.get_ylim()[1] * 4)  # room for the labels above the bars
    axes.set_ylabel("successful requests/s (log scale)")
    axes.set_title(f"successful requests/s over HTTP and gRPC, {results.duration_s} s per run, {results.machine.get('CPUs (nproc)', '?')} CPUs")
    axes.legend(fontsize=8)


def plot_memory(axes, results: Results) -> None:
    """One stacked bar per served server: its processes' PSS (RSS where PSS is unreadable), in MiB."""
    import matplotlib

    names = list(results.memory)
    services = list(dict.fromkeys(service for memory in results.memory.values() for service in memory.by_service()))
    bottoms = [0.0] * len(names)
    colours = matplotlib.colormaps["Set2"].colors  # not the load panel's: those colours are servers
    for index, service in enumerate(services):
        values = [sum((p.pss or p.rss) for p in memory.by_service().get(service, [])) / 2**20 for memory in results.memory.values()]
        axes.bar(names, values, 0.6, bottom=bottoms, label=service, color=colours[index % len(colours)])
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    for index, total in enumerate(bottoms):
        axes.text(index, total, f"{total:,.0f}", ha="center", va="bottom", fontsize=8)
    axes.set_ylim(0, max(bottoms) * 1.1)
    axes.set_ylabel("PSS, MiB")
    axes.set_title("memory of the served tree")
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
