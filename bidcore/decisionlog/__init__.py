"""The decision log: a record of every decision and notice, for monitoring and for training.

The native engine writes one record per decision (bid, no-bid or invalid request) into a
bounded buffer, ``bidcore.DecisionLog``, without ever waiting; :class:`DecisionLogWriter`
drains it from a background thread into a sink: :class:`FileSink` (rotating JSON-lines or
msgpack files) or :class:`RedisStreamSink` (a Redis stream). Win, bill and loss notices go
through the same writer. The records are a contract with whoever reads them later:

- :mod:`bidcore.decisionlog.records`: the msgspec Structs (:class:`DecisionRecord`,
  :class:`ImpRecord`, :class:`NoticeRecord`), :func:`decode`, and :func:`read` for log files;
- :mod:`bidcore.decisionlog.schema`: the JSON Schema exported from them, published as
  ``bidcore/schemas/decision-v1.json`` (``bidcore log schema`` prints it).

A bidder with a log, in each server worker (after any fork)::

    log = bidcore.DecisionLog(capacity=65_536)
    engine = bidcore.Engine(config, log=log)
    writer = DecisionLogWriter(log, FileSink("/var/log/bidcore", format="msgpack"))
    ...
    writer.close()          # a final drain: everything logged is written

and what training reads back:

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as directory:
...     with DecisionLogWriter(None, FileSink(directory, format="msgpack")) as writer:
...         writer.write_notice("bill", request="r9", imp="2", campaign="c1", creative="cr1",
...                             price_micros=910_000, currency="EUR", ts=1795390200.0)
...     list(read(directory))
True
[NoticeRecord(v=1, kind='bill', ts=1795390200.0, request='r9', imp='2', campaign='c1', creative='cr1', price_micros=910000, currency='EUR', loss_reason=None, min_to_win_micros=None)]
"""  # noqa: E501

from bidcore.decisionlog.records import (
    SCHEMA_VERSION,
    DecisionRecord,
    ImpRecord,
    NoticeRecord,
    Record,
    RecordFormat,
    decode,
    encode,
    read,
)
from bidcore.decisionlog.schema import breaking_changes, schema, schema_text, validate
from bidcore.decisionlog.sinks import FileSink, RedisStreamSink, Sink
from bidcore.decisionlog.writer import DecisionLogWriter, RecordSource

__all__ = [
    "SCHEMA_VERSION",
    "DecisionLogWriter",
    "DecisionRecord",
    "FileSink",
    "ImpRecord",
    "NoticeRecord",
    "Record",
    "RecordFormat",
    "RecordSource",
    "RedisStreamSink",
    "Sink",
    "breaking_changes",
    "decode",
    "encode",
    "read",
    "schema",
    "schema_text",
    "validate",
]
