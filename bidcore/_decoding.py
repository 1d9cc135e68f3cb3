"""Reading a configuration document into msgspec Structs, with errors that name the key path
first (shared by :mod:`bidcore.config` and :mod:`bidcore.experiments`)."""

from __future__ import annotations

from typing import Literal, TypeVar

import msgspec

from bidcore.errors import ConfigError

__all__ = ["Format", "decode"]

Format = Literal["toml", "json", "yaml"]
_S = TypeVar("_S")


def decode(data: bytes | str, fmt: Format, kind: type[_S]) -> _S:
    """``data`` in format ``fmt`` as a ``kind``; :class:`ConfigError` naming the key path."""
    try:
        if fmt == "toml":
            return msgspec.toml.decode(data, type=kind)
        if fmt == "yaml":
            return msgspec.yaml.decode(data, type=kind)
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as err:
        raise ConfigError(_with_path_first(str(err))) from None
    except msgspec.DecodeError as err:
        raise ConfigError(f"not valid {fmt.upper()}: {err}") from None


def _with_path_first(message: str) -> str:
    """msgspec says ``Expected `int`, got `str` - at `$.campaigns[0].max_bid```; bidcore puts
    the key path first, without the ``$.``."""
    text, sep, where = message.rpartition(" - at `")
    if not sep:
        return message
    path = where.rstrip("`").removeprefix("$").removeprefix(".")
    return f"{path}: {text}" if path else text
