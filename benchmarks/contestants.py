"""The contestants: one callable per way of turning request bytes into something a bidder reads.

- ``native``: :func:`bidcore.validate_request`, the public function, wrapper included;
- ``msgspec_typed``: a ``msgspec.json.Decoder(BidRequest)`` built once, the peer that does the
  same job (every field type-checked against OpenRTB 2.6);
- ``orjson``, ``json``, ``pysimdjson``: untyped parsers, each followed by
  :func:`corpus.read_fields` so they at least read what a bidder reads first. They check
  nothing beyond JSON syntax, so they are the floor a typed parser competes against, not peers.

Contestants are built by :func:`build_contestants` (the msgspec decoder walks the whole model,
tens of milliseconds) and driven by :func:`run_round`, the same loop for all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Final

import msgspec
import orjson
import simdjson
from corpus import read_fields

import bidcore
from bidcore.openrtb import BidRequest

__all__ = [
    "LABELS",
    "NATIVE",
    "ORDER",
    "TYPED_PEER",
    "Contestant",
    "build_contestants",
    "run_round",
]

Contestant = Callable[[bytes], object]

NATIVE: Final = "native"
TYPED_PEER: Final = "msgspec_typed"
# Report order, and the labels the README table shows.
ORDER: Final = (NATIVE, TYPED_PEER, "orjson", "json", "pysimdjson")
LABELS: Final = {
    NATIVE: "bidcore.validate_request",
    TYPED_PEER: "msgspec typed decode",
    "orjson": "orjson.loads + 5 fields",
    "json": "json.loads + 5 fields",
    "pysimdjson": "pysimdjson parse + 5 fields",
}


def _untyped(loads: Callable[[bytes], Any]) -> Contestant:
    def parse_and_read(body: bytes) -> object:
        return read_fields(loads(body))

    return parse_and_read


def build_contestants() -> dict[str, Contestant]:
    """A fresh callable per contestant name, in :data:`ORDER`."""
    # Typed as taking bytes and returning Any: at run time the result of a request is always an
    # Object, and narrowing it per call would add an isinstance check to pysimdjson's time.
    simdjson_parse: Callable[[bytes], Any] = simdjson.Parser().parse
    contestants: dict[str, Contestant] = {
        NATIVE: bidcore.validate_request,
        TYPED_PEER: msgspec.json.Decoder(BidRequest).decode,
        "orjson": _untyped(orjson.loads),
        "json": _untyped(json.loads),
        # One parser, reused as a server would. pysimdjson refuses to parse while a proxy of the
        # previous document is alive; read_fields returns plain values, so none survives it.
        "pysimdjson": _untyped(simdjson_parse),
    }
    assert tuple(contestants) == ORDER
    return contestants


def run_round(contestant: Contestant, bodies: Iterable[bytes]) -> None:
    """One benchmark round: every body through the contestant once."""
    for body in bodies:
        contestant(body)
