"""``decide``: the bidding decision of ``docs/engine.md``, read top to bottom.

The request's experiment arms first (``docs/experiments.md``, section 12), then request-level
gates, then targeting per campaign (and the campaigns an arm leaves out), then pacing (the
campaigns their throttle keeps out of the request, ``docs/engine.md``, Pacing), then per imp the
eligibility steps (deal, creative, floor) for every campaign left in config order, one model
call per role and model on the rows of the candidates that need it, and finally value (times the
arm's multiplier, then the pacing multiplier), bounds, price (on the arm's shading table) and
rank.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

from bidcore.config import Campaign, Config, Creative
from bidcore.engine import WIN_RATE
from bidcore.features.reference import features_py
from bidcore.openrtb.reference import inspect_request_py

from .arms import (
    Assigned,
    Settings,
    account_of,
    arm_model_key,
    assigned_arms,
    excluded,
    label,
    settings,
)
from .budget import Budget, check_budget, cost_nanos, covered
from .creatives import choose_creative
from .deals import choose_deal
from .decision import Candidate, Decision, ImpDecision
from .frequency import Frequency, has_slot, user_key
from .gates import bid_currency, is_personal, seat_blocked
from .money import convert_up, convertible, floor_micros
from .pacing import Pacing, check_pacing, enters, pacing_of
from .pricing import (
    bounds,
    curve,
    expected_surplus,
    model_center,
    scaled,
    shaded_price,
    value_micros,
)
from .response import Won, response
from .scoring import ROLES, RoleModel, feature_row, predict_block, roles_needed
from .targeting import failed_rule
from .view import View, lookup

__all__ = ["IMP_REASONS", "decide"]

IMP_REASONS: Final = (
    "private_auction",
    "deal",
    "media",
    "size",
    "duration",
    "mime",
    "secure",
    "blocked_cat",
    "blocked_adomain",
    "blocked_app",
    "blocked_attr",
    "no_creative",
    "currency",
    "below_floor",
    "below_min_bid",
)
"""The per-imp reasons in the spec's order: the tie-break when an imp's campaigns were excluded
for different reasons equally often."""


@dataclasses.dataclass
class _Eligible:
    """A candidate through steps 1-3, waiting for its scores."""

    draft: Candidate
    campaign: Campaign
    creative: Creative
    deal: dict[str, Any] | None
    floor: int
    settings: Settings


def decide(
    body: bytes,
    config: Config,
    models: Mapping[str, RoleModel],
    *,
    now: float,
    pacing: Pacing | None = None,
    budget: Budget | None = None,
    frequency: Frequency | None = None,
) -> Decision:
    """The decision on the request ``body`` at time ``now`` (seconds since the epoch).

    ``models`` maps each role to the bidder's model, and each experiment arm's model to the
    key :func:`bidcore.engine.arm_model_key` gives it (``"ctr/shade-v2/treatment"``).
    ``pacing`` maps accounts (campaign ids, and ``campaign@experiment:arm`` for a campaign's
    share under an arm with a ``budget_share``) to their ``(throttle_ppm, multiplier_ppm)``,
    what ``Engine.set_pacing`` set; an account it does not list is unpaced, ``(10^6, 10^6)``.
    ``budget`` maps the campaigns the ledger limits to their available nanos
    (:mod:`bidcore.reference.budget`); a campaign it does not list is not limited.
    ``frequency`` maps (user key, campaign id) to the slots in use under the campaign's
    frequency cap (:mod:`bidcore.reference.frequency`); ``None``: caps are not enforced.

    Raises :class:`~bidcore.errors.InvalidRequestError` (a ``ValueError``) for a body the
    engine refuses, and ``ValueError`` when a campaign or an arm needs a model ``models``
    lacks, ``now`` is not finite, or ``pacing`` names an unknown campaign or holds a value
    ``Engine.set_pacing`` refuses.
    """
    _check_models(config, models)
    if not math.isfinite(now):
        raise ValueError(f"now must be finite, got {now}")
    pacing = {} if pacing is None else pacing
    check_pacing(config, pacing)
    budget = {} if budget is None else budget
    check_budget(config, budget)
    view = inspect_request_py(body)
    personal = is_personal(view)
    imp_ids = [str(imp["id"]) for imp in view["imp"]]
    # Assigned before any gate: a no-bid carries its arms too.
    assigned = assigned_arms(view, config)
    arms = {a.experiment.key: a.arm.name for a in assigned}

    if seat_blocked(view, config.bidder.seat):
        return _no_bid(imp_ids, "blocked_seat", None, personal, [], arms, {})
    currency = bid_currency(view, config.bidder.currency, config.fx)
    if currency is None:
        return _no_bid(imp_ids, "currency", None, personal, [], arms, {})

    targeting: dict[str, str | None] = {}
    for c in config.campaigns:
        reason = failed_rule(c.targeting, view, personal=personal, now=now)
        # Targeted, but left out by the request's arm: the arm runs no such campaign.
        if reason is None and excluded(assigned, c.id):
            reason = "no_campaign"
        targeting[c.id] = reason
    if all(reason is not None for reason in targeting.values()):
        candidates = _targeted_out(imp_ids, config, targeting)
        return _no_bid(imp_ids, "no_campaign", currency, personal, candidates, arms, targeting)
    # Pacing, of the campaigns left: a throttled one enters only on the request's draw.
    request_id = str(lookup(view, "id") or "")
    for c in config.campaigns:
        account = account_of(c.id, assigned)
        if targeting[c.id] is None and not enters(pacing, request_id, c.id, account):
            targeting[c.id] = "budget"
    if all(reason is not None for reason in targeting.values()):
        # Every campaign targeting let through was held back by its pacing: the budget is why.
        candidates = _targeted_out(imp_ids, config, targeting)
        return _no_bid(imp_ids, "budget", currency, personal, candidates, arms, targeting)

    imps: list[ImpDecision] = []
    won: list[Won] = []
    candidates = []
    held: dict[str, int] = {}  # what the earlier imps' winners hold, by campaign
    won_by: Counter[str] = Counter()  # the earlier imps' winners, by campaign
    user = user_key(view, personal=personal) if frequency is not None else None
    for index in range(len(imp_ids)):
        drafts, winner = _decide_imp(
            view,
            index,
            config,
            models,
            targeting,
            currency,
            now=now,
            assigned=assigned,
            pacing=pacing,
            budget=budget,
            held=held,
            frequency=frequency,
            user=user,
            won_by=won_by,
        )
        candidates += drafts
        if winner is None:
            imps.append(ImpDecision(imp=imp_ids[index], reason=_imp_reason(drafts, targeting)))
            continue
        imps.append(
            ImpDecision(
                imp=winner.imp,
                campaign=winner.campaign.id,
                creative=winner.creative.id,
                price=winner.price,
                deal=winner.deal,
            )
        )
        won.append(winner)

    if not won:
        return Decision(
            bid=False,
            reason=imps[0].reason,
            currency=currency,
            personal=personal,
            imps=imps,
            response=None,
            candidates=candidates,
            arms=arms,
            targeting=targeting,
        )
    return Decision(
        bid=True,
        reason=None,
        currency=currency,
        personal=personal,
        imps=imps,
        response=response(view, won, currency, config, label(assigned)),
        candidates=candidates,
        arms=arms,
        targeting=targeting,
    )


def _check_models(config: Config, models: Mapping[str, RoleModel]) -> None:
    for campaign in config.campaigns:
        for role in roles_needed(campaign):
            if role not in models:
                raise ValueError(
                    f"campaign {campaign.id!r} ({campaign.goal}) needs a {role!r} model"
                )
    # As the engine, every arm's model up front, whichever campaigns a request reaches.
    for _, experiment, arm in config.experiments.arms():
        for role in arm.models:
            key = arm_model_key(role, experiment.key, arm.name)
            if key not in models:
                raise ValueError(
                    f"arm {arm.name!r} of experiment {experiment.key!r} needs a {key!r} model"
                )


def _no_bid(
    imp_ids: list[str],
    reason: str,
    currency: str | None,
    personal: bool,
    candidates: list[Candidate],
    arms: dict[str, str],
    targeting: dict[str, str | None],
) -> Decision:
    return Decision(
        bid=False,
        reason=reason,
        currency=currency,
        personal=personal,
        imps=[ImpDecision(imp=imp, reason=reason) for imp in imp_ids],
        response=None,
        candidates=candidates,
        arms=arms,
        targeting=targeting,
    )


def _targeted_out(
    imp_ids: list[str], config: Config, targeting: dict[str, str | None]
) -> list[Candidate]:
    """Every imp-campaign pair of a request no campaign is left for, each carrying its
    campaign's reason: a targeting rule, ``no_campaign`` (an arm) or ``budget`` (pacing)."""
    return [
        Candidate(imp=imp, campaign=c.id, excluded_by=targeting[c.id])
        for imp in imp_ids
        for c in config.campaigns
    ]


