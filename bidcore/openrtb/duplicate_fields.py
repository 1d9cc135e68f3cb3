"""What msgspec does not see that the native parser refuses: repeated fields and huge numbers.

- A field the parser reads given twice in one object is refused (rule ``type``, at the path of
  the field, before its second value is looked at), whatever its first value was (``null``
  included); msgspec keeps the last value. Keys the parser does not read, and keys inside values
  kept whole (``ext``, ``native.request``), may repeat on both sides (the Native request document
  is then read on its own, where its own fields may not repeat).
- A number too large for a float (``1e400``, a 400-digit integer) is refused (rule ``json``)
  wherever the parser skips or keeps it whole: in unknown fields, in ``ext`` and in a 2.5
  ``ext`` that is not an object. msgspec skips unknown fields without looking at their numbers,
  and keeps huge integers in ``ext`` as Python ints.

The reference pipeline decodes with msgspec first. Only when the body repeats a key somewhere,
or holds such a number, does it walk the body again, in document order, to find which comes
first: one of these problems, or the value msgspec failed on (the parser stops at the first
problem, so the first one is reported).

>>> first_problem_msgspec_misses(b'{"id":"a","imp":[{"id":"1","id":"2"}]}', failed_at=None)
InvalidRequestError('imp[0].id: duplicate field `id` [type]')
>>> first_problem_msgspec_misses(b'{"id":"a","x":[1e400]}', failed_at=None)
InvalidRequestError('x: number out of range [json]')
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any, NamedTuple

import msgspec

from bidcore.errors import InvalidRequestError

from .rejection import rejection
from .request import BidRequest
from .view_schema import LEGACY_EXT, VIEW_FIELDS, view_type

__all__ = ["first_problem_msgspec_misses"]


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its key/value pairs, in document order, repeats included."""


class _OutOfRange(float):
    """A number too large for a float: msgspec (and serde) refuse it where a value is read."""


class _FailureReachedError(Exception):
    """The walk got to the value msgspec failed on before finding a repeated field."""


class _Field(NamedTuple):
    """How the parser reads one field."""

    annotation: Any
    """Its type in the view (what msgspec checks a value against)."""
    model: type[msgspec.Struct] | None
    """The model its value, or each element of its array value, is read as."""
    is_list: bool
    lenient: bool
    """A `regs`/`user`/`source` ext: an object is read, anything else ignored."""
    raw: bool = False
    """Kept whole (`ext`, `native.request`): skipped by the parser, its numbers checked."""
    nullable: bool = True
    """A field's null means absent; an array element may not be null."""


def first_problem_msgspec_misses(
    body: bytes, *, failed_at: str | None, root: type[msgspec.Struct] = BidRequest
) -> InvalidRequestError | None:
    """The error for the first read field given twice, or the first number too large for a float
    where the parser skips it, if it comes before the failure.

    ``body`` is a ``root`` document (a bid request, or the Native request an imp carries), and
    ``failed_at`` the path msgspec reported an error at in it (``None`` if decoding succeeded);
    paths are relative to the document. Returns ``None`` when there is no such problem before that
    point, or when the body cannot be walked (it stops being JSON after the point msgspec stopped
    at).
    """
    tree = _tree_if_worth_walking(body)
    if not isinstance(tree, _Pairs):
        return None
    document = _Field(None, root, is_list=False, lenient=False)
    try:
        return _first_in_value(tree, document, "", failed_at)
    except _FailureReachedError:
        return None


def _tree_if_worth_walking(body: bytes) -> Any:
    """The body parsed with objects as :class:`_Pairs`, or ``None`` if no object repeats a key
    and no number is too large for a float (nearly always: then there is nothing to walk)."""
    worth = False

    def keep_pairs(pairs: list[tuple[str, Any]]) -> _Pairs:
        nonlocal worth
        worth = worth or len({key for key, _ in pairs}) != len(pairs)
        return _Pairs(pairs)

    def mark_out_of_range(text: str) -> float:
        nonlocal worth
        number = float(text)
        if math.isinf(number):
            worth = True
            return _OutOfRange(number)
        return number

    def mark_huge_integer(text: str) -> int | float:
        # Integers shorter than 300 characters always fit a float (the core does not even
        # look); longer ones are checked as floats before Python tries to make an int of them.
        if len(text) >= 300 and math.isinf(float(text)):
            return mark_out_of_range(text)
        return int(text)

    try:
        tree = json.loads(
            body,
            object_pairs_hook=keep_pairs,
            parse_float=mark_out_of_range,
            parse_int=mark_huge_integer,
        )
    except ValueError:
        return None
    return tree if worth else None


