"""Where the decision log's records go: rotating files, or a Redis stream.

A sink takes batches of records already serialised (``bytes``: a JSON object or a msgpack map
each, as the native log's ``drain`` returns them, in the sink's ``record_format``) and writes
them, or raises. Only the writer's thread calls it (:class:`bidcore.decisionlog.DecisionLogWriter`),
so sinks are not thread-safe; a sink that raises is retried by the writer with backoff.

>>> import tempfile
>>> from bidcore.decisionlog import read
>>> record = b'{"v":1,"kind":"loss","ts":1795390200.5,"request":"r1","imp":"1","campaign":"c1",'\\
...     b'"creative":"cr1","price_micros":null,"currency":null,"loss_reason":102,'\\
...     b'"min_to_win_micros":2100000}'
>>> with tempfile.TemporaryDirectory() as directory:
...     sink = FileSink(directory)
...     sink.write([record, record])
...     sink.close()
...     [notice.loss_reason for notice in read(directory)]
[102, 102]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Protocol

from bidcore._redis import fail_fast_client
from bidcore.decisionlog.records import OPEN_SUFFIX, RecordFormat, frame_msgpack

if TYPE_CHECKING:
    import redis

__all__ = ["FileSink", "RedisStreamSink", "Sink"]


class Sink(Protocol):
    """What :class:`DecisionLogWriter` writes to."""

    @property
    def record_format(self) -> RecordFormat:
        """How the records handed to :meth:`write` are serialised: ``json`` or ``msgpack``."""
        ...

    def write(self, batch: list[bytes]) -> None:
        """Writes every record of ``batch``, or raises (the writer retries the whole batch)."""
        ...

    def close(self) -> None:
        """Makes everything written durable, as the sink defines it, and releases it."""
        ...


FileFormat = Literal["jsonl", "msgpack"]
Fsync = Literal["never", "rotate", "batch"]


class FileSink:
    """Records appended to files in ``directory``, a new file when the current one would grow
    past ``max_bytes`` (or is ``max_seconds`` old, checked when records arrive).

    ``jsonl`` files hold one JSON object per line; ``msgpack`` files hold each record's map
    framed as a msgpack ``bin`` (msgspec cannot split a bare stream of maps;
    :func:`bidcore.decisionlog.read` reads both). A file is named for the UTC time it was
    opened and the writing process, ``decisions-20261122T233000.123456Z-4242.jsonl``, so that the
    forked workers of one server can share a directory and names sort by time. While written it
    carries ``.open`` at the end; it is renamed without it when complete, so that a consumer
    picking up ``*.jsonl`` never reads a half-written file. ``keep`` bounds the number of
    complete files of the directory with this prefix and format (oldest deleted first, whichever
    process wrote them); ``None`` keeps them all.

    ``fsync``: ``rotate`` (the default) fsyncs each file, and the directory, when it is
    completed, so complete files survive a machine crash; every batch is written with one
    ``write`` to the OS at once, so a crash of the process loses nothing written, a crash of the
    machine at most the open file's unsynced tail. ``batch`` also fsyncs after every batch
    (one fsync per writer wake-up, 20 a second at most by default); ``never`` leaves it to the
    OS.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        format: FileFormat = "jsonl",
        max_bytes: int = 64 << 20,
        max_seconds: float | None = None,
        keep: int | None = None,
        prefix: str = "decisions",
        fsync: Fsync = "rotate",
    ) -> None:
        if format not in ("jsonl", "msgpack"):
            raise ValueError(f"format must be 'jsonl' or 'msgpack', got {format!r}")
        if fsync not in ("never", "rotate", "batch"):
            raise ValueError(f"fsync must be 'never', 'rotate' or 'batch', got {fsync!r}")
        if max_bytes <= 0 or (keep is not None and keep < 1):
            raise ValueError("max_bytes must be positive and keep at least 1")
        self.directory: Final = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.format: Final = format
        self.max_bytes: Final = max_bytes
        self.max_seconds: Final = max_seconds
        self.keep: Final = keep
        self.prefix: Final = prefix
        self.fsync: Final = fsync
        self._suffix: Final = ".jsonl" if format == "jsonl" else ".msgpack"
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._opened = 0.0

    @property
    def record_format(self) -> RecordFormat:
        return "json" if self.format == "jsonl" else "msgpack"

    @property
    def current(self) -> Path | None:
        """The file being written (``….open``), if one is open."""
        return self._path

    def write(self, batch: list[bytes]) -> None:
        """Appends the batch with one ``write``, opening or rotating files as needed. On an
        error the file is cut back to where the batch began, so that a retry does not leave a
        torn record in the middle of the file."""
        if not batch:
            return
        if self.format == "jsonl":
            data = b"\n".join(batch) + b"\n"
        else:
            data = b"".join(frame_msgpack(record) + record for record in batch)
        if self._fd is not None and self._size and self._due(len(data)):
            self._complete()
        if self._fd is None:
            self._open()
        assert self._fd is not None
        try:
            _write_all(self._fd, data)
            if self.fsync == "batch":
                os.fsync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):  # the original error is the one to report
                os.ftruncate(self._fd, self._size)
            raise
        self._size += len(data)

    def close(self) -> None:
        """Completes the open file (renamed, fsynced per the policy)."""
        if self._fd is not None:
            self._complete()

    def _due(self, incoming: int) -> bool:
        if self._size + incoming > self.max_bytes:
            return True
        return self.max_seconds is not None and time.monotonic() - self._opened >= self.max_seconds

    def _open(self) -> None:
        now = dt.datetime.now(dt.UTC)
        stem = f"{self.prefix}-{now:%Y%m%dT%H%M%S.%f}Z-{os.getpid()}"
        for attempt in range(1000):
            name = stem if attempt == 0 else f"{stem}.{attempt}"
            path = self.directory / f"{name}{self._suffix}{OPEN_SUFFIX}"
            if (self.directory / f"{name}{self._suffix}").exists():
                continue
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            except FileExistsError:
                continue
            break
        else:
            raise FileExistsError(f"{self.directory}: no free name for {stem}")
        self._fd, self._path, self._size = fd, path, 0
        self._opened = time.monotonic()

    def _complete(self) -> None:
        fd, path = self._fd, self._path
        assert fd is not None
        assert path is not None
        self._fd = self._path = None
        try:
            if self.fsync != "never":
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(path, path.with_suffix(""))
        if self.fsync != "never":
            _fsync_directory(self.directory)
        if self.keep is not None:
            self._prune(self.keep)

    def _prune(self, keep: int) -> None:
        complete = sorted(self.directory.glob(f"{self.prefix}-*{self._suffix}"))
        for old in complete[: max(0, len(complete) - keep)]:
            old.unlink(missing_ok=True)  # another worker may have pruned it first


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# One script call adds a chunk of records: one command and one reply for many entries, where a
# pipeline of XADD costs redis-py ~45 us of Python (holding the GIL) per entry to pack and parse;
# this is ~2 us. A chunk runs isolated, so it is added whole or not at all (barring Redis running
# out of memory half-way), and it blocks other clients of Redis only while it runs: chunks are
# kept small (~1.5 ms of Redis time each).
_XADD_ALL: Final = """
local maxlen = tonumber(ARGV[1])
for i = 2, #ARGV do
  if maxlen > 0 then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'r', ARGV[i])
  else
    redis.call('XADD', KEYS[1], '*', 'r', ARGV[i])
  end
end
return #ARGV - 1
"""


