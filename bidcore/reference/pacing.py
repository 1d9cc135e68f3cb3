"""Pacing in the decision (``docs/engine.md``, Pacing), read rule by rule.

Each campaign has a pacing state, ``(throttle_ppm, multiplier_ppm)``, which the engine takes at
run time (``Engine.set_pacing``) and :func:`bidcore.reference.decide` as its ``pacing``
argument: the share of requests the campaign enters and the multiplier of its value, both in
millionths, ``(10^6, 10^6)`` for a campaign not listed. After targeting and the experiment arms'
exclusions, each campaign left with a throttle below 10^6 enters the request only when the
request's draw (:func:`bidcore.budget.draw.pacing_draw`) is below its throttle; the others are
excluded with reason ``budget``. The multiplier scales the value after the arm's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, TypeAlias

from bidcore.budget.draw import pacing_draw
from bidcore.config import Config

from .arms import PPM

__all__ = ["MULTIPLIER_MAX", "UNPACED", "Pacing", "check_pacing", "enters", "pacing_of"]

Pacing: TypeAlias = Mapping[str, tuple[int, int]]
"""Campaign id to ``(throttle_ppm, multiplier_ppm)``."""

UNPACED: Final = (PPM, PPM)
"""A campaign the pacer has not set: it enters every request, its value as it is."""

MULTIPLIER_MAX: Final = 100 * PPM
"""The largest multiplier the pacer may set (x100), as for an experiment arm's."""


def check_pacing(config: Config, pacing: Pacing) -> None:
    """Raises ``ValueError``, as ``Engine.set_pacing`` does, for a campaign ``config`` lacks, a
    throttle outside ``[0, 10^6]`` or a multiplier outside ``(0, 10^8]``."""
    known = {c.id for c in config.campaigns}
    for campaign, (throttle_ppm, multiplier_ppm) in pacing.items():
        if campaign not in known:
            raise ValueError(f"no campaign {campaign!r}")
        if not 0 <= throttle_ppm <= PPM:
            raise ValueError(f"throttle must be in [0, {PPM}] ppm, got {throttle_ppm}")
        if not 0 < multiplier_ppm <= MULTIPLIER_MAX:
            raise ValueError(
                f"multiplier must be in (0, {MULTIPLIER_MAX}] ppm, got {multiplier_ppm}"
            )


def pacing_of(pacing: Pacing, campaign: str) -> tuple[int, int]:
    """``campaign``'s ``(throttle_ppm, multiplier_ppm)``: as ``pacing`` sets it, else
    :data:`UNPACED`."""
    return pacing.get(campaign, UNPACED)


def enters(pacing: Pacing, request_id: str, campaign: str) -> bool:
    """Whether ``campaign``, past targeting and the arms, enters the request ``request_id``: it
    is not throttled, or its draw is below its throttle. (A throttle of 10^6 lets every draw in;
    the engine does not draw for it at all.)"""
    throttle_ppm, _ = pacing_of(pacing, campaign)
    return throttle_ppm >= PPM or pacing_draw(request_id, campaign) < throttle_ppm
