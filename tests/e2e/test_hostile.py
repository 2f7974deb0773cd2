"""Hostile payloads against a real `bentoml serve`: each is refused fast, with the error envelope, and
the served process tree's memory stays bounded (sampled from /proc, tests/e2e/memory.py).

The server has the e2e limits (conftest.LIMITS: 1 MB bodies, 64 images per request) and the
repository's others (body_timeout_seconds, max_requests_in_flight). Slow clients, as this checks:

- a slow body (headers sent, then a byte a second) is answered 408 and dropped after
  ``body_timeout_seconds`` (middleware.BodyLimit), so it holds a concurrency slot only that long;
- slow headers are not timed out: uvicorn has no header timeout and the app only sees complete
  headers. They cost the server one socket each and slow no one down; a proxy in front drops them
  (nginx ``client_header_timeout``). More slow bodies than ``max_requests_in_flight`` would shed
  other clients (503) until their deadline: nginx buffers bodies before proxying them.

The table of payloads, statuses, times and memory is in the session's "measured figures".
"""

from __future__ import annotations

import dataclasses
import json
import select
import socket
import statistics
import struct
import threading
import time
import zlib

import numpy as np
import pytest
import requests

from config import load_config
from models.preprocessing import MAX_IMAGE_PIXELS
from tests.e2e.conftest import CLOTHES, LIMITS, Server, clothes, free_port, report_figures, write_config
from tests.e2e.memory import MIB, MemorySampler, mib

# Every hostile payload is answered within this. Measured refusals take 2 to 15 ms; the bound leaves
# room for a busy 2-core CI machine and still fails a server that decodes the bomb (seconds) or reads
# the 100 MB body. The real guard is the memory window, WINDOW_BUDGET.
FAST_SECONDS = 5.0
# Growth of the summed RSS (and of the processes' peaks) while one payload is handled. Decoding the
# bomb would take 400 MB, buffering the 100 MB body at least 100 MB; normal work stays under a few MB.
WINDOW_BUDGET = 48 * MIB
# Normal requests while 200 slow clients hold sockets: measured p99 19 ms. A server stalled by them
# (a blocked event loop, a full concurrency limit) answers in seconds or not at all.
SLOW_CLIENTS_P99_SECONDS = 2.0
BOMB_SIDE = 20_000
NESTING = 100_000
HUGE_BODY = 100 * MIB
SLOW_SOCKETS = 100  # of each kind: slow headers, slow bodies
SLOW_SECONDS = 20
PREDICT = "/models/clothes/v1"


@dataclasses.dataclass
class Row:
    payload: str
    status: str
    seconds: float
    rss_growth: int
    hwm_growth: int
    note: str = ""


class Hostile:
    def __init__(self, server: Server, config_path):
        self.url = server.url
        self.server = server
        self.config = load_config(config_path)
        self.rows: list[Row] = []
        self.memory: MemorySampler | None = None

    def send(self, label: str, request) -> tuple[requests.Response, float, Row]:
        """Send one hostile request inside a memory window, check the window's bound, record a table row."""
        with self.memory.window(label) as window:
            started = time.perf_counter()
            response = request()
            seconds = time.perf_counter() - started
        row = Row(label, str(response.status_code), seconds, window.rss_growth, window.hwm_growth)
        self.rows.append(row)
        assert window.rss_growth < WINDOW_BUDGET and window.hwm_growth < WINDOW_BUDGET, (label, mib(window.rss_growth), mib(window.hwm_growth))
        assert self.memory.alive(), f"a process of the served tree died or was restarted by: {label}"
        return response, seconds, row

    def table(self) -> str:
        lines = [f"{'payload':62} {'status':>6} {'seconds':>8} {'peak RSS growth':>16} {'VmHWM growth':>13}  note"]
        for r in self.rows:
            lines.append(f"{r.payload:62} {r.status:>6} {r.seconds:8.3f} {mib(r.rss_growth):>16} {mib(r.hwm_growth):>13}  {r.note}")
        lines.append(
            f"served tree: {len(self.memory.pids)} processes, idle RSS {mib(self.memory.baseline)}, peak {mib(self.memory.peak)} (+{mib(self.memory.peak - self.memory.baseline)})"
        )
        return "\n".join(lines)


