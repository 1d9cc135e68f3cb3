"""The feature spec computed in pure Python from the normalized request view: the oracle the
native extractor is tested against (``tests/test_features.py``).

It reads the view :func:`bidcore.openrtb.reference.inspect_request_py` returns, so nothing in it
shares code with the native path.
"""

from __future__ import annotations

import math
from typing import Any

from bidcore.features import Feature, FeatureSpec

__all__ = ["PERSONAL_SOURCES", "features_py", "fnv1a64", "personal_data_allowed", "text_value"]

View = dict[str, Any]

_NAN = math.nan


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _num(value: Any) -> float:
    return _NAN if value is None else float(value)


def number_value(view: View, imp: int, source: str) -> float:
    first, _, rest = source.partition(".")
    if first == "imp":
        return _num(_get(view["imp"][imp], *rest.split(".")))
    return _num(_get(view, *source.split(".")))


def text_value(view: View, imp: int, source: str) -> str | None:
    if source == "publisher.id":
        # The site's publisher, else the app's: the first present, even without an id.
        publisher = _get(view, "site", "publisher")
        if publisher is None:
            publisher = _get(view, "app", "publisher")
        value = _get(publisher, "id")
        return value if isinstance(value, str) else None
    if source == "placement":
        value = _get(view, "site", "domain")
        if value is None:
            value = _get(view, "app", "bundle")
        return value if isinstance(value, str) else None
    first, _, rest = source.partition(".")
    value = (
        _get(view["imp"][imp], *rest.split("."))
        if first == "imp"
        else _get(view, *source.split("."))
    )
    return value if isinstance(value, str) else None


def _local_seconds(view: View, timestamp: float, local: bool) -> int | None:
    if not math.isfinite(timestamp):
        return None
    seconds = math.floor(timestamp)
    offset = _get(view, "device", "geo", "utcoffset")
    if local and offset is not None:
        seconds += offset * 60
    return seconds


def derived_value(view: View, imp: int, name: str, timestamp: float, fx: dict[str, float]) -> float:
    slot = view["imp"][imp]
    if name.startswith(("hour_", "weekday_")):
        seconds = _local_seconds(view, timestamp, name.endswith("_local"))
        if seconds is None:
            return _NAN
        if name.startswith("hour_"):
            return float(seconds % 86_400 // 3_600)
        return float((seconds // 86_400 + 3) % 7)  # 1970-01-01 was a Thursday
    banner = slot.get("banner")
    if name == "banner_area":
        if banner is None:
            return _NAN
        if banner.get("w") is not None and banner.get("h") is not None:
            return float(banner["w"]) * float(banner["h"])
        formats = banner.get("format") or []
        if formats and formats[0].get("w") is not None and formats[0].get("h") is not None:
            return float(formats[0]["w"]) * float(formats[0]["h"])
        return _NAN
    if name == "floor_usd":
        floor = float(slot.get("bidfloor", 0.0))
        currency = str(slot.get("bidfloorcur", "USD"))
        if currency.upper() == "USD":
            return floor
        for code, rate in fx.items():
            if code.upper() == currency.upper():
                return floor * rate
        return _NAN
    if name == "segment_count":
        data = _get(view, "user", "data") or []
        return float(sum(len(d.get("segment") or []) for d in data))
    if name == "has_ifa":
        return 1.0 if _get(view, "device", "ifa") else 0.0
    if name == "is_app":
        return 1.0 if "app" in view else 0.0
    if name == "has_user_id":
        return 1.0 if (_get(view, "user", "id") or _get(view, "user", "buyeruid")) else 0.0
    if name == "format_count":
        return float(len((banner or {}).get("format") or []))
    if name == "imp_count":
        return float(len(view["imp"]))
    if name == "media_type":
        for position, media in enumerate(("banner", "video", "audio", "native")):
            if media in slot:
                return float(position)
        return _NAN
    raise ValueError(f"unknown derived feature {name!r}")


def _feature(
    f: Feature,
    view: View,
    imp: int,
    timestamp: float,
    fx: dict[str, float],
    campaign: dict[str, float],
) -> float:
    if f.number is not None:
        return number_value(view, imp, f.number)
    if f.text is not None:
        text = text_value(view, imp, f.text)
        if text is None:
            return _NAN
        if f.vocabulary is not None:
            if text in f.vocabulary:
                return float(f.vocabulary.index(text))
            return float(len(f.vocabulary)) if f.unseen == "own_code" else _NAN
        return float(fnv1a64(text.encode()) % (f.buckets or 1))
    if f.derived is not None:
        return derived_value(view, imp, f.derived, timestamp, fx)
    return float(campaign.get(f.campaign or "", _NAN))


PERSONAL_SOURCES = frozenset(
    {"user.yob", "device.geo.lat", "device.geo.lon", "user.gender"}
    | {"has_ifa", "has_user_id", "segment_count"}
)
"""User-level sources: missing when the request does not allow personal data."""


def personal_data_allowed(view: View) -> bool:
    """False under COPPA, with Limit Ad Tracking, or under GDPR without a consent string."""
    coppa = _get(view, "regs", "coppa") == 1
    gdpr = _get(view, "regs", "gdpr") == 1
    lmt = _get(view, "device", "lmt") == 1
    consent = _get(view, "user", "consent")
    return not (coppa or lmt or (gdpr and not consent))


def _is_personal(f: Feature) -> bool:
    source = f.number or f.text or f.derived
    return source is not None and source in PERSONAL_SOURCES


def features_py(
    view: View,
    spec: FeatureSpec,
    *,
    imp: int = 0,
    timestamp: float = math.nan,
    campaign: dict[str, float] | None = None,
) -> list[float]:
    """The features of impression ``imp`` of a normalized view, in spec order; user-level ones
    are NaN when the request does not allow personal data."""
    personal = personal_data_allowed(view)
    return [
        _NAN
        if not personal and _is_personal(f)
        else _feature(f, view, imp, timestamp, spec.fx, campaign or {})
        for f in spec.features
    ]
