"""bidcore's exceptions: one tree, rooted at :class:`BidcoreError`.

A no-bid is not an error (``Engine.bid`` returns ``None``); these are raised for input bidcore
refuses and for bidcore's own faults.
"""

from __future__ import annotations

__all__ = [
    "BidcoreError",
    "ConfigError",
    "InternalError",
    "InvalidRequestError",
    "ModelError",
]


class BidcoreError(Exception):
    """The root of every exception bidcore raises."""


class InvalidRequestError(BidcoreError, ValueError):
    """A bid request broke an OpenRTB rule or a configured limit.

    ``path`` is the JSON path of the offending value (``imp[0].bidfloor``; ``$`` for the whole
    body) and ``rule`` the name of the rule it broke (``floor``, ``type``, ``json``…), stable
    enough to label metrics with.

    >>> err = InvalidRequestError("imp[0].bidfloor: < 0", path="imp[0].bidfloor", rule="floor")
    >>> (err.path, err.rule, isinstance(err, ValueError))
    ('imp[0].bidfloor', 'floor', True)
    """

    def __init__(self, message: str, *, path: str = "$", rule: str = "invalid") -> None:
        super().__init__(message)
        self.path = path
        self.rule = rule

    def __reduce__(self) -> tuple[object, ...]:
        # Keeps path and rule when the error crosses a process boundary (multiprocessing).
        return (_rebuild_invalid_request, (str(self), self.path, self.rule))


def _rebuild_invalid_request(message: str, path: str, rule: str) -> InvalidRequestError:
    return InvalidRequestError(message, path=path, rule=rule)


class ConfigError(BidcoreError, ValueError):
    """A bidder configuration is invalid; the message names the key path."""


class ModelError(BidcoreError):
    """A model artifact is missing, corrupt, or does not match what it claims to be."""


class InternalError(BidcoreError):
    """A bug in bidcore (for example a panic in the native core), never the caller's fault."""
