"""``bidcore replay``: send recorded bid requests at a running bidder and report what came back.

Requests go over a few keep-alive HTTP/1.1 connections (asyncio streams, no HTTP library),
either as fast as the connections allow or at a fixed rate. The report gives the bid rate, the
count of each status and the latency percentiles. At a fixed rate every request has a
scheduled time and its latency is counted from then, so a bidder that falls behind shows it
in the percentiles (rather than the client quietly sending less).

>>> bodies = read_requests([demo.sample_request_path()])
>>> len(bodies), bodies[0][:22]
(1, b'{"id":"some-request-id')
>>> latencies = [0.001, 0.002, 0.003, 0.004]
>>> report = ReplayReport(seconds=2.0, statuses=Counter({200: 3, 204: 1}), latencies=latencies)
>>> print(report.summary())
4 requests in 2.00 s (2 per second); 3 bids (75.0%)
status: 200 3, 204 1
latency ms: p50 2.00, p90 4.00, p99 4.00, max 4.00
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from bidcore import demo

__all__ = [
    "ReplayReport",
    "default_corpus",
    "read_requests",
    "replay",
    "replay_async",
]

_LINE_SUFFIXES: Final = {".jsonl", ".ndjson"}
ERROR: Final = 0
"""The status counted for a request that got no HTTP answer (connection refused, reset,
timed out)."""


def default_corpus() -> Path:
    """The OpenRTB corpus of a source checkout (``tests/fixtures/openrtb/requests.jsonl``), or
    the demo's sample request when bidcore is installed without it."""
    corpus = Path(__file__).resolve().parent.parent / "tests/fixtures/openrtb/requests.jsonl"
    return corpus if corpus.is_file() else demo.sample_request_path()


def read_requests(paths: Iterable[str | Path]) -> list[bytes]:
    """The bodies in the files: one request per ``.json`` file, one per non-blank line of a
    ``.jsonl``/``.ndjson`` file."""
    bodies: list[bytes] = []
    for path in map(Path, paths):
        data = path.read_bytes()
        if path.suffix in _LINE_SUFFIXES:
            bodies += [line for line in data.splitlines() if line.strip()]
        elif data.strip():
            bodies.append(data.strip())
    return bodies


@dataclass
class ReplayReport:
    """What came back: seconds taken, requests per status (:data:`ERROR` for no answer) and
    every latency in seconds."""

    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        """Requests sent."""
        return sum(self.statuses.values())

    @property
    def bids(self) -> int:
        """Requests answered with a bid (200)."""
        return self.statuses.get(200, 0)

    @property
    def failed(self) -> int:
        """Requests without an answer, or answered 5xx."""
        return sum(n for status, n in self.statuses.items() if status == ERROR or status >= 500)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile latency, seconds (nearest rank); 0 with no requests."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]

    def summary(self) -> str:
        """Three lines: throughput and bid rate, status counts, latency percentiles."""
        n = self.requests
        rate = n / self.seconds if self.seconds > 0 else 0.0
        share = self.bids / n if n else 0.0
        statuses = ", ".join(
            f"{'error' if s == ERROR else s} {c}" for s, c in sorted(self.statuses.items())
        )
        errors = "".join(f"; {reason} {c}" for reason, c in self.errors.most_common(3))
        ms = [self.percentile(q) * 1e3 for q in (50, 90, 99)] + [
            max(self.latencies, default=0) * 1e3
        ]
        return (
            f"{n} requests in {self.seconds:.2f} s ({rate:,.0f} per second); "
            f"{self.bids} bids ({share:.1%})\n"
            f"status: {statuses}{errors}\n"
            f"latency ms: p50 {ms[0]:.2f}, p90 {ms[1]:.2f}, p99 {ms[2]:.2f}, max {ms[3]:.2f}"
        )


def replay(
    url: str,
    bodies: Sequence[bytes],
    *,
    rate: float | None = None,
    concurrency: int = 4,
    count: int | None = None,
    duration: float | None = None,
    compress: bool = False,
    timeout: float = 5.0,
    progress: bool = False,
) -> ReplayReport:
    """:func:`replay_async` in a new event loop."""
    return asyncio.run(
        replay_async(
            url,
            bodies,
            rate=rate,
            concurrency=concurrency,
            count=count,
            duration=duration,
            compress=compress,
            timeout=timeout,
            progress=progress,
        )
    )


