"""The compiled scorer (``bidcore.models.load(..., scorer="compiled")``, ``_core.CompiledModel``):
the TL2cgen library called from Rust gives LightGBM's raw margins to 1e-9, and a bad artifact is
refused with :class:`bidcore.ModelError` naming the reason, never a crash.

Artifacts are built once per session (one library cache for all), from the small models of
:mod:`bidcore.testing.models`; zero_as_missing models get no library (``bidcore compile`` refuses
them), so they appear only as the artifact without one.
"""

from __future__ import annotations

import gc
import math
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import lightgbm
import msgspec
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidcore import _core, artifact, models
from bidcore.compile import build_artifact
from bidcore.errors import ModelError
from bidcore.testing.models import SMALL, TINY, ModelSpec, ctr_data, model_path

TOLERANCE = 1e-9
BINARY = ModelSpec(task="binary", categorical=True, size=SMALL)
NUMERIC = ModelSpec(task="binary", categorical=False, size=TINY)
REGRESSION = ModelSpec(task="regression", categorical=True, size=TINY)
MULTICLASS = ModelSpec(task="multiclass", categorical=True, size=TINY)
OTHER_BINARY = ModelSpec(task="binary", categorical=True, size=TINY, seed=1)
ZERO_AS_MISSING = ModelSpec(task="binary", categorical=True, zero_as_missing=True, size=TINY)
COMPILED = [BINARY, NUMERIC, REGRESSION, MULTICLASS]

Build = Callable[[ModelSpec], Path]


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """Builds (once per session) the artifact of a spec; returns its directory."""
    root = tmp_path_factory.mktemp("compiled-scorer")
    built: dict[ModelSpec, Path] = {}

    def artifact_of(spec: ModelSpec) -> Path:
        if spec not in built:
            text = model_path(spec, root / "models")
            built[spec] = build_artifact(
                text,
                root / "artifacts" / spec.name,
                cache_dir=root / "cache",
                require_compiled=not spec.zero_as_missing,
                progress=False,
            )
        return built[spec]

    return artifact_of


def _booster(out: Path) -> lightgbm.Booster:
    return lightgbm.Booster(model_file=str(out / artifact.MODEL))


def _copy(build: Build, spec: ModelSpec, tmp_path: Path) -> Path:
    """A private copy of a spec's artifact, to damage."""
    return Path(shutil.copytree(build(spec), tmp_path / "artifact"))


