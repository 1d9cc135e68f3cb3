"""One JSON document read as the native reader reads it: the bid request, or the Native request
document an imp carries (``reader.rs``, ``parse.rs``, ``native.rs``).

Under the depth and string limits, only the fields the reader reads (:mod:`.view_schema`), with
what msgspec does not see added back: a field given twice, a number too large for a float where
the reader skips it (:mod:`.duplicate_fields`), a malformed value where msgspec only saw the wrong
type, and where msgspec only saw malformed JSON, what the reader meets before it: a field given
twice, or a value of the wrong type (``"ver":01`` is the number 0 where a string belongs, then
garbage: :mod:`.wellformed`).

>>> from bidcore.openrtb.native import NativeRequest
>>> read_document(b'{"assets":[{"id":1,"img":{"w":-1}}]}', NativeRequest, path="imp[0].native")
Traceback (most recent call last):
...
bidcore.errors.InvalidRequestError: imp[0].native.assets[0].img.w: Expected `int` >= 0 [type]
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any, Final

import msgspec

from bidcore.errors import InvalidRequestError

from .base import INT32_MAX, INT32_MIN
from .duplicate_fields import first_problem_msgspec_misses
from .limits import DEFAULT_LIMITS, Limits, check_body, render_path, segments_at_offset
from .rejection import ROOT_PATH, rejection, rejection_from_msgspec
from .view_schema import (
    child_type,
    path_segments,
    reader_path,
    reads_integer,
    root_type,
    view_type,
)
from .wellformed import children, is_malformed_value, value_end, value_start

__all__ = ["DEPTH_CAP", "read_document"]

DEPTH_CAP: Final = 512
"""The deepest nesting the core's reader allows whatever the limits say (``reader.rs``: its
skipping is recursive, and this bounds its stack)."""


@functools.cache
def _decoder(root: type[msgspec.Struct]) -> msgspec.json.Decoder[Any]:
    # Built on first use: the oracle is for tests, `import bidcore` should not pay for it.
    return msgspec.json.Decoder(view_type(root))


def read_document(
    body: bytes,
    root: type[msgspec.Struct],
    limits: Limits = DEFAULT_LIMITS,
    *,
    path: str = "",
) -> Any:
    """The view (:func:`~.view_schema.view_type` of ``root``) of the JSON document ``body``.

    Raises :class:`~bidcore.errors.InvalidRequestError` with the rule the reader reports, at the
    path it reports under ``path`` (where the document sits: ``imp[0].native.request`` for a
    Native request). ``body`` must be UTF-8 within the body size limit: the caller checks that.
    """
    try:
        return _read(body, root, limits)
    except InvalidRequestError as err:
        if not path:
            raise
        raise _within(err, path) from err


def _read(body: bytes, root: type[msgspec.Struct], limits: Limits) -> Any:
    check_body(
        body,
        dataclasses.replace(limits, max_depth=min(limits.max_depth, DEPTH_CAP)),
        name_path=functools.partial(_reader_path_at_offset, root=root),
    )
    try:
        kept = _decoder(root).decode(body)
    except msgspec.ValidationError as err:
        error = _as_the_core_words_it(rejection_from_msgspec(err), root)
        if error.rule == "type" and is_malformed_value(
            body, path_segments(error.path), integer=reads_integer(error.path, root=root)
        ):
            # The reader checks that a value is JSON before calling it the wrong type.
            error = rejection("json", error.path, "malformed JSON where a value is read")
        found = first_problem_msgspec_misses(body, failed_at=error.path, root=root)
        if found is None and not _is_json(body):
            found = _first_problem_before_malformed_json(body, root)
        raise found or error from err
    except msgspec.DecodeError as err:
        raise _first_problem_before_malformed_json(body, root) or rejection_from_msgspec(
            err
        ) from err
    problem = first_problem_msgspec_misses(body, failed_at=None, root=root)
    if problem is not None:
        raise problem
    return kept


def _reader_path_at_offset(body: bytes, offset: int, *, root: type[msgspec.Struct]) -> str:
    """Where the core's reader says a limit broke: as far into the document as it reads."""
    return reader_path(segments_at_offset(body, offset), root=root)


def _detail(error: InvalidRequestError) -> str:
    return str(error).removeprefix(f"{error.path}: ").removesuffix(f" [{error.rule}]")


def _as_the_core_words_it(
    error: InvalidRequestError, root: type[msgspec.Struct]
) -> InvalidRequestError:
    """A number too large for a float, as the core reports it (msgspec's other validation errors
    are ``type`` errors at the core's path already).

    msgspec calls every such number a JSON error; the core only where it does not read an integer
    (where it does, the number has the wrong type), and names a skipped value, not a path inside
    it.
    """
    if error.rule != "json":
        return error
    if reads_integer(error.path, root=root):
        return rejection("type", error.path, _detail(error))
    return rejection("json", reader_path(path_segments(error.path), root=root), _detail(error))