def _imp_reason(drafts: list[Candidate], targeting: dict[str, str | None]) -> str:
    """The most common per-imp reason among the imp's targeted campaigns (targeting reasons are
    request-level and not counted, nor is pacing's ``budget``); ties go to the earliest in
    :data:`IMP_REASONS`, after the ledger's ``budget`` and ``frequency_cap``
    (:mod:`bidcore.reference.budget`, :mod:`bidcore.reference.frequency`)."""
    ledger_reasons = ("budget", "frequency_cap")
    counts = Counter(
        d.excluded_by
        for d in drafts
        if d.excluded_by in IMP_REASONS
        or (d.excluded_by in ledger_reasons and targeting[d.campaign] is None)
    )
    order = tuple(r for r in ledger_reasons if counts[r]) + IMP_REASONS
    return max(order, key=lambda reason: counts[reason])


def _eligible(
    view: View,
    imp: View,
    campaign: Campaign,
    config: Config,
    currency: str,
    draft: Candidate,
    assigned: Sequence[Assigned],
) -> _Eligible | None:
    """Steps 1-3 (deal, creative, floor); ``None`` with ``draft.excluded_by`` set when the
    campaign may not bid on the imp."""
    deal, reason = choose_deal(campaign, imp, config.bidder.seat)
    if reason is not None:
        draft.excluded_by = reason
        return None
    draft.deal = None if deal is None else str(deal["id"])
    creative, reason = choose_creative(campaign, imp, view, config.bidder)
    if creative is None:
        draft.excluded_by = reason
        return None
    draft.creative = creative.id
    priced = deal if deal is not None else imp
    floor_currency = str(priced["bidfloorcur"])
    m = floor_micros(float(priced["bidfloor"]))
    if m != 0 and not convertible(floor_currency, currency, config.fx):  # 0 is 0 in any currency
        draft.excluded_by = "currency"
        return None
    if m is None:  # a floor no bid can meet
        draft.excluded_by = "below_floor"
        return None
    floor = convert_up(m, floor_currency, currency, config.fx)
    assert floor is not None  # convertible, checked above
    draft.floor = floor
    return _Eligible(
        draft=draft,
        campaign=campaign,
        creative=creative,
        deal=deal,
        floor=floor,
        settings=settings(config, campaign, assigned),
    )


