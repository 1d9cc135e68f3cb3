"""The benchmark sets drawn from the fixture corpus, and the five fields the untyped peers read.

Two sets, loaded once per process:

- ``corpus``: every request of ``tests/fixtures/openrtb/requests.jsonl`` that both
  :func:`bidcore.validate_request` and the msgspec typed decoder accept (3,749 of 3,953 at the
  time of writing). Requests one of them refuses are left out, so every contestant does the
  whole job on every request and no one's time includes raising an error.
- ``dense``: the requests of ``corpus`` of 1 KB and more (244). The corpus is mostly minimal
  prebid test requests (median ~340 bytes); the dense ones carry site/app, device, user and
  regs objects the way production traffic does.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import bidcore
from bidcore.openrtb import decode_request

__all__ = ["CORPUS_PATH", "DENSE_MIN_BYTES", "BenchSet", "Fields", "load_sets", "read_fields"]

CORPUS_PATH = (
    Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "openrtb" / "requests.jsonl"
)
DENSE_MIN_BYTES = 1024

# id, imp[0].id, imp[0].bidfloor, device.ua, site.domain or app.bundle
Fields: TypeAlias = tuple[Any, Any, Any, Any, Any]


@dataclass(frozen=True, slots=True)
class BenchSet:
    """A named list of request bodies; every benchmark round processes each body once."""

    name: str
    bodies: tuple[bytes, ...]

    @property
    def total_bytes(self) -> int:
        return sum(len(body) for body in self.bodies)

    @property
    def median_bytes(self) -> int:
        sizes = sorted(len(body) for body in self.bodies)
        return sizes[len(sizes) // 2]


def _accepted_by_both(body: bytes) -> bool:
    try:
        bidcore.validate_request(body)
        decode_request(body)
    except bidcore.InvalidRequestError:
        return False
    return True


@functools.cache
def load_sets() -> tuple[BenchSet, BenchSet]:
    """The ``corpus`` and ``dense`` sets, in that order (read and filtered on first call)."""
    lines = CORPUS_PATH.read_bytes().splitlines()
    accepted = tuple(body for body in lines if body and _accepted_by_both(body))
    dense = tuple(body for body in accepted if len(body) >= DENSE_MIN_BYTES)
    return BenchSet("corpus", accepted), BenchSet("dense", dense)


def read_fields(doc: Mapping[str, Any]) -> Fields:
    """The five fields a bidder looks at first, read from a parsed request.

    One helper for every untyped contestant (``dict`` from orjson and json, ``simdjson.Object``)
    so they all do the same work. Returning the values, rather than only looking them up, is
    what makes it honest for pysimdjson: its proxies build the Python ``str``/``float`` only when
    a value is read. Every request in the sets has ``id`` and a first imp with an ``id`` (the
    native validator requires both); the rest may be absent or ``null``.

    Optional fields are read with ``get``, the API each library offers for them. On pysimdjson
    that is dear when the key is absent: simdjson throws a C++ exception that becomes a
    ``KeyError`` (about 3.7 µs, against 0.08 µs for a present key), which is most of its time
    on the sparse requests of ``corpus``. That is its real cost for such requests, so it stays.
    """
    first_imp = doc["imp"][0]
    device = doc.get("device")
    site = doc.get("site")
    app = doc.get("app")
    if site is not None:
        inventory_id = site.get("domain")
    elif app is not None:
        inventory_id = app.get("bundle")
    else:
        inventory_id = None
    return (
        doc["id"],
        first_imp["id"],
        first_imp.get("bidfloor"),
        device.get("ua") if device is not None else None,
        inventory_id,
    )
