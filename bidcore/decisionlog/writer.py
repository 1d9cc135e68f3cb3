"""The background thread that moves records from the native decision log to a sink.

``Engine.bid`` pushes a record per decision into a bounded native buffer and never waits:
when the buffer is full the record is dropped and counted there. :class:`DecisionLogWriter`
drains that buffer from a daemon thread every ``interval`` seconds (straight away again while
full batches keep coming) and writes the batches to its sink. When the sink fails it keeps the
batch, retries it with exponential backoff, and stops draining meanwhile: the native buffer holds
what arrives during a short outage, and drops (counted) what overflows it during a long one.
A batch still refused after ``retries`` retries is given up and its records counted as
``lost``. Nothing here can make ``bid`` wait.

Win, bill and loss notices go through the same writer (:meth:`DecisionLogWriter.write_notice`),
queued in Python and written with the next batch.

A thread does not survive ``fork``: a server that forks workers starts a writer (and its
:class:`bidcore.DecisionLog` and engine) in each worker after the fork, never in the parent
that forks. A writer used in a forked child raises ``RuntimeError``.

>>> import tempfile
>>> from bidcore.decisionlog import FileSink, read
>>> with tempfile.TemporaryDirectory() as directory:
...     with DecisionLogWriter(None, FileSink(directory)) as writer:
...         writer.write_notice("win", request="r1", imp="1", campaign="c1", creative="cr1",
...                             price_micros=1_870_000, currency="USD")
...     [(n.kind, n.price_micros) for n in read(directory)], writer.stats()["written"]
True
([('win', 1870000)], 1)
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from typing import Final, Literal, Protocol

from bidcore.decisionlog.records import SCHEMA_VERSION, NoticeRecord, RecordFormat, encode
from bidcore.decisionlog.sinks import Sink

__all__ = ["DecisionLogWriter", "RecordSource"]

_log = logging.getLogger("bidcore.decisionlog")


class RecordSource(Protocol):
    """The native :class:`bidcore.DecisionLog`, as the writer uses it."""

    def drain(self, max_records: int = ..., format: str = ...) -> list[bytes]: ...

    def stats(self) -> dict[str, int]: ...


class DecisionLogWriter:
    """Drains ``log`` (a :class:`bidcore.DecisionLog`; ``None`` for a writer of notices only)
    into ``sink`` from a daemon thread, started here.

    ``interval``: seconds between drains when the log is not busy. ``batch``: records per drain
    and per sink write. ``retries``: retries of a failed batch before it is given up (its
    records counted in ``lost``), the waits doubling from ``interval`` up to ``max_backoff``
    seconds. ``notice_capacity``: notices queued at most; more are refused and counted.

    :meth:`close` (or leaving the ``with`` block, or the interpreter exiting) stops the thread
    after a final drain: everything logged until then is written, or counted as lost if the
    sink fails then (one attempt per batch, no backoff, so closing does not hang on a dead
    sink), and the sink is closed.
    """

    def __init__(
        self,
        log: RecordSource | None,
        sink: Sink,
        *,
        interval: float = 0.05,
        batch: int = 4096,
        retries: int = 3,
        max_backoff: float = 2.0,
        notice_capacity: int = 65_536,
    ) -> None:
        if interval <= 0 or batch <= 0 or retries < 0 or max_backoff < interval:
            raise ValueError(
                "interval and batch must be positive, retries >= 0, max_backoff >= interval"
            )
        self.log: Final = log
        self.sink: Final = sink
        self.interval: Final = interval
        self.batch: Final = batch
        self.retries: Final = retries
        self.max_backoff: Final = max_backoff
        self.notice_capacity: Final = notice_capacity
        self._format: Final[RecordFormat] = sink.record_format
        self._pid: Final = os.getpid()
        self._notices: list[bytes] = []
        self._notices_lock: Final = threading.Lock()
        # Guards the held batch and the counts against stats(), taken before _notices_lock.
        self._state_lock: Final = threading.Lock()
        self._held: list[bytes] = []  # the batch being written, kept while the sink fails
        self._attempts = 0  # failed writes of the held batch
        self._failing = 0  # failed writes in a row, for the backoff
        self._counts = {
            "written": 0,
            "sink_errors": 0,
            "lost": 0,
            "notices": 0,
            "notices_dropped": 0,
        }
        self._stop: Final = threading.Event()
        self._closed = False
        self._thread: Final = threading.Thread(
            target=self._run, name="bidcore-decision-log", daemon=True
        )
        self._thread.start()
        atexit.register(self.close)

    def __enter__(self) -> DecisionLogWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def write_notice(
        self,
        kind: Literal["win", "bill", "loss"],
        *,
        request: str | None,
        imp: str | None,
        campaign: str | None,
        creative: str | None,
        price_micros: int | None = None,
        currency: str | None = None,
        loss_reason: int | None = None,
        min_to_win_micros: int | None = None,
        ts: float | None = None,
    ) -> bool:
        """Queues a :class:`NoticeRecord` (``ts`` defaults to now) for the next batch; returns
        ``False`` when the queue is full and the notice was dropped (counted). Never waits for
        the sink; thread-safe."""
        self._check_process()
        record = NoticeRecord(
            v=SCHEMA_VERSION,
            kind=kind,
            ts=time.time() if ts is None else ts,
            request=request,
            imp=imp,
            campaign=campaign,
            creative=creative,
            price_micros=price_micros,
            currency=currency,
            loss_reason=loss_reason,
            min_to_win_micros=min_to_win_micros,
        )
        data = encode(record, self._format)
        with self._notices_lock:
            if self._closed or len(self._notices) >= self.notice_capacity:
                self._counts["notices_dropped"] += 1
                return False
            self._notices.append(data)
            self._counts["notices"] += 1
        return True

    def stats(self) -> dict[str, int]:
        """Counts since the writer started, for monitoring:

        - ``logged``: decisions the native log took; ``dropped``: decisions it refused, full;
        - ``notices``: notices queued; ``notices_dropped``: notices refused, queue full;
        - ``written``: records (decisions and notices) the sink took;
        - ``lost``: records given up after the sink failed ``retries`` times (or at close);
        - ``sink_errors``: failed sink writes;
        - ``pending``: records taken and not yet written or lost (in the native buffer, in the
          batch being retried, or queued notices).

        So ``logged + notices == written + lost + pending`` at any time."""
        with self._state_lock:
            native = self.log.stats() if self.log is not None else {}
            merged = {key: int(native.get(key, 0)) for key in ("logged", "dropped", "pending")}
            with self._notices_lock:
                merged["pending"] += len(self._held) + len(self._notices)
                merged.update(self._counts)
        return merged

    def close(self) -> None:
        """Stops the thread after a final drain, then closes the sink. Idempotent."""
        if os.getpid() != self._pid:
            return  # a forked child's copy: the parent's thread and sink are not its own
        with self._notices_lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        self._stop.set()
        self._thread.join()
        self.sink.close()

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            raise RuntimeError(
                "this DecisionLogWriter was started in another process (before a fork): "
                "start a writer in each worker after forking"
            )

    def _run(self) -> None:
        delay = self.interval
        while not self._stop.wait(delay):
            try:
                delay = self.interval if self._flush() else self._backoff()
            except Exception:  # a bug here must not kill the thread and stop the log
                _log.exception("decision log writer: unexpected error")
                delay = self.max_backoff
        self._final_flush()

    def _backoff(self) -> float:
        return float(min(self.max_backoff, self.interval * 2 ** min(self._failing, 30)))

    def _flush(self) -> bool:
        """Writes batches until the log is drained; ``False`` after a failed write."""
        while True:
            if not self._held and not self._take():
                return True
            full = len(self._held) >= self.batch
            if not self._write():
                return False
            if not full or self._stop.is_set():
                return True

    def _take(self) -> bool:
        """Moves the next batch into ``_held``: the queued notices, then the native log's
        records; ``False`` when there are none. Under the state lock, so that ``stats`` never
        sees records that have left the buffer but are not yet in the batch."""
        with self._state_lock:
            with self._notices_lock:
                batch, self._notices = self._notices, []
            if self.log is not None and len(batch) < self.batch:
                batch += self.log.drain(self.batch - len(batch), self._format)
            self._held = batch
        return bool(batch)

    def _write(self) -> bool:
        """One attempt to write the held batch (never under a lock: the sink may be slow)."""
        batch = self._held
        try:
            self.sink.write(batch)
        except Exception as err:  # any failure of the sink: count, keep going
            self._attempts += 1
            self._failing += 1
            if self._failing == 1:
                _log.warning("decision log sink failed, retrying with backoff: %r", err)
            with self._state_lock:
                self._counts["sink_errors"] += 1
                if self._attempts > self.retries:
                    self._give_up()
            return False
        if self._failing:
            _log.warning("decision log sink is back after %d failed writes", self._failing)
        with self._state_lock:
            self._counts["written"] += len(batch)
            self._held = []
        self._attempts = self._failing = 0
        return True

    def _give_up(self) -> None:
        """Counts the held batch as lost and drops it (the caller holds the state lock)."""
        self._counts["lost"] += len(self._held)
        self._held, self._attempts = [], 0

    def _final_flush(self) -> None:
        """Writes what is left, one attempt per batch: closing must not hang on a dead sink.
        Drains what was pending when it began, not what a still-running engine adds since."""
        remaining = self.stats()["pending"]
        while remaining > 0:
            if not self._held and not self._take():
                return
            remaining -= len(self._held)
            if not self._write() and self._held:
                with self._state_lock:
                    self._give_up()
