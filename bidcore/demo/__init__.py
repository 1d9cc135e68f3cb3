"""The demo bidder shipped in the package: what ``bidcore serve`` runs when given no config.

``bidder.toml`` is ``examples/bidder.toml`` (thirteen campaigns, a click and a conversion
model); ``models/`` holds the two model artifacts it names (generated data: ``README.md`` here
says how they were made); ``request.json`` is a bid request from the OpenRTB corpus that the
demo bids on.

>>> import bidcore
>>> from bidcore import demo
>>> engine = bidcore.Engine.load(demo.config_path())
>>> engine.bid(demo.sample_request()) is not None
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["config_path", "sample_request", "sample_request_path"]

_HERE: Final = Path(__file__).resolve().parent


def config_path() -> Path:
    """The demo config file; its model paths are relative to it (``Engine.load`` reads them)."""
    return _HERE / "bidder.toml"


def sample_request_path() -> Path:
    """The sample request's file (for ``curl --data-binary @FILE``)."""
    return _HERE / "request.json"


def sample_request() -> bytes:
    """A bid request the demo bids on: a 320x50 in-app banner from the prebid-server tests in
    ``tests/fixtures/openrtb/`` (line 360 of ``requests.jsonl``)."""
    return sample_request_path().read_bytes()
