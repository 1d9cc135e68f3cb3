"""The decision log's sinks and writer (bidcore/decisionlog/sinks.py, writer.py) and the native
log behind them, against real files and a real ``redis-server`` started on 127.0.0.1.

The schema side (every record the engine writes meets the published schema) is
tests/test_decision_schema.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis

import bidcore
from bidcore.decisionlog import (
    DecisionLogWriter,
    DecisionRecord,
    FileSink,
    NoticeRecord,
    RedisStreamSink,
    decode,
    read,
)
from bidcore.testing.servers import RedisServer, free_port, redis_server

CORPUS = Path(__file__).parent / "fixtures" / "openrtb" / "requests.jsonl"
NOW = 1_795_390_200.0

CONFIG = """
[bidder]
seat = "s1"
[fx]
rates = { EUR = 1.08 }
[[campaigns]]
id = "c1"
goal = "cpm"
cpm = 2
max_bid = 5
[[campaigns.creatives]]
id = "cr1"
media = "banner"
w = 300
h = 250
adomain = ["shop.example"]
[[campaigns.creatives]]
id = "cr2"
media = "banner"
w = 320
h = 50
adomain = ["shop.example"]
"""


def _record(i: int, *, padding: int = 0) -> dict[str, Any]:
    """A decision record as the engine writes it (version 1), made by hand."""
    return {
        "v": 1,
        "ts": NOW + i / 1000,
        "request": f"r{i}" + "x" * padding,
        "bid": i % 3 != 0,
        "reason": None if i % 3 else "below_floor",
        "nbr": None,
        "error": None,
        "currency": "USD",
        "test": False,
        "latency_ns": 10_000 + i,
        "arms": {},
        "models": {"ctr": "m@1"},
        "imps": [
            {
                "imp": "1",
                "campaign": "c1" if i % 3 else None,
                "creative": "cr1" if i % 3 else None,
                "deal": None,
                "price_micros": 1_000_000 + i if i % 3 else None,
                "value_micros": 2_000_000 if i % 3 else None,
                "floor_micros": 500_000,
                "reason": None if i % 3 else "below_floor",
                "scores": {"ctr": 0.01} if i % 3 else {},
                "features": {"ctr": [float(i), None]} if i % 3 else {},
            }
        ],
    }


def _records(start: int, count: int, format: str, *, padding: int = 0) -> list[bytes]:
    encode = msgspec.json.encode if format == "json" else msgspec.msgpack.encode
    return [encode(_record(i, padding=padding)) for i in range(start, start + count)]


def _requests(records: Any) -> list[str | None]:
    return [r.request for r in records]


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def _corpus() -> list[bytes]:
    return [line for line in CORPUS.read_bytes().splitlines() if line.strip()]


def _request_id(body: bytes) -> str | None:
    """The id a record carries for ``body``: None when the body is invalid."""
    try:
        bidcore.validate_request(body)
    except bidcore.InvalidRequestError:
        return None
    request_id: str = json.loads(body)["id"]
    return request_id


def _engine(log: Any) -> bidcore.Engine:
    return bidcore.Engine(bidcore.config.loads(CONFIG), log=log)


def _decide(engine: bidcore.Engine, bodies: list[bytes]) -> list[bytes | None]:
    answers: list[bytes | None] = []
    for body in bodies:
        try:
            answers.append(engine.bid(body, now=NOW))
        except bidcore.InvalidRequestError:
            answers.append(None)
    return answers


# FileSink


NAME = re.compile(r"decisions-\d{8}T\d{6}\.\d{6}Z-(\d+)(\.\d+)?\.(jsonl|msgpack)")


@pytest.mark.parametrize(
    ("file_format", "record_format"), [("jsonl", "json"), ("msgpack", "msgpack")]
)
def test_file_sink_rotates_by_size_and_reads_back_in_order(
    tmp_path: Path, file_format: Any, record_format: str
) -> None:
    sink = FileSink(tmp_path, format=file_format, max_bytes=4096)
    assert sink.record_format == record_format
    written: list[bytes] = []
    for start in range(0, 350, 7):
        batch = _records(start, 7, record_format)
        sink.write(batch)
        written += batch
        current = sink.current
        assert current is not None
        assert current.name.endswith(f".{file_format}.open")
    # Before close: the directory's complete files, then the file being written, hold it all.
    assert current is not None
    so_far = list(read(tmp_path)) + list(read(current))
    assert so_far == [decode(data) for data in written]
    sink.close()
    assert not current.exists()
    assert sink.current is None
    files = sorted(tmp_path.iterdir())
    assert len(files) > 10, "rotated"
    for file in files:
        found = NAME.fullmatch(file.name)
        assert found is not None, file.name
        assert int(found.group(1)) == os.getpid()
        assert file.stat().st_size <= 4096
    expected = [decode(data) for data in written]
    assert list(read(tmp_path)) == expected
    assert [r for file in files for r in read(file)] == expected


def test_file_sink_rotates_by_age(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, max_seconds=0.0)  # due at every batch: one file per batch
    for start in range(0, 12, 3):
        sink.write(_records(start, 3, "json"))
    sink.close()
    assert [len(list(read(file))) for file in sorted(tmp_path.iterdir())] == [3, 3, 3, 3]


def test_file_sink_keeps_the_newest_files(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, max_bytes=2048, keep=3)
    for start in range(0, 200, 5):
        sink.write(_records(start, 5, "json"))
    sink.close()
    assert len(list(tmp_path.iterdir())) == 3
    requests = _requests(read(tmp_path))
    assert requests[-1] == "r199"
    assert requests == [f"r{i}" for i in range(200 - len(requests), 200)]


@pytest.mark.parametrize("file_format", ["jsonl", "msgpack"])
def test_a_torn_last_record_is_left_out_of_an_open_file_and_refused_in_a_complete_one(
    tmp_path: Path, file_format: Any
) -> None:
    record_format = "json" if file_format == "jsonl" else "msgpack"
    sink = FileSink(tmp_path, format=file_format)
    sink.write(_records(0, 4, record_format))
    current = sink.current
    assert current is not None
    sink.close()
    complete = next(tmp_path.iterdir())
    whole = complete.read_bytes()
    torn = tmp_path / "torn" / current.name
    torn.parent.mkdir()
    torn.write_bytes(whole[:-5])  # a writer cut off in the middle of its last record
    assert _requests(read(torn)) == ["r0", "r1", "r2"]
    cut = torn.with_suffix("")  # the same bytes in a file that claims to be complete
    torn.rename(cut)
    with pytest.raises(msgspec.DecodeError, match=re.escape(str(cut))):
        list(read(cut))


def test_a_failed_write_is_cut_back_so_a_retry_leaves_no_torn_record(tmp_path: Path) -> None:
    # A real short write: the file size limit (RLIMIT_FSIZE) is lowered so that the second
    # batch only half fits; write() writes part of it, then fails with EFBIG. Run in a child
    # process, so the limit binds nothing else.
    script = f"""
