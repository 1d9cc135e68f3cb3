"""bidcore: OpenRTB 2.5/2.6 bidding in microseconds, a Rust core for Python bidders.

>>> import bidcore
>>> body = b'{"id":"r1","imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":0.5}]}'
>>> bidcore.validate_request(body)  # returns None, or raises InvalidRequestError
>>> bidcore.inspect_request(body)["imp"][0]["bidfloorcur"]  # the view the engine sees
'USD'
"""

from bidcore import budget, config, openrtb
from bidcore._core import Limits, RequestParser, __version__
from bidcore.engine import DecisionLog, Engine, Ledger
from bidcore.errors import (
    BidcoreError,
    ConfigError,
    InternalError,
    InvalidRequestError,
    ModelError,
)
from bidcore.parsing import inspect_request, validate_request

__all__ = [
    "BidcoreError",
    "ConfigError",
    "DecisionLog",
    "Engine",
    "InternalError",
    "InvalidRequestError",
    "Ledger",
    "Limits",
    "ModelError",
    "RequestParser",
    "__version__",
    "budget",
    "config",
    "inspect_request",
    "openrtb",
    "validate_request",
]
