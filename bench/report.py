"""Tables, target checks, the markdown report and its plot, from the results of one benchmark run.

    >>> print(scenario_section(results, "json"))           # a markdown table, readable in a terminal too
    >>> write_markdown(results, Path("docs/benchmarks.md"))  # replaces only the part between the markers
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
from bench.load import WrkResult

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
LOAD_SCENARIOS = ("json", "png", "batch256")
COLD_START = "coldstart"
SERVER_ROLES = {
    "served": "the real service, `bentoml serve service:ModelServer` with the default configuration (as `make serve`)",
    "baseline": "the course's way: Flask's threaded dev server, `model.predict` per request (bench/baseline_flask.py)",
    "floor": "bare Starlette on uvicorn, 1 worker: parses the body into numpy, no model (bench/floor.py)",
}


@dataclasses.dataclass
class Results:
    command: str
    started: datetime.datetime
    scenarios: list[str]
    servers: list[str]
    duration_s: int
    connections: dict[str, int]
    bodies: dict[str, Body]
    load: dict[str, dict[str, WrkResult]] = dataclasses.field(default_factory=dict)
    cold_starts_s: list[float] = dataclasses.field(default_factory=list)
    inprocess: dict | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    machine: dict[str, str] = dataclasses.field(default_factory=dict)

    def result(self, scenario: str, server: str) -> WrkResult | None:
        return self.load.get(scenario, {}).get(server)

    def images_per_s(self, scenario: str, server: str) -> float | None:
        result = self.result(scenario, server)
        return None if result is None else result.ok_per_s * self.bodies[scenario].images

    def ratio(self, scenario: str, server: str, other: str) -> float | None:
        """Successful requests/s of ``server`` over those of ``other`` in one scenario."""
        mine, theirs = self.result(scenario, server), self.result(scenario, other)
        if mine is None or theirs is None or theirs.ok_per_s == 0:
            return None
        return mine.ok_per_s / theirs.ok_per_s

    def inprocess_ratio(self) -> float | None:
        served = self.images_per_s("batch256", "served")
        if served is None or not self.inprocess:
            return None
        return served / self.inprocess["images_per_s"]

    def cold_start_median_s(self) -> float | None:
        return statistics.median(self.cold_starts_s) if self.cold_starts_s else None


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
    os_release = dict(
        line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
    )
    wrk_banner = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()
    return {
        "CPUs (nproc)": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "CPU model": cpu_models[0] if cpu_models else "unknown",
        "memory": f"{_kib_to_gib(meminfo['MemTotal'])} GiB total, {_kib_to_gib(meminfo['MemAvailable'])} GiB available",
        "load average at start (1, 5, 15 min)": ", ".join(f"{load:.2f}" for load in os.getloadavg()),
        "OS": os_release.get("PRETTY_NAME", "unknown").strip('"'),
        "kernel": platform.release(),
        "Python": platform.python_version(),
        **{module: _version(module) for module in ("tensorflow", "keras", "bentoml", "flask", "uvicorn", "starlette")},
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


def errors_text(result: WrkResult) -> str:
    if result.errors == 0:
        return "0"
    parts = [f"{status}: {count}" for status, count in sorted(result.statuses.items()) if status >= 400]
    if result.socket_errors:
        parts.append(f"socket: {result.socket_errors}")
    return f"{result.errors} ({', '.join(parts)})"


def scenario_section(results: Results, scenario: str) -> str:
    body = results.bodies[scenario]
    batch = body.images > 1
    headers = ["server", "req/s", "ok req/s", *(["images/s"] if batch else []), "p50 ms", "p99 ms", "errors"]
    rows = []
    for server in results.servers:
        result = results.result(scenario, server)
        if result is None:
            rows.append([server, "not measured", "", *([""] if batch else []), "", "", ""])
            continue
        images = [rate(results.images_per_s(scenario, server))] if batch else []
        rows.append([
            server, rate(result.requests_per_s), rate(result.ok_per_s), *images,
            milliseconds(result.p50_ms), milliseconds(result.p99_ms), errors_text(result),
        ])
    ratios = [
        f"served/floor {times(results.ratio(scenario, 'served', 'floor'))}",
        f"served/baseline {times(results.ratio(scenario, 'served', 'baseline'))}",
    ]
    if batch and results.inprocess:
        ratios.append(
            f"served/in-process {times(results.inprocess_ratio())} "
            f"(in-process: {rate(results.inprocess['images_per_s'])} images/s)"
        )
    title = (
        f"### {scenario}: {body.content_type.split(';')[0]}, {body.images} image{'s' if batch else ''} per request, "
        f"{results.connections[scenario]} connections, {results.duration_s} s"
    )
    return f"{title}\n\n{markdown_table(headers, rows, numeric=True)}\n\nRatios of successful requests/s: {'; '.join(ratios)}."


def cold_start_section(results: Results) -> str:
    samples = ", ".join(f"{s:.1f} s" for s in results.cold_starts_s) or "not measured"
    median = results.cold_start_median_s()
    return (
        "### coldstart: `bentoml serve` launch to the first 200 on /readyz\n\n"
        f"Samples (the first is the launch used for the load runs): {samples}; "
        f"median: {'-' if median is None else f'{median:.1f} s'}."
    )


def inprocess_section(results: Results) -> str:
    measured = results.inprocess
    return (
        "### In-process batched inference (v1, `models.inference.Predictor`, no HTTP)\n\n"
        f"{measured['calls']} calls of {measured['batch_images']} images in {measured['seconds']} s after warm-up: "
        f"{measured['ms_per_call']} ms per call, {rate(measured['images_per_s'])} images/s."
    )


def targets(results: Results) -> list[Target]:
    json_served = results.result("json", "served")
    json_floor = results.ratio("json", "served", "floor")
    json_baseline = results.ratio("json", "served", "baseline")
    png_floor = results.ratio("png", "served", "floor")
    batch_ratio = results.inprocess_ratio()
    cold_median = results.cold_start_median_s()
    return [
        Target("json", "served errors == 0", "-" if json_served is None else str(json_served.errors),
               None if json_served is None else json_served.errors == 0),
        Target("json", "served p99 <= 100 ms", "-" if json_served is None else f"{json_served.p99_ms:.1f} ms",
               None if json_served is None else json_served.p99_ms <= 100),
        Target("json", "served >= 0.30 x floor", times(json_floor), None if json_floor is None else json_floor >= 0.30),
        Target("json", "served >= 40 x baseline", times(json_baseline), None if json_baseline is None else json_baseline >= 40),
        Target("png", "served >= 0.20 x floor", times(png_floor), None if png_floor is None else png_floor >= 0.20),
        Target("batch256", "served images/s >= 0.5 x in-process", times(batch_ratio), None if batch_ratio is None else batch_ratio >= 0.5),
        Target(COLD_START, "median <= 8 s", "-" if cold_median is None else f"{cold_median:.1f} s",
               None if cold_median is None else cold_median <= 8),
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
    sections = [scenario_section(results, s) for s in LOAD_SCENARIOS if s in results.scenarios]
    if COLD_START in results.scenarios:
        sections.append(cold_start_section(results))
    if results.inprocess:
        sections.append(inprocess_section(results))
    return sections


def generated_markdown(results: Results, plot_name: str | None) -> str:
    checked = targets(results)
    setup = "\n".join(f"- {key}: {value}" for key, value in results.machine.items())
    roles = "\n".join(f"- **{name}**: {SERVER_ROLES[name]}" for name in results.servers)
    notes = "\n".join(f"- {note}" for note in results.notes) or "- none"
    plot = f"\n\n![successful requests/s per scenario and server]({plot_name})" if plot_name else ""
    return f"""{BEGIN}
