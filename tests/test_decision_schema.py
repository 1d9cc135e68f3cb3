"""The decision log's records as a contract (bidcore/decisionlog/records.py and schema.py).

- the published schema (bidcore/schemas/decision-v1.json) is what the Structs export now;
- the current schema breaks no frozen version (tests/fixtures/schemas/decision-vN.json are
  copies taken when each version was released, never regenerated), and the checker that says
  so does catch a removed, retyped or no-longer-required field;
- every record a real engine writes, for every request of the OpenRTB corpus and the invalid
  corpus, in JSON and in msgpack, decodes strictly into the Structs and validates against the
  published schema, and says what the engine answered.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest

import bidcore
from bidcore import models
from bidcore.cli import main
from bidcore.decisionlog import (
    SCHEMA_VERSION,
    DecisionRecord,
    NoticeRecord,
    breaking_changes,
    decode,
    encode,
    schema,
    schema_text,
    validate,
)
from bidcore.decisionlog.schema import published_path, published_schema
from bidcore.testing.bidder import train_role_model

ROOT = Path(__file__).parent.parent
FROZEN = Path(__file__).parent / "fixtures" / "schemas"
CORPUS = Path(__file__).parent / "fixtures" / "openrtb" / "requests.jsonl"
INVALID = Path(__file__).parent / "fixtures" / "openrtb" / "invalid-requests.jsonl"
NOW = 1_795_390_200.0

DECISION: dict[str, Any] = {
    "v": 1,
    "ts": 1795390200.25,
    "request": "r1",
    "bid": True,
    "reason": None,
    "nbr": None,
    "error": None,
    "currency": "USD",
    "test": False,
    "latency_ns": 14_200,
    "arms": {"ctr-v7": "treatment"},
    "units": {"ctr-v7": "af63dc4c8601ec8c"},
    "models": {"ctr": "demo-ctr@3"},
    "imps": [
        {
            "imp": "1",
            "campaign": "c1",
            "creative": "cr1",
            "deal": None,
            "price_micros": 1_250_000,
            "value_micros": 2_000_000,
            "floor_micros": 500_000,
            "reason": None,
            "scores": {"ctr": 0.0123},
            "features": {"ctr": [0.5, None, 3.0]},
        }
    ],
}


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


# The published schema and its versions.


def test_the_published_schema_is_what_the_structs_export() -> None:
    published = published_path()
    assert published.name == f"decision-v{SCHEMA_VERSION}.json"
    assert published.read_text(encoding="utf-8") == schema_text(), (
        "the record Structs changed: regenerate the published schema with "
        f"`bidcore log schema > bidcore/schemas/{published.name}` (and read "
        "tests/test_decision_schema.py on versions first)"
    )
    assert published_schema() == schema()
    assert schema()["version"] == SCHEMA_VERSION


def test_bidcore_log_schema_prints_the_published_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "schema"]) == 0
    assert capsys.readouterr().out == published_path().read_text(encoding="utf-8")


def test_a_frozen_copy_exists_for_every_version_up_to_the_current_one() -> None:
    # A new version is released by copying its published schema here; an old copy is never
    # regenerated: these are what readers written against each version expect.
    frozen = sorted(p.name for p in FROZEN.glob("decision-v*.json"))
    assert frozen == [f"decision-v{v}.json" for v in range(1, SCHEMA_VERSION + 1)]


@pytest.mark.parametrize("frozen", sorted(FROZEN.glob("decision-v*.json")), ids=lambda p: p.name)
def test_the_current_schema_breaks_no_released_version(frozen: Path) -> None:
    assert breaking_changes(json.loads(frozen.read_bytes()), schema()) == []


def _defs(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = document["$defs"][name]
    return found


def test_the_checker_catches_a_removed_field_top_level_and_nested() -> None:
    old = schema()
    new = copy.deepcopy(old)
    del _defs(new, "DecisionRecord")["properties"]["latency_ns"]
    _defs(new, "DecisionRecord")["required"].remove("latency_ns")
    del _defs(new, "ImpRecord")["properties"]["features"]
    _defs(new, "ImpRecord")["required"].remove("features")
    del _defs(new, "NoticeRecord")["properties"]["loss_reason"]
    assert breaking_changes(old, new) == [
        "DecisionRecord.latency_ns: removed",
        "DecisionRecord.imps[].features: removed",
        "NoticeRecord.loss_reason: removed",
    ]


def test_the_checker_catches_a_retyped_field() -> None:
    old = schema()
    new = copy.deepcopy(old)
    decision, imp = _defs(new, "DecisionRecord"), _defs(new, "ImpRecord")
    decision["properties"]["latency_ns"] = {"type": "number"}  # int -> float
    decision["properties"]["request"] = {"type": "string"}  # no longer nullable
    imp["properties"]["price_micros"]["anyOf"][0] = {"type": "string"}  # int|null -> str|null
    imp["properties"]["features"]["additionalProperties"]["items"] = {"type": "number"}
    _defs(new, "NoticeRecord")["properties"]["kind"]["enum"].append("click")
    assert breaking_changes(old, new) == [
        "DecisionRecord.request: type changed from null | string to string",
        "DecisionRecord.latency_ns: type changed from integer to number",
        "DecisionRecord.imps[].price_micros: type changed from integer | null to null | string",
        "DecisionRecord.imps[].features{}[]: type changed from null | number to number",
        "NoticeRecord.kind: values changed from ['bill', 'loss', 'win'] to "
        "['bill', 'loss', 'win', 'click']",
    ]


def test_the_checker_catches_optional_fields_and_new_required_ones() -> None:
    old = schema()
    new = copy.deepcopy(old)
    _defs(new, "DecisionRecord")["required"].remove("currency")
    _defs(new, "ImpRecord")["properties"]["bid_id"] = {"type": "string"}
    _defs(new, "ImpRecord")["required"].append("bid_id")
    assert breaking_changes(old, new) == [
        "DecisionRecord.currency: no longer required",
        "DecisionRecord.imps[].bid_id: added as required (records already written lack it)",
    ]


def test_the_checker_accepts_an_added_optional_field_and_new_descriptions() -> None:
    old = schema()
    new = copy.deepcopy(old)
    _defs(new, "DecisionRecord")["properties"]["pacing"] = {"type": "number"}
    _defs(new, "ImpRecord")["properties"]["deal"]["description"] = "rewritten"
    _defs(new, "NoticeRecord")["description"] = "rewritten"
    assert breaking_changes(old, new) == []


def test_the_checker_catches_a_record_kind_removed() -> None:
    old = schema()
    new = copy.deepcopy(old)
    new["oneOf"] = new["oneOf"][:1]
    assert breaking_changes(old, new) == [
        "$: type changed from struct:DecisionRecord | struct:NoticeRecord to struct:DecisionRecord"
    ]


# The Structs, the validator and the two encodings.


def test_a_record_in_the_documented_format_decodes_strictly_and_validates() -> None:
    data = json.dumps(DECISION).encode()
    record = decode(data)
    assert isinstance(record, DecisionRecord)
    assert record.imps[0].features == {"ctr": [0.5, None, 3.0]}
    assert validate(DECISION) == []
    assert decode(encode(record, "msgpack")) == record
    assert json.loads(encode(record, "json")) == DECISION


def test_a_record_written_before_units_existed_still_decodes() -> None:
    earlier = {key: value for key, value in DECISION.items() if key != "units"}
    record = decode(json.dumps(earlier).encode())
    assert isinstance(record, DecisionRecord)
    assert record.units == {}
    assert validate(earlier) == []


def test_readers_ignore_keys_added_later() -> None:
    later = {**DECISION, "v": 2, "pacing": 0.8}
    later["imps"] = [{**DECISION["imps"][0], "bid_id": "b1"}]
    record = decode(json.dumps(later).encode())
    assert isinstance(record, DecisionRecord)
    assert record.v == 2
    assert validate(later) == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"latency_ns": 1.5}, "$.latency_ns: expected integer, got number"),
        ({"bid": 1}, "$.bid: expected boolean, got integer"),
        ({"test": None}, "$.test: expected boolean, got null"),
        ({"ts": True}, "$.ts: expected number, got boolean"),
        ({"models": {"ctr": 3}}, "$.models.ctr: expected string, got integer"),
    ],
)
def test_the_validator_and_the_decoder_refuse_a_wrong_type(
    change: dict[str, Any], error: str
) -> None:
    bad = {**DECISION, **change}
    [message] = validate(bad)
    assert message.startswith("$: matches none of: DecisionRecord: ")
    assert error in message
    with pytest.raises(msgspec.ValidationError):
        decode(json.dumps(bad).encode())


def test_the_validator_and_the_decoder_refuse_a_missing_key_or_a_bad_imp() -> None:
    missing = {key: value for key, value in DECISION.items() if key != "latency_ns"}
    assert "$: missing required key 'latency_ns'" in validate(missing)[0]
    with pytest.raises(msgspec.ValidationError, match="latency_ns"):
        decode(json.dumps(missing).encode())
    bad_imp = {**DECISION, "imps": [{**DECISION["imps"][0], "features": {"ctr": ["x"]}}]}
    assert "$.imps[0].features.ctr[0]: matches none of: number: " in validate(bad_imp)[0]
    with pytest.raises(msgspec.ValidationError, match=r"imps\[0\]\.features"):
        decode(json.dumps(bad_imp).encode())


def test_a_notice_record_round_trips_and_validates() -> None:
    notice = NoticeRecord(
        v=1,
        kind="loss",
        ts=NOW,
        request="r1",
        imp="1",
        campaign="c1",
        creative="cr1",
        price_micros=None,
        currency=None,
        loss_reason=102,
        min_to_win_micros=2_400_000,
    )
    for format in ("json", "msgpack"):
        data = encode(notice, format)
        assert decode(data) == notice
        assert validate(msgspec.json.decode(encode(notice, "json"))) == []
    assert "$: matches none of" in validate({**msgspec.to_builtins(notice), "kind": "click"})[0]


# Every record a real engine writes.


@pytest.fixture(scope="module")
def engine_and_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[bidcore.Engine, Any]:
    """The demo bidder's config (thirteen campaigns, every goal and media, a deal, several
    currencies) with two small models trained here, so the records carry scores and features
    of both roles; the demo's own models are not needed."""
    directory = tmp_path_factory.mktemp("models")
    bodies = _lines(CORPUS)
    loaded = {}
    for seed, role in enumerate(("ctr", "cvr"), start=1):
        booster, spec = train_role_model(bodies, seed=seed)
        booster.save_model(str(directory / f"{role}.txt"))
        loaded[role] = models.from_lightgbm(directory / f"{role}.txt", features=spec)
    log = bidcore.DecisionLog(capacity=1 << 14)
    config = bidcore.config.load(ROOT / "examples" / "bidder.toml")
    return bidcore.Engine(config, models=loaded, log=log), log


