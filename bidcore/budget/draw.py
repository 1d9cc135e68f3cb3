"""The pacing draw: whether a throttled campaign enters a request (``docs/engine.md``, Pacing).

A campaign with a throttle of ``t`` millionths enters a request when the request's draw for it
is below ``t``. The draw is a function of the request id and the campaign id only, so a request
sent twice is answered alike, the share of requests a campaign enters is ``t / 10^6`` on
average, and the reference (:mod:`bidcore.reference`) reproduces the engine's choice exactly::

    draw = splitmix64(fnv1a64(request.id) ^ fnv1a64(campaign.id)) % 1_000_000

FNV-1a 64 over the UTF-8 of each id (the hash of the decision log's unit keys,
:func:`bidcore.experiments.unit_key`), then SplitMix64's finalizer, modulo 2^64. The native
engine computes the same in ``rust/bidcore-core/src/engine/pacing.rs``.

>>> pacing_draw("r1", "c1")
864663
>>> pacing_draw("r1", "c1") == pacing_draw("r1", "c1") != pacing_draw("r2", "c1")
True
"""

from __future__ import annotations

from typing import Final

from bidcore.features.reference import fnv1a64

__all__ = ["DRAWS", "pacing_draw"]

DRAWS: Final = 1_000_000
"""How many values a draw takes, ``[0, DRAWS)``: a throttle of ``DRAWS`` ppm lets every request
in, one of 0 none."""

_MASK: Final = 0xFFFFFFFFFFFFFFFF


def _splitmix64(x: int) -> int:
    """SplitMix64's finalizer of the 64-bit ``x``: every bit of the input moves every bit of the
    output, so the combined hashes' low digits are uniform."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def pacing_draw(request_id: str, campaign_id: str) -> int:
    """The request's draw for the campaign, in ``[0, 10^6)``: the campaign enters the request
    when it is below the campaign's throttle in ppm. A request without an id draws as ``""``.

    >>> [pacing_draw(f"r{i}", "c1") < 500_000 for i in range(8)]
    [False, False, False, True, False, False, True, True]

    Two equal ids cancel out: what is left is SplitMix64's first output from seed 0,
    ``0xE220A8397B1DCDAF``, modulo 10^6.

    >>> pacing_draw("", "") == pacing_draw("c1", "c1") == 0xE220A8397B1DCDAF % 1_000_000
    True
    """
    return _splitmix64(_fnv(request_id) ^ _fnv(campaign_id)) % DRAWS


def _fnv(text: str) -> int:
    return fnv1a64(text.encode("utf-8", "surrogatepass"))
