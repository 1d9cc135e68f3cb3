"""The rules a bid request must meet before a bidder looks at it (``validate.rs``, in Python).

Checks run in the native core's order, so both report the same first broken rule at the same
path.

>>> from bidcore.errors import InvalidRequestError
>>> from bidcore.openrtb import decode_request
>>> def check(body: bytes) -> None:
...     try:
...         validate_request(decode_request(body))
...     except InvalidRequestError as err:
...         print(err.rule, err.path)
>>> check(b'{"id":"r1","imp":[{"id":"1"}]}')
no_media imp[0]
>>> check(b'{"id":"r1","imp":[{"id":"1","video":{"mimes":[]}}]}')
required imp[0].video.mimes
>>> check(b'{"id":"r1","imp":[{"id":"1","banner":{}}],"site":{},"app":{}}')
channel app
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import msgspec

from .imp import Deal, Imp
from .limits import DEFAULT_LIMITS, DEFAULT_MAX_IMPS, Limits
from .native_document import check_native_request
from .rejection import rejection
from .request import BidRequest

__all__ = ["DEFAULT_MAX_IMPS", "validate_request"]


def validate_request(
    request: BidRequest,
    *,
    max_imps: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    native_requests: Sequence[bytes | None] | None = None,
) -> None:
    """Checks the OpenRTB rules a bidder relies on, raising the first one broken.

    In this order: a request ``id``; a non-empty ``imp`` array of at most ``max_imps`` (by default
    ``limits.max_imps``); at most one of ``site``, ``app``, ``dooh``; then imp by imp: an id, a
    media object, ``mimes`` for video and audio, a Native request that is a string or an object
    holding a valid Native 1.2 document (read under ``limits``, :mod:`.native_document`), floors
    finite and not negative, currency codes of three ASCII letters (either case: normalization
    upper-cases them), deals with an id; then unique imp ids; then the ``cur`` codes.

    ``native_requests`` is the JSON text each imp's ``native.request`` arrived as (``None`` for an
    imp without one), for a request decoded from a body: by default each is encoded from the
    model, where an object sent with a key given twice has kept only the last.
    """
    if max_imps is not None:
        limits = dataclasses.replace(limits, max_imps=max_imps)
    if _is_blank(request.id):
        raise rejection("required", "id", "the request id is required")
    imps = request.imp
    if imps is None:
        raise rejection("required", "imp", "at least one imp is required")
    if not imps:
        raise rejection("required", "imp", "imp is empty; at least one is required")
    if len(imps) > limits.max_imps:
        raise rejection(
            "imp_count", "imp", f"{len(imps)} imps, more than the limit of {limits.max_imps}"
        )
    _check_one_channel(request)
    for i, imp in enumerate(imps):
        if native_requests is not None:
            native_request = native_requests[i]
        else:
            native_request = _encoded(imp.native.request if imp.native is not None else None)
        _validate_imp(i, imp, native_request, limits)
    _check_unique_imp_ids(imps)
    for i, code in enumerate(request.cur or ()):
        _check_currency(code, f"cur[{i}]")


def _check_one_channel(request: BidRequest) -> None:
    """A request comes from one channel: a site, an app, or a digital out-of-home screen."""
    channels = (("site", request.site), ("app", request.app), ("dooh", request.dooh))
    present = [name for name, channel in channels if channel is not None]
    if len(present) > 1:
        first, second = present[:2]
        raise rejection(
            "channel",
            second,
            f"a request carries at most one of site, app, dooh; found {first} and {second}",
        )


def _encoded(value: Any) -> bytes | None:
    return None if value is None else msgspec.json.encode(value)


def _validate_imp(i: int, imp: Imp, native_request: bytes | None, limits: Limits) -> None:
    if _is_blank(imp.id):
        raise rejection("required", f"imp[{i}].id", "the imp id is required")
    if imp.banner is None and imp.video is None and imp.audio is None and imp.native is None:
        raise rejection(
            "no_media", f"imp[{i}]", "the imp offers none of banner, video, audio, native"
        )
    if imp.video is not None and not imp.video.mimes:
        raise rejection("required", f"imp[{i}].video.mimes", "video needs at least one MIME type")
    if imp.audio is not None and not imp.audio.mimes:
        raise rejection("required", f"imp[{i}].audio.mimes", "audio needs at least one MIME type")
    if imp.native is not None:
        path = f"imp[{i}].native.request"
        if native_request is None:
            raise rejection("required", path, "native needs its request")
        check_native_request(native_request, limits, path=path)
    _check_floor(imp.bidfloor, f"imp[{i}].bidfloor")
    if imp.bidfloorcur is not None:
        _check_currency(imp.bidfloorcur, f"imp[{i}].bidfloorcur")
    deals = imp.pmp.deals if imp.pmp is not None else None
    for d, deal in enumerate(deals or ()):
        _validate_deal(deal, f"imp[{i}].pmp.deals[{d}]")


def _validate_deal(deal: Deal, path: str) -> None:
    if _is_blank(deal.id):
        raise rejection("required", f"{path}.id", "the deal id is required")
    _check_floor(deal.bidfloor, f"{path}.bidfloor")
    if deal.bidfloorcur is not None:
        _check_currency(deal.bidfloorcur, f"{path}.bidfloorcur")


def _check_unique_imp_ids(imps: Sequence[Imp]) -> None:
    # Reports the second occurrence, naming the first, as the native core does.
    first_by_id: dict[str | None, int] = {}
    for i, imp in enumerate(imps):
        first = first_by_id.setdefault(imp.id, i)
        if first != i:
            raise rejection(
                "duplicate_imp",
                f"imp[{i}].id",
                f"imp id {imp.id or ''!r} is already used by imp[{first}]",
            )


def _check_floor(floor: float | None, path: str) -> None:
    # JSON has no NaN or infinity, but a request built in Python can.
    if floor is not None and not (math.isfinite(floor) and floor >= 0.0):
        raise rejection("floor", path, f"a floor must be finite and >= 0, got {floor}")


def _check_currency(code: str, path: str) -> None:
    # ISO 4217 codes are three letters; lower case is accepted (normalization upper-cases).
    # ASCII only: str.isalpha would also accept "€ab".
    if not (len(code) == 3 and code.isascii() and code.isalpha()):
        raise rejection("currency", path, f"a currency is a three-letter code, got {code!r}")


def _is_blank(value: str | None) -> bool:
    return not value