@pytest.fixture(scope="module")
def hostile(trained_versions, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    config = write_config(tmp / "configuration.yaml", {CLOTHES: clothes(trained_versions, {"stable": "v1", "latest": "v2"})})
    server = Server(config, free_port(), tmp / "serve.log")
    try:
        server.wait_ready()
        state = Hostile(server, config)
        warm_up(server.url)
        with MemorySampler(server.process.pid) as state.memory:
            yield state
        report_figures("\nhostile payloads (test_hostile.py)\n" + state.table())
    finally:
        server.stop()


def warm_up(url: str) -> None:
    """Every route's ordinary path once or twice, so allocator warm-up is not counted as growth."""
    images = np.zeros((8, 28, 28), dtype=np.uint8)
    for _ in range(2):
        assert requests.post(f"{url}{PREDICT}", json={"images": images.tolist()}, timeout=30).status_code == 200
        assert requests.post(f"{url}/classify", json={"images": images.tolist(), "model": CLOTHES}, timeout=30).status_code == 200
        png = small_png()
        assert requests.post(f"{url}{PREDICT}", files={"image": ("x.png", png, "image/png")}, timeout=30).status_code == 200
        assert requests.post(f"{url}/classify_image", files={"image": ("x.png", png, "image/png")}, data={"model": CLOTHES}, timeout=30).status_code == 200


def assert_alive(url: str) -> None:
    assert requests.get(f"{url}/livez", timeout=5).status_code == 200
    response = requests.post(f"{url}{PREDICT}", json={"image": np.zeros((28, 28), dtype=int).tolist()}, timeout=10)
    assert response.status_code == 200, response.text


def error_of(response: requests.Response) -> str:
    assert response.headers["content-type"] == "application/json", response.text[:200]
    body = response.json()
    assert list(body) == ["error"], body
    return body["error"]


# --- decompression bomb ---------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int, grey: int = 128, rows_per_block: int = 500) -> bytes:
    """A valid side x side greyscale PNG of one colour, built without ever holding its pixels.

    One block of rows is deflated once and repeated: a full flush after it resets the compressor, so
    every copy decodes alike. The zlib checksum is computed over the repeated rows.
    """
    assert side % rows_per_block == 0
    row = b"\x00" + bytes([grey]) * side  # filter byte "none", then the pixels
    block = row * rows_per_block
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(side // rows_per_block):
        checksum = zlib.adler32(block, checksum)
    stream = b"\x78\xda" + piece * (side // rows_per_block) + deflate.flush() + struct.pack(">I", checksum)
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", stream) + png_chunk(b"IEND", b"")


def inflated_size(png: bytes) -> int:
    """Bytes the PNG's image data inflates to, streamed 16 MiB at a time; raises if the stream is broken."""
    data, position = b"", 8
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        if png[position + 4 : position + 8] == b"IDAT":
            data += png[position + 8 : position + 8 + length]
        position += 12 + length
    inflate, size = zlib.decompressobj(), 0
    size += len(inflate.decompress(data, 16 * MIB))
    while inflate.unconsumed_tail:
        size += len(inflate.decompress(inflate.unconsumed_tail, 16 * MIB))
    size += len(inflate.flush())
    assert inflate.eof, "the PNG's zlib stream is incomplete"
    return size


def small_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (28, 28), 10).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    png = bomb_png(BOMB_SIDE)
    assert len(png) < LIMITS["max_body_bytes"] // 2, len(png)  # well under the body limit: only the pixel guard can stop it
    assert inflated_size(png) == BOMB_SIDE * (BOMB_SIDE + 1)  # a real 20,000 x 20,000 image
    return png


@pytest.mark.parametrize("route", [PREDICT, "/classify_image"])
def test_decompression_bomb_is_refused_before_decoding(hostile, bomb, route):
    response, seconds, _ = hostile.send(
        f"PNG bomb {len(bomb) // 1024} KB -> {BOMB_SIDE}x{BOMB_SIDE} px, {route}",
        lambda: requests.post(f"{hostile.url}{route}", files={"image": ("bomb.png", bomb, "image/png")}, data={"model": CLOTHES}, timeout=30),
    )
    assert response.status_code == 422
    assert error_of(response) == f"image: more than {MAX_IMAGE_PIXELS} pixels, refused before decoding"
    # Decoding would take seconds and 400 MB; the window's memory bound is checked by hostile.send.
    assert seconds < FAST_SECONDS
    assert_alive(hostile.url)


# --- deeply nested JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize("route, field", [(PREDICT, "image"), ("/classify", "images")])
@pytest.mark.parametrize("closed", [True, False], ids=["balanced", "unclosed"])
def test_deeply_nested_json_is_refused(hostile, route, field, closed):
    nested = "[" * NESTING + ("]" * NESTING if closed else "")
    body = f'{{"{field}": {nested}{"}" if closed else ""}'.encode()
    response, seconds, _ = hostile.send(
        f"JSON nested {NESTING:,} deep ({'balanced' if closed else 'unclosed'}), {route}",
        lambda: requests.post(f"{hostile.url}{route}", data=body, headers={"content-type": "application/json"}, timeout=30),
    )
    assert response.status_code == 400
    message = error_of(response)
    assert "nested too deeply" in message or "recursion limit exceeded" in message, message
    assert seconds < FAST_SECONDS
    assert_alive(hostile.url)


# --- a long string among numbers ----------------------------------------------------------------------


STRING_AMONG_NUMBERS = [0] * 20_000 + ["x" * 200_000]  # NumPy alone: one fixed-width array of 20,001 such strings, 15 GB


@pytest.mark.parametrize(
    "route, body",
    [
        (PREDICT, {"images": [STRING_AMONG_NUMBERS]}),
        ("/v2/models/clothes/infer", {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 20_001], "data": STRING_AMONG_NUMBERS}]}),
        ("/v1/models/clothes:predict", {"instances": [STRING_AMONG_NUMBERS]}),
    ],
    ids=["course", "v2", "tfserving"],
)
def test_a_long_string_among_numbers_is_refused_without_a_fixed_width_array(hostile, route, body):
    data = json.dumps(body).encode()
    response, seconds, _ = hostile.send(
        f"JSON {len(data) // 1024} KB: 20,000 numbers and a 200 kB string, {route}",
        lambda: requests.post(f"{hostile.url}{route}", data=data, headers={"content-type": "application/json"}, timeout=30),
    )
    assert response.status_code in (400, 422) and "numbers" in error_of(response), response.text  # the window's memory bound: hostile.send
    assert seconds < FAST_SECONDS
    assert_alive(hostile.url)


