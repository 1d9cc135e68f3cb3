"""``bidcore.config``: one config in three formats, errors that name their key path, exact money,
the time-zone tables the native engine reads dayparts from, and the JSON Schema."""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import decimal
import functools
import importlib
import itertools
import json
import re
import tomllib
import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bidcore import config
from bidcore.config import micros, nanos, zone_transitions
from bidcore.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "bidder.toml"

BASE = """
[bidder]
seat = "s1"
nurl = "https://win.example/n?c={campaign}&cr={creative}&p=${AUCTION_PRICE}"

[fx]
base = "USD"
rates = { EUR = 1.08, JPY = 0.0067, GBP = 1.271234567 }

[models]
ctr = "models/ctr"

[shading]
center = 1.25

[[shading.segments]]
media = ["video"]
center = 8
scale = 0.5

[[campaigns]]
id = "c1"
goal = "cpm"
cpm = 1.1
max_bid = 2.5
min_bid = 0.000001
features = { campaign_bid = 2.5, advertiser_category = 18 }

[campaigns.targeting]
countries = ["USA", "CAN"]
device_types = [1, 4]
os = ["ios"]

[[campaigns.creatives]]
id = "cr1"
media = "banner"
w = 300
h = 250
adomain = ["shop.example"]
cat = ["IAB18"]
markup = '<a href="https://shop.example/?c={campaign}"><img src="https://cdn.example/{creative}.png"></a>'

[[campaigns.creatives]]
id = "cr2"
media = "banner"
w = 320
h = 50
adomain = ["shop.example"]

[[campaigns]]
id = "c2"
goal = "cpc"
target_cpc = 0.35
max_bid = 4
deals = ["d1"]

[campaigns.targeting.daypart]
timezone = "Europe/Berlin"
hours = [8, 9, 10]
weekdays = [0, 1, 2, 3, 4]

[[campaigns.creatives]]
id = "v1"
media = "video"
duration = 30
mime = "video/mp4"
adomain = ["shop.example"]
"""


def _micros(amount: Decimal | None) -> int:
    assert amount is not None
    return micros(amount)


def _base() -> dict[str, Any]:
    return tomllib.loads(BASE)


def _texts(data: dict[str, Any]) -> list[tuple[Literal["json", "yaml"], str]]:
    """The same config as JSON and YAML (TOML floats become JSON and YAML numbers)."""
    return [("json", json.dumps(data)), ("yaml", yaml.safe_dump(data, sort_keys=False))]


# --- One config, three formats -----------------------------------------------------------------


@pytest.mark.parametrize("source", ["base", "example"])
def test_toml_json_and_yaml_give_equal_structs(source: str, tmp_path: Path) -> None:
    text = BASE if source == "base" else EXAMPLE.read_text()
    from_toml = config.loads(text)
    for fmt, converted in _texts(tomllib.loads(text)):
        assert config.loads(converted, format=fmt) == from_toml, fmt
    # load() picks the format by suffix.
    (_, as_json), (_, as_yaml) = _texts(tomllib.loads(text))
    for suffix, converted in (
        (".toml", text),
        (".json", as_json),
        (".yaml", as_yaml),
        (".YML", as_yaml),
    ):
        path = tmp_path / f"bidder{suffix}"
        path.write_text(converted)
        assert config.load(path) == from_toml, suffix


def test_amounts_are_read_exactly_in_every_format() -> None:
    cfg = config.loads(BASE)
    (c1, c2) = cfg.campaigns
    assert (_micros(c1.cpm), _micros(c1.max_bid), _micros(c1.min_bid)) == (1_100_000, 2_500_000, 1)
    assert _micros(c2.target_cpc) == 350_000
    assert cfg.fx.rate_nanos("GBP") == 1_271_234_567
    assert cfg.fx.rate_nanos("JPY") == 6_700_000
    assert cfg.fx.rate_nanos("USD") == 10**9
    assert cfg.fx.rate_nanos("CHF") is None
    # JSON may write amounts as strings too (the form the schema and msgspec's encoder use).
    data = _base()
    data["campaigns"][0]["cpm"] = "1.100000"
    assert _micros(config.loads(json.dumps(data), format="json").campaigns[0].cpm) == 1_100_000