def _score(
    view: View,
    index: int,
    eligible: list[_Eligible],
    models: Mapping[str, RoleModel],
    *,
    now: float,
) -> None:
    """Fills each candidate's features and scores: per role, one model call per model (the
    bidder's, or an arm's) on the block of rows of the candidates (in config order) whose goal
    needs that role and whose settings pick that model; blocks in the order of their first
    candidate, as the engine scores them."""
    for role in ROLES:
        blocks: dict[str, list[_Eligible]] = {}
        for e in eligible:
            if role in roles_needed(e.campaign):
                blocks.setdefault(e.settings.models[role], []).append(e)
        for key, needing in blocks.items():
            model = models[key]
            rows = [
                feature_row(view, model.spec, imp=index, now=now, campaign=e.campaign)
                for e in needing
            ]
            for e, row, prediction in zip(needing, rows, predict_block(model, rows), strict=True):
                e.draft.features[role] = row
                e.draft.scores[role] = prediction


def _market_center(view: View, index: int, model: RoleModel | None, *, now: float) -> int | None:
    """Imp ``index``'s center of the bidder's shading curve from the win-rate ``model`` (micros
    of the bidder's currency); ``None`` without a model or when its prediction gives no finite
    center. The price that wins an imp is the imp's, whoever bids: no campaign attributes."""
    if model is None:
        return None
    row = features_py(view, model.spec, imp=index, timestamp=now)
    return model_center(predict_block(model, [row])[0])