async def replay_async(
    url: str,
    bodies: Sequence[bytes],
    *,
    rate: float | None = None,
    concurrency: int = 4,
    count: int | None = None,
    duration: float | None = None,
    compress: bool = False,
    timeout: float = 5.0,
    progress: bool = False,
) -> ReplayReport:
    """POST ``bodies`` (cycling through them) to ``url`` over ``concurrency`` keep-alive
    connections; ``url`` without a path means ``/openrtb2/bid``.

    Stops after ``count`` requests or ``duration`` seconds, whichever comes first; with
    neither, after one pass over ``bodies``. ``rate`` is requests per second in all (None: as
    fast as the connections go). ``compress`` sends the bodies gzipped. ``progress`` shows a
    tqdm bar on standard error when tqdm is installed.
    """
    if not bodies:
        raise ValueError("no requests to send")
    if concurrency < 1 or (rate is not None and rate <= 0):
        raise ValueError("concurrency and rate must be positive")
    target = _Target.parse(url)
    if count is None and duration is None:
        count = len(bodies)
    payloads = [gzip.compress(b, mtime=0) for b in bodies] if compress else list(bodies)
    report = ReplayReport()
    bar = _progress_bar(count, progress)
    numbers = itertools.count()
    started = time.perf_counter()
    deadline = None if duration is None else started + duration

    async def connection() -> None:
        client = _Client(target, compress=compress, timeout=timeout)
        try:
            while True:
                i = next(numbers)
                if count is not None and i >= count:
                    return
                scheduled = None if rate is None else started + i / rate
                if scheduled is not None:
                    await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
                sent = time.perf_counter()
                if deadline is not None and sent >= deadline:
                    return
                status, error = await client.post(payloads[i % len(payloads)])
                done = time.perf_counter()
                report.statuses[status] += 1
                report.latencies.append(done - (sent if scheduled is None else scheduled))
                if error:
                    report.errors[error] += 1
                if bar is not None:
                    bar.update(1)
        finally:
            await client.close()

    try:
        await asyncio.gather(*(connection() for _ in range(concurrency)))
    finally:
        report.seconds = time.perf_counter() - started
        if bar is not None:
            bar.close()
    return report


def _progress_bar(total: int | None, wanted: bool) -> Any:
    if not wanted:
        return None
    try:
        from tqdm import tqdm  # type: ignore[import-untyped]
    except ImportError:  # tqdm comes with the `compile` extra; the replay works without it
        return None
    return tqdm(total=total, unit="req", unit_scale=True, leave=False)


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> _Target:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{url}: an http:// URL of the bidder is needed")
        path = parts.path if parts.path not in ("", "/") else "/openrtb2/bid"
        return cls(parts.hostname, parts.port or 80, path)


class _Client:
    """One keep-alive HTTP/1.1 connection, reopened after an error or ``connection: close``."""

    def __init__(self, target: _Target, *, compress: bool, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        host = f"[{target.host}]" if ":" in target.host else target.host
        head = (
            f"POST {target.path} HTTP/1.1\r\nhost: {host}:{target.port}\r\n"
            "content-type: application/json\r\nx-openrtb-version: 2.6\r\n"
        )
        if compress:
            head += "content-encoding: gzip\r\n"
        self._head = head.encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, str]:
        """The answer's status and "" , or (ERROR, why) when there is none."""
        try:
            return await asyncio.wait_for(self._exchange(body), self.timeout), ""
        except TimeoutError:
            await self.close()
            return ERROR, "timeout"
        except (OSError, asyncio.IncompleteReadError, ValueError) as err:
            await self.close()
            return ERROR, type(err).__name__

    async def _exchange(self, body: bytes) -> int:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.target.host, self.target.port
            )
        assert self._reader is not None
        self._writer.write(self._head + b"content-length: %d\r\n\r\n" % len(body) + body)
        status, keep_alive = await _read_response(self._reader)
        if not keep_alive:
            await self.close()
        return status

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):  # the peer went first: nothing left to close
                await writer.wait_closed()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response off the stream (its body discarded); its status and whether the
    connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    status = int(rest[:3])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    keep_alive = headers.get("connection") != "close" and version == "HTTP/1.1"
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                break
    elif status not in (204, 304) and not 100 <= status < 200:
        await reader.read()  # delimited by the connection's end
        keep_alive = False
    return status, keep_alive