def test_defaults_fill_what_a_minimal_config_leaves_out() -> None:
    minimal = config.loads(
        '[[campaigns]]\nid = "c"\ngoal = "cpm"\ncpm = 1\nmax_bid = 1\n'
        '[[campaigns.creatives]]\nid = "n"\nmedia = "native"\nadomain = ["a.example"]\n'
    )
    assert minimal.bidder == config.Bidder()
    assert (minimal.bidder.seat, minimal.bidder.currency) == ("bidcore", "USD")
    assert minimal.campaigns[0].targeting == config.Targeting()
    assert minimal.models.scorer == "native"
    assert minimal.shading.enabled
    assert minimal.pacing == config.Pacing()
    assert not minimal.pacing.enabled
    assert (minimal.pacing.mode, minimal.pacing.interval_seconds) == ("throttle", 60.0)


def test_a_pacing_table_is_read_with_its_profile_and_gains() -> None:
    data = _base()
    data["pacing"] = {
        "enabled": True,
        "mode": "multiplier",
        "interval_seconds": 30,
        "utc_offset_seconds": -5 * 3600,
        "profile": [1] * 6 + [3] * 12 + [1] * 6,
        "gains": {"kp": 20},
    }
    for fmt, text in _texts(data):
        pacing = config.loads(text, format=fmt).pacing
        assert (pacing.enabled, pacing.mode, pacing.interval_seconds) == (True, "multiplier", 30)
        assert pacing.profile is not None
        assert pacing.profile[6] == 3
        assert pacing.gains == config.PacingGains(kp=20.0)


def test_creatives_know_whether_they_are_secure() -> None:
    cfg = config.loads(BASE)
    assert cfg.campaigns[0].creatives[0].secure
    data = _base()
    data["campaigns"][0]["creatives"][0]["lurl"] = "http://loss.example/?c={campaign}"
    assert not config.loads(json.dumps(data), format="json").campaigns[0].creatives[0].secure


def test_the_example_config_loads() -> None:
    cfg = config.load(EXAMPLE)
    assert cfg.bidder.seat == "bidcore-demo"
    assert {c.goal for c in cfg.campaigns} == {"cpm", "cpc", "cpa"}
    assert {cr.media for c in cfg.campaigns for cr in c.creatives} == {
        "banner",
        "video",
        "audio",
        "native",
    }
    attributes = {"campaign_bid", "advertiser_category", "campaign_age_days"}
    assert all(set(c.features) == attributes for c in cfg.campaigns)


# --- Errors name their key path ----------------------------------------------------------------

