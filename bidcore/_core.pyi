# Stubs for the native module built from rust/bidcore-py; checked by `mypy.stubtest` in `make lint`.

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self, final

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

# pyo3 lists every name it adds to the module in `__all__`.
__all__ = [
    "CompiledModel",
    "DecisionLog",
    "FeatureExtractor",
    "Ledger",
    "Limits",
    "NativeEngine",
    "RequestParser",
    "TreeEnsemble",
    "__version__",
    "_panic",
    "experiment_bucket",
    "feature_sources",
]

__version__: str

@final
class Limits:
    """Limits on what a bid request may contain; the defaults sit well above real traffic.

    Raises ``ValueError`` for a negative limit or a ``max_depth`` above 512.
    """

    def __new__(
        cls,
        *,
        max_body_bytes: int = 262144,
        max_depth: int = 32,
        max_imps: int = 64,
        max_string_bytes: int = 65536,
    ) -> Limits: ...
    @property
    def max_body_bytes(self) -> int: ...
    @property
    def max_depth(self) -> int: ...
    @property
    def max_imps(self) -> int: ...
    @property
    def max_string_bytes(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class RequestParser:
    """Parses and validates OpenRTB 2.5/2.6 bid requests natively; thread-safe."""

    def __new__(cls, limits: Limits | None = None) -> RequestParser: ...
    @property
    def limits(self) -> Limits: ...
    def validate(self, body: bytes | bytearray) -> None:
        """Parse and validate; None or raises InvalidRequestError. Releases the GIL."""
    def inspect_json(self, body: bytes | bytearray) -> bytes:
        """The normalized view as JSON bytes, or raises InvalidRequestError. Releases the GIL."""
    def counts(self) -> dict[str, int | dict[str, int]]:
        """Requests accepted, and rejected by rule."""

@final
class TreeEnsemble:
    """A tree ensemble scored by bidcore's native evaluator; thread-safe."""

    @staticmethod
    def from_lightgbm(text: str) -> TreeEnsemble:
        """Read LightGBM's model text; raises ModelError."""
    @staticmethod
    def from_treelite_json(text: str) -> TreeEnsemble:
        """Read a Treelite model's JSON (``dump_as_json``); raises ModelError."""
    @property
    def num_features(self) -> int: ...
    @property
    def num_outputs(self) -> int: ...
    @property
    def num_trees(self) -> int: ...
    @property
    def layout(self) -> str:
        """Either "quickscorer" or "nodes" (trees over 64 leaves)."""
    @property
    def feature_names(self) -> list[str]: ...
    def predict(self, rows: npt.ArrayLike, *, raw: bool = False) -> npt.NDArray[np.float64]:
        """Predictions for a matrix of rows (converted by numpy unless it is a C-contiguous
        float64 array); releases the GIL."""
    def predict_one(self, row: npt.ArrayLike, *, raw: bool = False) -> float | list[float]:
        """The prediction for one row (converted by numpy unless it is a contiguous float64
        vector): a float, or a list per class; releases the GIL."""

@final
class CompiledModel:
    """A tree ensemble scored by its TL2cgen-compiled library, called from Rust; thread-safe."""

    @staticmethod
    def load(library: str | os.PathLike[str], model_text: str, *, sha256: str) -> CompiledModel:
        """Load and check the library built from LightGBM's model text (its SHA-256, feature
        and output counts, raw margins against the native evaluator's); raises ModelError.
        Releases the GIL."""
    @property
    def num_features(self) -> int: ...
    @property
    def num_outputs(self) -> int: ...
    @property
    def num_trees(self) -> int: ...
    @property
    def feature_names(self) -> list[str]: ...
    @property
    def path(self) -> Path:
        """The library's file."""
    def predict(self, rows: npt.ArrayLike, *, raw: bool = False) -> npt.NDArray[np.float64]:
        """Predictions for a matrix of rows (converted by numpy unless it is a C-contiguous
        float64 array); releases the GIL."""
    def predict_one(self, row: npt.ArrayLike, *, raw: bool = False) -> float | list[float]:
        """The prediction for one row (converted by numpy unless it is a contiguous float64
        vector): a float, or a list per class; releases the GIL."""

def feature_sources() -> tuple[list[str], list[str], list[str]]:
    """The number, text and derived source names the native extractor knows."""

@final
class FeatureExtractor:
    """A feature spec compiled for native extraction; thread-safe (bidcore.features)."""

    def __new__(
        cls,
        features: list[tuple[str, str, list[str] | None, float, int]],
        usd_rates: dict[str, float],
    ) -> FeatureExtractor: ...
    @property
    def num_features(self) -> int: ...
    def extract(
        self,
        body: bytes,
        *,
        imp: int = 0,
        timestamp: float = ...,
        campaign: list[float] | None = None,
    ) -> npt.NDArray[np.float64]:
        """One imp's features; raises InvalidRequestError or IndexError. Releases the GIL."""
    def matrix(
        self,
        bodies: list[bytes],
        *,
        timestamps: npt.NDArray[np.float64] | None = None,
        campaign: list[float] | None = None,
        skip_invalid: bool = False,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], list[tuple[int, str]]]:
        """A row per imp of every body, their (request, imp), the skipped invalid bodies."""

