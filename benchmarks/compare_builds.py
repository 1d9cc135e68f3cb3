"""A/B of two builds of ``bidcore._core``: is build A faster or slower than build B?

Loads both extension modules into one process and times ``RequestParser.validate`` over the
valid requests of the corpus (and its dense ones), alternating rounds so machine noise hits both
alike. Build a variant into its own target directory and unpack its wheel, e.g.

    CARGO_TARGET_DIR=/tmp/b maturin build --release --out /tmp/b && unzip -d /tmp/b /tmp/b/*.whl
    python benchmarks/compare_builds.py bidcore/_core.abi3.so /tmp/b/bidcore/_core.abi3.so

Decisions taken with it (2-core CI class machine, medians of 21 rounds, three runs each):
- abi3 vs a per-version cp311 build: ratio 0.991, 1.055, 0.999 — no difference beyond noise, so
  bidcore ships one abi3 wheel for every CPython >= 3.11.
- mimalloc as the extension's global allocator vs the system one: 1.039, 1.041, 1.005 on the
  corpus — no gain, so no extra dependency.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

CORPUS = Path(__file__).resolve().parent.parent / "tests/fixtures/openrtb/requests.jsonl"


def _load(name: str, path: str) -> ModuleType:
    # The init symbol is PyInit__core whatever the package, so any "<pkg>._core" name loads it.
    spec = importlib.util.spec_from_file_location(f"{name}._core", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compare(name: str, bodies: list[bytes], a: ModuleType, b: ModuleType) -> None:
    contestants = {"A": a.RequestParser().validate, "B": b.RequestParser().validate}
    times: dict[str, list[float]] = {label: [] for label in contestants}
    for round_number in range(21):
        order = list(contestants.items())
        for label, validate in order if round_number % 2 == 0 else reversed(order):
            started = time.perf_counter()
            for body in bodies:
                validate(body)
            times[label].append(time.perf_counter() - started)
    per_request = {label: statistics.median(t) / len(bodies) * 1e9 for label, t in times.items()}
    print(
        f"{name} ({len(bodies)} requests): A {per_request['A']:.0f} ns, "
        f"B {per_request['B']:.0f} ns per request; A/B = {per_request['A'] / per_request['B']:.3f}"
    )


def main() -> None:
    a, b = _load("build_a", sys.argv[1]), _load("build_b", sys.argv[2])
    valid = []
    for body in CORPUS.read_bytes().splitlines():
        try:
            b.RequestParser().validate(body)
        except ValueError:
            continue
        valid.append(body)
    _compare("corpus", valid, a, b)
    _compare("dense", [body for body in valid if len(body) >= 1024], a, b)


if __name__ == "__main__":
    main()