import resource, signal
from bidcore.decisionlog import FileSink
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
first = [b'{{"n":%d,"pad":"{"x" * 100}"}}' % i for i in range(10)]
second = [b'{{"n":%d,"pad":"{"y" * 100}"}}' % i for i in range(10, 20)]
sink = FileSink({str(tmp_path)!r}, fsync="never")
sink.write(first)
size = sink.current.stat().st_size
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 500, hard))
try:
    sink.write(second)
except OSError as err:
    print("failed", err.errno, sink.current.stat().st_size == size)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
sink.write(second)
sink.close()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["failed", "27", "True"]  # EFBIG; cut back to the first batch
    [file] = tmp_path.iterdir()
    lines = file.read_bytes().splitlines()
    assert [json.loads(line)["n"] for line in lines] == list(range(20))


# RedisStreamSink, against a real redis-server


def _entries(client: redis.Redis, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The stream's entries, oldest first: (id, fields)."""
    found = client.xrange(stream)
    assert isinstance(found, list)
    entries: list[tuple[bytes, dict[bytes, bytes]]] = []
    for entry_id, fields in found:
        assert isinstance(entry_id, bytes)
        assert isinstance(fields, dict)
        typed = {k: v for k, v in fields.items() if isinstance(k, bytes) and isinstance(v, bytes)}
        assert len(typed) == len(fields)
        entries.append((entry_id, typed))
    return entries


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as running:
        yield running


@pytest.fixture
def client(server: RedisServer) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(server.url)
    connection.flushall()
    yield connection
    connection.close()


@pytest.mark.parametrize("format", ["json", "msgpack"])
@pytest.mark.parametrize("scripted", [True, False], ids=["script", "xadd"])
def test_redis_stream_sink_adds_one_entry_per_record(
    server: RedisServer, client: redis.Redis, format: Any, scripted: bool
) -> None:
    sink = RedisStreamSink(
        server.url, stream="test:decisions", format=format, scripted=scripted, chunk=16
    )
    written = _records(0, 50, format) + _records(50, 25, format)
    sink.write(written[:50])
    sink.write(written[50:])
    sink.close()
    assert client.xlen("test:decisions") == 75
    entries = _entries(client, "test:decisions")
    assert [fields for _, fields in entries] == [{b"r": data} for data in written]
    ids = [entry_id for entry_id, _ in entries]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split(b"-"))))
    assert [decode(fields[b"r"]) for _, fields in entries] == [decode(d) for d in written]


