"""The decision log's JSON Schema: exported from the record Structs, published with the package,
and the two checks that keep it a contract.

``bidcore/schemas/decision-v{N}.json`` is :func:`schema_text` for version N, committed; it is
what ``bidcore log schema`` prints, so ``bidcore log schema > bidcore/schemas/decision-v1.json``
regenerates it. A record validates when it is one of the two kinds (``oneOf``): a decision, or
a notice (the only kind with a ``kind`` key).

:func:`breaking_changes` compares two versions of the schema the way a reader of the log sees
them; :func:`validate` checks a decoded record against the schema without a JSON Schema library
(it knows the part of JSON Schema the export uses).

Changing the records: a field is only ever added, with a default (so that records written
before it still decode), in the native record and the Structs together. Then
``SCHEMA_VERSION`` goes up (and the native ``v`` with it), ``bidcore log schema`` is published
as the new ``decision-vN.json`` (earlier files stay), and a copy goes to
``tests/fixtures/schemas/``: the tests hold the current Structs to every copy there and never
regenerate one. A field is never removed, retyped or made optional; that would be a new log.

>>> import copy
>>> old = schema()
>>> new = copy.deepcopy(old)
>>> del new["$defs"]["ImpRecord"]["properties"]["deal"]
>>> breaking_changes(old, new)
['DecisionRecord.imps[].deal: removed']
>>> validate({"v": 1, "kind": "win"})[0]
"$: matches none of: DecisionRecord: $: missing required key 'ts'; NoticeRecord: ..."
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec

from bidcore.decisionlog.records import SCHEMA_VERSION, DecisionRecord, NoticeRecord

__all__ = [
    "breaking_changes",
    "published_path",
    "published_schema",
    "schema",
    "schema_text",
    "validate",
    "write_published",
]

_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


def schema() -> dict[str, Any]:
    """The JSON Schema of a decision log record (either kind), exported from the Structs."""
    refs, definitions = msgspec.json.schema_components(
        [DecisionRecord, NoticeRecord], ref_template="#/$defs/{name}"
    )
    return {
        "$schema": _DIALECT,
        "title": f"bidcore decision log record, version {SCHEMA_VERSION}",
        "description": (
            "One record of the decision log: a decision of the engine, or a win, bill or loss "
            "notice (the kind with a `kind` key). Serialised as a JSON object (one per line in "
            ".jsonl files) or a msgpack map with the same keys. Readers ignore unknown keys: "
            "later versions only add keys."
        ),
        "version": SCHEMA_VERSION,
        "oneOf": list(refs),
        "$defs": definitions,
    }


def schema_text() -> str:
    """:func:`schema` as the published file holds it: JSON, indent 2, a final newline."""
    return json.dumps(schema(), indent=2) + "\n"


def published_path(version: int = SCHEMA_VERSION) -> Path:
    """Where the package holds the schema of ``version`` (it may not exist for a future one)."""
    return Path(__file__).parent.parent / "schemas" / f"decision-v{version}.json"


def published_schema(version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The published schema of ``version``, as the package holds it."""
    document: dict[str, Any] = json.loads(published_path(version).read_bytes())
    return document


