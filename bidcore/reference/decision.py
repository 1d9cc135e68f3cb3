"""What :func:`bidcore.reference.decide` returns: the decision, per imp, and per candidate (the
imp-campaign pairs ``explain`` shows). The native engine returns the same Structs."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["Candidate", "Decision", "ImpDecision"]


class Candidate(msgspec.Struct, kw_only=True):
    """One campaign considered for one imp, with everything computed before it was excluded
    (``excluded_by``) or priced: a targeting failure carries only its reason, a ``below_floor``
    candidate its value and bounds.

    ``features`` and ``scores`` are by model role; ``value`` is micros CPM in the bidder's
    currency, ``floor``, ``lower``, ``upper`` and ``price`` micros CPM in the bid currency;
    ``surplus`` is what the imp's candidates are ranked by: the expected surplus
    ``(upper - price) * w(price)`` for a shaded first price, ``upper`` otherwise.

    Not frozen: the decision fills a candidate in step by step, as the rules go.
    """

    imp: str
    campaign: str
    excluded_by: str | None = None
    creative: str | None = None
    deal: str | None = None
    features: dict[str, list[float]] = msgspec.field(default_factory=dict)
    scores: dict[str, float] = msgspec.field(default_factory=dict)
    value: int | None = None
    floor: int | None = None
    lower: int | None = None
    upper: int | None = None
    price: int | None = None
    surplus: float | None = None


class ImpDecision(msgspec.Struct, frozen=True, kw_only=True):
    """An imp's outcome: the winning campaign, creative, deal and price (micros CPM in the bid
    currency), or the reason it gets no bid."""

    imp: str
    campaign: str | None = None
    creative: str | None = None
    price: int | None = None
    deal: str | None = None
    reason: str | None = None


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The whole answer to a request.

    ``reason`` is the request's no-bid reason when ``bid`` is false; ``currency`` the bid
    currency (``None`` when the request stopped before it was chosen); ``imps`` one entry per
    imp in request order (each carrying the request's reason when a request-level gate stopped
    it); ``response`` the OpenRTB response as parsed JSON, ``None`` without a bid.

    ``arms`` maps each experiment the request is in to its arm (assigned before any gate, so a
    no-bid has its arms too); ``targeting`` maps each campaign, in config order, to the
    targeting rule that excluded it, ``no_campaign`` for one an arm leaves out, ``budget`` for
    one its pacing throttle keeps out of the request, or ``None`` (empty when the seat or the
    currency gate stopped the request first), as ``explain`` shows them.
    """

    bid: bool
    reason: str | None
    currency: str | None
    personal: bool
    imps: list[ImpDecision]
    response: dict[str, Any] | None
    candidates: list[Candidate]
    arms: dict[str, str] = msgspec.field(default_factory=dict)
    targeting: dict[str, str | None] = msgspec.field(default_factory=dict)