def _raw(booster: lightgbm.Booster, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(booster.predict(rows, raw_score=True, num_threads=1), dtype=np.float64)


def _unusual_rows() -> npt.NDArray[np.float64]:
    """Data rows with missing values, unseen, negative and fractional categories, infinities,
    and the doubles TL2cgen's code would take for missing."""
    rows = ctr_data(64, seed=3).features.copy()
    rng = np.random.default_rng(5)
    numeric, categorical = slice(0, 30), slice(30, 40)
    rows[:8, numeric] = np.nan
    rows[8:16, categorical] = np.nan
    unusual = [600.0, 10_000.0, 2.0**24 + 1, -1.0, -0.5, 2.7, 63.0, 64.0, 1e300, math.inf]
    rows[16:40, categorical] = rng.choice(unusual, (24, 10))
    edge = [math.inf, -math.inf, sys.float_info.max, -sys.float_info.max, 0.0, -0.0, 1e-36]
    rows[40:64, numeric] = rng.choice(edge, (24, 30))
    return rows


@pytest.mark.parametrize("spec", COMPILED, ids=lambda spec: spec.name)
def test_batches_match_lightgbm(spec: ModelSpec, build: Build) -> None:
    out = build(spec)
    booster, model = _booster(out), models.load(out, scorer="compiled")
    assert model.scorer == "compiled"
    for rows in (ctr_data(2_000, seed=7).features, _unusual_rows()):
        np.testing.assert_allclose(model.predict(rows, raw=True), _raw(booster, rows), 0, TOLERANCE)
        np.testing.assert_allclose(model.predict(rows), booster.predict(rows), 0, TOLERANCE)


@pytest.mark.parametrize("spec", COMPILED, ids=lambda spec: spec.name)
def test_single_rows_match_lightgbm_and_the_native_scorer(spec: ModelSpec, build: Build) -> None:
    out = build(spec)
    booster = _booster(out)
    compiled, native = models.load(out, scorer="compiled"), models.load(out)
    assert (compiled.num_features, compiled.num_outputs, compiled.num_trees) == (
        native.num_features,
        native.num_outputs,
        native.num_trees,
    )
    assert compiled.feature_names == native.feature_names
    rows = np.vstack([ctr_data(8, seed=11).features, _unusual_rows()[::8]])
    for row in rows:
        for raw in (True, False):
            expected = booster.predict(row[None, :], raw_score=raw, num_threads=1)[0]
            got = compiled.predict_one(row, raw=raw)
            assert isinstance(got, float if spec.task != "multiclass" else list)
            np.testing.assert_allclose(got, expected, 0, TOLERANCE)
            np.testing.assert_allclose(got, native.predict_one(row, raw=raw), 0, TOLERANCE)


def _pools(booster: lightgbm.Booster) -> list[npt.NDArray[np.float64]]:
    """Per feature: its split thresholds and their neighbours, or the categories it splits on,
    with special values and categories seen and unseen."""
    edges: dict[int, set[float]] = {}

    def visit(node: dict[str, object]) -> None:
        if "split_feature" not in node:
            return
        feature, threshold = int(str(node["split_feature"])), node["threshold"]
        if isinstance(threshold, float):
            near = [math.nextafter(threshold, -math.inf), math.nextafter(threshold, math.inf)]
            edges.setdefault(feature, set()).update([threshold, *near])
        else:  # categorical: "3||7||12"
            edges.setdefault(feature, set()).update(float(c) for c in str(threshold).split("||"))
        visit(node["left_child"])  # type: ignore[arg-type]
        visit(node["right_child"])  # type: ignore[arg-type]

    for tree in booster.dump_model()["tree_info"]:
        visit(tree["tree_structure"])
    special = [math.nan, 0.0, -0.0, 1e-36, -1.0, -0.5, 0.5, 2.5, math.inf, -math.inf]
    special += [sys.float_info.max, -sys.float_info.max, 1e300]
    categories = [float(c) for c in (0, 1, 2, 3, 31, 32, 63, 64, 100, 499, 500, 600, 2**24 + 1)]
    return [
        np.array(sorted(edges.get(j, set())) + special + categories)
        for j in range(booster.num_feature())
    ]


@pytest.mark.parametrize("spec", [BINARY, MULTICLASS], ids=lambda spec: spec.name)
def test_generated_rows_match_lightgbm(spec: ModelSpec, build: Build) -> None:
    out = build(spec)
    booster, model = _booster(out), models.load(out, scorer="compiled")
    pools = _pools(booster)
    row = st.tuples(*(st.integers(0, len(pool) - 1) for pool in pools)).map(
        lambda picks: np.array([pool[i] for pool, i in zip(pools, picks, strict=True)])
    )

    # No example database: the strategy is rebuilt for every model.
    @settings(
        max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(st.lists(row, min_size=1, max_size=8).map(np.vstack))
    def check(rows: npt.NDArray[np.float64]) -> None:
        np.testing.assert_allclose(model.predict(rows, raw=True), _raw(booster, rows), 0, TOLERANCE)
        first = model.predict_one(rows[0], raw=True)
        np.testing.assert_allclose(first, _raw(booster, rows[:1])[0], 0, TOLERANCE)

    check()


def test_threads_share_a_compiled_model(build: Build) -> None:
    out = build(BINARY)
    model = models.load(out, scorer="compiled")
    rows = ctr_data(500, seed=13).features
    expected = _raw(_booster(out), rows)
    results: list[npt.NDArray[np.float64]] = []

    def work() -> None:
        for _ in range(20):
            results.append(model.predict(rows, raw=True))
            results.append(np.array([model.predict_one(row, raw=True) for row in rows[:20]]))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 160
    for result in results:
        np.testing.assert_allclose(result, expected[: len(result)], 0, TOLERANCE)


def test_an_artifact_rebuilt_in_place_loads_its_new_library(build: Build, tmp_path: Path) -> None:
    # glibc's dlopen returns the library it already has for a path; the new one must be loaded.
    first_spec, second_spec = BINARY, OTHER_BINARY
    out = Path(shutil.copytree(build(first_spec), tmp_path / "ctr"))
    first = models.load(out, scorer="compiled")
    shutil.rmtree(out)
    shutil.copytree(build(second_spec), out)
    second = models.load(out, scorer="compiled")
    rows = ctr_data(200, seed=17).features
    np.testing.assert_allclose(
        second.predict(rows, raw=True), _raw(_booster(build(second_spec)), rows), 0, TOLERANCE
    )
    # The first stays loaded and right although its file is gone.
    np.testing.assert_allclose(
        first.predict(rows, raw=True), _raw(_booster(build(first_spec)), rows), 0, TOLERANCE
    )


def test_a_library_loaded_twice_and_dropped_once_leaves_no_stale_name(
    build: Build, tmp_path: Path
) -> None:
    # glibc names a library after its first load and shares it with later loads of the file;
    # after the first is dropped, a new load must still get its own file's library.
    out = _copy(build, BINARY, tmp_path)
    _swap_library(out, build(OTHER_BINARY) / artifact.COMPILED_LIBRARY)
    for _ in range(3):
        first = models.load(build(BINARY), scorer="compiled")
        second = models.load(build(BINARY), scorer="compiled")
        del first
        gc.collect()
        with pytest.raises(ModelError, match="disagrees with the model text"):
            models.load(out, scorer="compiled")
        del second
    # The symlinks libraries are loaded through are gone.
    assert not list(Path(tempfile.gettempdir()).glob(f".bidcore-predictor-{os.getpid()}-*"))


# Bad artifacts: every one raises ModelError with the reason.


def _write_metadata(root: Path, **changes: object) -> None:
    raw = msgspec.json.decode((root / artifact.METADATA).read_bytes())
    raw.update(changes)
    (root / artifact.METADATA).write_bytes(msgspec.json.encode(raw))


@pytest.mark.parametrize("scorer", ["native", "compiled"])
def test_a_truncated_model_text_is_refused(scorer: str, build: Build, tmp_path: Path) -> None:
    out = _copy(build, BINARY, tmp_path)
    text = (out / artifact.MODEL).read_bytes()
    (out / artifact.MODEL).write_bytes(text[: len(text) // 2])
    with pytest.raises(ModelError, match=r"model\.txt has \d+ bytes.*\(truncated\)"):
        models.load(out, scorer=scorer)  # type: ignore[arg-type]
    artifact.write_manifest(out)  # the manifest agrees: the text itself is cut short
    with pytest.raises(ModelError, match=r"model\.txt: the model text is cut short"):
        models.load(out, scorer=scorer)  # type: ignore[arg-type]


def test_a_wrong_checksum_is_refused(build: Build, tmp_path: Path) -> None:
    out = _copy(build, BINARY, tmp_path)
    library = out / artifact.COMPILED_LIBRARY
    data = bytearray(library.read_bytes())
    data[-1] ^= 0xFF
    library.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"predictor\.so has SHA-256 .*\(corrupt or modified\)"):
        models.load(out, scorer="compiled")


def test_a_library_swapped_after_verification_is_refused(
    build: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _copy(build, BINARY, tmp_path)
    other = build(OTHER_BINARY) / artifact.COMPILED_LIBRARY
    verify = artifact.verify

    def verify_then_swap(root: Path) -> artifact.Manifest:
        manifest = verify(root)
        shutil.copyfile(other, root / artifact.COMPILED_LIBRARY)
        return manifest

    monkeypatch.setattr(artifact, "verify", verify_then_swap)
    with pytest.raises(ModelError, match=r"predictor\.so: SHA-256 is .*\(corrupt or replaced\)"):
        models.load(out, scorer="compiled")


def test_a_wrong_digest_is_refused_by_the_core(build: Build) -> None:
    out = build(BINARY)
    text = (out / artifact.MODEL).read_text()
    library = out / artifact.COMPILED_LIBRARY
    with pytest.raises(ModelError, match=r"the manifest says 0{64} "):
        _core.CompiledModel.load(library, text, sha256="0" * 64)
    with pytest.raises(ModelError, match="not 64 hex digits"):
        _core.CompiledModel.load(library, text, sha256="xyz")
    digest = artifact.sha256_file(library)
    model = _core.CompiledModel.load(str(library), text, sha256=digest.upper())
    assert model.path == library
    assert repr(model).startswith("CompiledModel(")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_features", 41, "says 41 features, model.txt has 40"),
        ("num_class", 2, "says 2 outputs per row, model.txt has 1"),
        ("num_trees", 7, "says 7 trees, model.txt has 50"),
    ],
)
def test_metadata_that_does_not_match_the_model_is_refused(
    field: str, value: int, message: str, build: Build, tmp_path: Path
) -> None:
    out = _copy(build, BINARY, tmp_path)
    _write_metadata(out, **{field: value})
    artifact.write_manifest(out)
    for scorer in ("native", "compiled"):
        with pytest.raises(ModelError, match=message):
            models.load(out, scorer=scorer)  # type: ignore[arg-type]


def _swap_library(out: Path, library: Path) -> None:
    """Put another library in, and a manifest that agrees, so only the load can tell."""
    shutil.copyfile(library, out / artifact.COMPILED_LIBRARY)
    artifact.write_manifest(out)
    artifact.verify(out)


def test_a_library_of_another_model_is_refused(build: Build, tmp_path: Path) -> None:
    out = _copy(build, BINARY, tmp_path)
    _swap_library(out, build(OTHER_BINARY) / artifact.COMPILED_LIBRARY)
    with pytest.raises(ModelError, match=r"disagrees with the model text on \d+ of 128"):
        models.load(out, scorer="compiled")
    models.load(out)  # the native scorer does not read the library


def test_a_library_with_other_outputs_is_refused(build: Build, tmp_path: Path) -> None:
    out = _copy(build, BINARY, tmp_path)
    _swap_library(out, build(MULTICLASS) / artifact.COMPILED_LIBRARY)
    with pytest.raises(ModelError, match="gives 1 x 3 outputs per row, the model text 1"):
        models.load(out, scorer="compiled")


def test_a_library_with_other_features_is_refused(build: Build, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 5))
    booster = lightgbm.train(
        {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1},
        lightgbm.Dataset(features, (features[:, 0] > 0).astype(float)),
        num_boost_round=3,
    )
    booster.save_model(tmp_path / "five.txt")
    five = build_artifact(
        tmp_path / "five.txt", tmp_path / "five", cache_dir=tmp_path / "cache", progress=False
    )
    out = _copy(build, BINARY, tmp_path)
    _swap_library(out, five / artifact.COMPILED_LIBRARY)
    with pytest.raises(ModelError, match="takes 5 features, the model text 40"):
        models.load(out, scorer="compiled")


def test_a_file_that_is_not_a_library_is_refused(build: Build, tmp_path: Path) -> None:
    out = _copy(build, BINARY, tmp_path)
    _swap_library(out, out / artifact.MODEL)
    with pytest.raises(
        ModelError, match="cannot load the compiled library: the file: invalid ELF header"
    ):
        models.load(out, scorer="compiled")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (artifact.COMPILED_LIBRARY, r"compiled/predictor\.so is listed in manifest\.json but"),
        (artifact.MODEL, r"model\.txt is listed in manifest\.json but missing"),
        (artifact.MANIFEST, r"manifest\.json is missing"),
        (artifact.METADATA, r"metadata\.json is listed in manifest\.json but missing"),
    ],
)
def test_missing_files_are_refused(name: str, message: str, build: Build, tmp_path: Path) -> None:
    out = _copy(build, BINARY, tmp_path)
    (out / name).unlink()
    with pytest.raises(ModelError, match=message):
        models.load(out, scorer="compiled")


def test_an_artifact_without_a_library_has_no_compiled_scorer(build: Build) -> None:
    out = build(ZERO_AS_MISSING)
    assert not (out / artifact.COMPILED_LIBRARY).exists()
    with pytest.raises(ModelError, match=r"has no compiled library .*zero_as_missing"):
        models.load(out, scorer="compiled")
    assert models.load(out).scorer == "native"


def test_load_checks_its_arguments(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a directory"):
        models.load(tmp_path / "nowhere", scorer="compiled")
    with pytest.raises(ValueError, match="scorer must be"):
        models.load(tmp_path, scorer="lleaves")  # type: ignore[arg-type]
