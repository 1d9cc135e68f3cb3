"""The contestants of ``benchmarks/models.py``: every way of scoring a LightGBM model it times.

A :class:`Contestant` names a scorer and the modes it is timed in (one row per call, 16-row
blocks, one 10k-row batch); its ``build`` makes one :class:`Runner` per mode for a given model,
or raises :class:`UnavailableError` with the reason it cannot run here (a package that does not
install, an API not written yet, no gcc). Every runner computes raw margins (LightGBM's
``raw_score=True``), so each can be checked against ``Booster.predict`` before it is timed.

From Python (:class:`PyRunner`): bidcore's native evaluator (``bidcore.models.from_lightgbm``) and
its compiled scorer (``bidcore.models.load(artifact, scorer="compiled")``, once it exists),
LightGBM's ``Booster.predict``, LightGBM's C API through ctypes (the fast single-row entry points;
``LGBM_BoosterPredictForMat`` for blocks), Treelite's GTIL, TL2cgen's ``Predictor`` and lleaves.
Each is called the way a caller would write it: where a call needs glue (a TL2cgen ``DMatrix``,
a ctypes call), the glue is timed too.

From C (:class:`CRunner`): ``peers/score_c.c``, compiled with gcc at run time, dlopen()s
LightGBM's ``lib_lightgbm.so``, the TL2cgen library or lleaves' object linked into a shared
library, and times single-row calls (and blocks where the library scores several rows per call).

Compiled libraries are cached under ``.benchmarks/``: TL2cgen's in bidcore's own cache layout
(``compiled/``, shared with :func:`bidcore.compile.build_artifact`), lleaves' objects in
``lleaves/`` (keyed by the model text, lleaves and llvmlite versions, options and host CPU).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import hashlib
import importlib
import importlib.metadata
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal, Protocol

import lightgbm
import numpy as np
import numpy.typing as npt
import tl2cgen
import treelite

import bidcore.models
from bidcore import artifact
from bidcore.compile import build_artifact
from bidcore.compile.library import compile_library
from bidcore.compile.modeltext import parse
from bidcore.compile.toolchain import native_output, toolchain
from bidcore.errors import ModelError

__all__ = [
    "BATCH",
    "BLOCK",
    "CAMPAIGN_COLUMNS",
    "CANDIDATES",
    "CONTESTANTS",
    "MODES",
    "ROWS_PER_SAMPLE",
    "SINGLE",
    "Budget",
    "Contestant",
    "Env",
    "Mode",
    "ModelUnderTest",
    "RowSet",
    "Runner",
    "Samples",
    "Stats",
    "UnavailableError",
    "build_harness",
    "write_rows",
]

Rows = npt.NDArray[np.float64]

ROWS_PER_SAMPLE: Final = 64
"""Rows per timed sample: 64 one-row calls or four 16-row blocks between two clock reads, so the
clock's own cost (~30 ns) is spread over 64 rows. A 10k batch is one call per sample."""

LLEAVES_BLOCK_SIZE: Final = 34
"""lleaves' ``fblocksize`` (its default). ``fblocksize = trees``, its advice for single rows,
did not finish compiling the 300-tree model in 14 minutes (docs/model-toolchain.md)."""

_LGBM_RAW_SCORE: Final = 1
_LGBM_FLOAT64: Final = 1
_LGBM_ROW_MAJOR: Final = 1
_ONE_THREAD: Final = b"num_threads=1"


class UnavailableError(Exception):
    """A contestant that cannot run here; the message says why."""


@dataclasses.dataclass(frozen=True)
class Mode:
    key: str
    label: str
    rows_per_call: int | None
    """None: the whole batch row set in one call."""


SINGLE: Final = Mode("single", "1 row", 1)
BLOCK: Final = Mode("block16", "16-row block", 16)
BATCH: Final = Mode("batch", "10k batch", None)
CANDIDATES: Final = Mode("candidates16", "16 candidates of one imp", 16)
"""16-row blocks as the engine scores them: one impression's request features with 16
campaigns' own features (``CAMPAIGN_COLUMNS``); timed with the contestant's block call."""
MODES: Final = (SINGLE, BLOCK, BATCH)

