"""Which of a campaign's creatives fits an imp (``docs/engine.md``, step 2), and why the others
do not, checked in the spec's order so the reason is the first rule a creative breaks."""

from __future__ import annotations

from bidcore.config import Bidder, Campaign, Creative

from .view import View, lookup, strings

__all__ = ["choose_creative", "misfit", "notice_template"]


def notice_template(creative: Creative, bidder: Bidder, name: str) -> str | None:
    """The creative's ``nurl``/``burl``/``lurl`` template, else the bidder's."""
    own: str | None = getattr(creative, name)
    inherited: str | None = getattr(bidder, name)
    return own if own is not None else inherited


def _secure(creative: Creative, bidder: Bidder) -> bool:
    """Whether what the bid would carry loads nothing over plain http: the markup and the notice
    URLs actually sent, which may be the bidder's (``Creative.secure`` sees only its own)."""
    texts = [creative.markup] + [
        notice_template(creative, bidder, name) for name in ("nurl", "burl", "lurl")
    ]
    return not any(t is not None and "http://" in t for t in texts)


def _size_fits(creative: Creative, banner: View) -> bool:
    size = (creative.w, creative.h)
    if (banner.get("w"), banner.get("h")) == size:
        return True
    return any((f.get("w"), f.get("h")) == size for f in banner.get("format") or [])


def _duration_fits(duration: int | None, media: View) -> bool:
    """Within ``[minduration, maxduration]``; a bound absent or 0 does not restrict."""
    if duration is None:  # the config requires one for video and audio
        return False
    low = media.get("minduration") or 0
    high = media.get("maxduration") or 0
    return (not low or duration >= low) and (not high or duration <= high)


def misfit(creative: Creative, imp: View, view: View, bidder: Bidder) -> str | None:
    """The first rule ``creative`` breaks on this imp, or ``None`` when it fits."""
    media = imp.get(creative.media)
    if not isinstance(media, dict):
        return "media"
    if creative.media == "banner" and not _size_fits(creative, media):
        return "size"
    if creative.media in ("video", "audio"):
        if not _duration_fits(creative.duration, media):
            return "duration"
        if creative.mime not in strings(media, "mimes"):
            return "mime"
    if imp.get("secure") == 1 and not _secure(creative, bidder):
        return "secure"
    if any(c in strings(view, "bcat") for c in creative.cat):
        return "blocked_cat"
    if any(d in strings(view, "badv") for d in creative.adomain):
        return "blocked_adomain"
    if creative.bundle is not None and creative.bundle in strings(view, "bapp"):
        return "blocked_app"
    if any(a in (lookup(media, "battr") or []) for a in creative.attr):
        return "blocked_attr"
    return None


def choose_creative(
    campaign: Campaign, imp: View, view: View, bidder: Bidder
) -> tuple[Creative | None, str | None]:
    """``(creative, None)`` for the first creative that fits, else ``(None, reason)`` with the
    reason of the last creative tried."""
    reason = "no_creative"
    for creative in campaign.creatives:
        broken = misfit(creative, imp, view, bidder)
        if broken is None:
            return creative, None
        reason = broken
    return None, reason
