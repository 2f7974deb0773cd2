"""Load one gRPC method of a served process with unary calls from a few processes on grpc.aio, checking every answer.

    .venv/bin/python -m bench.grpc_load --target 127.0.0.1:8001 --scenario grpc-v2-1 --seconds 5
    .venv/bin/python -m bench.grpc_load --target 127.0.0.1:8001 --scenario grpc-v2-256 --seconds 5 --processes 2

    result = run_grpc("127.0.0.1:8001", scenario, body, in_flight=64, seconds=30, timeout_s=10)
    result.requests_per_s, result.p99_ms, result.statuses     # statuses: calls by gRPC status code name

The request is serialized once (bench/bodies.py writes it: ``request_bytes``) and sent as it is, so the
load generator spends nothing on building messages: ``inference.ModelInferRequest`` as tritonclient.grpc
builds it (its own ``_get_inference_request``: the UINT8 tensor in ``raw_input_contents``), or TF Serving's
``PredictRequest`` with a DT_UINT8 ``tensor_content`` (as ``tf.make_tensor_proto`` makes it).

Each of ``processes`` worker processes (``python -m bench.grpc_load --worker``, started and ended by id)
opens one channel, one HTTP/2 connection, makes one call to warm it up (its answer is the run's probe),
and, once every worker is ready, keeps its share of ``in_flight`` unary calls in flight for ``seconds``
(and at most ``max_calls`` calls), each with a deadline of ``timeout_s``. Every answer is parsed and
checked: status OK, one output of the expected shape ``[examples, classes]`` (from the version's card)
with its ``examples * classes`` FP32 values; an OK answer failing the check counts as ``INVALID_ANSWER``.
The result has the fields of wrk's (bench/load.py: ``WrkResult``), so the report puts gRPC rows beside
HTTP ones: requests/s counts every finished call over the measured time (first call sent to the last
answer), latencies (p50, p90, p99) cover every finished call, ``non_2xx`` counts the calls that are not
OK answers, ``socket_errors`` is always 0 (a broken connection is a status, UNAVAILABLE).

One worker process is the default: the served entry is one asyncio process on a 2-core machine that
also runs the runners, and a Python client costs several times wrk's CPU per call, so a second client
process mostly takes CPU from the server it measures. ``client_cpu_share`` (CPU seconds of the workers
over the measured time; 1.0 is one core) tells whether the client, not the server, was the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import dataclasses
import json
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.load import WrkResult
from bench.scenarios import LOAD, Scenario, tfserving_number

if TYPE_CHECKING:  # a worker imports neither the bodies' recipes nor the model store
    from bench.bodies import Body

ROOT = Path(__file__).resolve().parent.parent
CONTENT_TYPE = "application/grpc"
INVALID = "INVALID_ANSWER"  # an OK status whose answer failed the check
DEFAULT_PROCESSES = 1
DEFAULT_MAX_CALLS = 5_000_000  # per worker process: a bound on the count besides the time
READY_TIMEOUT_S = 120  # for every worker to connect and answer its warm-up call
MAX_MESSAGE_BYTES = 64 * 2**20
SIGNATURE = "serving_default"
TF_DT_UINT8, TF_DT_FLOAT = 4, 1


class GrpcLoadError(RuntimeError):
    """A worker failed to start, to connect, or to report."""


@dataclasses.dataclass(frozen=True)
class GrpcResult(WrkResult):
    """A wrk result's fields (rates, latencies, errors, ``statuses`` by gRPC status code name, with
    INVALID_ANSWER for OK answers failing the check), and what only a gRPC run has."""

    processes: int
    in_flight: int
    seconds: float  # the measured time: first call sent to the last answer (the longest worker's)
    client_cpu_share: float  # the workers' CPU seconds over the measured time (1.0: one core)
    probe: str  # the status (and detail) of the warm-up call of the first worker
    details: dict[str, str] = dataclasses.field(default_factory=dict)  # a message per non-OK status

    def error_parts(self) -> list[str]:
        return [f"{code}: {count}" for code, count in sorted(self.statuses.items()) if code != "OK"]


# --- requests (in the parent: bench/bodies.py) --------------------------------------------------------------


def request_bytes(scenario: Scenario, examples: np.ndarray) -> bytes:
    """The serialized request of a gRPC scenario for these uint8 examples (batch first)."""
    examples = np.ascontiguousarray(examples, dtype=np.uint8)
    if scenario.protocol == "grpc-v2":
        from tritonclient.grpc import InferInput
        from tritonclient.grpc._utils import _get_inference_request

        tensor = InferInput("input", list(examples.shape), "UINT8")
        tensor.set_data_from_numpy(examples)
        request = _get_inference_request(scenario.model, [tensor], scenario.version, "", None, 0, False, False, 0, None, None)
        return request.SerializeToString()
    if scenario.protocol == "grpc-tfserving":
        from serving.protocols.grpc.messages import message

        request = message("tensorflow.serving.PredictRequest")()
        request.model_spec.name = scenario.model
        request.model_spec.signature_name = SIGNATURE
        request.model_spec.version.value = tfserving_number(scenario.version)
        tensor = request.inputs["input"]
        tensor.dtype = TF_DT_UINT8
        tensor.tensor_content = examples.tobytes()
        for size in examples.shape:
            tensor.tensor_shape.dim.add(size=size)
        return request.SerializeToString()
    raise ValueError(f"{scenario.name}: not a gRPC scenario (protocol {scenario.protocol!r})")


def expected_shape(scenario: Scenario, examples: int) -> list[int]:
    from models import store

    return [examples, store.load_card(scenario.model, scenario.version).classes]


# --- the parent ----------------------------------------------------------------------------------------------


def run_grpc(
    target: str, scenario: Scenario, body: Body, in_flight: int, seconds: float, timeout_s: float, processes: int = DEFAULT_PROCESSES, max_calls: int = DEFAULT_MAX_CALLS
) -> GrpcResult:
    """Load ``target`` (host:port) with this scenario's body from ``processes`` workers sharing ``in_flight`` calls."""
    if not scenario.grpc:
        raise ValueError(f"{scenario.name} is not a gRPC scenario")
    processes = max(1, min(processes, in_flight))
    shares = [in_flight // processes + (i < in_flight % processes) for i in range(processes)]
    spec = {
        "target": target,
        "method": scenario.path,
        "protocol": scenario.protocol,
        "body": str(body.path),
        "shape": expected_shape(scenario, body.examples),
        "seconds": seconds,
        "timeout_s": timeout_s,
        "max_calls": max_calls,
    }
    with tempfile.TemporaryDirectory(prefix="grpc-load-") as temporary:
        workers = [_start_worker({**spec, "in_flight": share}, Path(temporary) / f"worker-{i}.stderr") for i, share in enumerate(shares)]
        try:
            _wait_ready(workers, READY_TIMEOUT_S)
            for process, _ in workers:  # every worker is connected and warm: go
                process.stdin.write(b"go\n")
                process.stdin.flush()
            outcomes = _collect(workers, seconds + timeout_s + 60)
        finally:
            for process, _ in workers:
                _end(process)
    return _merge(outcomes, in_flight)


def _start_worker(spec: dict, stderr_path: Path) -> tuple[subprocess.Popen, Path]:
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.grpc_load", "--worker", json.dumps(spec)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
    return process, stderr_path


def _wait_ready(workers: list[tuple[subprocess.Popen, Path]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for process, stderr_path in workers:
        line = _read_line(process, deadline).decode(errors="replace").strip()
        if line != "ready":
            with contextlib.suppress(ValueError, AttributeError):
                line = json.loads(line)["error"]
            raise GrpcLoadError(f"a gRPC load worker did not get ready: {(line or _tail(stderr_path).strip() or 'no answer')[-800:]}")


def _read_line(process: subprocess.Popen, deadline: float) -> bytes:
    """One line of a worker's stdout, or b"" when it ended or the deadline passed."""
    line = b""
    fd = process.stdout.fileno()
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return b""
        chunk = os.read(fd, 1)
        if not chunk:
            return line
        line += chunk
    return line


def _collect(workers: list[tuple[subprocess.Popen, Path]], timeout_s: float) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    outcomes = []
    for process, stderr_path in workers:
        try:
            output, _ = process.communicate(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            raise GrpcLoadError(f"a gRPC load worker did not finish within {timeout_s:.0f} s") from None
        lines = output.decode(errors="replace").strip().splitlines()
        if process.returncode != 0 or not lines:
            raise GrpcLoadError(f"a gRPC load worker exited with {process.returncode}: {_tail(stderr_path).strip()[-800:]}")
        outcome = json.loads(lines[-1])
        if "error" in outcome:
            raise GrpcLoadError(f"a gRPC load worker failed: {outcome['error']}")
        outcomes.append(outcome)
    return outcomes


def _end(process: subprocess.Popen) -> None:
    """Stop a worker this module started (its own session), by its id."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    for stream in (process.stdin, process.stdout):
        with contextlib.suppress(OSError):
            stream.close()


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _merge(outcomes: list[dict], in_flight: int) -> GrpcResult:
    latencies = np.concatenate([np.frombuffer(base64.b64decode(o["latencies"]), dtype=np.float64) for o in outcomes])
    statuses = collections.Counter()
    details = {}
    for outcome in outcomes:
        statuses.update(outcome["statuses"])
        for code, detail in outcome["details"].items():
            details.setdefault(code, detail)
    elapsed = max(o["seconds"] for o in outcomes)
    p50, p90, p99 = (float(v) * 1e3 for v in np.percentile(latencies, [50, 90, 99])) if len(latencies) else (math.nan,) * 3
    requests = int(sum(statuses.values()))
    return GrpcResult(
        requests=requests,
        requests_per_s=requests / elapsed if elapsed > 0 else 0.0,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        non_2xx=requests - statuses.get("OK", 0),
        socket_errors=0,
        statuses=dict(statuses),
        processes=len(outcomes),
        in_flight=in_flight,
        seconds=elapsed,
        client_cpu_share=sum(o["cpu_s"] for o in outcomes) / elapsed if elapsed > 0 else 0.0,
        probe=outcomes[0]["probe"],
        details=details,
    )


# --- a worker ------------------------------------------------------------------------------------------------


def _checker(protocol: str, shape: list[int]):
    """A function telling whether a serialized answer has the one FP32 output of this shape."""
    from serving.protocols.grpc.messages import message

    values = math.prod(shape)
    if protocol == "grpc-v2":
        parse = message("inference.ModelInferResponse").FromString

        def check(answer: bytes) -> bool:
            response = parse(answer)
            if len(response.outputs) != 1 or len(response.raw_output_contents) != 1:
                return False
            output = response.outputs[0]
            return output.datatype == "FP32" and list(output.shape) == shape and len(response.raw_output_contents[0]) == 4 * values

        return check
    parse = message("tensorflow.serving.PredictResponse").FromString

    def check_predict(answer: bytes) -> bool:
        response = parse(answer)
        if list(response.outputs) != ["probabilities"]:
            return False
        tensor = response.outputs["probabilities"]
        found = len(tensor.tensor_content) // 4 if tensor.tensor_content else len(tensor.float_val)
        return tensor.dtype == TF_DT_FLOAT and [d.size for d in tensor.tensor_shape.dim] == shape and found == values

    return check_predict


async def _drive(spec: dict) -> dict:
    import grpc

    request = Path(spec["body"]).read_bytes()
    check = _checker(spec["protocol"], spec["shape"])
    timeout_s, max_calls = spec["timeout_s"], spec["max_calls"]
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES), ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
    async with grpc.aio.insecure_channel(spec["target"], options=options) as channel:
        call = channel.unary_unary(spec["method"])  # bytes in, bytes out: the request is serialized already
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout=60)
        except TimeoutError:
            raise RuntimeError(f"no gRPC connection to {spec['target']} within 60 s") from None
        try:
            probe = "OK" if check(await call(request, timeout=30)) else INVALID
        except grpc.aio.AioRpcError as exc:
            probe = f"{exc.code().name}: {exc.details()}"
        print("ready", flush=True)
        go = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if go.strip() != "go":
            raise RuntimeError("the parent did not say go")

        latencies = array("d")
        statuses: collections.Counter = collections.Counter()
        details: dict[str, str] = {}
        issued = 0
        started_cpu, started = time.process_time(), time.perf_counter()
        deadline = started + spec["seconds"]
        finished = started

        async def lane() -> None:
            nonlocal issued, finished
            while issued < max_calls and time.perf_counter() < deadline:
                issued += 1
                sent = time.perf_counter()
                try:
                    code = "OK" if check(await call(request, timeout=timeout_s)) else INVALID
                except grpc.aio.AioRpcError as exc:
                    code = exc.code().name
                    details.setdefault(code, (exc.details() or "")[:300])
                finished = time.perf_counter()
                latencies.append(finished - sent)
                statuses[code] += 1

        await asyncio.gather(*(lane() for _ in range(spec["in_flight"])))
        return {
            "latencies": base64.b64encode(latencies.tobytes()).decode(),
            "statuses": dict(statuses),
            "details": details,
            "seconds": finished - started,
            "cpu_s": time.process_time() - started_cpu,
            "probe": probe,
        }


def worker(spec_json: str) -> int:
    try:
        outcome = asyncio.run(_drive(json.loads(spec_json)))
    except Exception as exc:  # noqa: BLE001 -- reported to the parent, which raises GrpcLoadError
        outcome = {"error": f"{type(exc).__name__}: {exc}"}  # before "ready" too: the parent reads it instead
    print(json.dumps(outcome), flush=True)
    return 0


# --- the command line ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    grpc_scenarios = [name for name, s in LOAD.items() if s.grpc]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--target", default="127.0.0.1:8001", help="host:port of the served gRPC port (default 127.0.0.1:8001)")
    parser.add_argument("--scenario", choices=grpc_scenarios, default=grpc_scenarios[0])
    parser.add_argument("--seconds", type=float, default=30, help="load duration (default 30)")
    parser.add_argument("--in-flight", type=int, help="calls in flight over every process (default: the scenario's connections)")
    parser.add_argument("--processes", type=int, default=DEFAULT_PROCESSES, help=f"worker processes, one channel each (default {DEFAULT_PROCESSES})")
    parser.add_argument("--timeout", type=float, default=10, help="each call's deadline in seconds (default 10)")
    parser.add_argument("--max-calls", type=int, default=DEFAULT_MAX_CALLS, help="calls per worker process at most")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    if args.seconds <= 0 or args.processes < 1 or (args.in_flight is not None and args.in_flight < 1):
        parser.error("--seconds, --processes and --in-flight must be positive")
    from bench.bodies import write_bodies

    scenario = LOAD[args.scenario]
    with tempfile.TemporaryDirectory(prefix="grpc-load-body-") as temporary:
        body = write_bodies(Path(temporary), [scenario])[scenario.name]
        try:
            result = run_grpc(args.target, scenario, body, args.in_flight or scenario.connections, args.seconds, args.timeout, args.processes, args.max_calls)
        except GrpcLoadError as exc:
            print(f"{scenario.name}: {exc}", file=sys.stderr)
            return 1
    print(summary(scenario, result))
    print(json.dumps(dataclasses.asdict(result)))
    return 0


def summary(scenario: Scenario, result: GrpcResult) -> str:
    return (
        f"{scenario.name}: {result.requests_per_s:,.1f} req/s ({result.ok_per_s * scenario.examples:,.0f} images/s OK), "
        f"p50 {result.p50_ms:.1f} ms, p90 {result.p90_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, {result.errors} errors "
        f"({result.status_text()}); {result.processes} process(es), {result.in_flight} in flight, {result.seconds:.1f} s, "
        f"client CPU {result.client_cpu_share:.2f} cores; probe {result.probe}"
    )


if __name__ == "__main__":
    sys.exit(main())
