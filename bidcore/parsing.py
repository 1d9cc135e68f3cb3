"""Native request parsing: validate a bid request, or see it as the engine will.

Both functions run the Rust parser with the GIL released, so threads parse in parallel. They use
one shared :class:`bidcore.RequestParser` with default :class:`bidcore.Limits`; build your own
parser for other limits or separate counters.

>>> validate_request(b'{"id":"r1","imp":[{"id":"1","banner":{}}]}')
>>> validate_request(b'{"id":"r1","imp":[{"id":"1","banner":{},"bidfloor":-1}]}')
Traceback (most recent call last):
...
bidcore.errors.InvalidRequestError: imp[0].bidfloor: a floor must be ... got -1 [floor]
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from bidcore._core import RequestParser

__all__ = ["default_parser", "inspect_request", "validate_request"]

_DEFAULT_PARSER = RequestParser()
_VIEW_DECODER = msgspec.json.Decoder(dict[str, Any])


def default_parser() -> RequestParser:
    """The parser behind the module-level functions (its ``counts()`` cover their calls)."""
    return _DEFAULT_PARSER


# The default parser's bound method itself, not a Python wrapper around it: a wrapper costs about
# 60 ns a call, a sixth of parsing a small request. For other limits, call a parser's `validate`.
validate_request: Final = _DEFAULT_PARSER.validate
"""Parse and validate an OpenRTB 2.5/2.6 bid request (``bytes``); return None or raise.

Raises :class:`bidcore.InvalidRequestError` (a ``ValueError``) naming the JSON path and the rule
broken. Releases the GIL while parsing. See the module docstring for an example.
"""


def inspect_request(body: bytes, *, parser: RequestParser | None = None) -> dict[str, Any]:
    """The normalized view of a bid request: what the engine reads, as a dict.

    Only the fields a bidder uses are kept; OpenRTB 2.5 signals under ``ext`` are moved to their
    2.6 places (``regs.ext.gdpr`` becomes ``regs.gdpr``); the spec's defaults are filled in
    (``at``, floors and their currency). Raises :class:`bidcore.InvalidRequestError` like
    :func:`validate_request`.

    >>> body = b'{"id":"r1","imp":[{"id":"1","banner":{}}],"regs":{"ext":{"gdpr":1}}}'
    >>> view = inspect_request(body)
    >>> view["regs"], view["at"], view["imp"][0]["bidfloor"]
    ({'gdpr': 1}, 2, 0.0)
    """
    return _VIEW_DECODER.decode((parser or _DEFAULT_PARSER).inspect_json(body))
