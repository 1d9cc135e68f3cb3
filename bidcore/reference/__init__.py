"""The bidding decision in plain Python: the oracle the native engine is tested against.

It implements ``docs/engine.md`` rule by rule (pacing: :mod:`bidcore.reference.pacing`), and
the experiment arms of ``docs/experiments.md`` (section 12: :mod:`bidcore.reference.arms`),
from the normalized request view (:func:`bidcore.openrtb.reference.inspect_request_py`) and the
feature oracle (:func:`bidcore.features.reference.features_py`), sharing no code with the
native path.
Clarity over speed: campaigns and rules are looped over in the spec's order.

>>> from bidcore.config import loads
>>> config = loads('''
... [[campaigns]]
... id = "c1"
... goal = "cpm"
... cpm = 1.5
... max_bid = 2
... [[campaigns.creatives]]
... id = "cr1"
... media = "banner"
... w = 300
... h = 250
... adomain = ["shop.example"]
... ''')
>>> body = b'{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":0.5}],"site":{}}'
>>> decision = decide(body, config, {}, now=0.0)
>>> decision.imps[0].price, decision.response["seatbid"][0]["bid"][0]["price"]
(1500000, 1.5)
"""

from __future__ import annotations

from .auction import IMP_REASONS, decide
from .decision import Candidate, Decision, ImpDecision
from .scoring import RoleModel
from .targeting import REASONS as TARGETING_REASONS

__all__ = [
    "IMP_REASONS",
    "TARGETING_REASONS",
    "Candidate",
    "Decision",
    "ImpDecision",
    "RoleModel",
    "decide",
]
