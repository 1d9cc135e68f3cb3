"""The native core's request pipeline in pure Python: the oracle differential tests compare with.

Body in, normalized view (or the first rule broken) out, step for step as ``parse.rs`` does it:
body size, UTF-8, parse under the depth and string limits (only the fields the native parser
reads, :mod:`.view_schema`; a field given twice, or a number too large for a float where the
parser skips it, refused as the parser refuses them, :mod:`.duplicate_fields`), validation,
normalization.

>>> view = inspect_request_py(b'{"id":"r","imp":[{"id":"1","video":{"w":640}}],"cur":["eur"]}')
>>> view["imp"], view["cur"]
([{'id': '1', 'video': {'w': 640}, 'bidfloor': 0.0, 'bidfloorcur': 'USD'}], ['EUR'])
>>> inspect_request_py(b'{"id":"r","imp":[{"id":"1","bidfloor":"1.5"}]}')
Traceback (most recent call last):
...
bidcore.errors.InvalidRequestError: imp[0].bidfloor: Expected `float | null`, got `str` [type]
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Final

import msgspec

from bidcore.errors import InvalidRequestError

from .duplicate_fields import first_problem_msgspec_misses
from .limits import DEFAULT_LIMITS, Limits, check_body, path_at_offset, segments_at_offset
from .rejection import rejection, rejection_from_msgspec
from .request import BidRequest
from .validate import validate_request
from .view import normalized_view
from .view_schema import out_of_range_rule, path_segments, reader_path, view_type

__all__ = ["inspect_request_py"]

DEPTH_CAP: Final = 512
"""The deepest nesting the core's reader allows whatever the limits say (``reader.rs``: its
skipping is recursive, and this bounds its stack)."""


@functools.cache
def _view_decoder() -> msgspec.json.Decoder[Any]:
    # Built on first use: the oracle is for tests, `import bidcore` should not pay for it.
    return msgspec.json.Decoder(view_type(BidRequest))


def inspect_request_py(body: bytes, *, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Parses, validates and normalizes ``body`` as the native core does; returns the view.

    Raises :class:`~bidcore.errors.InvalidRequestError` with the rule and path the core reports.
    Known differences, all on bodies that are not valid OpenRTB or break a limit:

    - malformed JSON (rule ``json``) is reported at ``$`` (or, for a number too large for a
      float, at msgspec's path), where the core names the value its parser was in when it gave
      up;
    - the depth and string limits are checked over the whole body before it is parsed, where
      the core checks them as it parses: on a body that also has a problem before the limit is
      broken (a wrong type, a syntax error), the core reports that problem and this the limit;
    - a field given twice whose first value is ``null`` is refused here; the core accepts it
      (and refuses the same field given twice the other way round): a bug reported in the core;
    - malformed JSON where the core reads a typed value (``"w":tru``) is rule ``json`` here; the
      core names a type from the value's first byte and says ``type``: also reported.
    """
    if len(body) > limits.max_body_bytes:
        check_body(body, limits)  # raises body_size
    _check_utf8(body)
    check_body(
        body,
        dataclasses.replace(limits, max_depth=min(limits.max_depth, DEPTH_CAP)),
        name_path=_reader_path_at_offset,
    )
    try:
        kept = _view_decoder().decode(body)
    except msgspec.ValidationError as err:
        error = _as_the_core_words_it(rejection_from_msgspec(err))
        raise first_problem_msgspec_misses(body, failed_at=error.path) or error from err
    except msgspec.DecodeError as err:
        raise rejection_from_msgspec(err) from err
    problem = first_problem_msgspec_misses(body, failed_at=None)
    if problem is not None:
        raise problem
    request = msgspec.convert(msgspec.to_builtins(kept), BidRequest)
    validate_request(request, max_imps=limits.max_imps)
    return normalized_view(request)


def _check_utf8(body: bytes) -> None:
    # The core checks the whole body once, before parsing, and names where it breaks.
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as err:
        where = path_at_offset(body, err.start)
        raise rejection("json", where, f"invalid UTF-8 at byte {err.start}") from None


def _reader_path_at_offset(body: bytes, offset: int) -> str:
    """Where the core's reader says a limit broke: as far into the body as it reads."""
    return reader_path(segments_at_offset(body, offset))


def _as_the_core_words_it(error: InvalidRequestError) -> InvalidRequestError:
    """A number too large for a float, as the core reports it (msgspec's other validation errors
    are ``type`` errors at the core's path already).

    msgspec calls every such number a JSON error; the core only where it reads a float or skips
    the value (elsewhere the number has the wrong type), and names a skipped value, not a path
    inside it.
    """
    if error.rule != "json":
        return error
    detail = str(error).removeprefix(f"{error.path}: ").removesuffix(" [json]")
    rule = out_of_range_rule(error.path)
    path = error.path if rule == "type" else reader_path(path_segments(error.path))
    return rejection(rule, path, detail)
