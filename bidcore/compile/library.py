"""Compile a LightGBM model into a TL2cgen shared library, gcc driven from here, and cache it.

Treelite reads the model, TL2cgen writes C split into translation units (``parallel_comp``), and
gcc compiles the units in parallel (one thread per worker, each running a gcc) and links
``predictor.so``, with the flags TL2cgen's own ``create_shared`` uses::

    gcc -c -O3 -fPIC -std=c99 -o tuK.o tuK.c          (one per unit, and main.c)
    gcc -shared -O3 -std=c99 -o predictor.so *.o -lm

A progress bar (tqdm, on standard error) ticks once per compiled unit, since a large model with
categorical splits takes minutes. The library is kept in the cache under a key made of the model
text's SHA-256, the Treelite and TL2cgen versions, gcc's version and target, and the flags
(``parallel_comp`` is not part of it: it changes how the C is split, not what it computes), and
reused by any later build of the same model. A cache entry is a directory::

    <cache>/<key>/predictor.so
    <cache>/<key>/entry.json     {"format", "key", "inputs", "sha256", "bytes", "created_at", ...}

created by renaming a finished directory into place, so a reader never sees half of one; an
entry whose library no longer matches its recorded SHA-256 is rebuilt. The cache root is
``$BIDCORE_CACHE_DIR/compiled``, else ``$XDG_CACHE_HOME/bidcore/compiled``, else
``~/.cache/bidcore/compiled``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import tl2cgen
import treelite
from tqdm import tqdm  # type: ignore[import-untyped]

from bidcore.artifact import Toolchain, sha256_file
from bidcore.compile.modeltext import ModelSummary
from bidcore.compile.toolchain import COMPILER, compiler_target, native_output
from bidcore.errors import ModelError

__all__ = [
    "COMPILE_FLAGS",
    "LIBRARY",
    "LINK_FLAGS",
    "Library",
    "cache_key",
    "compile_library",
    "default_cache_dir",
    "default_units",
]

log = logging.getLogger("bidcore.compile")

COMPILE_FLAGS: Final = ("-O3", "-fPIC", "-std=c99")
LINK_FLAGS: Final = ("-shared", "-O3", "-std=c99")
LINK_LIBRARIES: Final = ("-lm",)
LIBRARY: Final = "predictor.so"
CACHE_FORMAT: Final = 1
LEAVES_PER_UNIT: Final = 250
"""Default size of a translation unit. gcc's time grows faster than linearly with a function's
size, and each file costs ~50 ms of start-up; on the 50x31 categorical test model ten units of
~150 leaves compiled in 1.4 s, fifty units of one tree in 2.7 s, one unit of all in minutes."""

_ENTRY: Final = "entry.json"
_ERROR_TAIL: Final = 4_000


class _CacheEntry(msgspec.Struct, frozen=True):
    format: int
    key: str
    inputs: dict[str, Any]
    sha256: str
    bytes: int
    created_at: datetime
    seconds: float
    units: int


@dataclasses.dataclass(frozen=True)
class Library:
    """A compiled library in the cache."""

    path: Path
    key: str
    cached: bool
    """True if an earlier build's library was reused (gcc did not run)."""
    seconds: float
    """Code generation and gcc; 0.0 when cached."""
    units: int
    """Translation units compiled (main.c included); 0 when cached."""


def default_cache_dir() -> Path:
    """Where compiled libraries are kept (see the module docstring)."""
    if os.environ.get("BIDCORE_CACHE_DIR"):
        return Path(os.environ["BIDCORE_CACHE_DIR"]) / "compiled"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bidcore" / "compiled"


def cache_key(model_sha256: str, found: Toolchain) -> tuple[str, dict[str, Any]]:
    """The cache key for a model text hash and toolchain, and what went into it."""
    inputs: dict[str, Any] = {
        "cache_format": CACHE_FORMAT,
        "model_sha256": model_sha256,
        "treelite": found.treelite,
        "tl2cgen": found.tl2cgen,
        "compiler": COMPILER,
        "gcc": found.gcc,
        "target": compiler_target(),
        "compile_flags": list(COMPILE_FLAGS),
        "link_flags": [*LINK_FLAGS, *LINK_LIBRARIES],
    }
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    return digest[:32], inputs


def default_units(summary: ModelSummary, workers: int) -> int:
    """How many translation units to ask TL2cgen for: about ``LEAVES_PER_UNIT`` leaves each,
    at least one per worker, at most one per tree."""
    wanted = max(math.ceil(summary.total_leaves / LEAVES_PER_UNIT), workers)
    return max(1, min(wanted, summary.num_trees))