def _decide_imp(
    view: View,
    index: int,
    config: Config,
    models: Mapping[str, RoleModel],
    targeting: dict[str, str | None],
    currency: str,
    *,
    now: float,
    assigned: Sequence[Assigned] = (),
    pacing: Pacing | None = None,
    budget: Budget | None = None,
    held: dict[str, int] | None = None,
    frequency: Frequency | None = None,
    user: str | None = None,
    won_by: Counter[str] | None = None,
) -> tuple[list[Candidate], Won | None]:
    """Every campaign's draft for imp ``index`` (config order) and the imp's winner, if any,
    under the request's arms ``assigned``, the campaigns' ``pacing`` (its multipliers: the
    throttles are applied with targeting), the ledger's ``budget`` and the ``frequency`` of
    the request's ``user``; the winner's cost is added to ``held``, the winner to
    ``won_by``."""
    budget = {} if budget is None else budget
    held = {} if held is None else held
    won_by = Counter() if won_by is None else won_by
    imp: View = view["imp"][index]
    imp_id = str(imp["id"])
    drafts: list[Candidate] = []
    eligible: list[_Eligible] = []
    for campaign in config.campaigns:
        draft = Candidate(imp=imp_id, campaign=campaign.id, excluded_by=targeting[campaign.id])
        drafts.append(draft)
        if draft.excluded_by is None:
            found = _eligible(view, imp, campaign, config, currency, draft, assigned)
            if found is not None:
                eligible.append(found)

    _score(view, index, eligible, models, now=now)
    market = _market_center(view, index, models.get(WIN_RATE), now=now)

    winner: Won | None = None
    winner_cost: int | None = None
    winner_account = ""
    best = -math.inf
    for e in eligible:
        draft = e.draft
        # The arm's multiplier, then the pacing multiplier, each rounded down, scale the value
        # before the caps, so max_bid still holds.
        _, pacing_ppm = pacing_of(pacing or {}, e.settings.account)
        armed = scaled(value_micros(e.campaign, draft.scores), e.settings.multiplier_ppm)
        draft.value = scaled(armed, pacing_ppm)
        b = bounds(draft.value, e.campaign, e.floor, config, currency)
        draft.lower, draft.upper = b.lower, b.upper
        if b.upper < b.lower:
            # The floor is what is missed only when upper is below it; otherwise min_bid (or
            # the 1-micro least bid) is.
            draft.excluded_by = "below_floor" if b.upper < e.floor else "below_min_bid"
            continue
        deal_at = None if e.deal is None else e.deal.get("at")
        auction_type = deal_at if deal_at is not None else view["at"]
        shading = e.settings.shading
        if auction_type == 1 and shading.enabled:
            # The win-rate model sets the center of the bidder's own table; an arm's curve is
            # its own (`docs/engine.md`, step 6).
            center = market if shading is config.shading else None
            c = curve(config, view, e.creative.media, currency, shading, center)
            draft.price = shaded_price(b, c)
            draft.surplus = expected_surplus(b.upper, draft.price, c)
        else:
            # Second price, and unshaded first price (where price = upper leaves every
            # candidate an expected surplus of 0): the highest upper wins.
            draft.price = b.upper
            draft.surplus = float(b.upper)
        cost = cost_nanos(draft.price, currency, config)
        if not covered(budget, held, e.settings.account, cost):
            draft.excluded_by = "budget"
            continue
        earlier = won_by[e.campaign.id]
        if frequency is not None and not has_slot(frequency, user, e.campaign, earlier):
            draft.excluded_by = "frequency_cap"
            continue
        if draft.surplus > best:
            best = draft.surplus
            winner_cost = cost
            winner_account = e.settings.account
            winner = Won(
                imp=imp_id,
                campaign=e.campaign,
                creative=e.creative,
                deal=draft.deal,
                price=draft.price,
            )
    if winner is not None and winner_account in budget and winner_cost is not None:
        held[winner_account] = held.get(winner_account, 0) + winner_cost
    if winner is not None:
        won_by[winner.campaign.id] += 1
    return drafts, winner
