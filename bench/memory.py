"""Memory per process of a served process tree, every configured version in its runner, per engine.

    .venv/bin/python -m bench.memory                                   # ONNX Runtime, then TensorFlow; prints the tables
    .venv/bin/python -m bench.memory --servers served-tensorflow --settle 5

Each served server (bench/servers.py: the repository's configuration, every version on one engine) is
started alone; once /readyz is 200 (every runner has loaded its version and answered a warm-up
inference) and ``settle`` seconds have passed, every process below `bentoml serve` is read from /proc:
RSS (VmRSS) and, where /proc/<pid>/smaps_rollup is readable, PSS, which splits each shared page between
the processes that map it: the sum of PSS is what the tree costs the machine, the sum of RSS counts
shared libraries once per process. Processes are named by their BentoML service: the arbiter
(`bentoml serve` itself, circus), the entry (``model-server``) and each runner (``clothes-v1``, ...,
``spare-1``), with the version and engine the entry reports for it (GET /models/<name>).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench import servers

ENTRY_SERVICE = "model-server"  # service.py: bentoml.service(name="model-server")
SETTLE_S = 2.0
MIB = 2**20
SPARE = "nothing (spare)"  # what an empty runner hosts


@dataclasses.dataclass(frozen=True)
class ProcessMemory:
    pid: int
    role: str  # "arbiter", "entry", "runner" or "other"
    service: str  # the BentoML service name, or the process's command
    hosts: str  # what a runner serves: "clothes v1 (onnxruntime)", "nothing (spare)"; "" for the others
    rss: int  # bytes
    pss: int | None  # bytes; None when smaps_rollup cannot be read

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TreeMemory:
    server: str
    engine: str
    processes: list[ProcessMemory]
    settle_s: float

    @property
    def total_rss(self) -> int:
        return sum(p.rss for p in self.processes)

    @property
    def total_pss(self) -> int | None:
        return summed(self.processes)[1]

    def by_service(self) -> dict[str, list[ProcessMemory]]:
        """The processes of each service (a service with several workers has several), arbiter first."""
        grouped: dict[str, list[ProcessMemory]] = {}
        for process in sorted(self.processes, key=lambda p: ("arbiter", "entry", "runner", "other").index(p.role)):
            grouped.setdefault(process.service, []).append(process)
        return grouped

    def runners(self) -> dict[str, list[ProcessMemory]]:
        return {service: processes for service, processes in self.by_service().items() if processes[0].role == "runner"}


def proc_bytes(pid: int, file: str, field: str) -> int | None:
    """A kB field of /proc/<pid>/<file> in bytes (status: VmRSS; smaps_rollup: Pss), or None when the
    file cannot be read (the process is gone, or smaps_rollup is not readable here)."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def service_name(pid: int) -> str | None:
    """The ``--service-name`` a BentoML worker was started with, or None."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return args[args.index(b"--service-name") + 1].decode() if b"--service-name" in args[:-1] else None


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:80]
    except OSError:
        return "(gone)"


def hosted_versions(url: str) -> dict[str, str]:
    """Runner service name -> "<model> <version> (<engine>)", from the entry's GET /models and /models/<name>."""
    from config import runner_name

    def get(path: str) -> dict:
        with urllib.request.urlopen(url + path, timeout=30) as response:
            return json.load(response)

    hosted = {}
    for model in get("/models")["models"]:
        for version in get(f"/models/{model['name']}")["versions"]:
            hosted[runner_name(model["name"], version["version"])] = f"{model['name']} {version['version']} ({version['engine'] or version['status']})"
    return hosted


def measure(server: servers.Server, settle_s: float = SETTLE_S) -> TreeMemory:
    """The memory of every process of a ready served server."""
    time.sleep(settle_s)
    hosted = hosted_versions(server.url)
    processes = []
    for pid in [server.process.pid, *servers.descendants(server.process.pid)]:
        service = service_name(pid)
        if pid == server.process.pid:
            role, name = "arbiter", "bentoml serve"
        elif service == ENTRY_SERVICE:
            role, name = "entry", service
        elif service is not None:
            role, name = "runner", service
        else:
            role, name = "other", command(pid)
        hosts = hosted.get(name, SPARE) if role == "runner" else ""
        rss = proc_bytes(pid, "status", "VmRSS")
        if rss is not None:  # None: the process is gone
            processes.append(ProcessMemory(pid, role, name, hosts, rss, proc_bytes(pid, "smaps_rollup", "Pss")))
    return TreeMemory(server.name, servers.ENGINES.get(server.name, ""), processes, settle_s)