# --- batch over the limit -------------------------------------------------------------------------


def batch_request(url: str, route: str, kind: str, count: int) -> requests.Response:
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    if kind == "raw":
        return requests.post(f"{url}{route}", data=images.tobytes(), headers={"content-type": "application/octet-stream"}, timeout=30)
    return requests.post(f"{url}{route}", data=json.dumps({"images": images.tolist(), "model": CLOTHES}), headers={"content-type": "application/json"}, timeout=30)


@pytest.mark.parametrize("route, kind", [(PREDICT, "json"), (PREDICT, "raw"), ("/classify", "json")])
def test_batch_over_the_limit_is_refused(hostile, route, kind):
    limit = LIMITS["max_batch_images"]
    at_limit = batch_request(hostile.url, route, kind, limit)
    assert at_limit.status_code == 200 and len(at_limit.json()["result"]) == limit
    response, seconds, _ = hostile.send(f"{limit + 1} images ({kind}), {route}", lambda: batch_request(hostile.url, route, kind, limit + 1))
    assert response.status_code == 413
    assert error_of(response) == f"images: {limit + 1} examples exceed the limit of {limit} per request"
    assert seconds < FAST_SECONDS


# --- 100 MB bodies --------------------------------------------------------------------------------


class Zeros:
    """A body of ``size`` zero bytes, produced as it is sent; ``sent`` counts what left the client."""

    def __init__(self, size: int):
        self.size = size
        self.sent = 0

    def __len__(self) -> int:  # requests then declares Content-Length
        return self.size

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.sent if n < 0 else min(n, self.size - self.sent)
        self.sent += n
        return bytes(n)

    def chunks(self, chunk: int = 64 * 1024):  # a generator: requests sends it chunked, without a length
        while self.sent < self.size:
            yield self.read(chunk)


