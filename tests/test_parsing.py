"""``bidcore.parsing`` and the native parser behind it: limits, counters, errors, the Python
boundary (bytes in, exceptions out, panics contained), threads and memory."""

from __future__ import annotations

import copy
import gc
import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import bidcore
from bidcore import InternalError, InvalidRequestError, Limits, RequestParser
from bidcore.errors import BidcoreError
from bidcore.openrtb import DEFAULT_LIMITS
from bidcore.parsing import default_parser

FIXTURES = Path(__file__).parent / "fixtures" / "openrtb"

RULES = [
    "json",
    "type",
    "required",
    "duplicate_imp",
    "no_media",
    "channel",
    "duplicate_asset",
    "native_asset",
    "floor",
    "currency",
    "body_size",
    "depth",
    "imp_count",
    "string_length",
]


def _request(**fields: Any) -> bytes:
    """A small valid request, with ``fields`` added or replaced."""
    body: dict[str, Any] = {"id": "r1", "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}]}
    body.update(fields)
    return json.dumps(body, separators=(",", ":")).encode()


def _refusal(body: bytes | bytearray, limits: Limits | None = None) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        RequestParser(limits).validate(body)
    return caught.value


def _rule_and_path(body: bytes, limits: Limits | None = None) -> tuple[str, str]:
    err = _refusal(body, limits)
    assert str(err).startswith(f"{err.path}: ")
    assert str(err).endswith(f" [{err.rule}]")
    return err.rule, err.path


# --- Limits ------------------------------------------------------------------------------------


def test_the_default_limits() -> None:
    limits = Limits()
    assert (limits.max_body_bytes, limits.max_depth, limits.max_imps, limits.max_string_bytes) == (
        256 * 1024,
        32,
        64,
        64 * 1024,
    )
    assert RequestParser().limits == limits
    assert default_parser().limits == limits


def test_the_reference_pipeline_has_the_same_defaults() -> None:
    limits = Limits()
    assert (
        DEFAULT_LIMITS.max_body_bytes,
        DEFAULT_LIMITS.max_depth,
        DEFAULT_LIMITS.max_imps,
        DEFAULT_LIMITS.max_string_bytes,
    ) == (limits.max_body_bytes, limits.max_depth, limits.max_imps, limits.max_string_bytes)


def test_limits_repr_and_equality() -> None:
    limits = Limits(max_body_bytes=1000, max_depth=8, max_imps=2, max_string_bytes=100)
    assert repr(limits) == (
        "Limits(max_body_bytes=1000, max_depth=8, max_imps=2, max_string_bytes=100)"
    )
    assert repr(Limits()) == (
        "Limits(max_body_bytes=262144, max_depth=32, max_imps=64, max_string_bytes=65536)"
    )
    assert limits == Limits(max_body_bytes=1000, max_depth=8, max_imps=2, max_string_bytes=100)
    assert limits != Limits(max_body_bytes=1000, max_depth=8, max_imps=3, max_string_bytes=100)
    assert limits != Limits()
    assert Limits() != "Limits()"
    assert RequestParser(limits).limits == limits


def test_limits_are_frozen_and_keyword_only() -> None:
    limits = Limits()
    with pytest.raises(AttributeError):
        limits.max_depth = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        Limits(1000)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Limits(max_dept=3)  # type: ignore[call-arg]


def test_limits_refuse_values_they_cannot_honour() -> None:
    assert Limits(max_depth=512).max_depth == 512
    with pytest.raises(ValueError, match="512"):
        Limits(max_depth=513)
    for name in ("max_body_bytes", "max_depth", "max_imps", "max_string_bytes"):
        with pytest.raises(ValueError, match=f"{name} must be >= 0"):
            Limits(**{name: -1})
    with pytest.raises(TypeError):
        RequestParser("limits")  # type: ignore[arg-type]


def test_body_size_is_checked_first_and_names_the_root() -> None:
    body = _request()
    assert RequestParser(Limits(max_body_bytes=len(body))).validate(body) is None
    tight = Limits(max_body_bytes=len(body) - 1)
    assert _rule_and_path(body, tight) == ("body_size", "$")
    # Before anything else: a body that is not even UTF-8 is refused for its size.
    assert _rule_and_path(b"\xff" * 20, Limits(max_body_bytes=19)) == ("body_size", "$")
    assert f"{len(body)} bytes" in str(_refusal(body, tight))


def test_trailing_whitespace_counts_towards_the_body_size() -> None:
    body = _request()
    padded = body + b" " * (Limits().max_body_bytes - len(body))
    assert bidcore.validate_request(padded) is None
    assert _rule_and_path(padded + b" ") == ("body_size", "$")


_DEEP = _request(imp=[{"id": "1", "banner": {"format": [{"w": 300, "h": 250}]}}])


@pytest.mark.parametrize(
    ("max_depth", "path"),
    [
        (5, "imp[0].banner.format[0]"),
        (4, "imp[0].banner.format"),
        (3, "imp[0].banner"),
        (2, "imp[0]"),
        (1, "imp"),
        (0, "$"),
    ],
)
def test_depth_is_enforced_at_the_container_that_goes_too_deep(max_depth: int, path: str) -> None:
    # The request object is depth 1, `imp` 2, the imp 3, the banner 4, format 5, its element 6.
    assert RequestParser(Limits(max_depth=6)).validate(_DEEP) is None
    assert _rule_and_path(_DEEP, Limits(max_depth=max_depth)) == ("depth", path)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (_request(ext={"a": {"b": {"c": {}}}}), "ext"),
        (_request(imp=[{"id": "1", "banner": {}, "ext": {"a": {"b": {}}}}]), "imp[0].ext"),
        (_request(zz=[[[[]]]]), "zz"),
        (_request(site={"publisher": {"ext": {"a": [{}]}}}), "site.publisher.ext"),
        (_request(regs={"ext": {"gdpr": 1, "x": {"y": [{}]}}}), "regs.ext.x"),
        (_request(regs={"ext": [[[[1]]]]}), "regs.ext"),
    ],
)
def test_depth_inside_what_the_parser_skips_names_the_skipped_value(body: bytes, path: str) -> None:
    assert _rule_and_path(body, Limits(max_depth=4)) == ("depth", path)
    assert RequestParser(Limits(max_depth=6)).validate(body) is None