CAMPAIGN_COLUMNS: Final = (27, 28, 29, 38, 39)
"""The columns that play the campaign's attributes in candidate blocks: three numeric ones and
the two categorical ones of highest cardinality (300 and 500: campaign and creative ids)."""


@dataclasses.dataclass(frozen=True)
class RowSet:
    """Rows to score, and the same rows in a file for the C harness (int64 rows, int64
    columns, then the float64 values row-major)."""

    array: Rows
    file: Path


@dataclasses.dataclass(frozen=True)
class Budget:
    """Samples are taken until there are ``min_samples`` and either ``seconds`` have passed or
    there are ``max_samples``."""

    min_samples: int
    max_samples: int
    seconds: float


@dataclasses.dataclass(frozen=True)
class Samples:
    """Timed samples: each one's time over its rows, in ns."""

    per_row_ns: list[float]
    rows_per_sample: int


@dataclasses.dataclass(frozen=True)
class Stats:
    p50_ns: float
    p99_ns: float
    samples: int
    rows_per_sample: int

    @classmethod
    def of(cls, samples: Samples) -> Stats:
        """Nearest-rank percentiles, as the C harness computes them."""
        ordered = sorted(samples.per_row_ns)
        n = len(ordered)
        return cls(
            p50_ns=round(ordered[math.ceil(0.5 * n) - 1], 1),
            p99_ns=round(ordered[math.ceil(0.99 * n) - 1], 1),
            samples=n,
            rows_per_sample=samples.rows_per_sample,
        )


@dataclasses.dataclass(frozen=True)
class ModelUnderTest:
    key: str
    label: str
    path: Path
    sha256: str
    num_features: int


@dataclasses.dataclass(frozen=True)
class Env:
    """What the builders share: the cache root, gcc workers, the C harness, cleanups."""

    work: Path
    jobs: int
    harness: Path | None
    harness_missing: str
    """Why there is no harness (when ``harness`` is None)."""
    cleanup: contextlib.ExitStack

    @property
    def compiled_cache(self) -> Path:
        return self.work / "compiled"


class Runner(Protocol):
    """One contestant in one mode."""

    def with_mode(self, mode: Mode) -> Runner:
        """The same call, reported under another mode (same rows per call)."""
        ...

    def predict(self, rows: RowSet) -> Rows:
        """Raw margins of every row, scored the way :meth:`time` scores them."""
        ...

    def time(self, rows: RowSet, budget: Budget) -> Samples:
        """Per-row cost of scoring rows, cycling through them, after a short warm-up."""
        ...


@dataclasses.dataclass(frozen=True)
class Contestant:
    key: str
    label: str
    called_from: Literal["Python", "C"]
    modes: tuple[Mode, ...]
    build: Callable[[ModelUnderTest, Env], dict[str, Runner]]
    """Runners by mode key; raises :class:`UnavailableError`."""


# ---- from Python ---------------------------------------------------------------------------


def _margins(result: object) -> Rows:
    return np.asarray(result, dtype=np.float64).reshape(-1)


def _same(rows: Rows) -> Rows:
    return rows


def _first_row(rows: Rows) -> Rows:
    return rows[0, :]


def _address(rows: Rows) -> int:
    return int(rows.ctypes.data)


@dataclasses.dataclass(frozen=True)
class PyRunner:
    """``call`` scores one call's rows; ``prepare`` turns them into its argument beforehand
    (untimed: a caller has its row in hand), ``margins`` reads its result (untimed)."""

    mode: Mode
    call: Callable[[Any], object]
    prepare: Callable[[Rows], object] = _same
    margins: Callable[[object], Rows] = _margins

    def with_mode(self, mode: Mode) -> PyRunner:
        return dataclasses.replace(self, mode=mode)

    def _inputs(self, rows: Rows) -> list[object]:
        step = self.mode.rows_per_call or len(rows)
        return [self.prepare(rows[i : i + step]) for i in range(0, len(rows), step)]

    def predict(self, rows: RowSet) -> Rows:
        return np.concatenate([self.margins(self.call(x)) for x in self._inputs(rows.array)])

    def time(self, rows: RowSet, budget: Budget) -> Samples:
        inputs = self._inputs(rows.array)
        if self.mode.rows_per_call is None:
            per_sample, rows_per_sample = 1, len(rows.array)
        else:
            per_sample = ROWS_PER_SAMPLE // self.mode.rows_per_call
            rows_per_sample = ROWS_PER_SAMPLE
        groups = [inputs[i : i + per_sample] for i in range(0, len(inputs), per_sample)]
        return _sample(self.call, groups, rows_per_sample, budget)


