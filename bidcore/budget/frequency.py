"""Frequency caps across a fleet: each process publishes the impressions its notices counted to
a Redis stream and adds the other processes' to its own table (``docs/budget.md``, Frequency
caps).

The hot path never waits for Redis: the engine checks and holds a user's slots in the
process's native table (:class:`bidcore.Ledger`), and this module moves impressions between
tables off the hot path, every tick. A process that starts (or restarts) reads the stream
back over the longest cap window, so it knows the impressions the fleet made before it came.

What a shared cap guarantees: a process never bids past a cap with the impressions it knows
of. It does not know the other processes' bids still in flight, nor impressions counted in the
last tick, so a user bid on at the same moment by several processes can get up to one cap's
worth from each before they hear of each other. With one process, or users routed to one
process, the cap is exact.

When Redis is unreachable each process goes on capping with what it knows; the impressions it
counts meanwhile wait (bounded) and are published when Redis returns.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from bidcore._core import Ledger
from bidcore._redis import process_id as new_process_id

if TYPE_CHECKING:
    import redis

__all__ = ["SharedFrequency"]

log = logging.getLogger("bidcore.budget")

Impression = tuple[int, int, int, int]
"""(key, count, window_seconds, second), as ``Ledger.take_impressions`` gives it."""

_PACKED: Final = struct.Struct("<QIII")
# Impressions per stream entry: one XADD carries a tick's worth, in entries of at most this.
_BATCH: Final = 4096
# Impressions kept for publishing while Redis is away; past it the oldest are dropped.
_MAX_WAITING: Final = 1 << 20
_LOG_EVERY_SECONDS: Final = 10.0


def pack(impressions: list[Impression]) -> bytes:
    return b"".join(_PACKED.pack(*i) for i in impressions)


def unpack(data: bytes) -> list[Impression]:
    usable = len(data) - len(data) % _PACKED.size
    return [_PACKED.unpack_from(data, at) for at in range(0, usable, _PACKED.size)]


class SharedFrequency:
    """Publishes ``ledger``'s impressions to the stream ``{key_prefix}:impressions`` and adds
    the other processes' to ``ledger``, at each :meth:`tick`. ``max_window_seconds`` is the
    longest cap window of the config: how far back a new process reads the stream;
    ``max_entries`` bounds the stream (each entry a tick's impressions of one process)."""

    def __init__(
        self,
        ledger: Ledger,
        client: redis.Redis,
        *,
        key_prefix: str = "bidcore:budget",
        max_window_seconds: int = 86_400,
        max_entries: int = 1_000_000,
        process_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self._client = client
        self.stream = f"{key_prefix}:impressions"
        self._max_entries = max_entries
        self.process_id = process_id or new_process_id()
        self._clock = clock
        # Start reading where the longest window starts: what the fleet counted before us.
        start_ms = max(0, int((clock() - max_window_seconds) * 1000))
        self._last_id = f"{start_ms}-0"
        self._waiting: deque[Impression] = deque(maxlen=_MAX_WAITING)
        # The ledger keeps impressions for other processes from the first take on.
        self._waiting.extend(ledger.take_impressions())
        self.published = 0
        self.received = 0
        self.errors = 0
        self._logged_at = -_LOG_EVERY_SECONDS

    def tick(self) -> None:
        """Publishes what this process counted since the last tick and adds what the others
        published. A Redis error is counted and logged; nothing is lost but what overflows
        the waiting queue."""
        self._waiting.extend(self.ledger.take_impressions())
        try:
            self._publish()
            self._receive()
        except Exception as error:  # redis-py's errors, and OSError beneath them
            self.errors += 1
            now = time.monotonic()
            if now - self._logged_at >= _LOG_EVERY_SECONDS:
                self._logged_at = now
                log.warning("frequency caps: Redis unreachable, capping locally: %s", error)

    def _publish(self) -> None:
        if not self._waiting:
            return
        batch = list(self._waiting)
        pipe = self._client.pipeline(transaction=False)
        for start in range(0, len(batch), _BATCH):
            fields = {"p": self.process_id, "i": pack(batch[start : start + _BATCH])}
            pipe.xadd(self.stream, fields, maxlen=self._max_entries, approximate=True)  # type: ignore[arg-type]
        pipe.execute()
        self._waiting.clear()
        self.published += len(batch)

    def _receive(self) -> None:
        own = self.process_id.encode()
        while True:
            # RESP2: [[stream, [(id, {field: value}), ...]]], all bytes.
            answer: Any = self._client.xread({self.stream: self._last_id}, count=512)
            if not answer:
                return
            entries: list[tuple[bytes, dict[bytes, bytes]]] = answer[0][1]
            impressions: list[Impression] = []
            for entry_id, fields in entries:
                self._last_id = entry_id.decode()
                if fields.get(b"p") != own:
                    impressions += unpack(fields.get(b"i", b""))
            if impressions:
                self.ledger.add_impressions(impressions, self._clock())
                self.received += len(impressions)
            if len(entries) < 512:
                return
