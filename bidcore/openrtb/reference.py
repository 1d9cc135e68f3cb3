"""The native core's request pipeline in pure Python: the oracle differential tests compare with.

Body in, normalized view (or the first rule broken) out, step for step as ``parse.rs`` does it:
body size, UTF-8, parse under the depth and string limits (only the fields the native parser
reads, :mod:`.view_schema`; a field given twice, or a number too large for a float where the
parser skips it, refused as the parser refuses them, :mod:`.duplicate_fields`; :mod:`.document`),
validation (each imp's Native request document read the same way, :mod:`.native_document`),
normalization.

>>> view = inspect_request_py(b'{"id":"r","imp":[{"id":"1","banner":{"w":640}}],"cur":["eur"]}')
>>> view["imp"], view["cur"]
([{'id': '1', 'banner': {'w': 640}, 'bidfloor': 0.0, 'bidfloorcur': 'USD'}], ['EUR'])
>>> inspect_request_py(b'{"id":"r","imp":[{"id":"1","bidfloor":"1.5"}]}')
Traceback (most recent call last):
...
bidcore.errors.InvalidRequestError: imp[0].bidfloor: Expected `float | null`, got `str` [type]
"""

from __future__ import annotations

from typing import Any

import msgspec

from .document import read_document
from .limits import DEFAULT_LIMITS, Limits, check_body, path_at_offset
from .rejection import rejection
from .request import BidRequest
from .validate import validate_request
from .view import normalized_view

__all__ = ["inspect_request_py"]


def inspect_request_py(body: bytes, *, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Parses, validates and normalizes ``body`` as the native core does; returns the view.

    Raises :class:`~bidcore.errors.InvalidRequestError` with the rule and path the core reports.
    Known differences, all on bodies that are not valid OpenRTB or break a limit:

    - malformed JSON (rule ``json``) is reported at ``$`` (or, for a number too large for a
      float, at msgspec's path; for a malformed value where a value of another type is read, at
      that value), where the core names the value its parser was in when it gave up;
    - the depth and string limits are checked over the whole body (and over each Native request
      document) before it is parsed, where the core checks them as it parses: on a body that
      also has a problem before the limit is broken (a wrong type, a syntax error), the core
      reports that problem and this the limit.
    """
    if len(body) > limits.max_body_bytes:
        check_body(body, limits)  # raises body_size
    _check_utf8(body)
    kept = read_document(body, BidRequest, limits)
    natives = _native_requests(body)
    request = _model(kept)
    validate_request(request, limits=limits, native_requests=natives)
    return normalized_view(request)


def _check_utf8(body: bytes) -> None:
    # The core checks the whole body once, before parsing, and names where it breaks.
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as err:
        where = path_at_offset(body, err.start)
        raise rejection("json", where, f"invalid UTF-8 at byte {err.start}") from None


class _RawNative(msgspec.Struct):
    request: msgspec.Raw = msgspec.Raw(b"null")


class _RawImp(msgspec.Struct):
    native: _RawNative | None = None


class _RawImps(msgspec.Struct):
    imp: list[_RawImp] | None = None


def _native_requests(body: bytes) -> list[bytes | None]:
    """The JSON text of each imp's ``native.request`` as it arrived (``None`` where absent): the
    core reads the document from it, repeated keys and all. (The body has been read already, so
    it decodes.)"""
    imps = msgspec.json.decode(body, type=_RawImps).imp or []
    texts: list[bytes | None] = []
    for imp in imps:
        text = bytes(imp.native.request) if imp.native is not None else b"null"
        texts.append(None if text == b"null" else text)
    return texts


def _model(kept: Any) -> BidRequest:
    """The request as the model holds it. A Native request that is neither a string nor an
    object (validation refuses it, from its text) is left out: the model has no place for it."""
    data: dict[str, Any] = msgspec.to_builtins(kept)
    for imp in data.get("imp", ()):
        native = imp.get("native")
        if native is not None and not isinstance(native.get("request"), str | dict):
            native.pop("request", None)
    return msgspec.convert(data, BidRequest)
