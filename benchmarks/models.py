"""Per-row cost of scoring LightGBM models: bidcore and its peers, side by side in one run.

    python benchmarks/models.py            # full run (a few minutes once the caches are warm)
    python benchmarks/models.py --quick    # few samples: checks that everything runs

Models (``bidcore.testing.models``, cached in ``.benchmarks/models``): SMALL, 50 trees x 31
leaves, and LARGE, 300 x 63 (``benchmark_model_path()``), both binary with categorical features.
Rows: 10,000 rows of ``ctr_data(seed=7)`` (not the training seed); single rows and 16-row
blocks cycle through the first 4,096 of them, never the same row over and over (the branch
predictor would learn its path), and the batch mode scores all 10,000 in one call.

Every contestant (``model_contestants.CONTESTANTS``) is first checked: its raw margins on every
row it will be timed on, scored in the mode it will be timed in, must be within 1e-9 of
``Booster.predict(raw_score=True)``; a contestant that disagrees is reported as a mismatch and
not timed. Timing: a sample is 64 rows (64 one-row calls, or four 16-row blocks) between two
clock reads (``time.perf_counter_ns`` in Python, ``clock_gettime(CLOCK_MONOTONIC)`` in the C
harness), the garbage collector off; a batch sample is one 10k-row call. The per-row cost of a
sample is its time over its rows; p50 and p99 are nearest-rank percentiles over the samples.
Everything runs in this one process (the C harness in a child process, one at a time).

Writes ``.benchmarks/models.json`` and prints a Markdown table (rows: contestant x mode; columns:
per-row ns p50 and p99 per model; a contestant's p50 over bidcore's native evaluator's at the
same rows per call in brackets). Peers that are not installed or cannot build are reported with
the reason. Compiled libraries are cached under ``.benchmarks/``: the first run compiles the
LARGE model with TL2cgen + gcc (minutes; ``--jobs`` gcc workers) and with lleaves (~100 s).
lleaves is not in ``requirements/dev.txt``: ``pip install -r requirements/bench.txt``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import lightgbm
import numpy as np
import numpy.typing as npt
from model_contestants import (
    BATCH,
    BLOCK,
    CAMPAIGN_COLUMNS,
    CANDIDATES,
    CONTESTANTS,
    NATIVE,
    ROWS_PER_SAMPLE,
    Budget,
    Contestant,
    Env,
    Mode,
    ModelUnderTest,
    RowSet,
    Runner,
    Samples,
    Stats,
    UnavailableError,
    build_harness,
    candidate_rows,
    write_rows,
)

from bidcore.compile import TOLERANCE
from bidcore.compile.toolchain import toolchain
from bidcore.testing.models import (
    LARGE,
    SMALL,
    ModelSpec,
    benchmark_model_path,
    ctr_data,
    model_path,
)

REPO: Final = Path(__file__).resolve().parent.parent
WORK: Final = REPO / ".benchmarks"
ROW_SEED: Final = 7
CYCLE_ROWS: Final = 4_096
BATCH_ROWS: Final = 10_000

Status = Literal["ok", "skipped", "mismatch", "error"]

# (single rows and blocks, the 10k batch), in total over the rounds
FULL: Final = (Budget(200, 20_000, 2.0), Budget(10, 200, 3.0))
QUICK: Final = (Budget(20, 2_000, 0.2), Budget(3, 20, 0.2))
ROUNDS: Final = 10
"""Timing rounds of a full run (--quick: one). The budgets are shared out over the rounds, so
more rounds cost no more time: they interleave the contestants more finely. This host's speed
drifts by up to 2x over a minute; with 5 rounds (15-20 s each) a contestant could sit in a slow
stretch its rivals missed, and the same build's ratio to lleaves moved from 0.68 to 1.28
between two runs. The ratios are therefore paired: each round's p50 over bidcore's in the same
round, whose contestants ran seconds apart, and the median of those."""


@dataclasses.dataclass(frozen=True)
class Result:
    model: str
    contestant: str
    label: str
    called_from: str
    mode: str
    mode_label: str
    rows_per_call: int
    status: Status
    reason: str | None = None
    rows_checked: int = 0
    max_abs_diff: float | None = None
    p50_ns: float | None = None
    p99_ns: float | None = None
    samples: int = 0
    rows_per_sample: int = 0
    round_p50_ns: tuple[float, ...] = ()
    """Each round's p50, in the order the rounds ran."""
    p50_over_bidcore_native: float | None = None
    """The median over the rounds of this round's p50 over bidcore native's in the same round
    and mode (paired: a slow stretch of the host that spans a round slows both)."""
    round_ratios: tuple[float, ...] = ()
    """Those per-round ratios, in round order."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="few samples, to check it runs")
    parser.add_argument(
        "--models", nargs="+", choices=("small", "large"), default=["small", "large"]
    )
    parser.add_argument("--json", type=Path, default=WORK / "models.json", help="result file")
    parser.add_argument("--jobs", type=int, default=1, help="gcc workers for TL2cgen compiles")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("bidcore.compile").setLevel(logging.INFO)

    load_before = os.getloadavg()
    started = time.perf_counter()
    models = _models(args.models)
    data = ctr_data(BATCH_ROWS, seed=ROW_SEED).features
    cycle = write_rows(data[:CYCLE_ROWS], WORK / "peers" / f"rows-s{ROW_SEED}-{CYCLE_ROWS}.bin")
    groups = (BATCH_ROWS - 1) // 17
    candidates = write_rows(
        candidate_rows(data, groups), WORK / "peers" / f"candidates-s{ROW_SEED}-{groups}.bin"
    )
    batch = write_rows(data, WORK / "peers" / f"rows-s{ROW_SEED}-{BATCH_ROWS}.bin")
    budgets = QUICK if args.quick else FULL
    rounds = 1 if args.quick else ROUNDS

    results: list[Result] = []
    with contextlib.ExitStack() as cleanup:
        try:
            harness, missing = build_harness(WORK), ""
        except UnavailableError as err:
            harness, missing = None, f"no C harness: {err}"
        env = Env(WORK, args.jobs, harness, missing, cleanup)
        for model in models:
            results += _run_model(model, env, cycle, batch, candidates, budgets, rounds)
    order = {(c.key, m.key): i for i, (c, m) in enumerate(_line_up())}
    results.sort(key=lambda r: (args.models.index(r.model), order[(r.contestant, r.mode)]))

    results = _with_ratios(results)
    report = {
        "meta": _meta(args.quick, load_before, time.perf_counter() - started, budgets, rounds),
        "models": {m.key: {**dataclasses.asdict(m), "path": str(m.path)} for m in models},
        "results": [dataclasses.asdict(r) for r in results],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    print(markdown(results, models, budgets, rounds))
    _say(f"wrote {args.json}")
    return 0


def _models(keys: Sequence[str]) -> list[ModelUnderTest]:
    models = []
    for key in keys:
        if key == "small":
            label, path = "50x31", model_path(ModelSpec(size=SMALL), WORK / "models")
        else:
            label, path = "300x63", benchmark_model_path(ModelSpec(size=LARGE), root=REPO)
        models.append(
            ModelUnderTest(
                key=key,
                label=label,
                path=path,
                sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                num_features=lightgbm.Booster(model_file=path).num_feature(),
            )
        )
    return models


def _result(
    model: ModelUnderTest, contestant: Contestant, mode: Mode, status: Status, **fields: Any
) -> Result:
    return Result(
        model=model.key,
        contestant=contestant.key,
        label=contestant.label,
        called_from=contestant.called_from,
        mode=mode.key,
        mode_label=mode.label,
        rows_per_call=mode.rows_per_call or BATCH_ROWS,
        status=status,
        **fields,
    )


@dataclasses.dataclass
class _Timed:
    """A checked runner and the samples pooled over the rounds."""

    contestant: Contestant
    mode: Mode
    runner: Runner
    rows: RowSet
    budget: Budget
    checked: dict[str, Any]
    samples: Samples = dataclasses.field(default_factory=lambda: Samples([], 0))
    round_p50_ns: list[float] = dataclasses.field(default_factory=list)
    error: str | None = None


def _run_model(
    model: ModelUnderTest,
    env: Env,
    cycle: RowSet,
    batch: RowSet,
    candidates: RowSet,
    budgets: tuple[Budget, Budget],
    rounds: int,
) -> list[Result]:
    """Build and check every contestant for the model, then time them all in rounds, the order
    reversed every other round, so that a burst of noise from the rest of the machine is spread
    over all of them rather than landing on one."""
    booster = lightgbm.Booster(model_file=model.path)
    expected = {
        id(rows): np.asarray(
            booster.predict(rows.array, raw_score=True, num_threads=1), dtype=np.float64
        )
        for rows in (cycle, batch, candidates)
    }
    results: list[Result] = []
    timed: list[_Timed] = []
    for contestant in CONTESTANTS:
        try:
            runners = contestant.build(model, env)
        except UnavailableError as err:
            results.extend(
                _result(model, contestant, mode, "skipped", reason=str(err))
                for mode in contestant.modes
            )
            _say(f"{model.key}: {contestant.label}: skipped: {err}")
            continue
        modes = list(contestant.modes)
        if BLOCK.key in runners:
            # Candidate blocks go through the same block call, on rows that share columns.
            runners[CANDIDATES.key] = runners[BLOCK.key].with_mode(CANDIDATES)
            modes.append(CANDIDATES)
        for mode in modes:
            rows = {BATCH.key: batch, CANDIDATES.key: candidates}.get(mode.key, cycle)
            runner = runners[mode.key]
            failed, checked = _check(runner, rows, expected[id(rows)])
            if failed is not None:
                results.append(_result(model, contestant, mode, failed[0], reason=failed[1]))
                _say(_progress(results[-1]))
                continue
            budget = budgets[1] if mode is BATCH else budgets[0]
            timed.append(_Timed(contestant, mode, runner, rows, _share(budget, rounds), checked))
    for turn in range(rounds):
        _say(f"{model.key}: timing, round {turn + 1} of {rounds}")
        for entry in timed if turn % 2 == 0 else reversed(timed):
            if entry.error is not None:
                continue
            try:
                got = entry.runner.time(entry.rows, entry.budget)
            except Exception as err:  # a peer failing must not stop the others
                entry.error = f"{type(err).__name__}: {err}"
                continue
            entry.samples = Samples(entry.samples.per_row_ns + got.per_row_ns, got.rows_per_sample)
            entry.round_p50_ns.append(Stats.of(got).p50_ns)
    for entry in timed:
        if entry.error is not None:
            result = _result(
                model, entry.contestant, entry.mode, "error", reason=entry.error, **entry.checked
            )
        else:
            stats = dataclasses.asdict(Stats.of(entry.samples))
            result = _result(
                model,
                entry.contestant,
                entry.mode,
                "ok",
                **entry.checked,
                **stats,
                round_p50_ns=tuple(entry.round_p50_ns),
            )
        results.append(result)
        _say(_progress(result))
    return results


def _check(
    runner: Runner, rows: RowSet, expected: npt.NDArray[np.float64]
) -> tuple[tuple[Status, str] | None, dict[str, Any]]:
    """Whether the runner's margins are LightGBM's: (None, what was checked), or the failure."""
    try:
        margins = runner.predict(rows)
    except Exception as err:  # a peer failing must not stop the others
        return ("error", f"{type(err).__name__}: {err}"), {}
    diff = _max_abs_diff(margins, expected)
    checked = {"rows_checked": len(expected), "max_abs_diff": diff if math.isfinite(diff) else None}
    if diff <= TOLERANCE:
        return None, checked
    if math.isfinite(diff):
        reason = f"raw margins differ from Booster.predict by up to {diff:.3g}"
    else:
        reason = f"{margins.shape} margins for {len(expected)} rows, or NaN where LightGBM has none"
    return ("mismatch", f"{reason} (tolerance {TOLERANCE:g})"), checked


def _share(budget: Budget, rounds: int) -> Budget:
    """One round's part of a budget."""
    return Budget(
        min_samples=math.ceil(budget.min_samples / rounds),
        max_samples=max(1, budget.max_samples // rounds),
        seconds=budget.seconds / rounds,
    )


def _line_up() -> list[tuple[Contestant, Mode]]:
    """Every contestant in each of its modes; one with a block call also on candidate blocks."""
    return [
        (c, m)
        for c in CONTESTANTS
        for m in (*c.modes, *((CANDIDATES,) if BLOCK in c.modes else ()))
    ]


def _max_abs_diff(got: npt.NDArray[np.float64], expected: npt.NDArray[np.float64]) -> float:
    if got.shape != expected.shape:
        return math.inf
    both_nan = np.isnan(got) & np.isnan(expected)
    diff = np.where(both_nan, 0.0, np.abs(got - expected))
    return float(np.nan_to_num(diff, nan=math.inf).max()) if diff.size else 0.0


def _with_ratios(results: list[Result]) -> list[Result]:
    """Each result with its paired ratios to bidcore native in the same mode: round by round
    (the rounds both were timed in), and their median."""
    native = {
        (r.model, r.mode): r.round_p50_ns
        for r in results
        if r.contestant == NATIVE and r.status == "ok"
    }
    out = []
    for r in results:
        base = native.get((r.model, r.mode), ())
        if r.status == "ok" and len(base) == len(r.round_p50_ns) > 0 and all(base):
            ratios = tuple(round(p50 / b, 3) for p50, b in zip(r.round_p50_ns, base, strict=True))
            median = statistics.median(ratios)
            r = dataclasses.replace(r, round_ratios=ratios, p50_over_bidcore_native=median)
        out.append(r)
    return out


def markdown(
    results: list[Result],
    models: list[ModelUnderTest],
    budgets: tuple[Budget, Budget],
    rounds: int,
) -> str:
    """The table for README.md, then what was not timed and why."""
    head = ["scorer", "called from", "rows per call"]
    for m in models:
        head += [f"{m.label} p50", f"{m.label} p99"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    by_key = {(r.contestant, r.mode, r.model): r for r in results}
    notes: dict[str, list[str]] = {}
    for contestant, mode in _line_up():
        cells = [contestant.label, contestant.called_from, mode.label]
        for m in models:
            r = by_key[(contestant.key, mode.key, m.key)]
            cells += _cells(r)
            if r.status != "ok" and r.reason:
                where = f"{contestant.label} ({contestant.called_from}), {m.label}"
                notes.setdefault(f"{r.status}: {r.reason}", []).append(f"{where}, {mode.label}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Per-row ns, p50 and p99 over the samples. One row and 16-row blocks: a sample is 64 "
        "rows (64 calls or four blocks) between two clock reads (perf_counter_ns in Python, "
        "clock_gettime in C); the 10k batch: one call per sample. At least "
        f"{budgets[0].min_samples} samples per mode ({budgets[1].min_samples} for the batch), "
        f"taken in {rounds} round(s) that alternate the order of the contestants. (n.nnx): the "
        "median over the rounds of the round's p50 over the bidcore native evaluator's p50 "
        "in the same round and mode (from Python), so that the host's drift between rounds "
        "cancels; [k/n]: bidcore native was the faster in k of the n rounds (shown where k < n). "
        f"Rows: ctr_data(seed={ROW_SEED}), {CYCLE_ROWS:,} cycled, {BATCH_ROWS:,} for the batch; "
        "candidate blocks: one row's features with 16 other rows' campaign columns "
        f"{list(CAMPAIGN_COLUMNS)} (the engine scores an imp's eligible campaigns together). "
        "A scorer is timed only after its raw margins matched Booster.predict(raw_score=True) "
        f"to {TOLERANCE:g} on every row, in the mode timed.",
    ]
    if notes:
        lines += ["", "Not timed:"]
        for reason, places in notes.items():
            lines.append(f"- {'; '.join(_shorten(places))}: {reason}")
    return "\n".join(lines)


def _cells(r: Result) -> list[str]:
    if r.status != "ok" or r.p50_ns is None or r.p99_ns is None:
        return [r.status, ""]
    p50 = f"{r.p50_ns:,.0f}"
    if r.contestant != NATIVE and r.p50_over_bidcore_native is not None:
        p50 += f" ({r.p50_over_bidcore_native:.2f}x)"
        won = sum(ratio > 1 for ratio in r.round_ratios)
        if won < len(r.round_ratios):
            p50 += f" [{won}/{len(r.round_ratios)}]"
    return [p50, f"{r.p99_ns:,.0f}"]


def _shorten(where: list[str]) -> list[str]:
    """One entry per contestant and model when every mode shares the reason."""
    seen: dict[str, list[str]] = {}
    for entry in where:
        head, _, mode = entry.rpartition(", ")
        seen.setdefault(head, []).append(mode)
    return [f"{head} ({', '.join(modes)})" for head, modes in seen.items()]


def _meta(
    quick: bool,
    load_before: tuple[float, ...],
    seconds: float,
    budgets: tuple[Budget, Budget],
    rounds: int,
) -> dict[str, Any]:
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
        "versions": {**_versions(), "gcc": toolchain().gcc},
        "rows": {"seed": ROW_SEED, "cycled": CYCLE_ROWS, "batch": BATCH_ROWS},
        "timing": {
            "rows_per_sample": ROWS_PER_SAMPLE,
            "budget_single_and_block": dataclasses.asdict(budgets[0]),
            "budget_batch": dataclasses.asdict(budgets[1]),
            "rounds": rounds,
            "percentiles": "nearest rank over per-row sample times",
        },
        "tolerance": TOLERANCE,
    }


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in ("bidcore", "lightgbm", "treelite", "tl2cgen", "numpy", "lleaves", "llvmlite"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor()


def _progress(r: Result) -> str:
    where = f"{r.model}: {r.label} ({r.called_from}, {r.mode_label})"
    if r.status == "ok":
        return f"{where}: p50 {r.p50_ns:,.0f} ns, p99 {r.p99_ns:,.0f} ns ({r.samples} samples)"
    return f"{where}: {r.status}: {r.reason}"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