def breaking_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What a reader written against ``old`` would trip on in records valid under ``new``:
    a field removed, a field no longer required, a field's type changed (any change: widened,
    narrowed, or an enum's values), a record kind gone, or a new required field (readers of
    ``new`` could not read the records already written). An added optional field is fine, and
    so are descriptions and titles. Both are whole schema documents like :func:`schema`'s.
    """
    problems: list[str] = []
    _compare(old, old, new, new, "", problems)
    return problems


def _resolve(document: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        path = node["$ref"].removeprefix("#/").split("/")
        target: Any = document
        for key in path:
            target = target[key]
        node = target
    return node


def _alternatives(document: Mapping[str, Any], node: Mapping[str, Any]) -> dict[str, Any]:
    """A node's alternatives by kind: a scalar type name, ``enum``, ``array``, ``map`` (an
    object with ``additionalProperties``) or ``struct:TITLE`` (an object with properties)."""
    node = _resolve(document, node)
    found: dict[str, Any] = {}
    for key in ("anyOf", "oneOf"):
        for option in node.get(key, ()):
            found.update(_alternatives(document, option))
    if "enum" in node:
        found["enum"] = node
    elif "const" in node:
        found["enum"] = {"enum": [node["const"]]}
    kinds = node.get("type", ())
    for kind in [kinds] if isinstance(kinds, str) else kinds:
        if kind == "object" and "properties" in node:
            found[f"struct:{node.get('title', '')}"] = node
        elif kind == "object":
            found["map"] = node
        else:
            found[kind] = node
    return found


def _compare(
    old_doc: Mapping[str, Any],
    old: Mapping[str, Any],
    new_doc: Mapping[str, Any],
    new: Mapping[str, Any],
    path: str,
    problems: list[str],
) -> None:
    before = _alternatives(old_doc, old)
    after = _alternatives(new_doc, new)
    if before.keys() != after.keys():
        where = path or "$"
        problems.append(f"{where}: type changed from {_name(before)} to {_name(after)}")
        return
    for kind, was in before.items():
        now = after[kind]
        if kind == "enum" and sorted(map(str, was["enum"])) != sorted(map(str, now["enum"])):
            problems.append(f"{path or '$'}: values changed from {was['enum']} to {now['enum']}")
        elif kind == "array":
            _compare(
                old_doc, was.get("items", {}), new_doc, now.get("items", {}), f"{path}[]", problems
            )
        elif kind == "map":
            _compare(
                old_doc,
                _map_values(was),
                new_doc,
                _map_values(now),
                f"{path}{{}}",
                problems,
            )
        elif kind.startswith("struct:"):
            _compare_struct(
                old_doc, was, new_doc, now, path or kind.removeprefix("struct:"), problems
            )


def _map_values(node: Mapping[str, Any]) -> Mapping[str, Any]:
    values = node.get("additionalProperties", {})
    return values if isinstance(values, Mapping) else {}


def _compare_struct(
    old_doc: Mapping[str, Any],
    old: Mapping[str, Any],
    new_doc: Mapping[str, Any],
    new: Mapping[str, Any],
    path: str,
    problems: list[str],
) -> None:
    old_fields, new_fields = old["properties"], new["properties"]
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    for name, field in old_fields.items():
        where = f"{path}.{name}"
        if name not in new_fields:
            problems.append(f"{where}: removed")
            continue
        if name in old_required and name not in new_required:
            problems.append(f"{where}: no longer required")
        _compare(old_doc, field, new_doc, new_fields[name], where, problems)
    problems.extend(
        f"{path}.{name}: added as required (records already written lack it)"
        for name in sorted(new_fields.keys() - old_fields.keys())
        if name in new_required
    )


def _name(alternatives: Mapping[str, Any]) -> str:
    return " | ".join(sorted(alternatives)) or "anything"


_JSON_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "object": (dict,),
    "array": (list,),
}


def validate(instance: object, document: Mapping[str, Any] | None = None) -> list[str]:
    """The errors of a decoded record (JSON or msgpack decoded to plain Python) against the
    schema (:func:`schema` by default); empty when it is valid.

    Knows the keywords the export uses: ``$ref``, ``oneOf``, ``anyOf``, ``type``, ``enum``,
    ``const``, ``properties``, ``required``, ``additionalProperties``, ``items``. ``True`` and
    ``False`` are not integers here, as in JSON.
    """
    document = schema() if document is None else document
    return _validate(document, document, instance, "$")


def _validate(document: Mapping[str, Any], node: Any, value: object, path: str) -> list[str]:
    if node is True or node == {}:
        return []
    if node is False:
        return [f"{path}: not allowed"]
    node = _resolve(document, node)
    for key in ("oneOf", "anyOf"):
        if key in node:
            failures = {
                _label(document, option): _validate(document, option, value, path)
                for option in node[key]
            }
            passed = sum(not errors for errors in failures.values())
            if passed > 1 and key == "oneOf":
                return [f"{path}: matches more than one of {', '.join(failures)}"]
            if passed == 0:
                detail = "; ".join(f"{label}: {errors[0]}" for label, errors in failures.items())
                return [f"{path}: matches none of: {detail}"]
    if "enum" in node and not any(_same(value, option) for option in node["enum"]):
        return [f"{path}: {value!r} is not one of {node['enum']}"]
    if "const" in node and not _same(value, node["const"]):
        return [f"{path}: {value!r} is not {node['const']!r}"]
    kinds = node.get("type")
    if kinds is not None:
        allowed = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, kind) for kind in allowed):
            return [f"{path}: expected {' | '.join(allowed)}, got {_json_type(value)}"]
    errors: list[str] = []
    if isinstance(value, dict):
        errors.extend(
            f"{path}: missing required key {name!r}"
            for name in node.get("required", ())
            if name not in value
        )
        properties = node.get("properties", {})
        extra = node.get("additionalProperties", True)
        for name, item in value.items():
            where = f"{path}.{name}"
            if name in properties:
                errors += _validate(document, properties[name], item, where)
            else:
                errors += _validate(document, extra, item, where)
    if isinstance(value, list) and "items" in node:
        for index, item in enumerate(value):
            errors += _validate(document, node["items"], item, f"{path}[{index}]")
    return errors


def _label(document: Mapping[str, Any], option: Mapping[str, Any]) -> str:
    node = _resolve(document, option)
    if "title" in node:
        return str(node["title"])
    if "enum" in node:
        return f"one of {node['enum']}"
    return str(node.get("type", "option"))


def _is(value: object, kind: str) -> bool:
    if isinstance(value, bool):
        return kind == "boolean"
    return isinstance(value, _JSON_TYPES.get(kind, ()))


def _same(value: object, expected: object) -> bool:
    return type(value) is type(expected) and value == expected


def _json_type(value: object) -> str:
    if isinstance(value, float):
        return "number"
    found = [name for name in _JSON_TYPES if _is(value, name)]
    return found[0] if found else type(value).__name__


def write_published(directory: str | os.PathLike[str] | None = None) -> Path:
    """Writes the current version's schema file (into the package by default); returns it."""
    target = published_path() if directory is None else Path(directory) / published_path().name
    target.write_text(schema_text(), encoding="utf-8")
    return target
