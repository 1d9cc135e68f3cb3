"""``bidcore.replay``'s own parts: reading request files, the report, the HTTP/1.1 client's
framing (against a small raw-socket server written here) and its pacing. The replay against a
served bidder is in ``test_serve.py``."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bidcore import demo
from bidcore.replay import ERROR, ReplayReport, default_corpus, read_requests, replay_async

Answerer = Callable[[bytes], bytes]


async def serving(answer: Answerer, body: Callable[[int], Awaitable[object]]) -> list[bytes]:
    """Run ``body(port)`` against a server that reads each request (head and content-length
    body) and writes ``answer(request)``; the requests it read, in order."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                seen.append(request)
                reply = answer(request)
                writer.write(reply)
                await writer.drain()
                if b"connection: close" in reply.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await body(port)
    finally:
        server.close()
        await server.wait_closed()
    return seen


def test_read_requests_takes_json_and_json_lines(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_bytes(b'  {"id":"a"}\n')
    (tmp_path / "many.jsonl").write_bytes(b'{"id":"b"}\n\n{"id":"c"}\n')
    bodies = read_requests([tmp_path / "one.json", tmp_path / "many.jsonl"])
    assert bodies == [b'{"id":"a"}', b'{"id":"b"}', b'{"id":"c"}']


def test_the_default_corpus_is_the_checkout_s() -> None:
    assert default_corpus().name == "requests.jsonl"
    assert len(read_requests([default_corpus()])) > 3000
    assert read_requests([demo.sample_request_path()]) == [demo.sample_request()]


def test_the_report_percentiles_are_nearest_rank() -> None:
    report = ReplayReport(
        seconds=1.0, statuses=Counter({200: 50, 204: 49, ERROR: 1}), latencies=[0.001] * 100
    )
    report.latencies[-1] = 0.5
    assert report.percentile(50) == 0.001
    assert report.percentile(99) == 0.001
    assert report.percentile(100) == 0.5
    assert (report.requests, report.bids, report.failed) == (100, 50, 1)
    assert "status: error 1, 200 50, 204 49" in report.summary()
    assert ReplayReport().percentile(50) == 0.0


def test_keep_alive_framing_content_length_chunked_and_close() -> None:
    replies = iter(
        [
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 3\r\nconnection: close\r\n\r\nbad",
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        ]
    )
    reports: list[ReplayReport] = []

    async def body(port: int) -> None:
        bodies = [b'{"id":"%d"}' % i for i in range(5)]
        reports.append(await replay_async(f"127.0.0.1:{port}", bodies, concurrency=1))

    seen = asyncio.run(serving(lambda request: next(replies), body))
    (report,) = reports
    assert report.statuses == Counter({200: 3, 204: 1, 400: 1})
    assert report.failed == 0
    assert len(seen) == 5
    assert seen[0].startswith(b"POST /openrtb2/bid HTTP/1.1\r\n")
    assert b"x-openrtb-version: 2.6\r\n" in seen[0]
    assert seen[0].endswith(b'\r\n\r\n{"id":"0"}')


def test_gzip_bodies_are_sent_gzipped() -> None:
    async def body(port: int) -> None:
        await replay_async(f"http://127.0.0.1:{port}/bid", [b'{"id":"z"}'], compress=True)

    (request,) = asyncio.run(serving(lambda r: b"HTTP/1.1 204 No Content\r\n\r\n", body))
    head, _, content = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /bid HTTP/1.1")
    assert b"content-encoding: gzip" in head
    assert gzip.decompress(content) == b'{"id":"z"}'


def test_a_rate_paces_the_requests_and_count_stops_them() -> None:
    reports: list[ReplayReport] = []

    async def body(port: int) -> None:
        reports.append(
            await replay_async(f"127.0.0.1:{port}", [b"{}"], rate=50, count=20, concurrency=3)
        )

    started = time.perf_counter()
    seen = asyncio.run(serving(lambda r: b"HTTP/1.1 204 No Content\r\n\r\n", body))
    elapsed = time.perf_counter() - started
    assert len(seen) == 20
    assert reports[0].requests == 20
    assert 0.35 <= elapsed < 3  # the 20th request is due at 19/50 s


def test_a_duration_stops_the_replay() -> None:
    reports: list[ReplayReport] = []

    async def body(port: int) -> None:
        reports.append(await replay_async(f"127.0.0.1:{port}", [b"{}"], rate=100, duration=0.3))

    asyncio.run(serving(lambda r: b"HTTP/1.1 204 No Content\r\n\r\n", body))
    assert 20 <= reports[0].requests <= 31
    assert reports[0].seconds < 2


def test_a_server_that_does_not_answer_in_time_is_an_error() -> None:
    reports: list[ReplayReport] = []

    async def body(port: int) -> None:
        reports.append(await replay_async(f"127.0.0.1:{port}", [b"{}"], count=2, timeout=0.1))

    asyncio.run(serving(lambda r: b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", body))
    assert reports[0].statuses == Counter({ERROR: 2})
    assert reports[0].errors == Counter({"timeout": 2})


@pytest.mark.parametrize("url", ["https://127.0.0.1:1", "ftp://x", "http://"])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(ValueError, match="http://"):
        asyncio.run(replay_async(url, [b"{}"]))