def _within(error: InvalidRequestError, path: str) -> InvalidRequestError:
    """``error``, found in a document that sits at ``path``, with its path from the request's
    root (``native.rs``: the document's own path appended to where it sits)."""
    inner = "" if error.path == ROOT_PATH else error.path
    if not inner:
        full = path
    elif inner.startswith("["):
        full = path + inner
    else:
        full = f"{path}.{inner}"
    return rejection(error.rule, full, _detail(error))


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _first_problem_before_malformed_json(
    body: bytes, root: type[msgspec.Struct]
) -> InvalidRequestError | None:
    """What the reader refuses in a ``root`` document before it gets to where the document stops
    being JSON: a field given twice, or a value of the wrong type (rule ``json`` if that value is
    not JSON itself). ``None`` if it meets neither.

    msgspec only says "malformed" there (and :mod:`.duplicate_fields` walks only documents that
    are JSON): it reads a whole token before judging its type, so in ``"ver":01`` it sees a
    malformed number, where the reader sees the number ``0`` where a string belongs and refuses
    it before it looks further.
    """
    at = value_start(body)
    if at is None:
        return None
    return _first_problem_in(body, at, root_type(root), [])


def _first_problem_in(
    body: bytes, at: int, node: msgspec.inspect.Type | None, path: list[str | int]
) -> InvalidRequestError | None:
    """The first problem in the value starting at ``at``, read as ``node``, in document order."""
    if node is None:
        return None
    reading = _reading(node, body, at)
    if reading == "wrong":
        if value_end(body, at) is None:
            return rejection("json", render_path(path), "malformed JSON where a value is read")
        return rejection("type", render_path(path), "a value of the wrong type")
    if reading != "read into":
        return None
    members = node.types if isinstance(node, msgspec.inspect.UnionType) else (node,)
    struct = next((m for m in members if isinstance(m, msgspec.inspect.StructType)), None)
    read = {field.encode_name for field in struct.fields} if struct is not None else None
    seen: set[str | int] = set()
    for key, start in children(body, at):
        if read is not None and key not in read:
            continue
        if read is not None and key in seen:
            return rejection("type", render_path([*path, key]), f"duplicate field `{key}`")
        seen.add(key)
        found = _first_problem_in(body, start, child_type(node, key), [*path, key])
        if found is not None:
            return found
    return None


_SCALARS: Final = {
    ord('"'): (msgspec.inspect.StrType,),
    ord("t"): (msgspec.inspect.BoolType,),
    ord("f"): (msgspec.inspect.BoolType,),
    ord("n"): (msgspec.inspect.NoneType,),
}
_KEPT_WHOLE: Final = (msgspec.inspect.AnyType, msgspec.inspect.DictType)
_INT32_DIGITS: Final = len(str(INT32_MIN))


def _reading(node: msgspec.inspect.Type, body: bytes, at: int) -> str:
    """What the reader does with the value starting at ``at``, read as ``node``: ``read into``
    (an object or array it reads), ``wrong`` (a type error, if the value is JSON), or ``fine``
    (read or skipped without a type error, or not a value at all)."""
    members = node.types if isinstance(node, msgspec.inspect.UnionType) else (node,)
    if any(isinstance(m, _KEPT_WHOLE) for m in members):
        return "fine"
    first = body[at]
    if first == ord("{"):
        found = any(isinstance(m, msgspec.inspect.StructType) for m in members)
        return "read into" if found else "wrong"
    if first == ord("["):
        arrays = [m for m in members if isinstance(m, msgspec.inspect.ListType)]
        if not arrays:
            return "wrong"
        # A list of anything is how a lenient `ext` holds an array: skipped.
        skipped = isinstance(arrays[0].item_type, msgspec.inspect.AnyType)
        return "fine" if skipped else "read into"
    if first in _SCALARS:
        return "fine" if any(isinstance(m, _SCALARS[first]) for m in members) else "wrong"
    if first == ord("-") or ord("0") <= first <= ord("9"):
        return _reading_number(members, body, at)
    return "fine"  # not a value: malformed JSON, as msgspec says


def _reading_number(members: tuple[msgspec.inspect.Type, ...], body: bytes, at: int) -> str:
    if any(isinstance(m, msgspec.inspect.FloatType) for m in members):
        return "fine"
    end = value_end(body, at)
    if end is None:
        return "fine"  # a malformed number: msgspec is right
    for member in members:
        if isinstance(member, msgspec.inspect.IntType | msgspec.inspect.EnumType):
            literal = body[at:end]
            if not literal.lstrip(b"-").isdigit() or len(literal) > _INT32_DIGITS:
                return "wrong"  # a fraction, an exponent, or far out of range
            low, high = _bounds(member)
            return "fine" if low <= int(literal) <= high else "wrong"
    return "wrong"


def _bounds(member: msgspec.inspect.IntType | msgspec.inspect.EnumType) -> tuple[int, int]:
    if isinstance(member, msgspec.inspect.EnumType):
        return INT32_MIN, INT32_MAX
    low = member.ge if member.ge is not None else INT32_MIN
    high = member.le if member.le is not None else INT32_MAX
    return low, high