def _decide_all(engine: bidcore.Engine, bodies: list[bytes]) -> list[bytes | None]:
    answers: list[bytes | None] = []
    for body in bodies:
        try:
            answers.append(engine.bid(body, now=NOW))
        except bidcore.InvalidRequestError:
            answers.append(None)
    return answers


def test_every_record_the_engine_writes_meets_the_contract_in_both_formats(
    engine_and_log: tuple[bidcore.Engine, Any],
) -> None:
    engine, log = engine_and_log
    bodies = _lines(CORPUS) + _lines(INVALID)
    published = published_schema()
    decoded: dict[str, list[DecisionRecord]] = {}
    for format in ("json", "msgpack"):
        answers = _decide_all(engine, bodies)
        drained = log.drain(len(bodies) + 1, format)
        assert log.stats()["pending"] == 0
        assert len(drained) == len(bodies), "one record per decision, invalid requests included"
        records = []
        for data in drained:
            plain = msgspec.json.decode(data) if format == "json" else msgspec.msgpack.decode(data)
            assert validate(plain, published) == [], plain
            record = decode(data, format)
            assert isinstance(record, DecisionRecord)
            records.append(record)
        for body, answer, record in zip(bodies, answers, records, strict=True):
            _check_against_the_answer(body, answer, record)
        decoded[format] = records
    # The two encodings carry the same records (the decision time aside: measured each run).
    strip = [msgspec.structs.replace(r, latency_ns=0) for r in decoded["json"]]
    assert strip == [msgspec.structs.replace(r, latency_ns=0) for r in decoded["msgpack"]]
    _check_coverage(decoded["json"])


