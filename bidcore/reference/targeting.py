"""Campaign targeting: the request-level rules of ``docs/engine.md``'s table, checked campaign by
campaign and rule by rule, in the table's order, so the first failure is the reason ``explain``
reports. (The native engine gets the same answer from bitsets; this is the plain reading.)"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from typing import Final

from bidcore.config import Daypart, Targeting

from .view import View, ascii_lower, ascii_upper, lookup, strings

__all__ = ["REASONS", "failed_rule"]

REASONS: Final = (
    "country",
    "region",
    "device_type",
    "os",
    "connection_type",
    "domain",
    "domain_block",
    "bundle",
    "bundle_block",
    "category",
    "category_block",
    "segment",
    "daypart",
)


def _allows(listed: list[str] | list[int], value: object) -> bool:
    """An allow-list: empty allows everything, a missing value (``None``) matches nothing."""
    return not listed or (value is not None and value in listed)


def _blocks(listed: list[str], value: object) -> bool:
    """A block-list: a missing value is never blocked."""
    return value is not None and value in listed


def _text(view: View, *path: str) -> str | None:
    value = lookup(view, *path)
    return value if isinstance(value, str) else None


def _lowered(value: str | None) -> str | None:
    return None if value is None else ascii_lower(value)


def _categories(view: View) -> list[str]:
    """``site.cat`` or ``app.cat``, whichever object the request has (at most one may be)."""
    holder = "site" if "site" in view else "app"
    return strings(view, holder, "cat")


def _segment_ids(view: View) -> list[str]:
    ids: list[str] = []
    for data in lookup(view, "user", "data") or []:
        for segment in lookup(data, "segment") or []:
            found = lookup(segment, "id")
            if isinstance(found, str):
                ids.append(found)
    return ids


def _in_daypart(daypart: Daypart | None, now: float) -> bool:
    """Whether ``now`` falls in the daypart's hours and weekdays, in its own time zone. The
    second is ``floor(now)``: rounding a float timestamp could move 23:59:59.9999999 into the
    next hour, and the native engine works in whole seconds."""
    if daypart is None:
        return True
    moment = dt.datetime.fromtimestamp(math.floor(now), tz=zoneinfo.ZoneInfo(daypart.timezone))
    hour_ok = not daypart.hours or moment.hour in daypart.hours
    weekday_ok = not daypart.weekdays or moment.weekday() in daypart.weekdays
    return hour_ok and weekday_ok


def failed_rule(targeting: Targeting, view: View, *, personal: bool, now: float) -> str | None:
    """The first rule of the table ``targeting`` fails for this request, or ``None``."""
    t = targeting
    country = _text(view, "device", "geo", "country")
    if not _allows(t.countries, None if country is None else ascii_upper(country)):
        return "country"
    if not _allows(t.regions, _text(view, "device", "geo", "region")):
        return "region"
    if not _allows(t.device_types, lookup(view, "device", "devicetype")):
        return "device_type"
    if not _allows([ascii_lower(o) for o in t.os], _lowered(_text(view, "device", "os"))):
        return "os"
    if not _allows(t.connection_types, lookup(view, "device", "connectiontype")):
        return "connection_type"
    domain = _lowered(_text(view, "site", "domain"))
    if not _allows([ascii_lower(d) for d in t.domains], domain):
        return "domain"
    if _blocks([ascii_lower(d) for d in t.domains_block], domain):
        return "domain_block"
    bundle = _text(view, "app", "bundle")
    if not _allows(t.bundles, bundle):
        return "bundle"
    if _blocks(t.bundles_block, bundle):
        return "bundle_block"
    categories = _categories(view)
    if t.categories and not any(c in t.categories for c in categories):
        return "category"
    if any(c in t.categories_block for c in categories):
        return "category_block"
    if t.segments and not (personal and any(s in t.segments for s in _segment_ids(view))):
        return "segment"
    if not _in_daypart(t.daypart, now):
        return "daypart"
    return None
