"""The CI speed gate: fail when bidcore's speed-up over a peer falls below its floor.

Only ratios are gated, never absolute times: the machine is shared and noisy, and a slow or busy
machine slows both contestants alike when they run in the same process, interleaved. Each round
times the native path, then the peer, over the whole set (the next round in the other order, so
neither always runs on the warmer cache); drift during the run lands on both. The ratio is the
peer's median round over the native median round.

    python benchmarks/gate.py [--rounds N]

Exits 1 when a ratio is below its floor, and prints every ratio either way. A goal's gate is one
line in FLOORS.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from typing import Final

from contestants import LABELS, NATIVE, TYPED_PEER, Contestant, build_contestants, run_round
from corpus import BenchSet, load_sets

# Target: the native path at least 3x faster than msgspec's typed decode, on the whole corpus and
# on its dense (>= 1 KB) requests. Reached on 2026-11-22 once request views moved into an arena:
# five gate runs at a quiet moment of the shared 2-core machine gave 2.97-3.03x (corpus) and
# 3.03-3.17x (dense); ten runs while the host was busy spread 2.61-3.24x and 2.87-4.04x (the
# corpus ratio, dominated by small requests and the fixed cost of a call, suffers most). The
# floors sit 20% under the target so noise alone does not fail a build while a real regression
# (the gate's purpose) does; keep that margin when raising them. Keys are (set, peer); values
# are the least (peer median) / (native median) that passes.
FLOORS: Final[dict[tuple[str, str], float]] = {
    ("corpus", TYPED_PEER): 2.4,
    ("dense", TYPED_PEER): 2.4,
}

DEFAULT_ROUNDS: Final = 51
WARMUP_ROUNDS: Final = 3


def time_round(contestant: Contestant, bench_set: BenchSet) -> float:
    started = time.perf_counter()
    run_round(contestant, bench_set.bodies)
    return time.perf_counter() - started


def measure(
    bench_set: BenchSet, native: Contestant, peer: Contestant, rounds: int
) -> tuple[float, float]:
    """Median round of the native path and of the peer, measured in alternating order."""
    for _ in range(WARMUP_ROUNDS):
        time_round(native, bench_set)
        time_round(peer, bench_set)
    gc.collect()
    native_times: list[float] = []
    peer_times: list[float] = []
    for round_number in range(rounds):
        if round_number % 2 == 0:
            native_times.append(time_round(native, bench_set))
            peer_times.append(time_round(peer, bench_set))
        else:
            peer_times.append(time_round(peer, bench_set))
            native_times.append(time_round(native, bench_set))
    return statistics.median(native_times), statistics.median(peer_times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="rounds per contestant")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    started = time.perf_counter()

    sets = {bench_set.name: bench_set for bench_set in load_sets()}
    contestants = build_contestants()
    native = contestants[NATIVE]
    failures = []
    print(f"bench-gate: {args.rounds} interleaved rounds per contestant; ratio = peer / native")
    print(f"{'set':<8} {'contestant':<26} {'µs/request':>10} {'ratio':>7} {'floor':>6}")
    for (set_name, peer_name), floor in FLOORS.items():
        bench_set = sets[set_name]
        native_s, peer_s = measure(bench_set, native, contestants[peer_name], args.rounds)
        ratio = peer_s / native_s
        n = len(bench_set.bodies)
        verdict = "ok" if ratio >= floor else "BELOW FLOOR"
        print(f"{set_name:<8} {LABELS[NATIVE]:<26} {native_s / n * 1e6:>10.2f}")
        print(
            f"{set_name:<8} {LABELS[peer_name]:<26} {peer_s / n * 1e6:>10.2f}"
            f" {ratio:>6.2f}x {floor:>5.2f}x  {verdict}"
        )
        if ratio < floor:
            failures.append(f"{set_name} vs {LABELS[peer_name]}: {ratio:.2f}x < {floor:.2f}x")

    elapsed = time.perf_counter() - started
    if failures:
        print(f"bench-gate FAILED in {elapsed:.1f} s: " + "; ".join(failures))
        return 1
    print(f"bench-gate passed in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
