"""Is the abi3 (stable ABI) build of ``bidcore._core`` slower than a per-version build?

Loads two builds of the same source into one process and times ``RequestParser.validate`` over
the valid requests of the corpus, alternating rounds so machine noise hits both alike.

    CARGO_TARGET_DIR=/tmp/cp311 maturin build --release --out /tmp/cp311 \\
        --features pyo3/extension-module          # per-version: drop abi3 from pyproject first
    python benchmarks/abi3_vs_cp311.py ABI3_SO CP311_SO

Measured 2026-11-22 on the 2-core CI class machine (3,784 requests, medians of 21 rounds, three
runs): abi3/cp311 = 0.991, 1.055, 0.999 — no difference beyond noise, so bidcore ships abi3.
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


def main() -> None:
    abi3, per_version = _load("abi3", sys.argv[1]), _load("cp311", sys.argv[2])
    valid = []
    for body in CORPUS.read_bytes().splitlines():
        try:
            per_version.RequestParser().validate(body)
        except ValueError:
            continue
        valid.append(body)
    contestants = {
        "abi3": abi3.RequestParser().validate,
        "cp311": per_version.RequestParser().validate,
    }
    times: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(21):
        for name, validate in contestants.items():
            started = time.perf_counter()
            for body in valid:
                validate(body)
            times[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(t) / len(valid) * 1e9 for name, t in times.items()}
    print(
        f"{len(valid)} requests: abi3 {medians['abi3']:.0f} ns, cp311 {medians['cp311']:.0f} ns "
        f"per request; abi3/cp311 = {medians['abi3'] / medians['cp311']:.3f}"
    )


if __name__ == "__main__":
    main()