@pytest.mark.parametrize("route", [PREDICT, "/classify"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_huge_body_is_refused_without_buffering_it(hostile, route, framing):
    body = Zeros(HUGE_BODY)
    data = body if framing == "content-length" else body.chunks()
    response, seconds, row = hostile.send(
        f"{HUGE_BODY // MIB} MB body ({framing}), {route}",
        lambda: requests.post(f"{hostile.url}{route}", data=data, headers={"content-type": "application/json"}, timeout=30),
    )
    assert response.status_code == 413
    assert f"exceeds the limit of {LIMITS['max_body_bytes']} bytes" in error_of(response)
    assert response.headers["connection"] == "close"  # the client is told to stop sending
    assert seconds < FAST_SECONDS
    # What the client got to send: the server's reads plus the sockets' buffers, a small part of it.
    row.note = f"the client got {body.sent / MIB:.1f} MB out"
    assert body.sent < HUGE_BODY // 10, body.sent
    assert_alive(hostile.url)


# --- slow clients ---------------------------------------------------------------------------------


class SlowClients:
    """Sockets that send a request a byte a second: ``headers`` never finish their headers; ``bodies``
    send complete headers (a 100 KB body declared), then the body a byte a second."""

    HEAD = b"POST /models/clothes/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"

    def __init__(self, url: str, count: int):
        host, port = url.removeprefix("http://").split(":")
        self.headers = [socket.create_connection((host, int(port))) for _ in range(count)]
        self.bodies = [socket.create_connection((host, int(port))) for _ in range(count)]
        for sock in self.bodies:
            sock.sendall(self.HEAD)
        self.started = time.monotonic()
        self.answers: dict[socket.socket, tuple[float, bytes]] = {}  # first bytes from the server, and when
        self.closed: set[socket.socket] = set()  # sockets the server closed

    def run(self, seconds: float) -> None:
        for second in range(int(seconds)):
            for sock in self.headers + self.bodies:
                if sock in self.closed:
                    continue
                try:
                    sock.send(self.HEAD[second : second + 1] if sock in self.headers else b"[")
                except OSError:
                    self.closed.add(sock)
            self._collect(until=self.started + second + 1)

    def _collect(self, until: float) -> None:
        """Read whatever the server sends until ``until``; an empty read means it closed the socket."""
        while (left := until - time.monotonic()) > 0:
            open_sockets = [s for s in self.headers + self.bodies if s not in self.closed]
            readable, _, _ = select.select(open_sockets, [], [], left)
            for sock in readable:
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if data:
                    at, before = self.answers.get(sock, (time.monotonic() - self.started, b""))
                    self.answers[sock] = (at, before + data)
                else:
                    self.closed.add(sock)

    def close(self) -> None:
        for sock in self.headers + self.bodies:
            sock.close()


def test_slow_clients_are_bounded_and_do_not_slow_others(hostile):
    deadline = hostile.config.limits.body_timeout_seconds
    assert SLOW_SOCKETS < hostile.config.limits.max_requests_in_flight  # the slow bodies alone cannot shed others
    latencies: list[float] = []
    statuses: list[int | str] = []
    stop = threading.Event()

    def normal_client():
        body = json.dumps({"image": np.zeros((28, 28), dtype=int).tolist()})
        with requests.Session() as session:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    statuses.append(session.post(f"{hostile.url}{PREDICT}", data=body, headers={"content-type": "application/json"}, timeout=10).status_code)
                except requests.RequestException as exc:
                    statuses.append(type(exc).__name__)
                latencies.append(time.perf_counter() - started)
                time.sleep(0.05)

    with hostile.memory.window(f"{SLOW_SOCKETS} slow headers + {SLOW_SOCKETS} slow bodies, {SLOW_SECONDS} s") as window:
        slow = SlowClients(hostile.url, SLOW_SOCKETS)
        normal = threading.Thread(target=normal_client)
        normal.start()
        try:
            slow.run(SLOW_SECONDS)
        finally:
            stop.set()
            normal.join(timeout=15)
            slow.close()
    p99 = statistics.quantiles(latencies, n=100)[98]
    answered_bodies = [slow.answers[s] for s in slow.bodies if s in slow.answers]
    headers_open = sum(s not in slow.closed for s in slow.headers)
    last_408 = max((at for at, _ in answered_bodies), default=0.0)
    hostile.rows.append(
        Row(window.label, "408", last_408, window.rss_growth, window.hwm_growth, f"{len(answered_bodies)} bodies answered 408; {headers_open} slow headers still open")
    )
    hostile.rows.append(Row(f"  normal requests meanwhile: {len(latencies)}; p99 latency", ",".join(sorted({str(s) for s in statuses})), p99, 0, 0))

    assert set(statuses) == {200}, statuses
    assert p99 < SLOW_CLIENTS_P99_SECONDS, latencies
    assert len(answered_bodies) == SLOW_SOCKETS and all(s in slow.closed for s in slow.bodies)
    for at, answer in answered_bodies:
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert answer.endswith(json.dumps({"error": f"body not received within {deadline:g} seconds"}).encode()), answer
        assert deadline - 1 <= at <= deadline + 2, at
    assert window.rss_growth < WINDOW_BUDGET and window.hwm_growth < WINDOW_BUDGET, (mib(window.rss_growth), mib(window.hwm_growth))
    assert hostile.memory.alive(), "a process of the served tree died or was restarted"
    assert requests.get(f"{hostile.url}/readyz", timeout=5).status_code == 200
    assert_alive(hostile.url)


def test_the_memory_windows_do_see_a_large_image_decoded(hostile):
    """The instrument itself: a 6,000 x 6,000 PNG, under the pixel limit, is decoded, and that shows."""
    side = 6_000
    assert side * side <= MAX_IMAGE_PIXELS
    png = bomb_png(side)
    with hostile.memory.window(f"PNG {side}x{side} px, under the limit (decoded)") as window:
        response = requests.post(f"{hostile.url}{PREDICT}", files={"image": ("big.png", png, "image/png")}, timeout=30)
    hostile.rows.append(Row(window.label, str(response.status_code), window.ended - window.started, window.rss_growth, window.hwm_growth, "the check's own control"))
    assert response.status_code == 200
    assert window.rss_growth > side * side // 2, mib(window.rss_growth)