def _first_in_value(
    value: Any, field: _Field, path: str, failed_at: str | None
) -> InvalidRequestError | None:
    if failed_at is not None and _fails_here(value, field, path, failed_at):
        raise _FailureReachedError
    if field.model is None:
        # A typed scalar's numbers are msgspec's to refuse; a value kept whole is skipped.
        return _out_of_range(path) if field.raw and _holds_out_of_range(value) else None
    if field.lenient and not isinstance(value, _Pairs):
        return _out_of_range(path) if _holds_out_of_range(value) else None
    if field.is_list and _is_array(value):
        element = field._replace(is_list=False, nullable=False)
        for index, item in enumerate(value):
            found = _first_in_value(item, element, f"{path}[{index}]", failed_at)
            if found is not None:
                return found
        return None
    if not isinstance(value, _Pairs):
        return None
    # An object, member by member, here rather than in a function of its own: a Native request
    # nests Native 1.0's wrapper as deep as the limits allow, one frame per level.
    read = VIEW_FIELDS[field.model]
    seen: set[str] = set()
    for key, item in value:
        item_path = f"{path}.{key}" if path else key
        if key not in read:
            if _holds_out_of_range(item):
                return _out_of_range(item_path)
            continue
        if key in seen:
            return rejection("type", item_path, f"duplicate field `{key}`")
        seen.add(key)
        found = _first_in_value(item, _field(field.model, key), item_path, failed_at)
        if found is not None:
            return found
    return None


def _fails_here(value: Any, field: _Field, path: str, failed_at: str) -> bool:
    """Whether this occurrence of the value is the one msgspec failed on.

    A path names one value only until a key repeats, so the value itself is checked: when a
    field is given twice, either occurrence may be the failing one.
    """
    within = failed_at.startswith((f"{path}.", f"{path}["))
    if failed_at != path and not (within and field.model is None):
        return False
    if field.lenient:
        return _holds_out_of_range(value)
    if field.model is not None:
        # A value read as an object (or an array of them) that is not one.
        if value is None:
            return not field.nullable
        return not (_is_array(value) if field.is_list else isinstance(value, _Pairs))
    if _holds_out_of_range(value):
        return True
    try:
        msgspec.convert(_plain(value), field.annotation)
    except msgspec.ValidationError:
        return True
    return False


@functools.cache
def _field(model: type[msgspec.Struct], name: str) -> _Field:
    annotation = next(f.type for f in msgspec.structs.fields(view_type(model)) if f.name == name)
    if name == "ext" and model in LEGACY_EXT:
        return _Field(annotation, LEGACY_EXT[model], is_list=False, lenient=True)
    candidates = msgspec.inspect.type_info(annotation)
    options = candidates.types if isinstance(candidates, msgspec.inspect.UnionType) else ()
    for option in (candidates, *options):
        if isinstance(option, msgspec.inspect.StructType):
            return _Field(annotation, _model_of(option.cls), is_list=False, lenient=False)
        if isinstance(option, msgspec.inspect.ListType) and isinstance(
            option.item_type, msgspec.inspect.StructType
        ):
            return _Field(annotation, _model_of(option.item_type.cls), is_list=True, lenient=False)
    raw = any(
        isinstance(option, msgspec.inspect.AnyType | msgspec.inspect.DictType)
        for option in (candidates, *options)
    )
    return _Field(annotation, None, is_list=False, lenient=False, raw=raw)


@functools.cache
def _model_of(view: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """The model a view type was derived from."""
    return next(model for model in VIEW_FIELDS if view_type(model) is view)


def _out_of_range(path: str) -> InvalidRequestError:
    return rejection("json", path, "number out of range")


def _is_array(value: Any) -> bool:
    return isinstance(value, list) and not isinstance(value, _Pairs)


def _holds_out_of_range(value: Any) -> bool:
    if isinstance(value, _OutOfRange):
        return True
    if isinstance(value, _Pairs):
        return any(_holds_out_of_range(item) for _, item in value)
    if isinstance(value, list):
        return any(_holds_out_of_range(item) for item in value)
    return False


def _plain(value: Any) -> Any:
    """The value with objects as dicts again (the last of a repeated key wins, as in msgspec)."""
    if isinstance(value, _Pairs):
        return {key: _plain(item) for key, item in value}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