def _sample(
    call: Callable[[Any], object], groups: list[list[object]], rows_per_sample: int, budget: Budget
) -> Samples:
    """Time ``groups`` in turn, one sample per group, with the collector off."""
    for group in groups[:8]:  # warm-up
        for x in group:
            call(x)
    clock = time.perf_counter_ns
    per_row: list[float] = []
    gc.collect()
    gc.disable()
    try:
        deadline = clock() + int(budget.seconds * 1e9)
        turn = 0
        while len(per_row) < budget.max_samples and (
            len(per_row) < budget.min_samples or clock() < deadline
        ):
            group = groups[turn % len(groups)]
            turn += 1
            started = clock()
            for x in group:
                call(x)
            per_row.append((clock() - started) / rows_per_sample)
    finally:
        gc.enable()
    return Samples(per_row, rows_per_sample)


def _scorer_runners(
    one: Callable[[Any], object],
    many: Callable[[Rows], object],
    *,
    prepare_one: Callable[[Rows], object] = _same,
) -> dict[str, Runner]:
    """The three Python modes: ``one`` for single rows, ``many`` for blocks and the batch."""
    return {
        SINGLE.key: PyRunner(SINGLE, one, prepare=prepare_one),
        BLOCK.key: PyRunner(BLOCK, many),
        BATCH.key: PyRunner(BATCH, many),
    }


# Every Python contestant is called as its user writes the call, keywords and all: through
# a closure, not `functools.partial` with keywords, which merges a keyword dict on every call
# (about 0.3 µs, as much as the work of a small model on one row).


def _bidcore_runners(model: bidcore.models.Model) -> dict[str, Runner]:
    predict_one, predict = model.predict_one, model.predict

    def one(row: Rows) -> object:
        return predict_one(row, raw=True)

    def many(rows: Rows) -> object:
        return predict(rows, raw=True)

    return _scorer_runners(one, many, prepare_one=_first_row)


def _bidcore_native(model: ModelUnderTest, env: Env) -> dict[str, Runner]:
    return _bidcore_runners(bidcore.models.from_lightgbm(model.path))


def _bidcore_compiled(model: ModelUnderTest, env: Env) -> dict[str, Runner]:
    directory = _artifact(model, env)
    try:
        loaded = bidcore.models.load(directory, scorer="compiled")
    except ModelError as err:  # a refused library: the other contestants still run
        raise UnavailableError(f"bidcore.models.load(..., scorer='compiled'): {err}") from err
    return _bidcore_runners(loaded)


def _artifact(model: ModelUnderTest, env: Env) -> Path:
    """An artifact with a compiled library for the model, built once into the cache."""
    out = env.work / "artifacts" / model.path.stem
    with contextlib.suppress(ModelError, OSError):
        artifact.verify(out)
        if (out / artifact.MODEL).read_bytes() == model.path.read_bytes() and (
            out / artifact.COMPILED_LIBRARY
        ).is_file():
            return out
    _say(f"building the artifact {out} (bidcore.compile.build_artifact)")
    try:
        return build_artifact(
            model.path,
            out,
            cache_dir=env.compiled_cache,
            jobs=env.jobs,
            overwrite=True,
            progress=True,
        )
    except (ModelError, OSError) as err:
        raise UnavailableError(f"build_artifact failed: {err}") from err