_Generated by `bench/run.py`; edit outside the `bench:begin`/`bench:end` markers only._

- Date: {results.started.isoformat(timespec="seconds")}
- Command: `{results.command}`
- Load: `wrk --latency -t2`, {results.duration_s} s per run; servers measured one after another on the same
  machine with the same bodies; ok req/s counts 2xx/3xx responses only, and ratios and images/s use it.

## Machine

{setup}

## Servers

{roles}

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
    """A grouped bar plot of successful requests/s per scenario and server; False when nothing was measured."""
    scenarios = [s for s in LOAD_SCENARIOS if results.load.get(s)]
    if not scenarios:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / len(results.servers)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for index, server in enumerate(results.servers):
        positions = [i + (index - (len(results.servers) - 1) / 2) * width for i in range(len(scenarios))]
        values = [r.ok_per_s if (r := results.result(s, server)) and r.ok_per_s > 0 else math.nan for s in scenarios]
        bars = axes.bar(positions, values, width, label=server)
        axes.bar_label(bars, labels=["" if math.isnan(v) else rate(v) for v in values], fontsize=8)
    axes.set_xticks(range(len(scenarios)), scenarios)
    axes.set_yscale("log")
    axes.set_ylabel("successful requests/s (log scale)")
    axes.set_title(f"clothes v1 over HTTP, {results.duration_s} s per run, {results.machine.get('CPUs (nproc)', '?')} CPUs")
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
