"""Where OpenRTB 2.5 (and Prebid) carried signals that 2.6 moved to first-class fields.

Most exchanges still send them there: ``regs.ext.gdpr``, ``regs.ext.us_privacy``,
``user.ext.consent``, ``user.ext.eids`` and ``source.ext.schain``. The model keeps every ``ext``
as plain JSON; these types describe what a bidder reads from the three that matter.

>>> import msgspec
>>> msgspec.convert({"gdpr": 1, "other": "ignored"}, RegsExt)
RegsExt(gdpr=1, us_privacy=None)
"""

from __future__ import annotations

from .audience import EID
from .base import Int32, OpenRtbObject
from .request import SupplyChain

__all__ = ["RegsExt", "SourceExt", "UserExt"]


class RegsExt(OpenRtbObject):
    """``regs.ext`` as 2.5 used it."""

    gdpr: Int32 | None = None
    us_privacy: str | None = None


class UserExt(OpenRtbObject):
    """``user.ext`` as 2.5 (and Prebid) used it."""

    consent: str | None = None
    eids: list[EID] | None = None


class SourceExt(OpenRtbObject):
    """``source.ext`` as 2.5 used it."""

    schain: SupplyChain | None = None
