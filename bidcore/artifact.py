"""Model artifacts: the directory ``bidcore compile`` writes and the engine loads.

An artifact holds one LightGBM model and what the engine needs beside it::

    ARTIFACT/
      model.txt               LightGBM model text, verbatim
      features.toml           the feature spec, verbatim (optional)
      metadata.json           Metadata: name, version, objective, sizes, toolchain, ...
      reference.json          Reference: histograms of score and top features, for drift
      compiled/predictor.so   the TL2cgen library (absent when metadata says compiled: false)
      manifest.json           Manifest: SHA-256 and size of every other file

:func:`verify` checks all of it before a loader trusts the directory, and raises
:class:`~bidcore.errors.ModelError` (``"<artifact>: <reason>"``) at the first problem. This module
needs only ``msgspec``: loading an artifact does not need the build toolchain.

>>> import shutil, tempfile
>>> root = Path(tempfile.mkdtemp())
>>> _ = (root / "model.txt").write_text("tree\\n")
>>> write_manifest(root).files["model.txt"]
FileEntry(sha256='...', bytes=5)
>>> verify(root)
Traceback (most recent call last):
...
bidcore.errors.ModelError: ...: manifest.json does not list metadata.json
>>> shutil.rmtree(root)
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, Final, Literal, TypeVar

import msgspec

from bidcore.errors import ModelError

__all__ = [
    "COMPILED_LIBRARY",
    "FEATURES",
    "FORMAT",
    "MANIFEST",
    "METADATA",
    "MODEL",
    "REFERENCE",
    "FeatureHistogram",
    "FileEntry",
    "Histogram",
    "Manifest",
    "Metadata",
    "Reference",
    "Toolchain",
    "read_manifest",
    "read_metadata",
    "read_reference",
    "sha256_file",
    "verify",
    "write_manifest",
]

FORMAT: Final = 1
"""The artifact format version written in ``metadata.json`` and ``manifest.json``."""

MODEL: Final = "model.txt"
FEATURES: Final = "features.toml"
METADATA: Final = "metadata.json"
REFERENCE: Final = "reference.json"
COMPILED_LIBRARY: Final = "compiled/predictor.so"
MANIFEST: Final = "manifest.json"

_REQUIRED: Final = (MODEL, METADATA, REFERENCE)

_T = TypeVar("_T")


class FileEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One file of the artifact, as the manifest records it."""

    sha256: str
    bytes: int


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``manifest.json``: every file of the artifact but the manifest, by relative POSIX path."""

    format: int
    files: dict[str, FileEntry]


class Toolchain(msgspec.Struct, frozen=True):
    """Versions of what built the artifact (``gcc`` is ``""`` when no compiler was found)."""

    lightgbm: str
    treelite: str
    tl2cgen: str
    gcc: str


class Metadata(msgspec.Struct, frozen=True):
    """``metadata.json``. Unknown keys are ignored, so later formats can add some."""

    format: int
    name: str
    version: str
    objective: str
    """LightGBM's objective line, e.g. ``"binary sigmoid:1"`` (``"none"`` if the text has none)."""
    num_features: int
    num_class: int
    num_trees: int
    training_metrics: dict[str, Any]
    created_at: datetime
    bidcore_version: str
    toolchain: Toolchain
    compiled: bool
    """Whether ``compiled/predictor.so`` is present (it agreed with LightGBM)."""
    compiled_refused: str | None
    """Why there is no compiled library, or None when there is one."""
    reference_rows: Literal["sample", "generated"]
    """What ``reference.json`` was computed on: the caller's sample, or rows generated from the
    model's own split thresholds and categories (not a picture of real traffic)."""

    def __post_init__(self) -> None:
        # Raised as msgspec.ValidationError on decode, so verify() reports it like a type error.
        if self.format != FORMAT:
            raise ValueError(f"format {self.format} is not supported (expected {FORMAT})")
        for field in ("num_features", "num_class", "num_trees"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must carry a time zone (UTC)")
        if self.compiled == (self.compiled_refused is not None):
            raise ValueError("exactly one of compiled and compiled_refused must be set")


class Histogram(msgspec.Struct, frozen=True):
    """Counts of values in bins: ``len(edges) == len(counts) + 1``.

    Bin ``i`` holds ``edges[i] <= v < edges[i + 1]``; the first bin also holds every value below
    ``edges[0]`` and the last every value at or above ``edges[-2]`` (including ``edges[-1]`` and
    beyond), so live values outside the reference range land in the end bins. Edges are the
    deciles of the reference values, deduplicated, so a feature with few distinct values has fewer
    bins. Bin a live value with ``bisect.bisect_right(edges[1:-1], v)``.
    """

    edges: list[float]
    counts: list[int]

    def __post_init__(self) -> None:
        if len(self.edges) != len(self.counts) + 1 or not self.counts:
            raise ValueError(f"{len(self.edges)} edges for {len(self.counts)} counts")
        if any(not math.isfinite(e) for e in self.edges) or self.edges != sorted(self.edges):
            raise ValueError("edges must be finite and sorted")


class FeatureHistogram(Histogram, frozen=True):
    """A feature's histogram; ``missing`` counts NaN (missing) values, kept out of the bins."""

    missing: int


class Reference(msgspec.Struct, frozen=True):
    """``reference.json``: the score (LightGBM's transformed prediction; for a multiclass model
    the probability of the most likely class) and the most important features by gain."""

    score: Histogram
    features: dict[str, FeatureHistogram]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def write_manifest(root: Path) -> Manifest:
    """Hash every file under ``root`` (but the manifest) and write ``manifest.json``."""
    root = Path(root)
    files = {
        path.relative_to(root).as_posix(): FileEntry(sha256_file(path), path.stat().st_size)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.relative_to(root).as_posix() != MANIFEST
    }
    manifest = Manifest(format=FORMAT, files=files)
    (root / MANIFEST).write_bytes(msgspec.json.format(msgspec.json.encode(manifest)) + b"\n")
    return manifest


def read_manifest(root: Path) -> Manifest:
    """Read and type-check ``manifest.json`` (without checking the files; see :func:`verify`)."""
    root = Path(root)
    manifest = _decode(root, MANIFEST, Manifest)
    if manifest.format != FORMAT:
        raise ModelError(
            f"{root}: {MANIFEST}: format {manifest.format} is not supported (expected {FORMAT})"
        )
    for name in manifest.files:
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or name != relative.as_posix():
            raise ModelError(f"{root}: {MANIFEST} lists {name!r}, which is not a plain path")
    return manifest


def read_metadata(root: Path) -> Metadata:
    """Read and type-check ``metadata.json`` (without checking checksums; see :func:`verify`)."""
    return _decode(Path(root), METADATA, Metadata)


def read_reference(root: Path) -> Reference:
    """Read and type-check ``reference.json``."""
    return _decode(Path(root), REFERENCE, Reference)


def verify(root: Path) -> Manifest:
    """Check an artifact directory before trusting it; return its manifest.

    Checked: the manifest parses; it lists ``model.txt``, ``metadata.json`` and
    ``reference.json`` (and ``compiled/predictor.so`` exactly when the metadata says
    ``compiled: true``); every listed file exists with the listed size and SHA-256; no file is
    there that the manifest does not list; ``metadata.json`` and ``reference.json`` parse, with
    every required key of the right type and sane values. Raises
    :class:`~bidcore.errors.ModelError` naming the artifact and the first problem found. Reads
    every file once (hashing a large compiled library takes a few milliseconds).
    """
    root = Path(root)
    if not root.is_dir():
        raise ModelError(f"{root}: not a directory")
    manifest = read_manifest(root)
    for name in _REQUIRED:
        if name not in manifest.files:
            raise ModelError(f"{root}: {MANIFEST} does not list {name}")
    present = {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() or path.is_symlink()
    } - {MANIFEST}
    missing = sorted(manifest.files.keys() - present)
    if missing:
        raise ModelError(f"{root}: {missing[0]} is listed in {MANIFEST} but missing")
    unlisted = sorted(present - manifest.files.keys())
    if unlisted:
        raise ModelError(f"{root}: {unlisted[0]} is not listed in {MANIFEST}")
    for name, entry in sorted(manifest.files.items()):
        _check_file(root, name, entry)
    metadata = read_metadata(root)
    if metadata.compiled != (COMPILED_LIBRARY in manifest.files):
        raise ModelError(
            f"{root}: {METADATA} says compiled: {str(metadata.compiled).lower()}, but "
            f"{COMPILED_LIBRARY} is {'' if COMPILED_LIBRARY in manifest.files else 'not '}there"
        )
    read_reference(root)
    return manifest


def _check_file(root: Path, name: str, entry: FileEntry) -> None:
    path = root / name
    if path.is_symlink() or not path.is_file():
        raise ModelError(f"{root}: {name} is not a regular file")
    size = path.stat().st_size
    if size != entry.bytes:
        hint = "truncated" if size < entry.bytes else "grown"
        raise ModelError(f"{root}: {name} has {size} bytes, {MANIFEST} says {entry.bytes} ({hint})")
    digest = sha256_file(path)
    if digest != entry.sha256:
        raise ModelError(
            f"{root}: {name} has SHA-256 {digest}, {MANIFEST} says {entry.sha256} "
            "(corrupt or modified)"
        )


def _decode(root: Path, name: str, kind: type[_T]) -> _T:
    path = root / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{root}: {name} is missing") from None
    except OSError as err:
        raise ModelError(f"{root}: {name} cannot be read: {err.strerror or err}") from err
    try:
        return msgspec.json.decode(data, type=kind, strict=True)
    except msgspec.ValidationError as err:
        raise ModelError(f"{root}: {name}: {err}") from None
    except msgspec.DecodeError as err:
        raise ModelError(f"{root}: {name} is not valid JSON: {err}") from None