def _booster(model: ModelUnderTest, env: Env) -> dict[str, Runner]:
    booster = lightgbm.Booster(model_file=model.path)
    booster_predict = booster.predict

    def predict(rows: Rows) -> object:
        return booster_predict(rows, raw_score=True, num_threads=1)

    return _scorer_runners(predict, predict)


def _lightgbm_library() -> Path:
    path = Path(lightgbm.__file__).parent / "lib" / "lib_lightgbm.so"
    if not path.is_file():
        raise UnavailableError(f"no {path} in the lightgbm package")
    return path


def _lightgbm_ctypes(model: ModelUnderTest, env: Env) -> dict[str, Runner]:
    """LightGBM's C API through ctypes, as a Python caller without a binding would use it."""
    lib = ctypes.CDLL(str(_lightgbm_library()))
    lib.LGBM_GetLastError.restype = ctypes.c_char_p

    def failed() -> RuntimeError:
        return RuntimeError(f"LightGBM: {lib.LGBM_GetLastError().decode()}")

    booster, fast, iterations = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_int()
    if lib.LGBM_BoosterCreateFromModelfile(
        str(model.path).encode(), ctypes.byref(iterations), ctypes.byref(booster)
    ):
        raise failed()
    env.cleanup.callback(lib.LGBM_BoosterFree, booster)
    if lib.LGBM_BoosterPredictForMatSingleRowFastInit(
        booster,
        _LGBM_RAW_SCORE,
        0,
        -1,
        _LGBM_FLOAT64,
        ctypes.c_int32(model.num_features),
        _ONE_THREAD,
        ctypes.byref(fast),
    ):
        raise failed()
    env.cleanup.callback(lib.LGBM_FastConfigFree, fast)  # runs before LGBM_BoosterFree

    fast_predict = lib.LGBM_BoosterPredictForMatSingleRowFast
    fast_predict.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_int64),
        ctypes.POINTER(ctypes.c_double),
    ]
    fast_predict.restype = ctypes.c_int
    predict_mat = lib.LGBM_BoosterPredictForMat
    predict_mat.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int32,
        ctypes.c_int32,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int64),
        ctypes.c_void_p,
    ]
    predict_mat.restype = ctypes.c_int
    length = ctypes.c_int64()
    length_ref = ctypes.byref(length)
    out = (ctypes.c_double * 1)()
    columns = model.num_features

    def one(row_address: int) -> float:
        if fast_predict(fast, row_address, length_ref, out):
            raise failed()
        return out[0]

    def many(rows: Rows) -> Rows:
        result = np.empty(len(rows))
        if predict_mat(
            booster,
            rows.ctypes.data,
            _LGBM_FLOAT64,
            len(rows),
            columns,
            _LGBM_ROW_MAJOR,
            _LGBM_RAW_SCORE,
            0,
            -1,
            _ONE_THREAD,
            length_ref,
            result.ctypes.data,
        ):
            raise failed()
        return result

    return _scorer_runners(one, many, prepare_one=_address)


def _gtil(model: ModelUnderTest, env: Env) -> dict[str, Runner]:
    forest = treelite.frontend.load_lightgbm_model(model.path)
    gtil_predict = treelite.gtil.predict

    def predict(rows: Rows) -> object:
        return gtil_predict(forest, rows, nthread=1, pred_margin=True)

    return _scorer_runners(predict, predict)


def _tl2cgen_library(model: ModelUnderTest, env: Env) -> Path:
    """TL2cgen's library for the model, from bidcore's compile pipeline and cache (-O3)."""
    try:
        built = compile_library(
            model.path,
            parse(model.path.read_text()),
            model_sha256=model.sha256,
            found=toolchain(),
            cache_dir=env.compiled_cache,
            jobs=env.jobs,
            progress=True,
        )
    except ModelError as err:
        raise UnavailableError(f"TL2cgen/gcc could not build the library: {err}") from err
    return built.path


def _tl2cgen_python(model: ModelUnderTest, env: Env) -> dict[str, Runner]:
    library = _tl2cgen_library(model, env)
    with native_output("tl2cgen.Predictor"):
        predictor = tl2cgen.Predictor(library, nthread=1)

    def predict(rows: Rows) -> object:
        return predictor.predict(tl2cgen.DMatrix(rows), pred_margin=True)

    return _scorer_runners(predict, predict)


