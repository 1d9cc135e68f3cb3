"""Experiment arms in the decision (``docs/experiments.md``, section 12), read rule by rule.

The request is assigned in every layer (:func:`bidcore.experiments.assign_request` on the
normalized view) before any gate. Each arm it lands in changes the campaigns it applies to (its
experiment lists no ``campaigns``, or lists the campaign): their models, their shading table,
their value's multiplier; and an arm with ``campaigns`` makes the others of its experiment's
campaigns ineligible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final, NamedTuple

from bidcore.config import Campaign, Config, Shading
from bidcore.engine import arm_model_key
from bidcore.experiments import assign_request
from bidcore.experiments.assignment import Arm, Experiment

from .view import View

__all__ = [
    "PPM",
    "ArmShare",
    "Assigned",
    "Settings",
    "account_ids",
    "account_of",
    "arm_model_key",
    "arm_shading",
    "arm_shares",
    "assigned_arms",
    "budget_account",
    "excluded",
    "label",
    "settings",
]

PPM: Final = 1_000_000
"""A multiplier of 1 in millionths: the bidder's own, no arm's."""


class Assigned(NamedTuple):
    """The request's arm in one layer."""

    experiment: Experiment
    arm: Arm

    def applies_to(self, campaign: str) -> bool:
        """Whether the arm changes ``campaign``: its experiment lists no campaigns, or lists
        it."""
        return not self.experiment.campaigns or campaign in self.experiment.campaigns


@dataclasses.dataclass(frozen=True)
class Settings:
    """What decides a candidate's value and price beyond its campaign: per role the key of its
    model in the ``models`` mapping (the role itself for the bidder's, :func:`arm_model_key` for
    an arm's), the shading table, the value's multiplier in millionths, and the ledger account
    its bids hold against (:func:`budget_account`)."""

    models: dict[str, str]
    shading: Shading
    multiplier_ppm: int
    account: str


def assigned_arms(view: View, config: Config) -> list[Assigned]:
    """The request's arm in each layer that places it in an experiment arm, in layer order (a
    unit beyond the coverage is in no arm and gets nothing)."""
    experiments = {e.key: e for layer in config.experiments.layers for e in layer.experiments}
    found: list[Assigned] = []
    for assignment in assign_request(view, config.experiments.layers).values():
        if not assignment.in_experiment or assignment.arm is None:
            continue
        experiment = experiments[assignment.experiment]
        arm = next(a for a in experiment.arms if a.name == assignment.arm)
        found.append(Assigned(experiment=experiment, arm=arm))
    return found


def label(assigned: Sequence[Assigned]) -> str:
    """The ``{arm}`` placeholder: ``experiment:arm`` per layer, comma-separated, in layer
    order."""
    return ",".join(f"{a.experiment.key}:{a.arm.name}" for a in assigned)


def excluded(assigned: Sequence[Assigned], campaign: str) -> bool:
    """Whether an arm leaves ``campaign`` out: the arm applies to it and lists ``campaigns``
    without it."""
    return any(
        a.arm.campaigns is not None and a.applies_to(campaign) and campaign not in a.arm.campaigns
        for a in assigned
    )


def arm_shading(bidder: Shading, arm: Arm) -> Shading | None:
    """The arm's shading table, or ``None`` when it sets none: ``enabled`` over the bidder's;
    with a ``center`` or a ``scale`` its own curve (the missing one the bidder's) and no
    segments, else the bidder's curve and segments."""
    own = arm.shading
    if own is None:
        return None
    enabled = own.enabled if own.enabled is not None else bidder.enabled
    if own.center is None and own.scale is None:
        return Shading(
            enabled=enabled,
            center=bidder.center,
            scale=bidder.scale,
            segments=list(bidder.segments),
        )
    return Shading(
        enabled=enabled,
        center=own.center if own.center is not None else bidder.center,
        scale=own.scale if own.scale is not None else bidder.scale,
        segments=[],
    )


def settings(config: Config, campaign: Campaign, assigned: Sequence[Assigned]) -> Settings:
    """``campaign``'s settings under the request's arms: the bidder's (its models, its
    ``[shading]``, a multiplier of 1), then what each arm that applies to the campaign sets (a
    parameter belongs to one layer, so no two arms set the same one)."""
    models = {role: role for role in ("ctr", "cvr")}
    shading = config.shading
    ppm = PPM
    account = campaign.id
    for a in assigned:
        if not a.applies_to(campaign.id):
            continue
        for role in a.arm.models:
            models[role] = arm_model_key(role, a.experiment.key, a.arm.name)
        table = arm_shading(config.shading, a.arm)
        if table is not None:
            shading = table
        if a.arm.multiplier_ppm is not None:
            ppm = a.arm.multiplier_ppm
    account = account_of(campaign.id, assigned)
    return Settings(models=models, shading=shading, multiplier_ppm=ppm, account=account)


def account_of(campaign: str, assigned: Sequence[Assigned]) -> str:
    """The account ``campaign`` is paced on and its bids hold against under the request's arms
    ``assigned``: its share under the arm with a ``budget_share`` that applies to it (one layer
    at most sets one), else its own."""
    for a in assigned:
        if a.arm.budget_share is not None and a.applies_to(campaign):
            return budget_account(campaign, a.experiment.key, a.arm.name)
    return campaign


class ArmShare(NamedTuple):
    """A campaign's share of its budget under an arm with a ``budget_share``."""

    campaign: Campaign
    account: str
    """Its ledger and pacing account, ``campaign@experiment:arm`` (:func:`budget_account`)."""
    share: float


def arm_shares(config: Config) -> list[ArmShare]:
    """Each campaign's share under each arm with a ``budget_share`` that applies to it, arm by
    arm in config order (then the campaigns in config order)."""
    return [
        ArmShare(c, budget_account(c.id, experiment.key, arm.name), arm.budget_share)
        for layer in config.experiments.layers
        for experiment in layer.experiments
        for arm in experiment.arms
        if arm.budget_share is not None
        for c in config.campaigns
        if not experiment.campaigns or c.id in experiment.campaigns
    ]


def account_ids(config: Config) -> list[str]:
    """Every account of ``config``, as ``Engine.pacing`` lists them: each campaign's, in config
    order, then the arms' shares (:func:`arm_shares`)."""
    return [c.id for c in config.campaigns] + [s.account for s in arm_shares(config)]


def budget_account(campaign: str, experiment: str, arm: str) -> str:
    """The ledger account of ``campaign``'s share of its budget under an arm with a
    ``budget_share``: ``campaign@experiment:arm``; a request in no such arm holds against the
    campaign's own account, ``campaign``."""
    return f"{campaign}@{experiment}:{arm}"
