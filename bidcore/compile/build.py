"""``build_artifact``: from a LightGBM model text to a verified artifact directory."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm
import msgspec
import numpy as np
import numpy.typing as npt

from bidcore import artifact
from bidcore import features as features_module
from bidcore._core import __version__ as bidcore_version
from bidcore.compile import agreement, library, probes
from bidcore.compile.modeltext import ModelSummary, parse
from bidcore.compile.reference import reference
from bidcore.compile.toolchain import native_output, toolchain, warn_if_untested
from bidcore.errors import ConfigError, ModelError
from bidcore.features import FeatureSpec

__all__ = ["build_artifact"]

log = logging.getLogger("bidcore.compile")


def build_artifact(
    model_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    features: str | os.PathLike[str] | None = None,
    name: str | None = None,
    version: str | None = None,
    training_metrics: Mapping[str, Any] | None = None,
    sample: npt.ArrayLike | None = None,
    require_compiled: bool = True,
    parallel_comp: int | None = None,
    jobs: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Compile a LightGBM model and write it as an artifact directory; return its path.

    ``model_path`` is a LightGBM model text (``Booster.save_model``). The library TL2cgen and gcc
    build from it is accepted only if it gives LightGBM's raw margins (to 1e-9) on the check
    rows: ``sample`` (a 2-D array, NaN for missing, one column per model feature) if given, plus
    rows generated from the model's own thresholds and categories (:mod:`.probes`). If it does
    not, :class:`~bidcore.errors.ModelError` says how many rows differ, by how much, and the
    known cause (``zero_as_missing``...); with ``require_compiled=False`` the artifact is written
    without ``compiled/`` instead, the reason in ``metadata.json`` (``compiled_refused``), since
    bidcore's native evaluator reads the model text itself. The same goes for a failed compile
    (no gcc, a gcc error). Linear-tree models are always refused.

    ``features`` (a feature spec file) is copied verbatim as ``features.toml`` after a TOML syntax
    check (:class:`~bidcore.errors.ConfigError`). ``name`` defaults to the model file's stem,
    ``version`` to the first 12 hex digits of the model text's SHA-256. ``training_metrics`` is
    stored as given (it must encode as JSON). Reference histograms are computed on ``sample``,
    or on the generated rows when there is none (``reference_rows`` says which).

    ``parallel_comp`` is the number of C translation units (default: ~250 leaves each, at least
    one per worker), ``jobs`` the number of parallel gcc runs (default: the usable CPUs),
    ``cache_dir`` the library cache (default: see :mod:`bidcore.compile.library`). The artifact is
    assembled in a temporary directory next to ``out_dir`` and renamed into place at the end; an
    existing ``out_dir`` raises :class:`FileExistsError` unless ``overwrite=True``. ``progress``
    shows a tqdm bar on standard error while gcc runs. Not thread-safe (it redirects the
    process's standard output and error around the native calls).

    >>> from bidcore.testing.models import ModelSpec, TINY, model_path
    >>> tmp = getfixture("tmp_path")
    >>> model = model_path(ModelSpec(categorical=False, size=TINY), tmp)
    >>> out = build_artifact(model, tmp / "ctr", version="1", cache_dir=tmp, progress=False)
    >>> sorted(artifact.verify(out).files)
    ['compiled/predictor.so', 'metadata.json', 'model.txt', 'reference.json']
    """
    model_path = Path(model_path)
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass overwrite=True to replace it)")
    spec = _read_features(Path(features)) if features is not None else None
    text = model_path.read_bytes()
    try:
        summary = parse(text.decode("utf-8"))
    except (ModelError, UnicodeDecodeError) as err:
        raise ModelError(f"{model_path}: {err}") from None
    if summary.linear_trees:
        raise ModelError(
            f"{model_path}: linear trees are not supported ({summary.linear_trees} of "
            f"{summary.num_trees} trees have is_linear=1): neither TL2cgen nor bidcore's "
            "evaluator computes the linear models in the leaves; retrain with linear_tree=false"
        )
    if spec is not None:
        columns = len(_feature_spec(spec, Path(features or "")).features)
        if columns != summary.num_features:
            raise ConfigError(
                f"{features}: the feature spec has {columns} features; the model takes "
                f"{summary.num_features}"
            )
    rows = _sample(sample, summary, model_path)
    found = toolchain()
    warn_if_untested(found)
    digest = hashlib.sha256(text).hexdigest()

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        # Everything reads the staged copy, so the library is built from the bytes shipped.
        staged_model = staging / artifact.MODEL
        staged_model.write_bytes(text)
        with native_output("lightgbm.Booster"):
            booster = lightgbm.Booster(model_file=staged_model)
        generated = probes.probe_rows(summary)
        check_rows = generated if rows is None else np.vstack([rows, generated])
        compiled, refused = _compiled_library(
            str(model_path),
            staged_model,
            summary,
            booster,
            check_rows,
            digest=digest,
            found=found,
            sample_rows=0 if rows is None else len(rows),
            require_compiled=require_compiled,
            cache_dir=None if cache_dir is None else Path(cache_dir),
            jobs=jobs,
            parallel_comp=parallel_comp,
            progress=progress,
        )
        if compiled is not None:
            (staging / artifact.COMPILED_LIBRARY).parent.mkdir()
            shutil.copyfile(compiled, staging / artifact.COMPILED_LIBRARY)
        if spec is not None:
            (staging / artifact.FEATURES).write_bytes(spec)
        metadata = artifact.Metadata(
            format=artifact.FORMAT,
            name=name if name is not None else model_path.stem,
            version=version if version is not None else digest[:12],
            objective=summary.objective,
            num_features=summary.num_features,
            num_class=summary.num_class,
            num_trees=summary.num_trees,
            training_metrics=dict(training_metrics or {}),
            created_at=datetime.now(UTC).replace(microsecond=0),
            bidcore_version=bidcore_version,
            toolchain=found,
            compiled=compiled is not None,
            compiled_refused=refused,
            reference_rows="generated" if rows is None else "sample",
        )
        _write_json(staging / artifact.METADATA, metadata)
        histograms = reference(booster, generated if rows is None else rows)
        _write_json(staging / artifact.REFERENCE, histograms)
        artifact.write_manifest(staging)
        artifact.verify(staging)
        staging.chmod(0o777 & ~_umask())  # mkdtemp made it private
        _move_into_place(staging, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("wrote %s (compiled: %s)", out, "yes" if compiled else f"no, {refused}")
    return out


def _compiled_library(
    label: str,
    model: Path,
    summary: ModelSummary,
    booster: lightgbm.Booster,
    rows: npt.NDArray[np.float64],
    *,
    digest: str,
    found: artifact.Toolchain,
    sample_rows: int,
    require_compiled: bool,
    cache_dir: Path | None,
    jobs: int | None,
    parallel_comp: int | None,
    progress: bool,
) -> tuple[Path | None, str | None]:
    """The checked library's path, or None and why there is none."""
    try:
        built = library.compile_library(
            model,
            summary,
            model_sha256=digest,
            found=found,
            cache_dir=cache_dir,
            jobs=jobs,
            parallel_comp=parallel_comp,
            progress=progress,
        )
        checked = agreement.compare(
            built.path,
            booster,
            rows,
            categorical=summary.categorical_features,
            sample_rows=sample_rows,
        )
        log.info("agreement check: %s", checked.describe())
        if not checked.ok:
            causes = agreement.known_causes(summary, checked)
            reason = "the compiled library disagrees with LightGBM: " + checked.describe()
            if causes:
                reason += "; known cause: " + "; ".join(causes)
            raise ModelError(reason)
    except ModelError as err:
        if require_compiled:
            raise ModelError(f"{label}: {err}") from None
        log.warning("no compiled library: %s", err)
        return None, str(err)
    return built.path, None


def _read_features(path: Path) -> bytes:
    data = path.read_bytes()
    _feature_spec(data, path)
    return data


def _feature_spec(data: bytes, path: Path) -> FeatureSpec:
    """The spec, validated as ``bidcore.features`` reads it (sources, vocabularies, names)."""
    try:
        return features_module.loads(data)
    except (UnicodeDecodeError, msgspec.DecodeError) as err:
        raise ConfigError(f"{path}: not a valid feature spec: {err}") from None


def _sample(
    sample: npt.ArrayLike | None, summary: ModelSummary, model_path: Path
) -> npt.NDArray[np.float64] | None:
    if sample is None:
        return None
    rows = np.ascontiguousarray(sample, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != summary.num_features or rows.shape[0] == 0:
        raise ModelError(
            f"{model_path}: the sample must be a non-empty 2-D array with one column per "
            f"feature ({summary.num_features}), got shape {rows.shape}"
        )
    return rows


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_json(path: Path, value: msgspec.Struct) -> None:
    path.write_bytes(msgspec.json.format(msgspec.json.encode(value)) + b"\n")


def _move_into_place(staging: Path, out: Path, *, overwrite: bool) -> None:
    if not out.exists():
        staging.rename(out)
        return
    if not overwrite:
        raise FileExistsError(f"{out} already exists")
    old = out.with_name(f".{out.name}.old.{os.getpid()}")
    out.rename(old)
    try:
        staging.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