_DELETE: Any = object()


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with ``_DELETE`` remove) the value at ``campaigns[1].targeting.hours``."""
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    node: Any = data
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    last: str | int = int(parts[-1][1:-1]) if parts[-1].startswith("[") else parts[-1]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


def _names_path(message: str, path: str) -> bool:
    """Whether an error message names ``path``: verbatim, or as ``LOCATION: ...`` followed by
    the rest of the path as a word (``campaigns[1]: cpm: ...``, ``fx: rates.EUR: ...``,
    ``campaigns[0].creatives[0]: a banner creative needs w and h``)."""
    if re.search(rf"(?<![\w.\[]){re.escape(path)}(?![\w\[])", message):
        return True
    parts = re.findall(r"[^.\[\]]+(?:\[\d+\])*", path)
    for cut in range(1, len(parts) + 1):
        location, rest = ".".join(parts[:cut]), ".".join(parts[cut:])
        if message.startswith(f"{location}: ") and (
            not rest
            or re.search(rf"(?<![\w.\[]){re.escape(rest)}(?![\w\[])", message[len(location) :])
        ):
            return True
    return False


BAD = [
    pytest.param("campaigns[1].targeting.daypart.hours", "9", "Expected `array`", id="deep-type"),
    pytest.param(
        "campaigns[0].targeting.device_types[1]", "phone", "Expected `int`", id="deep-item-type"
    ),
    pytest.param("campaigns[1].cpm", 1.2345678, "more than 6 decimal places", id="cpm-7-places"),
    pytest.param("campaigns[0].max_bid", -1, "must be positive", id="negative-max-bid"),
    pytest.param("campaigns[0].min_bid", 3, "must not exceed max_bid", id="min-above-max"),
    pytest.param("campaigns[1].target_cpc", _DELETE, "needs target_cpc", id="cpc-no-target"),
    pytest.param("models.ctr", _DELETE, "need a ctr model", id="cpc-no-ctr-model"),
    pytest.param(
        "campaigns",
        "duplicate-campaign-id",
        "must be unique",
        id="duplicate-campaign-ids",
    ),
    pytest.param(
        "campaigns[0].creatives",
        "duplicate-creative-id",
        "must be unique",
        id="duplicate-creative-ids",
    ),
    pytest.param("campaigns[0].creatives[0].w", _DELETE, "needs w and h", id="banner-no-size"),
    pytest.param(
        "campaigns[1].creatives[0].mime", _DELETE, "needs duration and mime", id="video-no-mime"
    ),
    pytest.param(
        "campaigns[1].creatives[0].duration", _DELETE, "needs duration", id="video-no-duration"
    ),
    pytest.param("bidder.nurl", "https://w.example/?x={nope}", "{nope}", id="placeholder"),
    pytest.param(
        "campaigns[1].creatives[0].markup", "<a href='{nope}'>", "{nope}", id="markup-placeholder"
    ),
    pytest.param("bidder.currency", "usd", "3-letter", id="bad-currency"),
    pytest.param("fx.base", "EURO", "3-letter", id="bad-fx-base"),
    pytest.param("fx.rates.EUR", 1.0123456789, "more than 9 decimal places", id="fx-10-places"),
    pytest.param("fx.rates.EUR", 0, "positive", id="fx-zero"),
    pytest.param(
        "campaigns[1].targeting.daypart.timezone",
        "Mars/Olympus",
        "unknown time zone",
        id="unknown-timezone",
    ),
    pytest.param("campaigns[1].targeting.daypart.hours", [24], "0..23", id="hour-24"),
    pytest.param("campaigns[0].targeting.country", ["USA"], "unknown field", id="unknown-key"),
    pytest.param("campaigns[0].targeting.countries", ["us"], "3-letter", id="lower-country"),
    pytest.param("campaigns[0].creatives[0].media", "popup", "Invalid enum", id="bad-media"),
    pytest.param("shading.segments[0].scale", -1.0, "positive and finite", id="bad-scale"),
    pytest.param("campaigns[0].deals_only", True, "deals_only needs deals", id="deals-only"),
    pytest.param("pacing.mode", "fast", "Invalid enum", id="pacing-mode"),
    pytest.param("pacing.interval_seconds", 0, "must be in (0, 86400]", id="pacing-interval"),
    pytest.param("pacing.utc_offset_seconds", 15 * 3600, "+-14 h", id="pacing-offset"),
    pytest.param("pacing.profile", [1.0] * 23, "need 24", id="pacing-profile-23"),
    pytest.param("pacing.profile", [0.0] * 24, "at least one", id="pacing-profile-zero"),
    pytest.param("pacing.profile", [-1.0] + [1.0] * 23, ">= 0", id="pacing-profile-negative"),
    pytest.param("pacing.max_multiplier", 0.1, "multiplier bounds", id="pacing-bounds"),
    pytest.param("pacing.gains.kp", -1.0, "finite and >= 0", id="pacing-gain"),
]


@pytest.mark.parametrize(("path", "value", "fragment"), BAD)
def test_every_error_names_its_key_path(path: str, value: Any, fragment: str) -> None:
    data = _base()
    if value == "duplicate-campaign-id":
        data["campaigns"][1]["id"] = data["campaigns"][0]["id"]
    elif value == "duplicate-creative-id":
        data["campaigns"][0]["creatives"][1]["id"] = data["campaigns"][0]["creatives"][0]["id"]
    else:
        _set(data, path, value)
    messages = set()
    for fmt, text in _texts(data):
        with pytest.raises(ConfigError) as raised:
            config.loads(text, format=fmt)
        messages.add(str(raised.value))
    (message,) = messages  # the same in JSON and YAML
    assert fragment in message
    assert _names_path(message, path), message


def test_the_path_checker_itself() -> None:
    assert _names_path("campaigns[1]: cpm: 1.2345678 has more than 6 places", "campaigns[1].cpm")
    assert _names_path("fx: rates.EUR: too many places", "fx.rates.EUR")
    assert _names_path("cpc campaigns need a ctr model (models.ctr)", "models.ctr")
    assert not _names_path("campaigns[1]: cpm: bad", "campaigns[0].cpm")
    assert not _names_path("campaigns[0]: creative ids must be unique", "campaigns[0].creatives")
    assert not _names_path("campaign ids must be unique: ['c1']", "campaigns")


def test_format_errors_say_which_format() -> None:
    with pytest.raises(ConfigError, match=r"^not valid TOML: "):
        config.loads("[bidder\n")
    with pytest.raises(ConfigError, match=r"^not valid JSON: "):
        config.loads("{", format="json")
    with pytest.raises(ConfigError, match=r"^not valid YAML: "):
        config.loads("campaigns: [", format="yaml")
    with pytest.raises(ConfigError, match=r"^Object missing required field `campaigns`$"):
        config.loads("[bidder]\n")


def test_load_names_the_file_it_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bidder\.ini: unknown config format '\.ini'"):
        config.load(tmp_path / "bidder.ini")
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=re.escape(f"{missing}: ")):
        config.load(missing)


# --- Money: micros and nanos, exactly -----------------------------------------------------------


@st.composite
def _decimals(draw: st.DrawFn, *, max_places: int, limit: int) -> Decimal:
    """Decimals with at most ``max_places`` places and an absolute value of at most ``limit``."""
    places = draw(st.integers(0, max_places))
    scale = 10**places
    units = draw(st.integers(-limit * scale, limit * scale))
    return Decimal(units).scaleb(-places)


@st.composite
def _too_precise(draw: st.DrawFn, *, max_places: int) -> Decimal:
    """Decimals with more than ``max_places`` significant decimal places."""
    places = draw(st.integers(max_places + 1, max_places + 8))
    units = draw(st.integers(-(10**15), 10**15).filter(lambda u: u % 10 ** (places - max_places)))
    return Decimal(units).scaleb(-places)


@given(_decimals(max_places=6, limit=10**6))
def test_micros_is_exact_up_to_six_places(amount: Decimal) -> None:
    assert micros(amount) == amount * 10**6
    assert Decimal(micros(amount)).scaleb(-6) == amount


@given(_too_precise(max_places=6))
def test_micros_refuses_a_seventh_place(amount: Decimal) -> None:
    with pytest.raises(ValueError, match="more than 6 decimal places"):
        micros(amount)


@given(_decimals(max_places=9, limit=10**9).filter(lambda d: d > 0))
def test_nanos_is_exact_up_to_nine_places(rate: Decimal) -> None:
    assert nanos(rate) == rate * 10**9


@given(_too_precise(max_places=9))
def test_nanos_refuses_a_tenth_place(rate: Decimal) -> None:
    with pytest.raises(ValueError, match="more than 9 decimal places"):
        nanos(rate)


def test_money_edges() -> None:
    assert micros(Decimal("1.1000000")) == 1_100_000  # trailing zeros are not places
    assert micros(Decimal("1E+3")) == 10**9
    assert micros(Decimal(10**6)) == 10**12
    for bad in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValueError):  # noqa: PT011 - the message differs per case
            micros(Decimal(bad))
    with pytest.raises((ValueError, decimal.InvalidOperation)):
        micros(Decimal("sNaN"))
    assert nanos(Decimal("0.000000001")) == 1
    for bad in ("0", "-1", "1000000000.000000001", "NaN", "Infinity"):
        with pytest.raises(ValueError):  # noqa: PT011
            nanos(Decimal(bad))


def test_micros_range_is_a_billion_units() -> None:
    assert micros(Decimal(2_000_000)) == 2 * 10**12  # a JPY budget
    assert micros(Decimal(10**9)) == 10**15
    for bad in ("1000000000.000001", "-1000000001"):
        with pytest.raises(ValueError, match="out of range"):
            micros(Decimal(bad))


@given(_decimals(max_places=6, limit=10**6))
def test_toml_yaml_and_json_numbers_read_as_written(amount: Decimal) -> None:
    # TOML and YAML numbers pass through a double: exact while they have at most 15
    # significant digits (here up to 7 + 6). JSON numbers are read from their text.
    text = f"{amount:f}"
    if "." not in text:
        text += ".0"
    campaign = (
        f'[[campaigns]]\nid = "c"\ngoal = "cpm"\ncpm = {text}\nmax_bid = 1\n'
        '[[campaigns.creatives]]\nid = "n"\nmedia = "native"\nadomain = ["a.example"]\n'
    )
    try:
        cfg = config.loads(campaign)
    except ConfigError:
        assert amount < 0  # cpm must be >= 0
        return
    data = tomllib.loads(campaign)
    data["campaigns"][0]["cpm"] = json.loads(text)
    for fmt, converted in _texts(data):
        assert config.loads(converted, format=fmt) == cfg
    assert _micros(cfg.campaigns[0].cpm) == amount * 10**6


def test_amounts_a_double_cannot_hold_are_refused_not_altered() -> None:
    # 17 significant digits do not survive TOML's doubles; such amounts are beyond the range.
    campaign = (
        '[[campaigns]]\nid = "c"\ngoal = "cpm"\ncpm = 1\nmax_bid = 12345678901.123456\n'
        '[[campaigns.creatives]]\nid = "n"\nmedia = "native"\nadomain = ["a.example"]\n'
    )
    with pytest.raises(ConfigError, match=r"campaigns\[0\].*out of range"):
        config.loads(campaign)


# --- Daypart time zones --------------------------------------------------------------------------

ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
Y2000 = int(dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp())
Y2100 = int(dt.datetime(2100, 1, 1, tzinfo=dt.UTC).timestamp())


@functools.cache
def _table(zone: str) -> tuple[list[int], list[int]]:
    table = zone_transitions(zone)
    return [t for t, _ in table], [offset for _, offset in table]


def _offset(zone: str, t: int) -> int:
    starts, offsets = _table(zone)
    return offsets[bisect.bisect_right(starts, t) - 1]


def _zoneinfo_offset(zone: str, t: int) -> int:
    delta = dt.datetime.fromtimestamp(t, tz=dt.UTC).astimezone(zoneinfo.ZoneInfo(zone)).utcoffset()
    assert delta is not None
    return int(delta.total_seconds())


@pytest.mark.parametrize("zone", ZONES)
# No deadline: the first example builds (and caches) the zone's century of transitions, which
# took 267 ms in one CI run on a busy machine; every later example is a lookup.
@settings(deadline=None)
@given(t=st.integers(Y2000, Y2100 - 1))
def test_zone_transitions_agree_with_zoneinfo(zone: str, t: int) -> None:
    assert _offset(zone, t) == _zoneinfo_offset(zone, t)


@pytest.mark.parametrize("zone", ZONES)
def test_zone_transitions_are_exact_to_the_second(zone: str) -> None:
    starts, offsets = _table(zone)
    assert starts[0] == Y2000
    assert starts == sorted(set(starts))
    assert all(a != b for a, b in itertools.pairwise(offsets))  # only real changes
    for t, offset in zip(starts[1:], offsets[1:], strict=True):
        assert _zoneinfo_offset(zone, t) == offset
        assert _zoneinfo_offset(zone, t - 1) != offset


def test_zone_transitions_known_values() -> None:
    assert list(zone_transitions("UTC")) == [(Y2000, 0)]
    assert list(zone_transitions("Asia/Kolkata")) == [(Y2000, 19_800)]
    # Lord Howe Island moves its clocks by half an hour: +10:30 and +11:00.
    assert set(_table("Australia/Lord_Howe")[1]) == {37_800, 39_600}
    # 2024-03-10 02:00 EST is 07:00 UTC; 2024-03-31 01:00 UTC in Berlin.
    new_york = dict(zone_transitions("America/New_York"))
    assert new_york[1_710_054_000] == -14_400
    assert dict(zone_transitions("Europe/Berlin"))[1_711_846_800] == 7_200
    assert len(new_york) == 1 + 2 * 100  # a change each spring and autumn of the century
    assert list(zone_transitions("Europe/Berlin", start_year=2024, end_year=2025)) == [
        (int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()), 3_600),
        (1_711_846_800, 7_200),
        (1_729_990_800, 3_600),
    ]


# --- JSON Schema ---------------------------------------------------------------------------------

_KEYWORDS = {
    "$schema", "$ref", "$defs", "title", "description", "type", "properties", "required",
    "additionalProperties", "items", "anyOf", "enum", "default", "format",
    "prefixItems", "minItems", "maxItems", "minimum", "maximum",
}  # fmt: skip
_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _keywords(node: Any, *, inside_properties: bool = False) -> set[str]:
    """Every schema keyword used (property names and defaults are not keywords)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if not inside_properties:
                found.add(key)
            if key in ("default", "enum") and not inside_properties:
                continue
            found |= _keywords(value, inside_properties=key in ("properties", "$defs"))
    elif isinstance(node, list):
        for item in node:
            found |= _keywords(item)
    return found