def _lleaves() -> ModuleType:
    try:
        return importlib.import_module("lleaves")
    except ImportError as err:
        raise UnavailableError(
            f"lleaves is not installed ({err}): pip install -r requirements/bench.txt"
        ) from err


def _lleaves_object(model: ModelUnderTest, env: Env) -> Path:
    """lleaves' compiled object for the model (raw scores), compiling it on first use."""
    lleaves = _lleaves()
    llvm = importlib.import_module("llvmlite.binding")
    key = {
        "model_sha256": model.sha256,
        "lleaves": importlib.metadata.version("lleaves"),
        "llvmlite": importlib.metadata.version("llvmlite"),
        "cpu": llvm.get_host_cpu_name(),
        "features": llvm.get_host_cpu_features().flatten(),
        "raw_score": True,
        "fblocksize": LLEAVES_BLOCK_SIZE,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = env.work / "lleaves" / f"{model.path.stem}-{digest}.o"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    _say(f"compiling {model.path.name} with lleaves (single-threaded; ~100 s for 300 trees)")
    started = time.perf_counter()
    partial = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        lleaves.Model(model_file=str(model.path)).compile(
            cache=str(partial), raw_score=True, fblocksize=LLEAVES_BLOCK_SIZE
        )
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    _say(f"lleaves compiled {path.name} in {time.perf_counter() - started:.0f} s")
    return path


def _lleaves_python(model: ModelUnderTest, env: Env) -> dict[str, Runner]:
    cached = _lleaves_object(model, env)
    forest = _lleaves().Model(model_file=str(model.path))
    forest.compile(cache=str(cached), raw_score=True, fblocksize=LLEAVES_BLOCK_SIZE)
    forest_predict = forest.predict

    def predict(rows: Rows) -> object:
        return forest_predict(rows, n_jobs=1)

    return _scorer_runners(predict, predict)


# ---- from C --------------------------------------------------------------------------------


class HarnessError(RuntimeError):
    """The C harness failed; the message carries its standard error."""


@dataclasses.dataclass(frozen=True)
class CRunner:
    """``peers/score_c.c`` scoring with ``library`` (see its header for the protocol)."""

    mode: Mode
    harness: Path
    kind: str
    library: Path
    model: Path

    def with_mode(self, mode: Mode) -> CRunner:
        return dataclasses.replace(self, mode=mode)

    def _run(self, rows: RowSet, *args: str) -> str:
        command = [str(self.harness), self.kind, str(self.library), str(self.model)]
        done = subprocess.run(
            [*command, str(rows.file), *args], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise HarnessError(f"score_c {self.kind} {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def predict(self, rows: RowSet) -> Rows:
        with tempfile.TemporaryDirectory(prefix="score_c-") as work:
            out = Path(work) / "margins.bin"
            self._run(rows, "predict", self.mode.key, str(out))
            return np.fromfile(out, dtype=np.float64)

    def time(self, rows: RowSet, budget: Budget) -> Samples:
        stdout = self._run(
            rows,
            "time",
            self.mode.key,
            str(budget.min_samples),
            str(budget.max_samples),
            repr(budget.seconds),
        )
        last = [line for line in stdout.splitlines() if line.startswith("{")][-1]
        found = json.loads(last)
        return Samples([float(x) for x in found["per_row_ns"]], int(found["rows_per_sample"]))


def build_harness(work: Path) -> Path:
    """Compile ``peers/score_c.c`` into ``work/peers/score_c``; raises :class:`UnavailableError`."""
    source = Path(__file__).resolve().parent / "peers" / "score_c.c"
    out = work / "peers" / "score_c"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = ["gcc", "-O2", "-std=c11", "-Wall", "-Wextra", "-o", str(out), str(source)]
    try:
        done = subprocess.run(
            [*command, "-ldl", "-lm"], capture_output=True, text=True, check=False
        )
    except OSError as err:
        raise UnavailableError(f"cannot run gcc: {err}") from err
    if done.returncode != 0:
        raise UnavailableError(f"gcc could not build the C harness: {done.stderr.strip()}")
    return out


def _harness(env: Env) -> Path:
    if env.harness is None:
        raise UnavailableError(env.harness_missing)
    return env.harness


def _c_runners(
    env: Env, kind: str, library: Path, model: Path, modes: tuple[Mode, ...]
) -> dict[str, Runner]:
    harness = _harness(env)
    return {mode.key: CRunner(mode, harness, kind, library, model) for mode in modes}


def _lightgbm_c(model: ModelUnderTest, env: Env) -> dict[str, Runner]:
    return _c_runners(env, "lightgbm", _lightgbm_library(), model.path, (SINGLE, BLOCK))


def _tl2cgen_c(model: ModelUnderTest, env: Env) -> dict[str, Runner]:
    _harness(env)
    return _c_runners(env, "tl2cgen", _tl2cgen_library(model, env), model.path, (SINGLE,))


def _lleaves_c(model: ModelUnderTest, env: Env) -> dict[str, Runner]:
    _harness(env)
    objects = _lleaves_object(model, env)
    library = objects.with_suffix(".so")
    if not library.is_file():
        partial = library.with_name(f"{library.name}.tmp{os.getpid()}")
        done = subprocess.run(
            ["gcc", "-shared", "-o", str(partial), str(objects), "-lm"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            partial.unlink(missing_ok=True)
            raise UnavailableError(f"gcc could not link lleaves' object: {done.stderr.strip()}")
        partial.replace(library)
    return _c_runners(env, "lleaves", library, model.path, (SINGLE, BLOCK))


# ---- the line-up -----------------------------------------------------------------------------

NATIVE: Final = "bidcore_native"

CONTESTANTS: Final = (
    Contestant(NATIVE, "bidcore native evaluator", "Python", MODES, _bidcore_native),
    Contestant("bidcore_compiled", "bidcore compiled scorer", "Python", MODES, _bidcore_compiled),
    Contestant("lightgbm_booster", "LightGBM Booster.predict", "Python", MODES, _booster),
    Contestant(
        "lightgbm_ctypes",
        "LightGBM C API (fast single row; PredictForMat for blocks), ctypes",
        "Python",
        MODES,
        _lightgbm_ctypes,
    ),
    Contestant("treelite_gtil", "treelite GTIL", "Python", MODES, _gtil),
    Contestant("tl2cgen_python", "TL2cgen Predictor", "Python", MODES, _tl2cgen_python),
    Contestant("lleaves_python", "lleaves", "Python", MODES, _lleaves_python),
    Contestant(
        "lightgbm_c",
        "LightGBM C API (fast single row; PredictForMat for blocks)",
        "C",
        (SINGLE, BLOCK),
        _lightgbm_c,
    ),
    Contestant("tl2cgen_c", "TL2cgen predict()", "C", (SINGLE,), _tl2cgen_c),
    Contestant("lleaves_c", "lleaves forest_root()", "C", (SINGLE, BLOCK), _lleaves_c),
)


def candidate_rows(data: Rows, groups: int, size: int = 16) -> Rows:
    """``groups`` blocks of ``size`` rows: block g repeats row g's features except the campaign
    columns, which come from ``size`` other rows (after the first ``groups``)."""
    out = np.repeat(data[:groups], size, axis=0)
    donors = data[groups : groups + groups * size]
    if len(donors) < groups * size:
        raise ValueError(f"{groups} candidate blocks need {groups * (size + 1)} rows")
    columns = list(CAMPAIGN_COLUMNS)
    out[:, columns] = donors[:, columns]
    return np.ascontiguousarray(out)


def write_rows(rows: Rows, path: Path) -> RowSet:
    """Write rows for the C harness and return them as a :class:`RowSet`."""
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(np.array(rows.shape, dtype="<i8").tobytes())
        f.write(rows.astype("<f8").tobytes())
    return RowSet(rows, path)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