def compile_library(
    model_path: Path,
    summary: ModelSummary,
    *,
    model_sha256: str,
    found: Toolchain,
    cache_dir: Path | None = None,
    jobs: int | None = None,
    parallel_comp: int | None = None,
    progress: bool = True,
) -> Library:
    """The cached library for ``model_path``, compiling it first if the cache has none.

    Raises :class:`~bidcore.errors.ModelError` if code generation, gcc or the link fails (the
    message carries gcc's error output), or if there is no gcc.
    """
    root = default_cache_dir() if cache_dir is None else Path(cache_dir)
    key, inputs = cache_key(model_sha256, found)
    entry = root / key
    if _usable(entry, key):
        log.info("reusing the compiled library %s", entry / LIBRARY)
        return Library(entry / LIBRARY, key, cached=True, seconds=0.0, units=0)
    if not found.gcc:
        raise ModelError(f"cannot compile: {COMPILER} was not found on PATH")

    workers = max(1, jobs if jobs else _cpu_count())
    units = default_units(summary, workers) if parallel_comp is None else parallel_comp
    units = max(1, min(units, summary.num_trees))
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f".build-{key[:12]}-", dir=root) as work:
        source = Path(work) / "src"
        _generate(model_path, source, units)
        names = _sources(source)
        log.info("compiling %d C files with %d gcc workers", len(names), workers)
        with tqdm(
            total=len(names), desc="compiling", unit="file", disable=not progress, leave=False
        ) as bar:
            _compile_units(source, names, workers, bar.update)
        _run(
            [COMPILER, *LINK_FLAGS, "-o", LIBRARY, *(f"{n}.o" for n in names), *LINK_LIBRARIES],
            source,
        )
        seconds = time.perf_counter() - started
        built = Path(work) / "entry"
        built.mkdir()
        library = built / LIBRARY
        shutil.move(source / LIBRARY, library)
        record = _CacheEntry(
            format=CACHE_FORMAT,
            key=key,
            inputs=inputs,
            sha256=sha256_file(library),
            bytes=library.stat().st_size,
            created_at=datetime.now(UTC).replace(microsecond=0),
            seconds=round(seconds, 3),
            units=len(names),
        )
        (built / _ENTRY).write_bytes(msgspec.json.format(msgspec.json.encode(record)))
        _install(built, entry, key)
    log.info("compiled %s in %.1f s (%d C files)", entry / LIBRARY, seconds, len(names))
    return Library(entry / LIBRARY, key, cached=False, seconds=seconds, units=len(names))


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _usable(entry: Path, key: str) -> bool:
    """Whether a cache entry is complete and intact; a damaged one is removed."""
    if not entry.is_dir():
        return False
    try:
        record = msgspec.json.decode((entry / _ENTRY).read_bytes(), type=_CacheEntry)
        library = entry / LIBRARY
        intact = (
            record.key == key
            and library.stat().st_size == record.bytes
            and sha256_file(library) == record.sha256
        )
    except (OSError, msgspec.DecodeError):
        intact = False
    if not intact:
        log.warning("the cached library in %s is damaged: rebuilding it", entry)
        shutil.rmtree(entry, ignore_errors=True)
    return intact


def _install(built: Path, entry: Path, key: str) -> None:
    """Rename a finished entry into place; if another build got there first, keep theirs."""
    try:
        built.rename(entry)
    except OSError:
        if not _usable(entry, key):
            built.rename(entry)


def _generate(model_path: Path, source: Path, units: int) -> None:
    with native_output("treelite.frontend.load_lightgbm_model"):
        model = treelite.frontend.load_lightgbm_model(model_path)
    log.info("generating C with TL2cgen (parallel_comp=%d)", units)
    try:
        with native_output("tl2cgen.generate_c_code"):
            tl2cgen.generate_c_code(model, source, {"parallel_comp": units})
    except tl2cgen.TL2cgenError as err:
        raise ModelError(f"TL2cgen could not generate C for the model: {err}") from err


def _sources(source: Path) -> list[str]:
    """The C files of TL2cgen's recipe, without ``.c``, largest first (so the longest gcc runs
    start first and the workers finish together)."""
    recipe = json.loads((source / "recipe.json").read_text())
    names = [str(s["name"]) for s in recipe["sources"]]
    return sorted(names, key=lambda n: (-(source / f"{n}.c").stat().st_size, n))


def _compile_units(
    source: Path, names: list[str], workers: int, tick: Callable[[int], object]
) -> None:
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bidcore-gcc") as pool:
        futures = [
            pool.submit(_run, [COMPILER, "-c", *COMPILE_FLAGS, "-o", f"{n}.o", f"{n}.c"], source)
            for n in names
        ]
        try:
            for future in as_completed(futures):
                future.result()
                tick(1)
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _run(command: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as err:
        raise ModelError(f"cannot run {command[0]}: {err.strerror or err}") from err
    if done.returncode != 0:
        output = (done.stderr + done.stdout).strip()[-_ERROR_TAIL:]
        raise ModelError(f"`{' '.join(command)}` failed (exit {done.returncode}):\n{output}")
