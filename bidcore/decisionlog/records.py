"""The decision log's records: msgspec Structs for the two kinds, their encoding and a reader.

A record is one JSON object (a JSON-lines file, a Redis stream entry) or one msgpack map with the
same keys. The native engine writes a :class:`DecisionRecord` per decision; the HTTP server
writes a :class:`NoticeRecord` per win, bill or loss notice. Both carry ``v``, the format
version (:data:`SCHEMA_VERSION`). The published JSON Schema (``bidcore/schemas/``) is exported
from these Structs, and they are the contract with whatever reads the log: fields may be added
in a later version (with defaults, so old records still decode), never removed or retyped.

Unknown keys are ignored on decoding, so a reader of version 1 reads later versions too.

>>> notice = NoticeRecord(
...     v=1, kind="win", ts=1795390200.0, request="r1", imp="1", campaign="c1", creative="cr1",
...     price_micros=1_250_000, currency="USD", loss_reason=None, min_to_win_micros=None,
... )
>>> data = encode(notice, "json")
>>> data[:40]
b'{"v":1,"kind":"win","ts":1795390200.0,"r'
>>> decode(data) == notice == decode(encode(notice, "msgpack"))
True
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Final, Literal, TypeAlias

import msgspec

__all__ = [
    "SCHEMA_VERSION",
    "DecisionRecord",
    "ImpRecord",
    "NoticeRecord",
    "Record",
    "RecordFormat",
    "decode",
    "encode",
    "frame_msgpack",
    "log_files",
    "read",
]

SCHEMA_VERSION: Final = 1
"""The version of the record format these Structs describe (the records' ``v``)."""

RecordFormat: TypeAlias = Literal["json", "msgpack"]


class _Record(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    # gc=False: records hold only strings, numbers and containers of them, never a cycle, and a
    # training job decodes millions; untracked Structs decode faster and cost the collector
    # nothing. forbid_unknown_fields stays off: readers must tolerate fields added later.
    pass


class ImpRecord(_Record, frozen=True, gc=False):
    """One impression of a decision: its winner and price, or why it got no bid."""

    imp: Annotated[str, msgspec.Meta(description="the imp id")]
    campaign: Annotated[str | None, msgspec.Meta(description="the winning campaign")]
    creative: Annotated[str | None, msgspec.Meta(description="the winner's creative")]
    deal: Annotated[str | None, msgspec.Meta(description="the deal bid on, if any")]
    price_micros: Annotated[
        int | None, msgspec.Meta(description="the bid price, CPM micros of the bid currency")
    ]
    value_micros: Annotated[
        int | None,
        msgspec.Meta(description="what the impression is worth to the winner, CPM micros"),
    ]
    floor_micros: Annotated[
        int | None, msgspec.Meta(description="the floor that applied, CPM micros")
    ]
    reason: Annotated[
        str | None,
        msgspec.Meta(
            description="why this imp got no bid (a no-bid reason name); null when it got one"
        ),
    ]
    scores: Annotated[
        dict[str, float], msgspec.Meta(description="the winner's model scores by role (ctr, cvr)")
    ]
    features: Annotated[
        dict[str, list[float | None]],
        msgspec.Meta(
            description="the winner's feature row by role, in the model's feature spec column "
            "order; null is a missing value"
        ),
    ]


class DecisionRecord(_Record, frozen=True, kw_only=True, gc=False):
    """One decision of the engine: a bid, a no-bid, or a refused (invalid) request."""

    v: Annotated[int, msgspec.Meta(description="the record format version")]
    ts: Annotated[float, msgspec.Meta(description="the decision's time, seconds since the epoch")]
    request: Annotated[
        str | None, msgspec.Meta(description="the request id; null when the body was invalid")
    ]
    bid: Annotated[bool, msgspec.Meta(description="whether the engine bid")]
    reason: Annotated[
        str | None,
        msgspec.Meta(
            description="the request-level no-bid reason: a name of "
            "bidcore._core.NativeEngine.reasons(), or late; null on a bid"
        ),
    ]
    nbr: Annotated[int | None, msgspec.Meta(description="the OpenRTB no-bid reason code")]
    error: Annotated[
        str | None, msgspec.Meta(description="why an invalid body was refused; null otherwise")
    ]
    currency: Annotated[str | None, msgspec.Meta(description="the bid currency")]
    test: Annotated[bool, msgspec.Meta(description="the request was a test (test=1)")]
    latency_ns: Annotated[
        int, msgspec.Meta(description="the native decision's duration, nanoseconds")
    ]
    arms: Annotated[
        dict[str, str],
        msgspec.Meta(
            description="the arm by experiment key, for each experiment the request is in"
        ),
    ]
    units: Annotated[
        dict[str, str],
        msgspec.Meta(
            description="by experiment key, the unit's pseudonymous key (16 hex digits, "
            "bidcore.experiments.unit_key): what the analysis groups decisions by"
        ),
    ] = msgspec.field(default_factory=dict)
    models: Annotated[dict[str, str], msgspec.Meta(description="the model id by role")]
    imps: Annotated[list[ImpRecord], msgspec.Meta(description="the request's imps, in order")]


class NoticeRecord(_Record, frozen=True, gc=False):
    """A win, bill or loss notice the server received for a bid (written by Python)."""

    v: Annotated[int, msgspec.Meta(description="the record format version")]
    kind: Annotated[Literal["win", "bill", "loss"], msgspec.Meta(description="the notice")]
    ts: Annotated[float, msgspec.Meta(description="when it arrived, seconds since the epoch")]
    request: Annotated[str | None, msgspec.Meta(description="the request id")]
    imp: Annotated[str | None, msgspec.Meta(description="the imp id")]
    campaign: Annotated[str | None, msgspec.Meta(description="the campaign that bid")]
    creative: Annotated[str | None, msgspec.Meta(description="the creative bid with")]
    price_micros: Annotated[
        int | None,
        msgspec.Meta(description="the clearing price (${AUCTION_PRICE}), CPM micros of currency"),
    ]
    currency: Annotated[str | None, msgspec.Meta(description="the price's currency")]
    loss_reason: Annotated[
        int | None, msgspec.Meta(description="the OpenRTB loss reason code (${AUCTION_LOSS})")
    ]
    min_to_win_micros: Annotated[
        int | None,
        msgspec.Meta(description="the price that would have won (${AUCTION_MINTOWIN}), micros"),
    ]


Record: TypeAlias = DecisionRecord | NoticeRecord


class _Kind(msgspec.Struct):
    """Just the ``kind`` key: only notices have one. Decoding this skips every other key."""

    kind: str | None = None


_JSON_KIND: Final = msgspec.json.Decoder(_Kind)
_JSON_DECISION: Final = msgspec.json.Decoder(DecisionRecord)
_JSON_NOTICE: Final = msgspec.json.Decoder(NoticeRecord)
_MSGPACK_KIND: Final = msgspec.msgpack.Decoder(_Kind)
_MSGPACK_DECISION: Final = msgspec.msgpack.Decoder(DecisionRecord)
_MSGPACK_NOTICE: Final = msgspec.msgpack.Decoder(NoticeRecord)
_JSON_ENCODER: Final = msgspec.json.Encoder()
_MSGPACK_ENCODER: Final = msgspec.msgpack.Encoder()


def encode(record: Record, format: RecordFormat = "json") -> bytes:
    """``record`` as one JSON object (no newline) or one msgpack map: what the native log's
    ``drain`` returns for a decision."""
    if format == "json":
        return _JSON_ENCODER.encode(record)
    return _MSGPACK_ENCODER.encode(record)


def decode(data: bytes | memoryview, format: RecordFormat | None = None) -> Record:
    """One record from its JSON object or msgpack map; the format is recognised by the first
    byte when not given (a JSON object starts with ``{``, which no msgpack map does).

    Raises ``msgspec.DecodeError`` for malformed data and ``msgspec.ValidationError`` (both
    ``ValueError``) for a record that breaks the schema.
    """
    if format is None:
        format = "json" if bytes(data[:1]) in b"{ \t\r\n" else "msgpack"
    if format == "json":
        kind = _JSON_KIND.decode(data).kind
        return (_JSON_DECISION if kind is None else _JSON_NOTICE).decode(data)
    kind = _MSGPACK_KIND.decode(data).kind
    return (_MSGPACK_DECISION if kind is None else _MSGPACK_NOTICE).decode(data)


# msgspec decodes one message per call and cannot split a stream of concatenated msgpack maps,
# so a msgpack log file frames each record as a msgpack ``bin`` holding the record's map. The
# file stays a plain msgpack stream (any msgpack reader unpacks it: bins, each one record),
# and reading it back is a header read and one msgspec decode per record, with no copy.
_BIN8: Final = 0xC4
_BIN16: Final = 0xC5
_BIN32: Final = 0xC6


def frame_msgpack(record: bytes) -> bytes:
    """The msgpack ``bin`` header for ``record`` (a log file writes it before the record)."""
    size = len(record)
    if size < 1 << 8:
        return struct.pack(">BB", _BIN8, size)
    if size < 1 << 16:
        return struct.pack(">BH", _BIN16, size)
    return struct.pack(">BI", _BIN32, size)


_SUFFIXES: Final[dict[str, RecordFormat]] = {
    ".jsonl": "json",
    ".ndjson": "json",
    ".msgpack": "msgpack",
}
OPEN_SUFFIX: Final = ".open"
"""The suffix of a log file still being written (renamed without it when complete)."""


def log_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The complete log files of ``directory`` (``.jsonl``, ``.ndjson``, ``.msgpack``), sorted
    by name: by the time they were opened, for the files of one writer process."""
    return sorted(p for p in Path(directory).iterdir() if p.suffix in _SUFFIXES and p.is_file())


def read(path: str | os.PathLike[str]) -> Iterator[Record]:
    """Every record of a log file, or of every complete log file of a directory, in order.

    The format comes from the suffix (``.jsonl``/``.ndjson``: JSON lines; ``.msgpack``: framed
    maps). A file still being written (``….open``) may end in a record cut short by the writer;
    that one is left out. Anywhere else a bad record raises ``msgspec.DecodeError`` or
    ``msgspec.ValidationError`` naming the file and the line (or byte offset).
    """
    path = Path(path)
    if path.is_dir():
        for file in log_files(path):
            yield from read(file)
        return
    partial = path.suffix == OPEN_SUFFIX
    suffix = Path(path.stem).suffix if partial else path.suffix
    format = _SUFFIXES.get(suffix)
    if format is None:
        raise ValueError(f"{path}: not a decision log file (.jsonl, .ndjson, .msgpack)")
    if format == "json":
        yield from _read_lines(path, partial=partial)
    else:
        yield from _read_frames(path, partial=partial)


def _read_lines(path: Path, *, partial: bool) -> Iterator[Record]:
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if partial and not line.endswith(b"\n"):
                return  # the writer's batch is still being written
            if line.isspace():
                continue
            try:
                yield decode(line, "json")
            except msgspec.DecodeError as err:
                raise type(err)(f"{path}:{number}: {err}") from None


def _read_frames(path: Path, *, partial: bool) -> Iterator[Record]:
    data = memoryview(path.read_bytes())
    offset = 0
    while offset < len(data):
        marker = data[offset]
        width = {_BIN8: 1, _BIN16: 2, _BIN32: 4}.get(marker)
        start = offset + 1 + (width or 0)
        if width is None or start > len(data):
            if partial and width is not None:
                return
            raise msgspec.DecodeError(f"{path}: byte {offset}: not a record frame")
        size = int.from_bytes(data[offset + 1 : start], "big")
        end = start + size
        if end > len(data):
            if partial:
                return
            raise msgspec.DecodeError(f"{path}: byte {offset}: the last record is cut short")
        try:
            yield decode(data[start:end], "msgpack")
        except msgspec.DecodeError as err:
            raise type(err)(f"{path}: byte {offset}: {err}") from None
        offset = end