def summed(processes: list[ProcessMemory]) -> tuple[int | None, int | None]:
    """(RSS, PSS) of some processes, in bytes; PSS None when one of them has none; (None, None) for none."""
    if not processes:
        return None, None
    return sum(p.rss for p in processes), None if any(p.pss is None for p in processes) else sum(p.pss for p in processes)


def mib(size: int | None) -> str:
    return "-" if size is None else f"{size / MIB:,.0f}"


def table(memory: TreeMemory) -> str:
    """A markdown table: one row per service (workers summed, their count given), then the total."""
    lines = [
        f"{memory.server} ({memory.engine}): RSS and PSS in MiB",
        "",
        "| process | serves | processes | RSS | PSS |",
        "|---|---|---:|---:|---:|",
    ]
    for service, processes in memory.by_service().items():
        rss, pss = summed(processes)
        label = f"{service} ({processes[0].role})" if processes[0].role in ("arbiter", "entry") else service
        lines.append(f"| {label} | {processes[0].hosts} | {len(processes)} | {mib(rss)} | {mib(pss)} |")
    lines.append(f"| **total** | | {len(memory.processes)} | **{mib(memory.total_rss)}** | **{mib(memory.total_pss)}** |")
    return "\n".join(lines)


def comparison(onnx: TreeMemory, tensorflow: TreeMemory) -> str:
    """Each service's RSS and PSS on both engines, the mean of the runners hosting a version, the totals."""

    def hosting_mean(memory: TreeMemory) -> tuple[int | None, int | None]:
        hosting = [summed(processes) for processes in memory.runners().values() if processes[0].hosts != SPARE]
        if not hosting:
            return None, None
        pss = [p for _, p in hosting]
        return int(statistics.mean(r for r, _ in hosting)), None if None in pss else int(statistics.mean(pss))

    def row(label: str, mine: tuple, theirs: tuple) -> list[str]:
        fair_mine, fair_theirs = mine[1] or mine[0], theirs[1] or theirs[0]
        ratio = f"{fair_mine / fair_theirs:.3g} x" if fair_mine and fair_theirs else "-"
        return [label, mib(mine[0]), mib(mine[1]), mib(theirs[0]), mib(theirs[1]), ratio]

    rows = [
        row(service, summed(onnx.by_service().get(service, [])), summed(tensorflow.by_service().get(service, [])))
        for service in dict.fromkeys([*onnx.by_service(), *tensorflow.by_service()])
    ]
    rows.append(row("a runner hosting a version (mean)", hosting_mean(onnx), hosting_mean(tensorflow)))
    rows.append(row("**total**", (onnx.total_rss, onnx.total_pss), (tensorflow.total_rss, tensorflow.total_pss)))
    return "ONNX Runtime against TensorFlow, MiB (the ratio is of PSS where readable, else RSS)\n\n" + "\n".join(
        [
            "| process | ONNX RSS | ONNX PSS | TF RSS | TF PSS | ONNX / TF |",
            "|---|---:|---:|---:|---:|---:|",
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default=",".join(servers.ENGINES), help=f"comma-separated, of {', '.join(servers.ENGINES)}")
    parser.add_argument("--settle", type=float, default=SETTLE_S, help="seconds to wait after /readyz before reading")
    parser.add_argument("--ready-timeout", type=float, default=300)
    parser.add_argument("--json", action="store_true", help="print one JSON line per server instead of tables")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    if not names or any(name not in servers.ENGINES for name in names):
        parser.error(f"--servers: expected names of {', '.join(servers.ENGINES)}")
    measured = {}
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as work:
        for name in names:
            with servers.launch(name, Path(work), args.ready_timeout) as server:
                measured[name] = memory = measure(server, args.settle)
            if args.json:
                print(json.dumps({"server": name, "engine": memory.engine, "processes": [p.as_dict() for p in memory.processes]}))
            else:
                print(table(memory) + "\n", flush=True)
    if not args.json and set(measured) == set(servers.ENGINES):
        print(comparison(measured["served"], measured["served-tensorflow"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