class RedisStreamSink:
    """Records added to a Redis stream: one entry per record, its bytes in the single field
    ``r``, ids assigned by Redis (``*``), the stream trimmed to about ``maxlen`` entries
    (``MAXLEN ~``: Redis trims whole nodes, so it may hold somewhat more; ``None``: never).

    A batch is one pipeline, one round trip, not a transaction: by default of Lua script calls
    (``EVALSHA``) that each ``XADD`` a chunk of ``chunk`` records, several times cheaper for the
    writer than an ``XADD`` per record; ``scripted=False`` sends the ``XADD`` commands
    themselves, for a Redis where scripting is not allowed. If a batch fails half-way the writer
    retries all of it, so entries may appear twice: delivery is at least once, and a consumer
    that cares dedupes on (``request``, ``ts``, ``kind``). ``format`` is how records are stored
    (``msgpack`` by default, about half the memory of JSON); :func:`bidcore.decisionlog.decode`
    tells the two apart by the first byte.

    The client fails fast (``timeout`` seconds to connect or answer, no retries of its own):
    retrying is the writer's job. ``client`` may be given instead of ``url`` (with its own
    settings). Needs the ``redis`` package (the ``bidcore[serve]`` extra).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        stream: str = "bidcore:decisions",
        maxlen: int | None = 1_000_000,
        format: RecordFormat = "msgpack",
        timeout: float = 1.0,
        scripted: bool = True,
        chunk: int = 256,
        client: redis.Redis | None = None,
    ) -> None:
        if format not in ("json", "msgpack"):
            raise ValueError(f"format must be 'json' or 'msgpack', got {format!r}")
        if chunk < 1 or (maxlen is not None and maxlen < 1):
            raise ValueError("chunk and maxlen must be positive")
        if client is None:
            client = fail_fast_client(url, timeout=timeout, needed_by="RedisStreamSink")
        self.client: Final = client
        self.stream: Final = stream
        self.maxlen: Final = maxlen
        self.scripted: Final = scripted
        self.chunk: Final = chunk
        self._format: Final[RecordFormat] = format
        self._script: Final = client.register_script(_XADD_ALL)

    @property
    def record_format(self) -> RecordFormat:
        return self._format

    def write(self, batch: list[bytes]) -> None:
        """Adds the batch in one round trip; raises a ``redis.RedisError`` when Redis is
        unreachable or refuses a command."""
        if not batch:
            return
        pipeline = self.client.pipeline(transaction=False)
        if self.scripted:
            for start in range(0, len(batch), self.chunk):
                arguments: list[bytes | int] = [self.maxlen or 0]
                arguments += batch[start : start + self.chunk]
                self._script(keys=[self.stream], args=arguments, client=pipeline)
        else:
            for record in batch:
                pipeline.xadd(self.stream, {"r": record}, maxlen=self.maxlen, approximate=True)
        pipeline.execute()

    def close(self) -> None:
        """Closes the client's connections."""
        self.client.close()
