"""Parsing a bid request: bidcore's native path against its peers, all in one pytest run.

Each benchmark round sends every request of its set through one contestant, so a round's time
divided by the set's size is the time per request; ``extra_info`` carries the size and bytes
for ``report.py``. Results are grouped by set.

It lives outside ``tests/``, so ``make test`` never runs it; ``make bench`` does, then prints the
table. ``pytest benchmarks --benchmark-disable`` runs each benchmark once, as a smoke test,
along with the plain tests below, which check that the untyped contestants read the same values.
"""

from __future__ import annotations

import json

import orjson
import pytest
import simdjson
from contestants import ORDER, Contestant, build_contestants, run_round
from corpus import BenchSet, load_sets, read_fields
from pytest_benchmark.fixture import BenchmarkFixture

# Rounds per set: a few seconds for the slowest contestant (json.loads), so the whole suite stays
# well under a minute on a 2-core machine while each median rests on dozens of rounds.
ROUNDS = {"corpus": 60, "dense": 200}
WARMUP_ROUNDS = 2


@pytest.fixture(scope="module")
def bench_sets() -> dict[str, BenchSet]:
    return {bench_set.name: bench_set for bench_set in load_sets()}


@pytest.fixture(scope="module")
def contestants() -> dict[str, Contestant]:
    return build_contestants()


@pytest.mark.parametrize("contestant_name", ORDER)
@pytest.mark.parametrize("set_name", list(ROUNDS))
def test_parse(
    benchmark: BenchmarkFixture,
    bench_sets: dict[str, BenchSet],
    contestants: dict[str, Contestant],
    set_name: str,
    contestant_name: str,
) -> None:
    bench_set = bench_sets[set_name]
    benchmark.group = set_name
    benchmark.extra_info.update(
        set=set_name,
        contestant=contestant_name,
        requests=len(bench_set.bodies),
        bytes=bench_set.total_bytes,
        median_request_bytes=bench_set.median_bytes,
    )
    # pytest-benchmark ships py.typed but leaves pedantic() unannotated.
    benchmark.pedantic(  # type: ignore[no-untyped-call]
        run_round,
        args=(contestants[contestant_name], bench_set.bodies),
        rounds=ROUNDS[set_name],
        warmup_rounds=WARMUP_ROUNDS,
        iterations=1,
    )


def test_untyped_contestants_read_the_same_fields(bench_sets: dict[str, BenchSet]) -> None:
    parser = simdjson.Parser()
    for body in bench_sets["corpus"].bodies:
        expected = read_fields(json.loads(body))
        assert read_fields(orjson.loads(body)) == expected
        doc = parser.parse(body)
        assert isinstance(doc, simdjson.Object)
        assert read_fields(doc) == expected
        del doc  # the parser refuses to parse again while a proxy of this document is alive


def test_sets_are_what_the_report_says(bench_sets: dict[str, BenchSet]) -> None:
    corpus, dense = bench_sets["corpus"], bench_sets["dense"]
    assert len(corpus.bodies) > 3000
    assert 0 < len(dense.bodies) < len(corpus.bodies)
    assert all(len(body) >= 1024 for body in dense.bodies)
