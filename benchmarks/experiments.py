"""What experiments cost ``Engine.bid``: the demo bidder with and without three layers.

    python benchmarks/experiments.py            # full run (about a minute)
    python benchmarks/experiments.py --quick    # few samples: checks that everything runs

Three engines over the same demo bidder (``bidcore/demo``: thirteen campaigns, the ctr and cvr
models), in one process:

- **none**: no ``[experiments]`` table;
- **assign**: three layers, each with one experiment covering every unit, whose arms change
  nothing: what assignment itself costs (three unit-id lookups, six FNV-1a hashes, the arm
  bookkeeping, the decision's per-arm counters). This is the issue's "three layers" figure;
- **applied**: the same three layers with arms that act: a bid multiplier, shading on an own
  curve, and a ctr model of the arm's own (the demo's artifact loaded a second time, so the
  candidates of that arm are scored as a separate block). Its decisions differ from **none**'s
  (other prices, other winners), so its time is the cost of different decisions as much as of
  assignment; it is reported for scale.

Each round times every engine on every corpus request the demo accepts, each call alone
(``perf_counter_ns``, the collector off), engines interleaved and their order rotated per
round. The figure is the median over rounds of the ratio of each engine's median per-call time
to **none**'s in the same round: the machine's speed drifts between seconds, a round shares
the drift. The same on the demo's sample request, in blocks of calls. Writes
``.benchmarks/experiments.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import bidcore
from bidcore import demo
from bidcore.config import Config, loads

REPO: Final = Path(__file__).resolve().parent.parent
WORK: Final = REPO / ".benchmarks"
CORPUS_PATH: Final = REPO / "tests" / "fixtures" / "openrtb" / "requests.jsonl"
NOW: Final = 1_795_390_200.0  # a Tuesday 16:10 in New York: the dayparted campaigns run

ASSIGN_ONLY: Final = """
[[experiments.layers]]
name = "models"
seed = "bench-models"
unit = ["user.id", "device.ifa"]
[[experiments.layers.experiments]]
key = "ctr-holdout"
arms = [{name = "control"}, {name = "holdout"}]

[[experiments.layers]]
name = "pricing"
seed = "bench-pricing"
unit = ["user.buyeruid", "user.id"]
[[experiments.layers.experiments]]
key = "pricing-ab"
arms = [{name = "a", weight = 0.5}, {name = "b", weight = 0.3}, {name = "c", weight = 0.2}]

[[experiments.layers]]
name = "shading"
seed = "bench-shading"
hash_version = 1
unit = ["id"]
[[experiments.layers.experiments]]
key = "shading-ab"
coverage = 0.9
arms = [{name = "control"}, {name = "treatment"}]
"""

APPLIED: Final = """
[[experiments.layers]]
name = "models"
seed = "bench-models"
unit = ["user.id", "device.ifa"]
[[experiments.layers.experiments]]
key = "ctr-holdout"
arms = [{name = "control"}, {name = "challenger", models = {ctr = "models/ctr"}}]

[[experiments.layers]]
name = "pricing"
seed = "bench-pricing"
unit = ["user.buyeruid", "user.id"]
[[experiments.layers.experiments]]
key = "pricing-ab"
arms = [
    {name = "a", weight = 0.5},
    {name = "b", weight = 0.3, bid_multiplier = 1.1},
    {name = "c", weight = 0.2, bid_multiplier = 0.9},
]

[[experiments.layers]]
name = "shading"
seed = "bench-shading"
hash_version = 1
unit = ["id"]
[[experiments.layers.experiments]]
key = "shading-ab"
coverage = 0.9
arms = [{name = "control"}, {name = "treatment", shading = {center = 1.6, scale = 0.45}}]
"""


def _config(extra: str) -> Config:
    return loads(demo.config_path().read_text(encoding="utf-8") + extra)


def _corpus(engine: bidcore.Engine) -> list[bytes]:
    accepted = []
    for body in CORPUS_PATH.read_bytes().splitlines():
        if not body:
            continue
        try:
            engine.bid(body, now=NOW)
        except bidcore.InvalidRequestError:
            continue
        accepted.append(body)
    return accepted


def _pass(engine: bidcore.Engine, bodies: Sequence[bytes]) -> float:
    """The median per-call time (ns) of one pass over ``bodies``, each call timed alone."""
    bid = engine.bid
    clock = time.perf_counter_ns
    times = [0] * len(bodies)
    gc.collect()
    gc.disable()
    try:
        for k, body in enumerate(bodies):
            started = clock()
            bid(body, now=NOW)
            times[k] = clock() - started
    finally:
        gc.enable()
    return float(statistics.median(times))


def _rounds(
    engines: dict[str, bidcore.Engine], bodies: Sequence[bytes], rounds: int
) -> dict[str, Any]:
    names = list(engines)
    medians: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(3):  # warm-up: caches, branch predictors, the scratch buffers' growth
        for name in names:
            _pass(engines[name], bodies)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            medians[name].append(_pass(engines[name], bodies))
    base = medians["none"]
    out: dict[str, Any] = {}
    for name in names:
        ratios = [m / b for m, b in zip(medians[name], base, strict=True)]
        out[name] = {
            "median_ns": round(statistics.median(medians[name]), 1),
            "ratio_to_none": round(statistics.median(ratios), 4),
            "ratio_spread": [round(min(ratios), 4), round(max(ratios), 4)],
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="few rounds, to check it runs")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per measurement")
    parser.add_argument("--json", type=Path, default=WORK / "experiments.json", help="result file")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 15)
    started = time.perf_counter()
    base_dir = demo.config_path().parent
    engines = {
        "none": bidcore.Engine(_config(""), base_dir=base_dir),
        "assign": bidcore.Engine(_config(ASSIGN_ONLY), base_dir=base_dir),
        "applied": bidcore.Engine(_config(APPLIED), base_dir=base_dir),
    }
    bodies = _corpus(engines["none"])
    if args.quick:
        bodies = bodies[:500]
    # Assignment is on: every engine with layers assigns the corpus (checked, not assumed).
    explained = engines["assign"].explain(bodies[0], now=NOW)
    if len(explained["arms"]) < 2:
        raise SystemExit(f"the assign engine placed the first request in {explained['arms']}")
    sample = demo.sample_request()
    corpus = _rounds(engines, bodies, rounds)
    typical = _rounds(engines, [sample] * (200 if args.quick else 2000), rounds)
    report = {
        "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "quick": args.quick,
        "rounds": rounds,
        "requests": len(bodies),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "seconds": round(time.perf_counter() - started, 1),
        "corpus": corpus,
        "typical": typical,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown(report))
    return 0


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Engine.bid with and without three experiment layers ({report['requests']} corpus "
        f"requests, {report['rounds']} rounds; median per call, and the median over rounds of "
        "the ratio to no experiments):",
        "",
        "| engine | corpus p50 (us) | ratio | sample request p50 (us) | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("none", "assign", "applied"):
        c, t = report["corpus"][name], report["typical"][name]
        lines.append(
            f"| {name} | {c['median_ns'] / 1e3:.2f} | {c['ratio_to_none']:.3f} | "
            f"{t['median_ns'] / 1e3:.2f} | {t['ratio_to_none']:.3f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
