"""``bidcore.compile.build_artifact`` and ``bidcore compile``: a model in, an artifact out, the
compiled library checked against LightGBM, cached, and refused when it is wrong.

Models are the tiny ones of :mod:`bidcore.testing.models` (10 trees; a second or two of gcc), all
sharing one library cache for the module, so each distinct model is compiled once.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lightgbm
import numpy as np
import pytest
import tl2cgen
import treelite

import bidcore
from bidcore import artifact
from bidcore.cli import main
from bidcore.compile import TESTED_TOOLCHAIN, build_artifact, library
from bidcore.compile.probes import mistaken_for_missing
from bidcore.errors import ConfigError, ModelError
from bidcore.models import load
from bidcore.testing.models import TINY, ModelSpec, ctr_data, model_path

BIN = Path(sys.executable).parent
BINARY = ModelSpec(task="binary", categorical=True, size=TINY)
NUMERIC = ModelSpec(task="binary", categorical=False, size=TINY)
ZERO_AS_MISSING = ModelSpec(task="binary", categorical=True, zero_as_missing=True, size=TINY)
EVERY_FILE = [
    "compiled/predictor.so",
    "features.toml",
    "manifest.json",
    "metadata.json",
    "model.txt",
    "reference.json",
]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _spec_toml(columns: int) -> str:
    """A feature spec with one column per model input (what they read does not matter here)."""
    return "".join(
        f'[[features]]\nname = "f{j:02d}"\nnumber = "imp.bidfloor"\n' for j in range(columns)
    )


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(_spec_toml(40))
    return path


def test_a_feature_spec_must_match_the_model(models: Path, tmp_path: Path, cache: Path) -> None:
    tiny_model = model_path(BINARY, models)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(_spec_toml(39))
    with pytest.raises(ConfigError, match="the feature spec has 39 features; the model takes 40"):
        _build(tiny_model, tmp_path / "out", cache, features=wrong)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[features]]\nname = "x"\nnumber = "imp.nope"\n')
    with pytest.raises(ConfigError, match="unknown number source"):
        _build(tiny_model, tmp_path / "out", cache, features=bad)


def _build(model: Path, out: Path, cache: Path, **options: object) -> Path:
    return build_artifact(model, out, cache_dir=cache, progress=False, **options)  # type: ignore[arg-type]


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_an_artifact_has_every_file_and_a_valid_manifest(
    models: Path, cache: Path, tmp_path: Path, spec_file: Path
) -> None:
    model = model_path(BINARY, models)
    out = _build(
        model,
        tmp_path / "ctr",
        cache,
        features=spec_file,
        name="ctr",
        version="2026.11.1",
        training_metrics={"auc": 0.71, "valid": {"logloss": 0.52}},
    )
    assert out == tmp_path / "ctr"
    assert _files(out) == EVERY_FILE
    assert sorted(artifact.verify(out).files) == [f for f in EVERY_FILE if f != "manifest.json"]
    assert (out / "model.txt").read_bytes() == model.read_bytes()
    assert (out / "features.toml").read_bytes() == spec_file.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctr", "spec.toml"]  # no staging left

    metadata = artifact.read_metadata(out)
    assert (metadata.format, metadata.name, metadata.version) == (1, "ctr", "2026.11.1")
    assert metadata.objective == "binary sigmoid:1"
    assert (metadata.num_features, metadata.num_class, metadata.num_trees) == (40, 1, 10)
    assert metadata.training_metrics == {"auc": 0.71, "valid": {"logloss": 0.52}}
    assert timedelta(0) <= datetime.now(UTC) - metadata.created_at < timedelta(minutes=5)
    assert metadata.created_at.utcoffset() == timedelta(0)
    assert metadata.bidcore_version == bidcore.__version__
    assert metadata.toolchain == artifact.Toolchain(
        lightgbm=lightgbm.__version__,
        treelite=treelite.__version__,
        tl2cgen=tl2cgen.__version__,
        gcc=metadata.toolchain.gcc,
    )
    assert metadata.toolchain.gcc
    assert (metadata.compiled, metadata.compiled_refused) == (True, None)
    assert metadata.reference_rows == "generated"

    raw = json.loads((out / "metadata.json").read_text())
    assert list(raw) == [
        "format",
        "name",
        "version",
        "objective",
        "num_features",
        "num_class",
        "num_trees",
        "training_metrics",
        "created_at",
        "bidcore_version",
        "toolchain",
        "compiled",
        "compiled_refused",
        "reference_rows",
    ]
    assert raw["created_at"].endswith("Z")

    reference = artifact.read_reference(out)
    names = lightgbm.Booster(model_file=model).feature_name()
    assert 1 <= len(reference.features) <= 10
    assert set(reference.features) <= set(names)
    assert len(reference.score.edges) == len(reference.score.counts) + 1
    assert all(0.0 <= e <= 1.0 for e in reference.score.edges)  # probabilities


@pytest.mark.parametrize(
    "spec",
    [
        BINARY,
        ModelSpec(task="regression", categorical=True, size=TINY),
        ModelSpec(task="multiclass", categorical=True, size=TINY),
    ],
    ids=lambda s: s.name,
)
def test_the_library_agrees_with_lightgbm(
    spec: ModelSpec, models: Path, cache: Path, tmp_path: Path
) -> None:
    model = model_path(spec, models)
    out = _build(model, tmp_path / "a", cache)
    booster = lightgbm.Booster(model_file=model)
    rows = ctr_data(3_000, seed=11).features
    rows[::7, 3] = 0.0
    predictor = tl2cgen.Predictor(out / "compiled" / "predictor.so", nthread=1)
    for margin in (True, False):
        got = predictor.predict(tl2cgen.DMatrix(rows), pred_margin=margin).reshape(len(rows), -1)
        expected = np.asarray(booster.predict(rows, raw_score=margin)).reshape(len(rows), -1)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_a_second_build_reuses_the_cached_library(
    models: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = model_path(BINARY, models)
    first = _build(model, tmp_path / "first", cache)
    entries = {p: p.stat().st_mtime_ns for p in cache.glob("*/predictor.so")}

    def no_gcc(*args: object, **kwargs: object) -> None:
        raise AssertionError("gcc ran although the library is cached")

    monkeypatch.setattr(library, "_generate", no_gcc)
    monkeypatch.setattr(library, "_compile_units", no_gcc)
    second = _build(model, tmp_path / "second", cache)
    library_file = "compiled/predictor.so"
    assert (second / library_file).read_bytes() == (first / library_file).read_bytes()
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*/predictor.so")} == entries


def test_a_damaged_cache_entry_is_rebuilt(
    models: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = model_path(NUMERIC, models)
    cache = tmp_path / "cache"
    _build(model, tmp_path / "first", cache, jobs=1)
    (cached,) = cache.glob("*/predictor.so")
    cached.write_bytes(cached.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING, logger="bidcore.compile"):
        out = _build(model, tmp_path / "second", cache, jobs=1)
    assert "is damaged: rebuilding it" in caplog.text
    artifact.verify(out)
    assert cached.stat().st_size > 1000


def test_native_output_is_logged_and_progress_shown(
    models: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    model = model_path(NUMERIC, models)
    with caplog.at_level(logging.DEBUG, logger="bidcore.compile"):
        build_artifact(model, tmp_path / "a", cache_dir=tmp_path / "cache", parallel_comp=3)
    out, err = capfd.readouterr()
    assert "Treelite" not in out + err  # TL2cgen's prints and its Treelite's stderr are captured
    assert "compiling" in err  # the tqdm bar
    assert out == ""
    expected = (
        f"TL2cgen's embedded Treelite {TESTED_TOOLCHAIN['tl2cgen_treelite']} read a Treelite "
        f"{TESTED_TOOLCHAIN['treelite']} model (the tested combination)"
    )
    assert expected in caplog.text
    assert "Parallel compilation enabled" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_zero_as_missing_is_refused_with_the_reason(
    models: Path, cache: Path, tmp_path: Path
) -> None:
    model = model_path(ZERO_AS_MISSING, models)
    with pytest.raises(ModelError) as caught:
        _build(model, tmp_path / "zam", cache)
    message = str(caught.value)
    assert message.startswith(f"{model}: the compiled library disagrees with LightGBM: ")
    assert " rows differ from LightGBM by more than 1e-09 on the raw margin (max |diff| " in message
    assert "known cause: the model treats zero as missing (zero_as_missing=1" in message
    assert list(tmp_path.iterdir()) == []  # nothing half-written

    out = _build(model, tmp_path / "zam", cache, require_compiled=False)
    assert "compiled/predictor.so" not in _files(out)
    artifact.verify(out)
    metadata = artifact.read_metadata(out)
    assert metadata.compiled is False
    assert metadata.compiled_refused is not None
    assert "zero_as_missing" in metadata.compiled_refused


def test_linear_trees_are_refused(models: Path, cache: Path, tmp_path: Path) -> None:
    model = model_path(ModelSpec(linear_tree=True, size=TINY), models)
    for require_compiled in (True, False):
        with pytest.raises(ModelError, match=r"linear trees are not supported \(10 of 10 trees"):
            _build(model, tmp_path / "linear", cache, require_compiled=require_compiled)
    assert list(tmp_path.iterdir()) == []


def test_a_sample_is_checked_and_used_for_the_reference(
    models: Path, cache: Path, tmp_path: Path
) -> None:
    model = model_path(BINARY, models)
    sample = ctr_data(500, seed=3).features
    out = _build(model, tmp_path / "a", cache, sample=sample)
    metadata = artifact.read_metadata(out)
    assert (metadata.reference_rows, metadata.compiled) == ("sample", True)
    reference = artifact.read_reference(out)
    assert sum(reference.score.counts) == 500
    for name, histogram in reference.features.items():
        assert sum(histogram.counts) + histogram.missing == 500, name

    with pytest.raises(ModelError, match=r"one column per feature \(40\), got shape \(500, 39\)"):
        _build(model, tmp_path / "b", cache, sample=sample[:, :39])


def test_numbers_tl2cgen_reads_as_missing_are_checked_as_the_scorer_calls_them(
    models: Path, cache: Path, tmp_path: Path
) -> None:
    # TL2cgen's code tests `missing != -1` on the low half of the double: a number whose low 32
    # bits are all ones is missing to it, and not to LightGBM. bidcore's compiled scorer nudges
    # such numbers one ulp toward zero, and the compile check runs the library the same way, so
    # the model is accepted and scores these rows as LightGBM does.
    model = model_path(BINARY, models)
    (almost_one,) = struct.unpack("<d", struct.pack("<Q", 0x3FF0_0000_FFFF_FFFF))
    assert mistaken_for_missing(np.array([almost_one, 1.0])).tolist() == [True, False]
    sample = ctr_data(500, seed=3).features
    sample[:, :30] = almost_one  # every numeric feature
    sample[:7, 0] = [1e-36, -1e-36, 1e-35, -1e-35, 2e-35, -0.0, 0.0]  # LightGBM's zero band
    out = _build(model, tmp_path / "a", cache, sample=sample)
    compiled = load(out, scorer="compiled")
    expected = lightgbm.Booster(model_file=str(model)).predict(sample, raw_score=True)
    assert np.max(np.abs(compiled.predict(sample, raw=True) - expected)) <= 1e-9


def test_an_existing_output_is_kept_unless_overwrite(
    models: Path, cache: Path, tmp_path: Path
) -> None:
    model = model_path(BINARY, models)
    out = tmp_path / "a"
    out.mkdir()
    (out / "keep").write_text("mine")
    with pytest.raises(FileExistsError, match="already exists"):
        _build(model, out, cache)
    assert _files(out) == ["keep"]
    _build(model, out, cache, overwrite=True, features=None)
    assert "keep" not in _files(out)
    artifact.verify(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_a_feature_spec_that_is_not_toml_is_refused(
    models: Path, cache: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text("[features\n")
    with pytest.raises(ConfigError, match=r"spec\.toml: not a valid feature spec"):
        _build(model_path(BINARY, models), tmp_path / "a", cache, features=spec)


def test_a_file_that_is_not_a_model_is_refused(cache: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "model.txt"
    bogus.write_text("{}")
    with pytest.raises(ModelError, match="not a LightGBM model text"):
        _build(bogus, tmp_path / "a", cache)


# --- The command line ------------------------------------------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "bidcore"), "compile", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_the_command_writes_an_artifact(models: Path, tmp_path: Path, spec_file: Path) -> None:
    model = model_path(NUMERIC, models)
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"auc": 0.7}')
    sample = tmp_path / "sample.npy"
    np.save(sample, ctr_data(200, seed=5).features)
    out = tmp_path / "artifact"
    done = _cli(
        str(model),
        "--features",
        str(spec_file),
        "-o",
        str(out),
        "--name",
        "ctr",
        "--version",
        "7",
        "--metrics",
        str(metrics),
        "--sample",
        str(sample),
        "--jobs",
        "1",
        env={"BIDCORE_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{out}: ctr 7, 10 trees, compiled\n"
    assert _files(out) == EVERY_FILE
    artifact.verify(out)
    metadata = artifact.read_metadata(out)
    assert (metadata.training_metrics, metadata.reference_rows) == ({"auc": 0.7}, "sample")
    assert len(list((tmp_path / "cache" / "compiled").glob("*/predictor.so"))) == 1


def test_the_command_refuses_or_falls_back(models: Path, cache: Path, tmp_path: Path) -> None:
    model = model_path(ZERO_AS_MISSING, models)
    out = tmp_path / "zam"
    refused = _cli(str(model), "-o", str(out), "--cache-dir", str(cache))
    assert refused.returncode == 1
    assert "zero_as_missing" in refused.stderr
    assert not out.exists()
    fallback = _cli(str(model), "-o", str(out), "--cache-dir", str(cache), "--no-require-compiled")
    assert fallback.returncode == 0, fallback.stderr
    assert fallback.stdout.startswith(f"{out}: ")
    assert "not compiled: the compiled library disagrees with LightGBM" in fallback.stdout
    assert "no compiled library" in fallback.stderr  # the warning
    artifact.verify(out)


def test_the_command_reports_unreadable_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["compile", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "a")])
    assert status == 2
    assert "missing.txt" in capsys.readouterr().err
