"""The rules a bid request must meet before a bidder looks at it (``validate.rs``, in Python).

Checks run in the native core's order, so both report the same first broken rule at the same
path.

>>> from bidcore.errors import InvalidRequestError
>>> from bidcore.openrtb import decode_request
>>> try:
...     validate_request(decode_request(b'{"id":"r1","imp":[{"id":"1"}]}'))
... except InvalidRequestError as err:
...     print(err.rule, err.path)
no_media imp[0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from .imp import Deal, Imp
from .rejection import rejection
from .request import BidRequest

__all__ = ["DEFAULT_MAX_IMPS", "validate_request"]

DEFAULT_MAX_IMPS: Final = 64
"""The native core's default ``Limits.max_imps``."""


def validate_request(request: BidRequest, *, max_imps: int = DEFAULT_MAX_IMPS) -> None:
    """Checks the OpenRTB rules a bidder relies on, raising the first one broken.

    A request ``id``; a non-empty ``imp`` array of at most ``max_imps``, with unique non-empty
    ids; a media object in every imp; floors finite and not negative; currency codes of three
    ASCII letters (either case: normalization upper-cases them).
    """
    if _is_blank(request.id):
        raise rejection("required", "id", "the request id is required")
    imps = request.imp
    if imps is None:
        raise rejection("required", "imp", "at least one imp is required")
    if not imps:
        raise rejection("required", "imp", "imp is empty; at least one is required")
    if len(imps) > max_imps:
        raise rejection("imp_count", "imp", f"{len(imps)} imps, more than the limit of {max_imps}")
    for i, imp in enumerate(imps):
        _validate_imp(i, imp)
    _check_unique_imp_ids(imps)
    for i, code in enumerate(request.cur or ()):
        _check_currency(code, f"cur[{i}]")


def _validate_imp(i: int, imp: Imp) -> None:
    if _is_blank(imp.id):
        raise rejection("required", f"imp[{i}].id", "the imp id is required")
    if imp.banner is None and imp.video is None and imp.audio is None and imp.native is None:
        raise rejection(
            "no_media", f"imp[{i}]", "the imp offers none of banner, video, audio, native"
        )
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