# A pyo3 class: Python subclasses may add slots, but no class can have it and another
# native base at once (PEP 800).
@disjoint_base
class NativeEngine:
    """The native engine state, immutable and shared by threads; ``bidcore.Engine`` subclasses
    it."""

    def __new__(
        cls,
        plan: str,
        models: dict[str, tuple[str, TreeEnsemble | CompiledModel, FeatureExtractor, list[str]]],
        limits: Limits | None = None,
        monitors: dict[str, tuple[str, list[float], list[tuple[str, int, list[float]]]]]
        | None = None,
        log: DecisionLog | None = None,
        ledger: Ledger | None = None,
    ) -> Self: ...
    def bid(
        self, body: bytes | bytearray, *, now: float | None = None, received_ns: int | None = None
    ) -> bytes | None:
        """The response, or None for a no-bid; releases the GIL."""
    def bid_many(
        self, bodies: Sequence[bytes | bytearray], *, now: float | None = None
    ) -> list[bytes | None]:
        """``bid`` for each body (None for invalid ones); releases the GIL."""
    def explain(self, body: bytes | bytearray, *, now: float | None = None) -> dict[str, Any]:
        """The decision written out; releases the GIL."""
    def counters(self) -> dict[str, Any]: ...
    def metrics(self) -> dict[str, Any]: ...
    def set_pacing(self, account: str, *, throttle_ppm: int, multiplier_ppm: int) -> None:
        """An account's (a campaign's, or its share under an arm: ``campaign@experiment:arm``)
        share of requests entered and value multiplier, in millionths."""
    def pacing(self) -> dict[str, tuple[int, int]]:
        """Every account's (throttle ppm, multiplier ppm): the campaigns', then the shares'."""
    def arms(self) -> list[tuple[str, str, float | None]]:
        """Every experiment arm in config order: experiment key, arm name, budget share."""
    @staticmethod
    def reasons() -> list[tuple[str, int]]: ...

@final
class DecisionLog:
    """A bounded buffer of decision records: engines push, never waiting; a reader drains."""

    def __new__(cls, capacity: int = 65536) -> DecisionLog: ...
    @property
    def capacity(self) -> int: ...
    def drain(self, max_records: int = 4096, format: str = "json") -> list[bytes]:
        """Up to ``max_records`` records, each serialized alone; releases the GIL."""
    def stats(self) -> dict[str, int]: ...

@final
class Ledger:
    """The budget ledger's native half: accounts per campaign (nanos: thousandths of a micro),
    and the bids in flight of the engines built with it."""

    def __new__(
        cls,
        *,
        ttl_seconds: float = 300.0,
        spend_on: str = "bill",
        capacity: int = 4_000_000,
        cap_capacity: int = 1_000_000,
    ) -> Ledger: ...
    @property
    def ttl_seconds(self) -> float: ...
    @property
    def spend_on(self) -> str: ...
    def set_limited(self, campaign: str, limited: bool) -> None: ...
    def grant(self, campaign: str, nanos: int) -> int:
        """Adds ``nanos`` to the campaign's available money; the new amount."""
    def notice(
        self, kind: str, token: str, price_nanos: int, now: float
    ) -> tuple[str, str | None, str | None, int]:
        """(outcome, campaign, account, nanos spent) of a notice for the bid ``token``."""
    def expire(self, now: float) -> int:
        """Forgets the bids past their time to live; holds released."""
    def frequency(self, user: str, campaign: str, now: float) -> int:
        """Slots in use under ``campaign``'s frequency cap for ``user`` (``b:``/``u:``/``d:``
        and the id): impressions in the window and bids in flight."""
    def take_impressions(self) -> list[tuple[int, int, int, int]]:
        """Impressions counted here since the last call: (key, count, window, second); the
        first call starts keeping them."""
    def add_impressions(self, impressions: list[tuple[int, int, int, int]], now: float) -> None:
        """Adds impressions another process counted."""
    def accounts(self) -> dict[str, tuple[bool, int, int, int]]:
        """campaign -> (limited, available, exposure, spent)."""
    def stats(self) -> dict[str, Any]: ...

def _panic(message: str) -> None: ...
def experiment_bucket(seed: str, unit: str, version: int) -> int:
    """GrowthBook's integer bucket of ``unit`` (v1: ``[0, 1000)``, v2: ``[0, 10000)``)."""
