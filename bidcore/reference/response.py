"""The OpenRTB response the engine writes, as the dict ``json.loads`` would give back.

Templates (markup and notice URLs) keep the exchange's ``${...}`` macros and get bidcore's own
placeholders filled, percent-encoded so a request or campaign id can never break out of a URL.
"""

from __future__ import annotations

import re
from typing import Any, Final, NamedTuple
from urllib.parse import quote

from bidcore.config import Campaign, Config, Creative

from .creatives import notice_template
from .money import price_bucket, price_number
from .view import View

__all__ = ["MTYPES", "Won", "fill", "response"]

EXPLAIN_TOKEN: Final = "0" * 16
"""``{bid}`` in a response ``explain`` writes: it registers no bid with the ledger."""

MTYPES: Final = {"banner": 1, "video": 2, "audio": 3, "native": 4}

# `${...}` up to its first `}` is an exchange macro and is matched first, so that it is left
# whole; only then is a bare `{placeholder}` filled.
_TEMPLATE: Final = re.compile(
    r"\$\{[^}]*\}|\{(campaign|creative|imp|request|arm|price_bucket|bid)\}"
)


class Won(NamedTuple):
    """An imp's winning candidate, as the response needs it."""

    imp: str
    campaign: Campaign
    creative: Creative
    deal: str | None
    price: int


def fill(template: str, values: dict[str, str]) -> str:
    """``template`` with each ``{name}`` replaced by its value, percent-encoded except
    ``A-Z a-z 0-9 - _ . ~``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return match.group(0) if name is None else quote(values[name], safe="-_.~")

    return _TEMPLATE.sub(replace, template)


def _bid(won: Won, view: View, config: Config, arms: str) -> dict[str, Any]:
    creative = won.creative
    values = {
        "campaign": won.campaign.id,
        "creative": creative.id,
        "imp": won.imp,
        "request": str(view["id"]),
        "arm": arms,
        "price_bucket": price_bucket(won.price),
        # explain() registers no bid: its token is all zeros (bid() writes a real one).
        "bid": EXPLAIN_TOKEN,
    }
    bid: dict[str, Any] = {
        "id": f"{won.imp}-{won.campaign.id}",
        "impid": won.imp,
        "price": price_number(won.price),
        "adid": creative.id,
        "crid": creative.id,
        "cid": won.campaign.id,
        "adomain": list(creative.adomain),
    }
    if creative.cat:
        bid["cat"] = list(creative.cat)
    if creative.attr:
        bid["attr"] = list(creative.attr)
    if creative.bundle is not None:
        bid["bundle"] = creative.bundle
    bid["mtype"] = MTYPES[creative.media]
    if won.deal is not None:
        bid["dealid"] = won.deal
    if creative.media in ("banner", "video"):
        if creative.w is not None:
            bid["w"] = creative.w
        if creative.h is not None:
            bid["h"] = creative.h
    if creative.media in ("video", "audio") and creative.duration is not None:
        bid["dur"] = creative.duration
    if creative.markup is not None:
        bid["adm"] = fill(creative.markup, values)
    for name in ("nurl", "burl", "lurl"):
        template = notice_template(creative, config.bidder, name)
        if template is not None:
            bid[name] = fill(template, values)
    return bid


def response(
    view: View, won: list[Won], currency: str, config: Config, arms: str = ""
) -> dict[str, Any]:
    """The response carrying one bid per won imp, in the request's imp order; ``arms`` fills
    the ``{arm}`` placeholder (the request's arms as ``experiment:arm``, comma-separated, in
    layer order)."""
    bids = [_bid(w, view, config, arms) for w in won]
    answer: dict[str, Any] = {
        "id": view["id"],
        "seatbid": [{"bid": bids, "seat": config.bidder.seat}],
        "cur": currency,
    }
    if view.get("test") == 1:
        answer["ext"] = {"bidcore": {"test": 1}}
    return answer
