"""Print the comparison table of the last ``make bench`` run, as Markdown for the README.

Reads the JSON that pytest-benchmark wrote with ``--benchmark-json`` (default
``.benchmarks/latest.json`` at the repository root, or the path given as the only argument) and
prints one table per benchmark set. Per request is the median round divided by the set's size;
MB/s is the set's bytes over the median round (MB = 10^6 bytes).

Two ratios, both from medians of the same run: "x vs msgspec typed" is how many times faster
than msgspec's typed decode a contestant is (above 1 is faster), and "native speed-up" is the
contestant's time over bidcore's, so it reads as "bidcore is this many times faster".

    python benchmarks/report.py [PATH]
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contestants import LABELS, NATIVE, ORDER, TYPED_PEER

# Spelled out: ruff flags the literal sign as confusable with "x", but tables read better with it.
TIMES = "\N{MULTIPLICATION SIGN}"
DEFAULT_RESULTS = Path(__file__).resolve().parent.parent / ".benchmarks" / "latest.json"


@dataclass(frozen=True, slots=True)
class Result:
    set_name: str
    contestant: str
    median_s: float  # one round: every request of the set once
    rounds: int
    requests: int
    total_bytes: int
    median_request_bytes: int

    @property
    def per_request_us(self) -> float:
        return self.median_s / self.requests * 1e6

    @property
    def mb_per_s(self) -> float:
        return self.total_bytes / self.median_s / 1e6


def load_results(path: Path) -> list[Result]:
    document: dict[str, Any] = json.loads(path.read_bytes())
    results = []
    for bench in document["benchmarks"]:
        info = bench["extra_info"]
        results.append(
            Result(
                set_name=str(info["set"]),
                contestant=str(info["contestant"]),
                median_s=float(bench["stats"]["median"]),
                rounds=int(bench["stats"]["rounds"]),
                requests=int(info["requests"]),
                total_bytes=int(info["bytes"]),
                median_request_bytes=int(info["median_request_bytes"]),
            )
        )
    return results


def _contestant_rank(result: Result) -> int:
    # Contestants this version does not know go last rather than disappear.
    return ORDER.index(result.contestant) if result.contestant in ORDER else len(ORDER)


def set_table(results: list[Result]) -> str:
    """The Markdown section for one set (all results share ``set_name``)."""
    by_name = {result.contestant: result for result in results}
    native, peer = by_name.get(NATIVE), by_name.get(TYPED_PEER)
    first = results[0]
    lines = [
        f"#### {first.set_name}: {first.requests:,} requests, median {first.median_request_bytes:,}"
        f" bytes, {first.total_bytes / 1e6:.2f} MB per round",
        "",
        f"| contestant | µs / request | MB/s | {TIMES} vs msgspec typed | native speed-up |",
        "|---|--:|--:|--:|--:|",
    ]
    for result in sorted(results, key=_contestant_rank):
        vs_peer = f"{peer.median_s / result.median_s:.2f}{TIMES}" if peer else "n/a"
        speed_up = f"{result.median_s / native.median_s:.2f}{TIMES}" if native else "n/a"
        label = LABELS.get(result.contestant, result.contestant)
        lines.append(
            f"| {label} | {result.per_request_us:.2f} | {result.mb_per_s:.0f} | {vs_peer}"
            f" | {speed_up} |"
        )
    return "\n".join(lines)


def render(results: list[Result]) -> str:
    sets: dict[str, list[Result]] = {}
    for result in results:
        sets.setdefault(result.set_name, []).append(result)
    rounds = sorted({result.rounds for result in results})
    footer = (
        f"Medians of {'/'.join(map(str, rounds))} rounds per contestant, each round every"
        f" request of the set once. {TIMES} vs msgspec typed: msgspec's time over the"
        " contestant's (above 1 is faster). Native speed-up: the contestant's time over bidcore's."
    )
    return "\n\n".join([*(set_table(rows) for rows in sets.values()), footer])


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_RESULTS
    if not path.is_file():
        print(f"no benchmark results at {path}: run `make bench` first", file=sys.stderr)
        return 1
    results = load_results(path)
    if not results:
        print(f"{path} holds no benchmarks", file=sys.stderr)
        return 1
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