def _errors(instance: Any, node: dict[str, Any], root: dict[str, Any], at: str = "$") -> list[str]:
    """A small validator for the keywords msgspec's schemas use (when jsonschema is absent)."""
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        return _errors(instance, root["$defs"][name], root, at)
    if "anyOf" in node:
        options = [_errors(instance, option, root, at) for option in node["anyOf"]]
        return [] if any(not o for o in options) else [f"{at}: matches no anyOf option"]
    if "enum" in node and instance not in node["enum"]:
        return [f"{at}: {instance!r} not in {node['enum']}"]
    kind = node.get("type")
    if kind == "integer":
        ok = isinstance(instance, int) and not isinstance(instance, bool)
    elif kind == "number":
        ok = isinstance(instance, int | float) and not isinstance(instance, bool)
    else:
        ok = kind is None or isinstance(instance, _TYPES[kind])
    if not ok:
        return [f"{at}: {instance!r} is not of type {kind}"]
    errors: list[str] = []
    if isinstance(instance, dict):
        properties = node.get("properties", {})
        errors += [f"{at}: missing {k}" for k in node.get("required", []) if k not in instance]
        extra = node.get("additionalProperties", True)
        for key, value in instance.items():
            if key in properties:
                errors += _errors(value, properties[key], root, f"{at}.{key}")
            elif extra is False:
                errors.append(f"{at}: unexpected {key}")
            elif isinstance(extra, dict):
                errors += _errors(value, extra, root, f"{at}.{key}")
    if isinstance(instance, list):
        if not node.get("minItems", 0) <= len(instance) <= node.get("maxItems", len(instance)):
            errors.append(f"{at}: {len(instance)} items")
        prefix = node.get("prefixItems", [])
        for i, item in enumerate(instance):
            if i < len(prefix):
                errors += _errors(item, prefix[i], root, f"{at}[{i}]")
            elif "items" in node:
                errors += _errors(item, node["items"], root, f"{at}[{i}]")
    return errors


