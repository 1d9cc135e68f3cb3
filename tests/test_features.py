"""Feature specs: the native extractor against the pure-Python oracle over the whole corpus,
training matrices against per-request extraction (training/serving parity), spec validation."""

from __future__ import annotations

import datetime
import math
import threading
from pathlib import Path

import lightgbm
import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bidcore import features
from bidcore.artifact import write_manifest
from bidcore.compile import build_artifact
from bidcore.errors import InvalidRequestError, ModelError
from bidcore.features import Feature, FeatureSpec
from bidcore.features.reference import features_py, fnv1a64
from bidcore.models import load
from bidcore.openrtb import inspect_request_py

CORPUS = Path(__file__).parent / "fixtures" / "openrtb" / "requests.jsonl"
NUMBERS, TEXTS, DERIVED = (
    sorted(s) for s in (features.NUMBER_SOURCES, features.TEXT_SOURCES, features.DERIVED_SOURCES)
)


def full_spec() -> FeatureSpec:
    """Every source the extractor knows: texts alternately by vocabulary (learned below, cut
    short so some strings are unseen) and by hash; a campaign attribute."""
    items = [Feature(name=f"n:{s}", number=s) for s in NUMBERS]
    for i, s in enumerate(TEXTS):
        if i % 2:
            items.append(Feature(name=f"h:{s}", text=s, buckets=97))
        else:
            unseen = "own_code" if i % 4 else "missing"
            items.append(Feature(name=f"v:{s}", text=s, vocabulary=[], unseen=unseen))
    items += [Feature(name=f"d:{s}", derived=s) for s in DERIVED]
    items.append(Feature(name="c:max_bid", campaign="max_bid"))
    return FeatureSpec(features=items, fx={"EUR": 1.08, "GBP": 1.27, "JPY": 0.0067})


@pytest.fixture(scope="module")
def corpus() -> list[bytes]:
    return [line for line in CORPUS.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def spec(corpus: list[bytes]) -> FeatureSpec:
    return features.learn_vocabularies(full_spec(), corpus[:1500], max_size=20)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_spec_covers_every_source_and_learned_vocabularies(spec: FeatureSpec) -> None:
    assert len(spec.features) == len(NUMBERS) + len(TEXTS) + len(DERIVED) + 1
    learned = [f for f in spec.features if f.vocabulary]
    assert learned, "the corpus has strings to learn"
    assert all(len(f.vocabulary or []) <= 20 for f in learned)


def test_corpus_matrix_equals_the_python_oracle_and_per_request_extraction(
    corpus: list[bytes], spec: FeatureSpec
) -> None:
    """Training/serving parity: every row of the training matrix equals what the per-request
    call computes for that imp, and what the pure-Python oracle computes from the view."""
    rng = np.random.default_rng(3)
    timestamps = rng.uniform(1.6e9, 1.9e9, len(corpus))
    campaign = {"max_bid": 4.25}
    built = features.matrix_with_index(
        corpus, spec, timestamps=timestamps, campaign=campaign, skip_invalid=True
    )
    rejected = {i for i, _ in built.rejected}
    assert built.values.shape == (len(built.index), len(spec.features))
    rows_checked = 0
    position = 0
    for i, body in enumerate(corpus):
        try:
            view = inspect_request_py(body)
        except InvalidRequestError:
            assert i in rejected, f"line {i + 1}: the oracle refuses it, the extractor does not"
            continue
        assert i not in rejected, f"line {i + 1}: refused natively only"
        for imp in range(len(view["imp"])):
            assert tuple(built.index[position]) == (i, imp)
            row = built.values[position]
            served = features.extract(
                body, spec, imp=imp, timestamp=float(timestamps[i]), campaign=campaign
            )
            oracle = features_py(
                view, spec, imp=imp, timestamp=float(timestamps[i]), campaign=campaign
            )
            for name, a, b, c in zip(spec.names, row, served, oracle, strict=True):
                assert same(a, b), f"line {i + 1} imp {imp} {name}: matrix {a} != extract {b}"
                assert same(a, c), f"line {i + 1} imp {imp} {name}: native {a} != oracle {c}"
            position += 1
            rows_checked += 1
    assert position == len(built.index)
    assert rows_checked > 3_000
    # The corpus exercises the features: most columns take more than one value.
    varied = sum(len(np.unique(np.nan_to_num(col, nan=-1e300))) > 1 for col in built.values.T)
    assert varied > 0.7 * len(spec.features)


def test_matrix_raises_on_an_invalid_request_unless_asked_to_skip(spec: FeatureSpec) -> None:
    good = b'{"id":"r","imp":[{"id":"1","banner":{"w":1,"h":2}}],"site":{}}'
    with pytest.raises(InvalidRequestError) as caught:
        features.matrix([good, b'{"id":"r","imp":[]}'], spec)
    assert caught.value.path == "imp"
    skipped = features.matrix_with_index([good, b"{", good], spec, skip_invalid=True)
    assert skipped.index.tolist() == [[0, 0], [2, 0]]
    assert [i for i, _ in skipped.rejected] == [1]


def test_jsonl_with_timestamps(tmp_path: Path) -> None:
    spec = FeatureSpec(
        features=[
            Feature(name="hour", derived="hour_utc"),
            Feature(name="w", number="imp.banner.w"),
        ]
    )
    request = b'{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}],"site":{}}'
    log = tmp_path / "log.jsonl"
    log.write_bytes(
        b'{"timestamp": 1795390200, "request": ' + request + b"}\n\n" + request + b"\nnot json\n"
    )
    built = features.matrix_from_jsonl(log, spec)
    assert built.values[0].tolist() == [23.0, 300.0]
    assert math.isnan(built.values[1][0])
    assert built.values[1][1] == 300.0
    assert [i for i, _ in built.rejected] == [2]


@settings(max_examples=200, deadline=None)
@given(
    ts=st.floats(min_value=-2e9, max_value=4e9, allow_nan=False),
    offset=st.integers(min_value=-720, max_value=840),
)
def test_hour_and_weekday_agree_with_datetime(ts: float, offset: int) -> None:
    spec = FeatureSpec(
        features=[
            Feature(name=n, derived=n)
            for n in ("hour_utc", "weekday_utc", "hour_local", "weekday_local")
        ]
    )
    body = (
        b'{"id":"r","imp":[{"id":"1","banner":{"w":1,"h":1}}],"site":{},'
        b'"device":{"geo":{"utcoffset":%d}}}' % offset
    )
    got = features.extract(body, spec, timestamp=ts).tolist()
    utc = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=math.floor(ts))
    local = utc + datetime.timedelta(minutes=offset)
    assert got == [utc.hour, utc.weekday(), local.hour, local.weekday()]