@pytest.mark.parametrize("scripted", [True, False], ids=["script", "xadd"])
def test_redis_stream_sink_trims_the_stream_to_about_maxlen(
    server: RedisServer, client: redis.Redis, scripted: bool
) -> None:
    sink = RedisStreamSink(server.url, stream="test:trimmed", maxlen=200, scripted=scripted)
    for start in range(0, 3000, 500):
        sink.write(_records(start, 500, "msgpack"))
    sink.close()
    # Approximate trimming removes whole stream nodes (100 entries each by default).
    assert 200 <= client.xlen("test:trimmed") < 400
    last = _entries(client, "test:trimmed")[-1][1][b"r"]
    assert decode(last).request == "r2999"


def test_redis_stream_sink_raises_when_nothing_listens() -> None:
    sink = RedisStreamSink(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        sink.write(_records(0, 3, "json"))
    assert time.monotonic() - started < 1.0, "fails fast: no retries of the client's own"
    sink.close()


def test_the_native_log_drained_into_redis_reads_back_byte_for_byte(
    server: RedisServer, client: redis.Redis
) -> None:
    log = bidcore.DecisionLog()
    engine = _engine(log)
    bodies = _corpus()[:500]
    _decide(engine, bodies)
    drained = log.drain(1000, "msgpack")
    assert len(drained) == 500
    sink = RedisStreamSink(server.url)
    sink.write(drained)
    sink.close()
    assert client.xlen("bidcore:decisions") == 500
    entries = _entries(client, "bidcore:decisions")
    assert [fields[b"r"] for _, fields in entries] == drained
    assert all(isinstance(decode(fields[b"r"]), DecisionRecord) for _, fields in entries)


# DecisionLogWriter


def _notice(writer: DecisionLogWriter, i: int) -> bool:
    return writer.write_notice(
        "win", request=f"n{i}", imp="1", campaign="c1", creative="cr1", price_micros=i, ts=NOW
    )


def test_the_writer_drains_the_engine_into_files_and_close_flushes_everything(
    tmp_path: Path,
) -> None:
    log = bidcore.DecisionLog()
    engine = _engine(log)
    bodies = _corpus()
    # An interval longer than the test: nothing is written before close() drains it all.
    sink = FileSink(tmp_path, format="msgpack")
    writer = DecisionLogWriter(log, sink, interval=60.0, max_backoff=60.0)
    _decide(engine, bodies)
    assert _notice(writer, 1)
    assert writer.stats()["pending"] == len(bodies) + 1
    assert list(tmp_path.iterdir()) == []
    writer.close()
    records = list(read(tmp_path))
    assert len(records) == len(bodies) + 1
    assert isinstance(records[0], NoticeRecord)  # queued notices go first in a batch
    decisions = [r for r in records if isinstance(r, DecisionRecord)]
    assert [r.request for r in decisions] == [_request_id(body) for body in bodies]
    stats = writer.stats()
    assert stats["logged"] == stats["written"] - 1 == len(bodies)
    assert stats["pending"] == stats["dropped"] == stats["lost"] == stats["sink_errors"] == 0
    assert _notice(writer, 2) is False  # closed: refused and counted
    assert writer.stats()["notices_dropped"] == 1
    writer.close()  # idempotent


def test_the_writer_keeps_up_with_threads_bidding(tmp_path: Path) -> None:
    log = bidcore.DecisionLog(capacity=1 << 16)
    engine = _engine(log)
    bodies = _corpus()
    with DecisionLogWriter(log, FileSink(tmp_path, max_bytes=1 << 20), batch=512) as writer:

        def work() -> None:
            for _ in range(3):
                _decide(engine, bodies)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    stats = writer.stats()
    assert stats["dropped"] == 0
    assert stats["logged"] == stats["written"] == 12 * len(bodies)
    assert sum(1 for _ in read(tmp_path)) == 12 * len(bodies)


def test_the_writer_retries_a_stopped_redis_and_writes_the_held_batch_when_it_is_back() -> None:
    with redis_server() as server:
        sink = RedisStreamSink(server.url, timeout=0.5)
        writer = DecisionLogWriter(None, sink, interval=0.01, max_backoff=0.05, retries=10_000)
        for i in range(5):
            _notice(writer, i)
        _wait_for(lambda: writer.stats()["written"] == 5)
        server.stop()
        for i in range(5, 12):
            _notice(writer, i)
        _wait_for(lambda: writer.stats()["sink_errors"] >= 3)
        assert writer.stats()["written"] == 5
        server.start()  # the same port, empty (no persistence)
        _wait_for(lambda: writer.stats()["written"] == 12)
        writer.close()
        client = redis.Redis.from_url(server.url)
        entries = _entries(client, "bidcore:decisions")
        client.close()
    assert [decode(fields[b"r"]).request for _, fields in entries] == [
        f"n{i}" for i in range(5, 12)
    ]
    assert writer.stats()["lost"] == 0


def test_the_writer_gives_a_batch_up_after_its_retries_and_counts_it_lost() -> None:
    sink = RedisStreamSink(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    writer = DecisionLogWriter(None, sink, interval=0.01, max_backoff=0.02, retries=2)
    for i in range(5):
        _notice(writer, i)
    _wait_for(lambda: writer.stats()["lost"] == 5)
    # Each batch (the thread may have taken the five notices in one batch or more): the first
    # attempt and two retries.
    assert writer.stats()["sink_errors"] in (3, 6, 9, 12, 15)
    for i in range(5, 8):
        _notice(writer, i)
    started = time.monotonic()
    writer.close()  # one attempt, no backoff: closing does not hang on a dead sink
    assert time.monotonic() - started < 2.0
    stats = writer.stats()
    assert stats["lost"] == 8
    assert stats["written"] == 0
    assert stats["notices"] == 8


def test_a_full_notice_queue_refuses_and_counts(tmp_path: Path) -> None:
    writer = DecisionLogWriter(
        None, FileSink(tmp_path), interval=60.0, max_backoff=60.0, notice_capacity=3
    )
    assert [_notice(writer, i) for i in range(5)] == [True, True, True, False, False]
    writer.close()
    assert writer.stats()["notices_dropped"] == 2
    assert _requests(read(tmp_path)) == ["n0", "n1", "n2"]


def _bid_seconds(engine: bidcore.Engine, bodies: list[bytes], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        _decide(engine, bodies)
        best = min(best, time.perf_counter() - started)
    return best


def test_with_the_sink_down_the_engine_keeps_answering_at_full_rate_and_counts_the_drops() -> None:
    bodies = _corpus() * 3
    reference = _decide(bidcore.Engine(bidcore.config.loads(CONFIG)), bodies)
    with redis_server() as server:
        log = bidcore.DecisionLog(capacity=2048)
        engine = _engine(log)
        writer = DecisionLogWriter(
            log, RedisStreamSink(server.url, timeout=0.5), interval=0.005, retries=3
        )
        up = _bid_seconds(engine, bodies)
        _wait_for(lambda: writer.stats()["pending"] == 0)
        before = writer.stats()
        assert before["logged"] + before["dropped"] == 3 * len(bodies)
        assert before["written"] == before["logged"]
        assert before["lost"] == before["sink_errors"] == 0

        server.stop()
        down = _bid_seconds(engine, bodies)
        answers = _decide(engine, bodies)
        after = writer.stats()
        # Every request answered, and answered as without a log.
        assert answers == reference
        # The writer failed, kept what it could, and the native buffer dropped the overflow.
        assert after["sink_errors"] > 0
        assert after["dropped"] > before["dropped"]
        assert log.stats()["pending"] <= log.capacity
        assert after["logged"] + after["dropped"] == 7 * len(bodies)
        # bid never waits on the sink: the same order of magnitude either way.
        assert down < 10 * up, (up, down)

        server.start()
        _wait_for(lambda: writer.stats()["pending"] == 0)
        writer.close()
        final = writer.stats()
    # Everything logged is accounted for: written, or lost (given up while Redis was down).
    assert final["written"] + final["lost"] == final["logged"]
    assert final["pending"] == 0
    assert final["written"] > before["written"], "writes resumed when Redis came back"
    print(
        f"\n{len(bodies)} bids: {up * 1e3:.1f} ms with the sink up, {down * 1e3:.1f} ms down; "
        f"native drops {final['dropped']}, sink errors {final['sink_errors']}, "
        f"lost {final['lost']}"
    )


def test_a_writer_in_a_forked_child_refuses_notices(tmp_path: Path) -> None:
    writer = DecisionLogWriter(None, FileSink(tmp_path), interval=60.0, max_backoff=60.0)
    pid = os.fork()
    if pid == 0:  # the child: its copy of the writer has no thread
        try:
            _notice(writer, 1)
        except RuntimeError:
            writer.close()  # a no-op in the child: the parent's sink is not its own
            os._exit(0)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _notice(writer, 2)
    writer.close()
    assert _requests(read(tmp_path)) == ["n2"]