def _validate(instance: Any, schema: dict[str, Any]) -> list[str]:
    try:
        jsonschema: Any = importlib.import_module("jsonschema")
    except ImportError:
        return _errors(instance, schema, schema)
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(instance)]


def test_schema_has_the_shape_of_a_json_schema() -> None:
    schema = config.schema()
    assert json.loads(json.dumps(schema)) == schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$ref"] == "#/$defs/Config"
    assert _keywords(schema) <= _KEYWORDS, _keywords(schema) - _KEYWORDS
    refs = set(re.findall(r'"\$ref": "#/\$defs/(\w+)"', json.dumps(schema)))
    assert refs <= set(schema["$defs"]), refs - set(schema["$defs"])
    for name, struct in (
        ("Config", config.Config),
        ("Campaign", config.Campaign),
        ("Creative", config.Creative),
        ("Targeting", config.Targeting),
        ("Daypart", config.Daypart),
        ("Bidder", config.Bidder),
        ("Fx", config.Fx),
        ("Models", config.Models),
        ("Shading", config.Shading),
        ("Pacing", config.Pacing),
        ("PacingGains", config.PacingGains),
    ):
        definition = schema["$defs"][name]
        fields = msgspec.structs.fields(struct)
        assert definition["type"] == "object"
        assert definition["additionalProperties"] is False  # forbid_unknown_fields
        assert list(definition["properties"]) == [f.name for f in fields], name
        assert definition.get("required", []) == [f.name for f in fields if f.required], name
    assert schema["$defs"]["Config"]["required"] == ["campaigns"]


def test_the_example_config_as_msgspec_encodes_it_validates() -> None:
    schema = config.schema()
    canonical = msgspec.json.decode(msgspec.json.encode(config.load(EXAMPLE)))
    assert _validate(canonical, schema) == []
    assert config.loads(json.dumps(canonical), format="json") == config.load(EXAMPLE)
    broken = copy.deepcopy(canonical)
    broken["campaigns"][0]["targeting"]["countries"] = "USA"
    broken["campaigns"][1]["creatives"][0]["colour"] = "red"
    del broken["campaigns"][2]["goal"]
    assert len(_validate(broken, schema)) == 3


def test_the_example_config_converted_to_json_validates() -> None:
    converted = json.loads(json.dumps(tomllib.loads(EXAMPLE.read_text())))
    assert _validate(converted, config.schema()) == []