def test_nesting_far_beyond_the_depth_cap_is_refused_without_a_crash() -> None:
    # Skipping is recursive: a stack overflow would abort the process, so run it in another one.
    script = textwrap.dedent(
        """
        import bidcore
        depth = 200_000
        parser = bidcore.RequestParser(bidcore.Limits(max_depth=512, max_body_bytes=10**7))
        for name in ["ext", "zz"]:
            body = (
                b'{"id":"r","imp":[{"id":"1","banner":{}}],"' + name.encode() + b'":'
                + b"[" * depth + b"]" * depth + b"}"
            )
            try:
                parser.validate(body)
            except bidcore.InvalidRequestError as err:
                print(err.rule, err.path)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n") == ["depth ext", "depth zz", ""]


def test_imp_count_is_enforced_after_parsing() -> None:
    imps = [{"id": str(i), "banner": {}} for i in range(3)]
    assert RequestParser(Limits(max_imps=3)).validate(_request(imp=imps)) is None
    assert _rule_and_path(_request(imp=imps), Limits(max_imps=2)) == ("imp_count", "imp")
    assert _rule_and_path(_request(), Limits(max_imps=0)) == ("imp_count", "imp")
    # A type error anywhere comes first: the count is a rule of the parsed request.
    broken = _request(imp=imps, tmax="x")
    assert _rule_and_path(broken, Limits(max_imps=2)) == ("type", "tmax")


def test_the_default_imp_limit() -> None:
    imps = [{"id": str(i), "banner": {}} for i in range(65)]
    assert bidcore.validate_request(_request(imp=imps[:64])) is None
    assert _rule_and_path(_request(imp=imps)) == ("imp_count", "imp")


_ELEVEN = "12345678901"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (_request(site={"page": _ELEVEN}), "site.page"),
        (_request(site={"cat": ["IAB1", _ELEVEN]}), "site.cat[1]"),
        (_request(imp=[{"id": _ELEVEN, "banner": {}}]), "imp[0].id"),
        # A key names the object it is in; a value the parser skips, its key.
        (_request(site={_ELEVEN: 1}), "site"),
        (_request(**{_ELEVEN: 1}), "$"),
        (_request(zz=_ELEVEN), "zz"),
        (_request(ext={"k": [_ELEVEN]}), "ext"),
        (_request(regs={"ext": {"us_privacy": _ELEVEN}}), "regs.ext.us_privacy"),
    ],
)
def test_string_length_is_enforced_where_the_string_is(body: bytes, path: str) -> None:
    # Keys count too: "us_privacy" is ten bytes.
    assert _rule_and_path(body, Limits(max_string_bytes=10)) == ("string_length", path)
    assert RequestParser(Limits(max_string_bytes=11)).validate(body) is None


@pytest.mark.parametrize(
    ("text", "written"),
    [
        (b"12345678", 8),
        ("\u00e9\u00e9\u00e9\u00e9".encode(), 8),  # four two-byte characters
        (b"\\u00e9x", 7),
        (b'\\"\\"\\"\\"', 8),
        (b"\\u00e9\\u00e9", 12),  # two characters, twelve bytes as written
        ("\u00e9\u00e9\u00e9\u00e9x".encode(), 9),
    ],
)
def test_string_length_counts_bytes_as_written(text: bytes, written: int) -> None:
    body = b'{"id":"r","imp":[{"id":"1","banner":{}}],"site":{"page":"' + text + b'"}}'
    limits = Limits(max_string_bytes=8)
    if written <= 8:
        assert RequestParser(limits).validate(body) is None
    else:
        err = _refusal(body, limits)
        assert (err.rule, err.path) == ("string_length", "site.page")
        assert f"string of {written} bytes" in str(err)


# --- Counters ----------------------------------------------------------------------------------

_TITLE = {"id": 1, "title": {"len": 25}}


def _native(*assets: dict[str, Any]) -> dict[str, str]:
    """``imp.native`` with a Native request of these assets."""
    return {"request": json.dumps({"assets": list(assets)})}


_NATIVE = _native(_TITLE)
_ONE_OF_EACH_RULE = {
    "json": b'{"id":"r1","imp":[',
    "type": _request(tmax="120"),
    "required": _request(id=""),
    "duplicate_imp": _request(imp=[{"id": "1", "banner": {}}, {"id": "1", "native": _NATIVE}]),
    "no_media": _request(imp=[{"id": "1"}]),
    "channel": _request(site={}, app={}),
    "duplicate_asset": _request(imp=[{"id": "1", "native": _native(_TITLE, _TITLE)}]),
    "native_asset": _request(imp=[{"id": "1", "native": _native({"id": 1})}]),
    "floor": _request(imp=[{"id": "1", "banner": {}, "bidfloor": -1}]),
    "currency": _request(cur=["dollars"]),
    "body_size": b" " * 5000,
    "depth": _request(ext={"a": {"b": {"c": {"d": {"e": {}}}}}}),
    "imp_count": _request(imp=[{"id": str(i), "banner": {}} for i in range(4)]),
    "string_length": _request(site={"page": "x" * 300}),
}
_COUNTED = Limits(max_body_bytes=4096, max_depth=5, max_imps=3, max_string_bytes=200)


def test_each_sample_breaks_the_rule_it_is_filed_under() -> None:
    for rule, body in _ONE_OF_EACH_RULE.items():
        assert _refusal(body, _COUNTED).rule == rule
    assert sorted(_ONE_OF_EACH_RULE) == sorted(RULES)


def test_counts_start_at_zero_and_list_every_rule() -> None:
    assert RequestParser().counts() == {"accepted": 0, "rejected": dict.fromkeys(RULES, 0)}


def test_counts_record_every_call_by_outcome() -> None:
    parser = RequestParser(_COUNTED)
    for _ in range(3):
        parser.validate(_request())
    parser.inspect_json(_request())
    for rule, body in _ONE_OF_EACH_RULE.items():
        for call in (parser.validate, parser.inspect_json):
            with pytest.raises(InvalidRequestError, match=rf"\[{rule}\]$"):
                call(body)
    assert parser.counts() == {"accepted": 4, "rejected": dict.fromkeys(RULES, 2)}
    # Every parser counts on its own.
    assert RequestParser(_COUNTED).counts()["accepted"] == 0


def test_the_module_functions_count_on_the_default_parser() -> None:
    before = default_parser().counts()
    bidcore.validate_request(_request())
    bidcore.inspect_request(_request())
    with pytest.raises(InvalidRequestError):
        bidcore.inspect_request(_request(bidfloor="x", imp=[{"id": "1"}]))
    after = default_parser().counts()
    assert after["accepted"] == before["accepted"] + 2  # type: ignore[operator]
    rejected_before, rejected_after = before["rejected"], after["rejected"]
    assert isinstance(rejected_before, dict)
    assert isinstance(rejected_after, dict)
    assert rejected_after["no_media"] == rejected_before["no_media"] + 1


# --- Results and errors at the boundary --------------------------------------------------------


def test_the_three_ways_to_parse_agree() -> None:
    body = _request(regs={"ext": {"gdpr": 1}}, cur=["eur"])
    parser = RequestParser()
    assert parser.validate(body) is None
    raw = parser.inspect_json(body)
    assert isinstance(raw, bytes)
    view = bidcore.inspect_request(body)
    assert json.loads(raw) == view
    assert view["regs"] == {"gdpr": 1}
    assert view["cur"] == ["EUR"]
    assert bidcore.inspect_request(body) is not view  # a fresh dict every time


def test_an_invalid_request_error_is_a_value_error_with_a_path_and_a_rule() -> None:
    err = _refusal(_request(imp=[{"id": "1", "banner": {}, "bidfloor": -0.5}]))
    assert isinstance(err, ValueError)
    assert isinstance(err, BidcoreError)
    assert type(err) is InvalidRequestError
    assert (err.rule, err.path) == ("floor", "imp[0].bidfloor")
    assert str(err) == "imp[0].bidfloor: a floor must be finite and >= 0, got -0.5 [floor]"


def test_the_whole_body_is_named_by_the_root_path() -> None:
    for body in [b"", b"[]", b"null", b"  {", b'{"id":"r"} []']:
        err = _refusal(body)
        assert err.path == "$", body
        assert str(err).startswith("$: ")


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_an_invalid_request_error_pickles_with_its_path_and_rule(protocol: int) -> None:
    err = _refusal(_request(device={"geo": {"lat": "north"}}))
    again = pickle.loads(pickle.dumps(err, protocol=protocol))
    assert type(again) is InvalidRequestError
    assert (str(again), again.path, again.rule) == (str(err), "device.geo.lat", "type")
    copied = copy.copy(err)
    assert (copied.path, copied.rule) == (err.path, err.rule)


def test_a_panic_in_native_code_is_an_internal_error() -> None:
    with pytest.raises(InternalError, match="kaboom") as caught:
        bidcore._core._panic("kaboom")
    err = caught.value
    assert type(err) is InternalError
    assert isinstance(err, BidcoreError)
    # An Exception (pyo3's PanicException is only a BaseException, missed by `except Exception`).
    assert isinstance(err, Exception)
    assert "Panic" not in type(err).__name__
    # The interpreter and the parsers carry on.
    assert RequestParser().validate(_request()) is None


def test_a_panic_in_a_thread_is_contained_too() -> None:
    errors: list[BaseException] = []

    def panic() -> None:
        try:
            bidcore._core._panic("in a thread")
        except BaseException as err:  # whatever it is, it is recorded
            errors.append(err)

    threads = [threading.Thread(target=panic) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [type(err) for err in errors] == [InternalError] * 4


@pytest.mark.parametrize("kind", [bytes, bytearray])
def test_bytes_and_bytearray_are_accepted(kind: Callable[[bytes], bytes]) -> None:
    body = kind(_request())
    parser = RequestParser()
    assert parser.validate(body) is None
    assert json.loads(parser.inspect_json(body))["id"] == "r1"
    assert bidcore.validate_request(body) is None
    assert bidcore.inspect_request(body)["id"] == "r1"
    assert _refusal(kind(b"{")).rule == "json"


@pytest.mark.parametrize("body", [_request().decode(), memoryview(_request()), None, 42, [1]])
def test_anything_but_bytes_is_a_type_error(body: Any) -> None:
    parser = RequestParser()
    for call in (parser.validate, parser.inspect_json, bidcore.validate_request):
        with pytest.raises(TypeError):
            call(body)
    with pytest.raises(TypeError):
        bidcore.inspect_request(body)
    assert parser.counts()["accepted"] == 0


# --- Threads and memory ------------------------------------------------------------------------


def _corpus() -> list[bytes]:
    """The fixture requests, prebid's invalid ones, and broken halves of some of them."""
    requests = (FIXTURES / "requests.jsonl").read_bytes().splitlines()
    invalid = (FIXTURES / "invalid-requests.jsonl").read_bytes().splitlines()
    halves = [body[: len(body) // 2] for body in requests[::10]]
    return requests + invalid + halves


def _outcomes(parser: RequestParser, bodies: list[bytes]) -> list[tuple[str, str] | bytes]:
    results: list[tuple[str, str] | bytes] = []
    for body in bodies:
        try:
            results.append(parser.inspect_json(body))
        except InvalidRequestError as err:
            results.append((err.rule, err.path))
    return results


def test_threads_parsing_the_corpus_at_once_see_what_one_thread_sees() -> None:
    corpus = _corpus()
    serial = _outcomes(RequestParser(), corpus)
    shared = RequestParser()
    with ThreadPoolExecutor(max_workers=8) as pool:
        # Each thread starts at a different place, so different requests are parsed at once.
        rotated = [corpus[i * 500 :] + corpus[: i * 500] for i in range(8)]
        results = list(pool.map(lambda bodies: _outcomes(shared, bodies), rotated))
    for i, result in enumerate(results):
        assert result == serial[i * 500 :] + serial[: i * 500]
    counts = shared.counts()
    rejected = counts["rejected"]
    assert isinstance(rejected, dict)
    assert counts["accepted"] + sum(rejected.values()) == 8 * len(corpus)  # type: ignore[operator]


def _runs_while(work: Callable[[], object], *, seconds: float = 0.5) -> bool:
    """Whether another Python thread gets to run while the current one calls ``work`` in a loop.

    The switch interval is raised far beyond the test's duration, so the interpreter never makes
    this thread hand over the GIL: the other thread runs only if ``work`` releases it.
    """
    go = threading.Event()
    ran = threading.Event()

    def other() -> None:
        go.wait()
        ran.set()

    thread = threading.Thread(target=other)
    thread.start()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        go.set()
        deadline = time.perf_counter() + seconds
        while not ran.is_set() and time.perf_counter() < deadline:
            work()
        return ran.is_set()
    finally:
        sys.setswitchinterval(interval)
        thread.join()


def test_parsing_releases_the_gil() -> None:
    body = max((FIXTURES / "requests.jsonl").read_bytes().splitlines(), key=len)
    parser = RequestParser()
    assert _runs_while(lambda: parser.validate(body))
    assert _runs_while(lambda: parser.inspect_json(body))
    # The method is sound: json.loads holds the GIL throughout, and the other thread waits.
    assert not _runs_while(lambda: json.loads(body), seconds=0.2)


def _rss() -> int:
    """Resident memory of this process, in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _parse_all(parser: RequestParser, bodies: list[bytes], rounds: int) -> None:
    for _ in range(rounds):
        for body in bodies:
            try:
                parser.validate(body)
                parser.inspect_json(body)
            except InvalidRequestError:
                pass


def test_parsing_the_corpus_again_and_again_does_not_grow_memory() -> None:
    corpus = _corpus()
    parser = RequestParser()
    _parse_all(parser, corpus, 3)  # warm up the allocator's pools
    gc.collect()
    before = _rss()
    _parse_all(parser, corpus, 15)
    gc.collect()
    grown = _rss() - before
    calls = 15 * len(corpus) * 2
    # Even 40 bytes a call would show as several megabytes here.
    assert grown < 2 * 1024 * 1024, f"RSS grew {grown} bytes over {calls} calls"
