"""End-to-end ``Engine.bid``, against the pure Python and the best Python bidder, in one run.

    python benchmarks/engine.py            # full run (under a minute once the caches are warm)
    python benchmarks/engine.py --quick    # few samples: checks that everything runs

The bidder, the typical request, the 300 x 63 CTR model and the two Python paths are in
``engine_contestants.py``. What is measured:

1. **The typical request** (one ~1 KB in-app banner imp, first price; 50 campaigns, 10 pass
   targeting, all ``cpc``, so the model scores a 10-row block). Contestants: bidcore's
   ``Engine.bid``; the best Python path; the pure Python path; and, for scale, the reference's
   own ``decide`` (whose msgspec parse also validates every rule) with ``Booster.predict``.
   Before any timing, each path's response is checked against the engine's (the Python paths
   must give the same JSON, or the best path the same bid with a price within 2 micros), on
   the typical request and on every corpus request, and the best path's feature rows against
   the engine's. Each path is timed three ways: end to end; end to end with the model cut to
   its first tree (**the rest**: everything but scoring, measured inside the path, so that
   **scoring in the path** is p50 minus the rest); and its model call alone on the same 10
   rows (the rows the engine built, as ``explain`` reports them): bidcore's ``Model.predict``
   (called from Python, where the engine calls its scorer natively), ``Booster.predict``, or
   the best path's scorer. p50 minus the model call alone, the split the issue describes, is
   in the JSON and the targets too; it assumes the call costs the same alone as in the path,
   which does not hold for bidcore (its ``Model.predict`` on the block alone can take as long
   as its whole ``bid``).
2. **The best path's scorer** is chosen here, by p50 on the block, among lleaves' compiled
   entry point called directly through ctypes on preallocated buffers, lleaves'
   ``Model.predict`` (both compiled by LLVM, cached in ``.benchmarks/lleaves``), TL2cgen's
   ``Predictor`` (gcc, cached in ``.benchmarks/compiled``), Treelite GTIL and LightGBM's
   ``Booster.predict``: each must match ``Booster.predict`` to 1e-12 first.
3. **The corpus**: ``Engine.bid`` on every request of ``tests/fixtures/openrtb/requests.jsonl``
   the engine accepts, each timed alone; p50/p99 per request, for all of them and apart for
   those that bid (their imps are scored) and those that do not.
4. **Threads**: requests per second of 1 thread and of 2 threads calling ``Engine.bid`` in a
   loop over the corpus (and over the typical request), in back-to-back pairs of a 1-thread
   and a 2-thread round (15 pairs); the ratio is the median of the pairs' ratios (the
   machine's speed drifts between seconds, a pair shares the drift), and the process's CPU
   seconds per wall second in the 2-thread rounds say whether both threads ran at once. The
   same for ``hashlib.sha256`` (it releases the GIL) of 1 MB says what the machine's two
   cores allow, and of 16 KB (a call about as long as a corpus ``bid``) what the GIL's
   hand-over on every call costs.

Timing: ``time.perf_counter_ns`` around each call, the garbage collector off during a batch,
contestants interleaved (each round times every contestant, the order reversed every other
round); p50 and p99 are nearest-rank percentiles over all calls. Writes
``.benchmarks/engine.json`` and prints the Markdown tables of the README. The first run trains
the model (seconds) and compiles it with lleaves (about a minute) and TL2cgen (seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import functools
import gc
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import lightgbm
import numpy as np
import tl2cgen
import treelite
from corpus import CORPUS_PATH
from engine_contestants import (
    NOW,
    SPEC_TOML,
    TYPICAL_REQUEST,
    BestPython,
    BlockScorer,
    BufferScorer,
    PurePython,
    Rows,
    ctr_model_path,
    typical_config,
)
from model_contestants import (
    LLEAVES_BLOCK_SIZE,
    Env,
    ModelUnderTest,
    UnavailableError,
    _lleaves,
    _lleaves_object,
    _tl2cgen_library,
)

import bidcore
from bidcore import features
from bidcore.compile.toolchain import native_output
from bidcore.reference import RoleModel, decide

REPO: Final = Path(__file__).resolve().parent.parent
WORK: Final = REPO / ".benchmarks"
PRICE_TOLERANCE_MICROS: Final = 2
SCORE_TOLERANCE: Final = 1e-12


@dataclasses.dataclass(frozen=True)
class Plan:
    rounds: int
    calls: int
    """Timed calls per contestant, over all rounds."""
    corpus_passes: int
    thread_rounds: int
    thread_seconds: float
    """About how long one throughput measurement of one thread runs."""


FULL: Final = Plan(rounds=10, calls=2_000, corpus_passes=5, thread_rounds=15, thread_seconds=0.3)
QUICK: Final = Plan(rounds=2, calls=100, corpus_passes=1, thread_rounds=1, thread_seconds=0.1)
WARMUP: Final = 50


@dataclasses.dataclass(frozen=True)
class Stats:
    p50_us: float
    p99_us: float
    mean_us: float
    calls: int

    @classmethod
    def of(cls, ns: Sequence[float]) -> Stats:
        ordered = sorted(ns)
        n = len(ordered)
        return cls(
            p50_us=round(ordered[math.ceil(0.5 * n) - 1] / 1e3, 2),
            p99_us=round(ordered[math.ceil(0.99 * n) - 1] / 1e3, 2),
            mean_us=round(sum(ordered) / n / 1e3, 2),
            calls=n,
        )


@dataclasses.dataclass
class Contestant:
    """One way of answering the typical request: its bid call, the same path with the model
    cut to its first tree (everything but scoring, measured in the path), and its model call
    alone on the block."""

    key: str
    label: str
    bid: Callable[[], object]
    one_tree: Callable[[], object]
    score: Callable[[], object] | None
    """None: the model call of another path (``scored_as``) is the same call."""
    scored_as: str | None = None
    end_to_end: list[float] = dataclasses.field(default_factory=list)
    rest: list[float] = dataclasses.field(default_factory=list)
    scoring: list[float] = dataclasses.field(default_factory=list)


def _typical(bid: Callable[..., object]) -> Callable[[], object]:
    """``bid(TYPICAL_REQUEST, now=NOW)`` as a call without arguments, written the way a caller
    writes it: ``functools.partial`` with a keyword merges a keyword dictionary on every call
    (about 0.3 µs), which no server pays."""

    def call() -> object:
        return bid(TYPICAL_REQUEST, now=NOW)

    return call


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="few samples, to check it runs")
    parser.add_argument("--json", type=Path, default=WORK / "engine.json", help="result file")
    parser.add_argument("--jobs", type=int, default=2, help="gcc workers for the TL2cgen build")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("bidcore.compile").setLevel(logging.INFO)
    plan = QUICK if args.quick else FULL
    load_before = os.getloadavg()
    started = time.perf_counter()

    config = typical_config()
    spec = features.loads(SPEC_TOML)
    bodies = _corpus()
    model_path = ctr_model_path(bodies, WORK / "models")
    text = model_path.read_text()
    booster = lightgbm.Booster(model_str=text)
    model = bidcore.models.from_lightgbm(text, features=spec)
    engine = bidcore.Engine(config, models={"ctr": model})

    explained = engine.explain(TYPICAL_REQUEST, now=NOW)
    targeted = [c for c, reason in explained["targeting"].items() if reason is None]
    block = np.array(
        [c["features"]["ctr"] for c in explained["candidates"] if "ctr" in c["features"]],
        dtype=np.float64,
    )
    expected = np.asarray(booster.predict(block, num_threads=1), dtype=np.float64)
    engine_scores = [c["scores"]["ctr"] for c in explained["candidates"] if "ctr" in c["scores"]]
    if not (explained["bid"] and 8 <= len(targeted) <= 12 and len(block) == len(targeted)):
        raise SystemExit(f"the typical request is not typical: {explained}")
    if not np.array_equal(np.asarray(engine_scores), expected):
        raise SystemExit("the engine's scores differ from Booster.predict on its own rows")
    _say(
        f"typical request: {len(TYPICAL_REQUEST)} bytes, {len(targeted)} of "
        f"{len(config.campaigns)} campaigns pass targeting, block of {len(block)} rows"
    )

    under_test = _under_test(model_path, len(spec.features))
    one_tree_text = booster.model_to_string(num_iteration=1)
    one_tree_path = model_path.with_name(f"{model_path.stem}-1tree.txt")
    if not one_tree_path.is_file() or one_tree_path.read_text() != one_tree_text:
        one_tree_path.write_text(one_tree_text)
    one_tree_booster = lightgbm.Booster(model_str=one_tree_text)
    one_tree_model = bidcore.models.from_lightgbm(one_tree_text, features=spec)
    capacity = len(config.campaigns)
    with contextlib.ExitStack() as cleanup:
        env = Env(WORK, args.jobs, None, "no C harness in this benchmark", cleanup)
        builders = _scorer_builders(under_test, env, booster, capacity, block.shape[1])
        scorers, skipped = _checked_scorers(builders, block, expected)
        scorer_stats = _time_scorers(scorers, block, plan)
        best_key = min(scorer_stats, key=lambda k: scorer_stats[k].p50_us)
        _say(f"best Python path scores with {best_key}")
        one_tree_scorer = _checked_scorers(
            {
                best_key: _scorer_builders(
                    _under_test(one_tree_path, len(spec.features)),
                    env,
                    one_tree_booster,
                    capacity,
                    block.shape[1],
                )[best_key]
            },
            block,
            np.asarray(one_tree_booster.predict(block, num_threads=1), dtype=np.float64),
        )[0][best_key][1]

        best_scorer = scorers[best_key][1]
        best = BestPython(config, spec, best_scorer)
        pure = PurePython(config, booster, spec)

        def reference_bid(body: bytes, models: dict[str, RoleModel]) -> bytes | None:
            decision = decide(body, config, models, now=NOW)
            return None if decision.response is None else json.dumps(decision.response).encode()

        reference_models = {"ctr": RoleModel(predict=pure.score, spec=spec)}
        answers = {
            "bidcore": engine.bid(TYPICAL_REQUEST, now=NOW),
            "best": best.bid(TYPICAL_REQUEST, now=NOW),
            "pure": pure.bid(TYPICAL_REQUEST, now=NOW),
            "reference": reference_bid(TYPICAL_REQUEST, reference_models),
        }
        agreement = _check_answers(answers)
        if not np.array_equal(best_scorer.rows[: len(block)], block, equal_nan=True):
            raise SystemExit("the best path's feature rows are not the engine's")
        agreement["corpus"] = _check_corpus(engine, {"best": best.bid, "pure": pure.bid}, bodies)
        best_scorer.rows[: len(block)] = block  # what its timed scoring call scores

        one_tree_engine = bidcore.Engine(config, models={"ctr": one_tree_model})
        one_tree_best = BestPython(config, spec, one_tree_scorer)
        one_tree_pure = PurePython(config, one_tree_booster, spec)
        one_tree_models = {"ctr": RoleModel(predict=one_tree_pure.score, spec=spec)}
        paths = [
            Contestant(
                "bidcore",
                "bidcore `Engine.bid`",
                _typical(engine.bid),
                _typical(one_tree_engine.bid),
                functools.partial(model.predict, block),
            ),
            Contestant(
                "best",
                f"best Python: msgspec, bitmask targeting, numpy, {scorers[best_key][0]}",
                _typical(best.bid),
                _typical(one_tree_best.bid),
                functools.partial(best_scorer, len(block)),
            ),
            Contestant(
                "pure",
                "pure Python: json, `bidcore.reference`, `Booster.predict`",
                _typical(pure.bid),
                _typical(one_tree_pure.bid),
                functools.partial(pure.score, block),
            ),
            Contestant(
                "reference",
                "`reference.decide` as is (its msgspec parse validates), `Booster.predict`",
                functools.partial(reference_bid, TYPICAL_REQUEST, reference_models),
                functools.partial(reference_bid, TYPICAL_REQUEST, one_tree_models),
                None,
                scored_as="pure",
            ),
        ]
        _time_paths(paths, plan)

    corpus = _time_corpus(engine, bodies, plan)
    threads = _time_threads(engine, bodies, plan)

    typical = _typical_results(paths)
    report = {
        "meta": _meta(args.quick, load_before, time.perf_counter() - started, plan),
        "setup": {
            "request_bytes": len(TYPICAL_REQUEST),
            "campaigns": len(config.campaigns),
            "targeted": targeted,
            "block_rows": len(block),
            "model": {"path": str(model_path), "sha256": under_test.sha256, "trees": 300},
            "one_tree_model": str(one_tree_path),
            "now": NOW,
            "answers_agree": agreement,
        },
        "scorers": {k: dataclasses.asdict(s) for k, s in scorer_stats.items()},
        "scorers_skipped": skipped,
        "best_scorer": best_key,
        "typical": typical,
        "targets": _targets(typical, corpus, threads),
        "corpus": corpus,
        "threads": threads,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    print(markdown(report))
    _say(f"wrote {args.json}")
    return 0


# ---- set-up --------------------------------------------------------------------------------


def _corpus() -> list[bytes]:
    """Every corpus request the engine accepts (its parser is ``validate_request``'s)."""
    accepted = []
    for body in CORPUS_PATH.read_bytes().splitlines():
        if not body:
            continue
        try:
            bidcore.validate_request(body)
        except bidcore.InvalidRequestError:
            continue
        accepted.append(body)
    return accepted


def _sigmoid(margins: object) -> Rows:
    m = np.asarray(margins, dtype=np.float64).reshape(-1)
    out: Rows = 1.0 / (1.0 + np.exp(-m))
    return out


def _under_test(path: Path, num_features: int) -> ModelUnderTest:
    return ModelUnderTest(
        key=path.stem,
        label=path.stem,
        path=path,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        num_features=num_features,
    )


Builders = dict[str, tuple[str, Callable[[], BlockScorer]]]


def _scorer_builders(
    model: ModelUnderTest, env: Env, booster: lightgbm.Booster, capacity: int, width: int
) -> Builders:
    """The scorers the best Python path may use, by key: label and builder. Each scores the
    rows written into its own buffer of ``capacity`` rows."""
    return {
        "lleaves_direct": (
            "lleaves, compiled entry point called directly",
            lambda: _LleavesDirect(_lleaves_forest(model, env), capacity, width),
        ),
        "lleaves": (
            "lleaves Model.predict",
            lambda: BufferScorer(_lleaves_scorer(model, env), capacity, width),
        ),
        "tl2cgen": (
            "TL2cgen Predictor",
            lambda: BufferScorer(_tl2cgen_scorer(model, env), capacity, width),
        ),
        "gtil": ("Treelite GTIL", lambda: BufferScorer(_gtil_scorer(model), capacity, width)),
        "lightgbm": (
            "LightGBM Booster.predict",
            lambda: BufferScorer(_booster_scorer(booster), capacity, width),
        ),
    }


def _checked_scorers(
    builders: Builders, block: Rows, expected: Rows
) -> tuple[dict[str, tuple[str, BlockScorer]], dict[str, str]]:
    """The scorers that build here and match ``expected`` on the block (1e-12); why not, for
    the others."""
    found: dict[str, tuple[str, BlockScorer]] = {}
    skipped: dict[str, str] = {}
    for key, (label, build) in builders.items():
        try:
            scorer = build()
            scorer.rows[: len(block)] = block
            got = np.asarray(scorer(len(block)), dtype=np.float64).reshape(-1)
        except (UnavailableError, ImportError, OSError, RuntimeError) as err:
            skipped[key] = f"{type(err).__name__}: {err}"
            _say(f"scorer {label}: skipped: {skipped[key]}")
            continue
        diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else math.inf
        if not diff <= SCORE_TOLERANCE:
            skipped[key] = f"differs from Booster.predict by {diff:.3g}"
            _say(f"scorer {label}: {skipped[key]}")
            continue
        found[key] = (label, scorer)
    return found, skipped


def _lleaves_forest(model: ModelUnderTest, env: Env) -> Any:
    """lleaves' model compiled for raw scores (from the cached object file)."""
    cached = _lleaves_object(model, env)
    forest = _lleaves().Model(model_file=str(model.path))
    forest.compile(cache=str(cached), raw_score=True, fblocksize=LLEAVES_BLOCK_SIZE)
    return forest


def _lleaves_scorer(model: ModelUnderTest, env: Env) -> Callable[[Rows], Rows]:
    predict = _lleaves_forest(model, env).predict

    def score(rows: Rows) -> Rows:
        return _sigmoid(predict(rows, n_jobs=1))

    return score


class _LleavesDirect:
    """lleaves' compiled ``forest_root(rows, out, start, end)`` called through ctypes on
    preallocated buffers whose addresses are taken once: none of ``Model.predict``'s checks,
    conversions and allocations per call."""

    def __init__(self, forest: Any, capacity: int, width: int) -> None:
        self.rows = np.zeros((capacity, width))
        self._out = np.zeros(capacity)
        self._forest = forest  # owns the compiled code
        address = ctypes.cast(forest._c_entry_func, ctypes.c_void_p).value
        if address is None:
            raise RuntimeError("lleaves' model has no compiled entry point")
        kind = ctypes.CFUNCTYPE(
            None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32
        )
        self._entry = kind(address)
        self._rows_at = self.rows.ctypes.data
        self._out_at = self._out.ctypes.data

    def __call__(self, n: int) -> Rows:
        self._entry(self._rows_at, self._out_at, 0, n)
        out: Rows = 1.0 / (1.0 + np.exp(-self._out[:n]))
        return out


def _tl2cgen_scorer(model: ModelUnderTest, env: Env) -> Callable[[Rows], Rows]:
    library = _tl2cgen_library(model, env)
    with native_output("tl2cgen.Predictor"):
        predictor = tl2cgen.Predictor(library, nthread=1)

    def score(rows: Rows) -> Rows:
        out: Rows = np.asarray(predictor.predict(tl2cgen.DMatrix(rows))).reshape(-1)
        return out

    return score


def _gtil_scorer(model: ModelUnderTest) -> Callable[[Rows], Rows]:
    forest = treelite.frontend.load_lightgbm_model(model.path)

    def score(rows: Rows) -> Rows:
        out: Rows = np.asarray(treelite.gtil.predict(forest, rows, nthread=1)).reshape(-1)
        return out

    return score


def _booster_scorer(booster: lightgbm.Booster) -> Callable[[Rows], Rows]:
    def score(rows: Rows) -> Rows:
        return np.asarray(booster.predict(rows, num_threads=1), dtype=np.float64)

    return score


def _check_answers(answers: dict[str, bytes | None]) -> dict[str, str]:
    """The engine's response against each path's: the same JSON (the best path: the same bid,
    its price within :data:`PRICE_TOLERANCE_MICROS`)."""
    engine = answers["bidcore"]
    if engine is None:
        raise SystemExit("the engine did not bid on the typical request")
    want = json.loads(engine)
    agreement = {}
    for key, body in answers.items():
        if key == "bidcore":
            continue
        if body is None:
            raise SystemExit(f"{key}: no bid where the engine bids")
        got = json.loads(body)
        if got == want:
            agreement[key] = "same response"
            continue
        got_bid, want_bid = got["seatbid"][0]["bid"][0], want["seatbid"][0]["bid"][0]
        off = abs(round(got_bid["price"] * 1e6) - round(want_bid["price"] * 1e6))
        rest_same = {**got_bid, "price": 0} == {**want_bid, "price": 0}
        if key == "best" and rest_same and off <= PRICE_TOLERANCE_MICROS:
            agreement[key] = f"same bid, price {off} micro(s) apart"
            continue
        raise SystemExit(f"{key} answers differently:\n  {body!r}\n  engine: {engine!r}")
    for key, verdict in agreement.items():
        _say(f"{key}: {verdict} as the engine")
    return agreement


def _check_corpus(
    engine: bidcore.Engine, paths: dict[str, Callable[..., bytes | None]], bodies: list[bytes]
) -> str:
    """Each Python path's answer to every corpus request against the engine's (parsed JSON)."""
    for body in bodies:
        want = engine.bid(body, now=NOW)
        for key, bid in paths.items():
            got = bid(body, now=NOW)
            if (None if got is None else json.loads(got)) != (
                None if want is None else json.loads(want)
            ):
                raise SystemExit(f"{key} answers {body!r} differently:\n  {got!r}\n  {want!r}")
    verdict = f"{' and '.join(paths)}: the engine's answer to each of the {len(bodies)} requests"
    _say(f"corpus: {verdict}")
    return verdict


# ---- timing --------------------------------------------------------------------------------


def _time_calls(call: Callable[[], object], n: int) -> list[float]:
    """``n`` calls, each timed alone (ns), after a warm-up, with the collector off."""
    for _ in range(WARMUP):
        call()
    clock = time.perf_counter_ns
    out = [0.0] * n
    gc.collect()
    gc.disable()
    try:
        for k in range(n):
            started = clock()
            call()
            out[k] = clock() - started
    finally:
        gc.enable()
    return out


def _time_scorers(
    scorers: dict[str, tuple[str, BlockScorer]], block: Rows, plan: Plan
) -> dict[str, Stats]:
    samples: dict[str, list[float]] = {key: [] for key in scorers}
    keys = list(scorers)
    per_round = max(1, plan.calls // plan.rounds // 2)
    for turn in range(plan.rounds):
        for key in keys if turn % 2 == 0 else reversed(keys):
            scorer = scorers[key][1]
            scorer.rows[: len(block)] = block
            samples[key] += _time_calls(functools.partial(scorer, len(block)), per_round)
    stats = {key: Stats.of(ns) for key, ns in samples.items()}
    for key, s in stats.items():
        _say(f"scorer {scorers[key][0]} on the block: p50 {s.p50_us} us, p99 {s.p99_us} us")
    return stats


def _time_paths(paths: list[Contestant], plan: Plan) -> None:
    per_round = max(1, plan.calls // plan.rounds)
    for turn in range(plan.rounds):
        _say(f"typical request: round {turn + 1} of {plan.rounds}")
        for path in paths if turn % 2 == 0 else reversed(paths):
            path.end_to_end += _time_calls(path.bid, per_round)
            path.rest += _time_calls(path.one_tree, per_round)
            if path.score is not None:
                path.scoring += _time_calls(path.score, per_round)


def _typical_results(paths: list[Contestant]) -> dict[str, Any]:
    """Per path: end to end; the rest (the path with the model cut to one tree) and scoring in
    the path (end to end p50 minus the rest); the model call alone, and end to end p50 minus
    it (the split the issue asks for, which assumes the call costs the same in the path)."""
    by_key = {p.key: p for p in paths}
    results: dict[str, Any] = {}
    for path in paths:
        total, rest = Stats.of(path.end_to_end), Stats.of(path.rest)
        scored = path.scoring or by_key[path.scored_as or path.key].scoring
        alone = Stats.of(scored)
        results[path.key] = {
            "label": path.label,
            "end_to_end": dataclasses.asdict(total),
            "rest": dataclasses.asdict(rest),
            "scoring_in_path_p50_us": round(total.p50_us - rest.p50_us, 2),
            "model_call_alone": dataclasses.asdict(alone),
            "p50_minus_model_call_us": round(total.p50_us - alone.p50_us, 2),
        }
    base = results["bidcore"]
    for r in results.values():
        r["end_to_end_over_bidcore"] = round(
            r["end_to_end"]["p50_us"] / base["end_to_end"]["p50_us"], 2
        )
        r["rest_over_bidcore"] = round(r["rest"]["p50_us"] / base["rest"]["p50_us"], 2)
    return results


def _time_corpus(engine: bidcore.Engine, bodies: list[bytes], plan: Plan) -> dict[str, Any]:
    """Each request timed alone, ``plan.corpus_passes`` times (every other pass in reverse);
    the statistics over all requests, and over those that bid and those that do not."""
    bid = engine.bid
    bidding = [bid(body, now=NOW) is not None for body in bodies]
    samples: dict[bool, list[float]] = {True: [], False: []}
    clock = time.perf_counter_ns
    for turn in range(plan.corpus_passes):
        order = range(len(bodies)) if turn % 2 == 0 else range(len(bodies) - 1, -1, -1)
        gc.collect()
        gc.disable()
        try:
            for k in order:
                body = bodies[k]
                started = clock()
                bid(body, now=NOW)
                samples[bidding[k]].append(clock() - started)
        finally:
            gc.enable()
    stats = Stats.of(samples[True] + samples[False])
    _say(f"corpus: {len(bodies)} requests, p50 {stats.p50_us} us, p99 {stats.p99_us} us")
    return {
        "requests": len(bodies),
        "bytes_median": sorted(len(b) for b in bodies)[len(bodies) // 2],
        "bidding_requests": sum(bidding),
        "bid_share": round(sum(bidding) / len(bodies), 4),
        **dataclasses.asdict(stats),
        "bids": dataclasses.asdict(Stats.of(samples[True])),
        "no_bids": dataclasses.asdict(Stats.of(samples[False])),
        "passes": plan.corpus_passes,
    }


def _throughput(
    make_call: Callable[[], Callable[[bytes], object]],
    items: list[bytes],
    threads: int,
    passes: int,
) -> tuple[float, float]:
    """Calls per second of ``threads`` threads, each calling its own ``make_call()`` on its own
    copy of every item ``passes`` times, timed from a common start to the last thread's end;
    and the process's CPU seconds per wall second meanwhile (2.0: both cores busy).

    Each thread has its own objects, as each thread of a server has its own requests: objects
    shared by threads have their reference counts written by both cores on every call, and
    that cache-line traffic is CPython's cost, not the call's."""
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        call = make_call()
        # bytes(bytearray(...)): bytes(b) of a bytes object is that same object.
        own = [bytes(bytearray(item)) for item in items]
        barrier.wait()
        for _ in range(passes):
            for item in own:
                call(item)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started, cpu = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - started
    return threads * passes * len(items) / wall, (time.process_time() - cpu) / wall


def _sha256_call() -> Callable[[bytes], object]:
    return lambda data: hashlib.sha256(data).digest()


def _matched_sha256_size(seconds_per_call: float) -> int:
    """The input size (a multiple of 64 bytes) at which ``hashlib.sha256`` takes about
    ``seconds_per_call`` a call on this machine, calls included."""
    sizes = (1 << 10, 16 << 10)
    costs = []
    for size in sizes:
        data, calls = bytes(size), 2_000
        best = math.inf
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(calls):
                hashlib.sha256(data).digest()
            best = min(best, (time.perf_counter() - started) / calls)
        costs.append(best)
    per_byte = (costs[1] - costs[0]) / (sizes[1] - sizes[0])
    fixed = costs[0] - per_byte * sizes[0]
    return max(64, round((seconds_per_call - fixed) / per_byte / 64) * 64)


def _time_threads(engine: bidcore.Engine, bodies: list[bytes], plan: Plan) -> dict[str, Any]:
    """1 and 2 threads, rounds alternating, on: the corpus, the typical request, and three
    calibrations from the standard library, SHA-256 of 1 MB (what the machine's cores allow),
    of 16 KB (what any call that releases the GIL for ~15 µs gets: CPython hands the GIL over
    on every call), and of the size whose call takes as long as the corpus's average ``bid``
    call (what any GIL-releasing call of that length gets)."""

    def bid_call() -> Callable[[bytes], object]:
        # The thread's own bound method and clock value (NOW + 0.0 is a new float object).
        bid, now = engine.bid, NOW + 0.0
        return lambda body: bid(body, now=now)

    workloads: dict[str, tuple[Callable[[], Callable[[bytes], object]], list[bytes]]] = {
        "corpus": (bid_call, bodies),
        "typical": (bid_call, [TYPICAL_REQUEST] * 500),
        "calibration": (_sha256_call, [bytes(1 << 20)] * 8),
        "calibration_short": (_sha256_call, [bytes(16 << 10)] * 500),
    }
    results: dict[str, Any] = {}
    for name, (call, work) in workloads.items():
        results[name] = _paired_rates(name, call, work, plan)
    # SHA-256 of the size whose call lasts as long as the corpus's average `bid` call.
    size = _matched_sha256_size(1.0 / results["corpus"]["one_thread_per_s"])
    matched = _paired_rates("calibration_matched", _sha256_call, [bytes(size)] * 500, plan)
    results["calibration_matched"] = {"bytes": size, **matched}
    return results


def _paired_rates(
    name: str,
    call: Callable[[], Callable[[bytes], object]],
    work: list[bytes],
    plan: Plan,
) -> dict[str, Any]:
    """1 and 2 threads on ``work``, in rounds alternating their order."""
    _throughput(call, work, 1, 1)  # warm-up
    started = time.perf_counter()
    _throughput(call, work, 1, 1)
    one_pass = time.perf_counter() - started
    passes = max(1, round(plan.thread_seconds / one_pass))
    rates: dict[int, list[float]] = {1: [], 2: []}
    busy: list[float] = []
    for turn in range(plan.thread_rounds):
        for threads in (1, 2) if turn % 2 == 0 else (2, 1):
            rate, cpu = _throughput(call, work, threads, passes)
            rates[threads].append(rate)
            if threads == 2:
                busy.append(cpu)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    # This machine's speed drifts by tens of percent between seconds; a 1-thread and a
    # 2-thread run measured back to back share the drift, so their ratio is the estimate.
    paired = statistics.median(b / a for a, b in zip(rates[1], rates[2], strict=True))
    _say(
        f"threads, {name}: 1 -> {one:,.0f}/s, 2 -> {two:,.0f}/s (paired {paired:.2f}x, "
        f"{statistics.median(busy):.2f} CPUs busy)"
    )
    return {
        "calls_per_pass": len(work),
        "passes": passes,
        "one_thread_per_s": round(one),
        "two_threads_per_s": round(two),
        "ratio": round(paired, 2),
        "ratio_of_medians": round(two / one, 2),
        "two_threads_cpu_per_wall": round(statistics.median(busy), 2),
        "rounds": plan.thread_rounds,
        "all": {str(k): [round(x) for x in v] for k, v in rates.items()},
    }


# ---- the report ----------------------------------------------------------------------------


def _targets(
    typical: dict[str, Any], corpus: dict[str, Any], threads: dict[str, Any]
) -> list[dict[str, Any]]:
    e2e = {k: r["end_to_end"]["p50_us"] for k, r in typical.items()}
    rest = {k: r["rest"]["p50_us"] for k, r in typical.items()}
    minus = {k: r["p50_minus_model_call_us"] for k, r in typical.items()}
    rows: list[tuple[str, float | None, float]] = [
        ("end to end, p50: >= 10x the pure Python path", e2e["pure"] / e2e["bidcore"], 10.0),
        ("end to end, p50: >= 3x the best Python path", e2e["best"] / e2e["bidcore"], 3.0),
        ("all but scoring, p50: >= 50x the pure Python path", rest["pure"] / rest["bidcore"], 50.0),
        ("all but scoring, p50: >= 10x the best Python path", rest["best"] / rest["bidcore"], 10.0),
    ]
    for name, goal in (("pure", 50.0), ("best", 10.0)):
        # The split; meaningless when bidcore's model call alone outlasts its whole bid.
        ratio = minus[name] / minus["bidcore"] if minus["bidcore"] > 0 else None
        rows.append(
            (
                f"(p50 minus the model call alone) >= {goal:.0f}x the {name} Python path",
                ratio,
                goal,
            )
        )
    out: list[dict[str, Any]] = [
        {
            "target": name,
            "measured": None if value is None else round(value, 2),
            "goal": goal,
            "met": value is not None and value >= goal,
        }
        for name, value, goal in rows
    ]
    for name, stats in (("typical request", typical["bidcore"]["end_to_end"]), ("corpus", corpus)):
        ratio = stats["p99_us"] / stats["p50_us"]
        out.append(
            {
                "target": f"p99 within 3x of p50 ({name})",
                "measured": round(ratio, 2),
                "goal": 3.0,
                "met": ratio <= 3.0,
            }
        )
    ratio = threads["corpus"]["ratio"]
    out.append(
        {
            "target": "2 threads >= 1.8x the throughput of 1 (corpus)",
            "measured": ratio,
            "goal": 1.8,
            "met": ratio >= 1.8,
        }
    )
    return out


def _us(x: float) -> str:
    return f"{x:,.1f}"


def markdown(report: dict[str, Any]) -> str:
    setup, typical = report["setup"], report["typical"]
    lines = [
        f"Typical request: {setup['request_bytes']:,} bytes, one banner imp, first price; "
        f"{len(setup['targeted'])} of {setup['campaigns']} campaigns pass targeting and are "
        f"scored as one {setup['block_rows']}-row block by the 300 x 63 CTR model. "
        "µs per request; (n.nx): p50 over bidcore's.",
        "",
        "| path | p50 | p99 | rest: with a 1-tree model, p50 | scoring in the path | "
        "model call alone, p50 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, r in typical.items():
        e2e, rest = r["end_to_end"], r["rest"]
        p50, rest_p50 = _us(e2e["p50_us"]), _us(rest["p50_us"])
        if key != "bidcore":
            p50 += f" ({r['end_to_end_over_bidcore']:.1f}x)"
            rest_p50 += f" ({r['rest_over_bidcore']:.1f}x)"
        lines.append(
            f"| {r['label']} | {p50} | {_us(e2e['p99_us'])} | {rest_p50} | "
            f"{_us(r['scoring_in_path_p50_us'])} | {_us(r['model_call_alone']['p50_us'])} |"
        )
    lines += ["", "| target | measured | met |", "|---|---:|---|"]
    for t in report["targets"]:
        measured = "n/a" if t["measured"] is None else f"{t['measured']:.2f}x"
        lines.append(f"| {t['target']} | {measured} | {'yes' if t['met'] else '**no**'} |")
    corpus = report["corpus"]
    lines += [
        "",
        "| corpus, `Engine.bid` on each request alone | requests | p50 | p99 |",
        "|---|---:|---:|---:|",
        f"| all (median {corpus['bytes_median']:,} B) | {corpus['requests']:,} | "
        f"{_us(corpus['p50_us'])} | {_us(corpus['p99_us'])} |",
        f"| those that bid ({corpus['bid_share']:.1%}) | {corpus['bidding_requests']:,} | "
        f"{_us(corpus['bids']['p50_us'])} | {_us(corpus['bids']['p99_us'])} |",
        f"| those that do not | {corpus['requests'] - corpus['bidding_requests']:,} | "
        f"{_us(corpus['no_bids']['p50_us'])} | {_us(corpus['no_bids']['p99_us'])} |",
        "",
        "| in a loop, per thread | 1 thread | 2 threads | ratio, paired rounds | CPUs busy (2) |",
        "|---|---:|---:|---:|---:|",
    ]
    names = {
        "corpus": "`Engine.bid` over the corpus",
        "typical": "`Engine.bid` on the typical request",
        "calibration": "the machine: `hashlib.sha256` of 1 MB (GIL released, ~1 ms a call)",
        "calibration_short": "`hashlib.sha256` of 16 KB (GIL released, ~15 µs a call)",
    }
    for name, t in report["threads"].items():
        if name == "calibration_matched":
            names[name] = (
                f"`hashlib.sha256` of {t['bytes']:,} B (GIL released, as long a call as "
                "the corpus's average `bid`)"
            )
        lines.append(
            f"| {names.get(name, name)} | {t['one_thread_per_s']:,}/s | "
            f"{t['two_threads_per_s']:,}/s | {t['ratio']:.2f}x | "
            f"{t['two_threads_cpu_per_wall']:.2f} |"
        )
    lines += [
        "",
        "| the best path's scorer candidates, on the block | p50 | p99 |",
        "|---|---:|---:|",
    ]
    for key, s in report["scorers"].items():
        chosen = " (chosen)" if key == report["best_scorer"] else ""
        lines.append(f"| {key}{chosen} | {_us(s['p50_us'])} | {_us(s['p99_us'])} |")
    for key, reason in report["scorers_skipped"].items():
        lines.append(f"| {key} | skipped: {reason} | |")
    return "\n".join(lines)


def _meta(
    quick: bool, load_before: tuple[float, ...], seconds: float, plan: Plan
) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in ("bidcore", "lightgbm", "lleaves", "llvmlite", "tl2cgen", "treelite", "msgspec"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "quick": quick,
        "seconds": round(seconds, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
        "plan": dataclasses.asdict(plan),
        "percentiles": "nearest rank over per-call times",
    }


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