def test_hashes_are_fnv1a_64() -> None:
    spec = FeatureSpec(features=[Feature(name="d", text="site.domain", buckets=2**31)])
    body = b'{"id":"r","imp":[{"id":"1","banner":{"w":1,"h":1}}],"site":{"domain":"news.example"}}'
    assert features.extract(body, spec)[0] == fnv1a64(b"news.example") % 2**31
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C  # the published test vector


def test_extract_names_a_missing_imp() -> None:
    spec = FeatureSpec(features=[Feature(name="w", number="imp.banner.w")])
    body = b'{"id":"r","imp":[{"id":"1","banner":{"w":1,"h":1}}],"site":{}}'
    with pytest.raises(IndexError):
        features.extract(body, spec, imp=1)


def test_threads_share_an_extractor(corpus: list[bytes], spec: FeatureSpec) -> None:
    expected = features.matrix_with_index(corpus[:400], spec, skip_invalid=True).values
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(features.matrix_with_index(corpus[:400], spec, skip_invalid=True).values)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for got in results:
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[features]]\nname = "x"\nnumber = "imp.nope"', "unknown number source 'imp.nope'"),
        ('[[features]]\nname = "x"\ntext = "site.domain"', "needs a vocabulary or buckets"),
        ('[[features]]\nname = "x"\nnumber = "tmax"\nderived = "is_app"', "exactly one of"),
        ('[[features]]\nname = "x"\ntext = "site.domain"\nbuckets = 0', "buckets must be"),
        (
            '[[features]]\nname = "x"\nnumber = "tmax"\n[[features]]\nname = "x"\nnumber = "at"',
            "unique",
        ),
        ('[fx]\nEURO = 1.0\n[[features]]\nname = "x"\nnumber = "tmax"', "3-letter"),
        ('[[features]]\nname = "x"\nnumber = "tmax"\ncolour = 1', "unknown field"),
    ],
)
def test_bad_specs_are_refused_with_the_reason(toml: str, message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        features.loads(toml)


def test_the_native_extractor_refuses_unknown_sources_too() -> None:
    with pytest.raises(ModelError, match="no number source"):
        features.FeatureExtractor([("number", "imp.nope", None, math.nan, 0)], {})


def test_categorical_columns_for_lightgbm() -> None:
    spec = features.loads(
        '[[features]]\nname = "a"\nnumber = "tmax"\n'
        '[[features]]\nname = "b"\ntext = "site.domain"\nbuckets = 8\n'
        '[[features]]\nname = "c"\nderived = "hour_local"\n'
    )
    assert spec.categorical_columns() == [1, 2]
    assert spec.names == ["a", "b", "c"]


def test_an_artifact_scores_requests_with_its_own_spec(corpus: list[bytes], tmp_path: Path) -> None:
    """Train on features.matrix, compile with the spec, load: predict_request equals the model's
    prediction on the training row of the same imp, for both scorers."""
    spec_path = tmp_path / "features.toml"
    spec_path.write_text(
        '[[features]]\nname = "floor"\nderived = "floor_usd"\n'
        '[[features]]\nname = "area"\nderived = "banner_area"\n'
        '[[features]]\nname = "placement"\ntext = "placement"\nbuckets = 32\n'
        '[[features]]\nname = "devicetype"\nnumber = "device.devicetype"\n'
    )
    spec = features.load(spec_path)
    built = features.matrix_with_index(corpus[:1500], spec, skip_invalid=True)
    label = (np.nan_to_num(built.values[:, 0]) > 0.5).astype(float)
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5},
        lightgbm.Dataset(built.values, label, categorical_feature=spec.categorical_columns()),
        10,
    )
    booster.save_model(tmp_path / "model.txt")
    out = build_artifact(
        tmp_path / "model.txt",
        tmp_path / "artifact",
        features=spec_path,
        cache_dir=tmp_path,
        progress=False,
    )
    for scorer in ("native", "compiled"):
        model = load(out, scorer=scorer)  # type: ignore[arg-type]
        assert model.features == spec
        for k in range(0, len(built.index), 97):
            request, imp = built.index[k]
            got = model.predict_request(corpus[request], imp=int(imp), raw=True)
            assert got == model.predict_one(built.values[k], raw=True)
    # A spec that does not match the model is refused, even with a manifest that agrees.
    spec_path_in = out / "features.toml"
    spec_path_in.write_text('[[features]]\nname = "x"\nnumber = "tmax"\n')
    write_manifest(out)
    with pytest.raises(ModelError, match="lists 1 features; the model takes 4"):
        load(out)