def _check_against_the_answer(body: bytes, answer: bytes | None, record: DecisionRecord) -> None:
    """The record says what the engine answered: the bid, its winners and prices."""
    assert record.v == SCHEMA_VERSION
    assert record.ts == NOW
    assert record.latency_ns > 0
    assert record.bid == (answer is not None)
    if record.request is None:  # refused as invalid (or not even JSON)
        assert record.reason == "invalid"
        assert record.error
        assert record.imps == []
        return
    assert record.error is None
    assert record.request == json.loads(body)["id"]
    assert record.reason in {name for name, _ in bidcore._core.NativeEngine.reasons()} | {None}
    if answer is None:
        assert record.reason is not None
        assert all(imp.price_micros is None and imp.reason for imp in record.imps)
        return
    assert record.reason is None
    response = json.loads(answer)
    assert record.currency == response.get("cur", "USD")
    bids = {bid["impid"]: bid for seat in response["seatbid"] for bid in seat["bid"]}
    for imp in record.imps:
        if imp.imp not in bids:
            assert imp.price_micros is None
            assert imp.reason is not None
            continue
        bid = bids.pop(imp.imp)
        assert imp.reason is None
        assert imp.creative == bid["crid"]
        assert imp.deal == bid.get("dealid")
        assert imp.price_micros == round(bid["price"] * 1_000_000)
    assert bids == {}, "every bid of the response is in the record"


def _check_coverage(records: list[DecisionRecord]) -> None:
    """The corpus exercises every part of the record, so the contract test tests them all."""
    reasons = Counter(r.reason for r in records)
    assert reasons[None] > 2000
    assert reasons["invalid"] > 400
    assert len(reasons) >= 5
    winners = [imp for r in records for imp in r.imps if imp.campaign is not None]
    assert {role for imp in winners for role in imp.scores} == {"ctr", "cvr"}
    assert any(None in row for imp in winners for row in imp.features.values())
    assert any(imp.deal for imp in winners)
    assert any(len(r.imps) > 1 for r in records)
    assert any(r.test for r in records)
    assert {r.currency for r in records} >= {"USD", "EUR", None}
    assert all(set(r.models) == {"ctr", "cvr"} for r in records if r.request is not None)
