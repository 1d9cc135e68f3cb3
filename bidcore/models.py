"""Tree-ensemble models, scored in native code.

A :class:`Model` scores rows of features with bidcore's native evaluator, which reads
LightGBM's model text directly and reproduces LightGBM's predictions exactly (missing values,
zero-as-missing, categorical splits, every objective's transform), or with the model's
TL2cgen-compiled library, called from Rust (:func:`load` with ``scorer="compiled"``).

>>> from bidcore.testing.models import ModelSpec, Size, train_model, ctr_data
>>> booster = train_model(ModelSpec(size=Size(trees=5, leaves=7)), ctr_data(500))
>>> model = from_lightgbm(booster.model_to_string())
>>> rows = ctr_data(3, seed=1).features
>>> bool((model.predict(rows) == booster.predict(rows)).all())
True
"""

from __future__ import annotations

import bisect
import hashlib
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Protocol

import msgspec
import numpy as np
import numpy.typing as npt

from bidcore import artifact
from bidcore import features as features_module
from bidcore._core import CompiledModel, TreeEnsemble
from bidcore.errors import ModelError
from bidcore.features import FeatureSpec

if TYPE_CHECKING:
    import treelite

__all__ = ["Model", "Predict", "PredictOne", "ScorerKind", "from_lightgbm", "from_treelite", "load"]

Rows = npt.NDArray[np.float64]

ScorerKind = Literal["native", "compiled"]
"""``"native"``: bidcore's evaluator reading the model text; ``"compiled"``: the artifact's
TL2cgen library."""


class _Scorer(Protocol):
    """What :class:`Model` needs of a native scorer (``TreeEnsemble``, ``CompiledModel``)."""

    @property
    def num_features(self) -> int: ...
    @property
    def num_outputs(self) -> int: ...
    @property
    def num_trees(self) -> int: ...
    @property
    def feature_names(self) -> list[str]: ...
    def predict(self, rows: npt.ArrayLike, *, raw: bool = ...) -> Rows: ...
    def predict_one(self, row: npt.ArrayLike, *, raw: bool = ...) -> float | list[float]: ...


class Predict(Protocol):
    """The signature of :attr:`Model.predict`."""

    def __call__(self, rows: npt.ArrayLike, *, raw: bool = False) -> Rows: ...


class PredictOne(Protocol):
    """The signature of :attr:`Model.predict_one`."""

    def __call__(self, row: npt.ArrayLike, *, raw: bool = False) -> float | list[float]: ...


class Model:
    """A tree ensemble ready to score; thread-safe. Scoring releases the GIL.

    Rows are float64 features in the model's order, NaN for missing; categorical features are
    their integer codes (as LightGBM was trained on them).
    """

    __slots__ = ("_extractor", "_reference", "_scorer", "name", "predict", "predict_one")

    predict: Predict
    """``predict(rows, *, raw=False)``: predictions for a 2-D array of rows (anything numpy reads
    as a matrix of floats), shape ``(n,)`` or ``(n, classes)``. ``raw=True`` returns the raw
    margins (before the sigmoid, softmax…), as LightGBM's ``raw_score=True`` does.

    Like :attr:`predict_one`, the native scorer's own method: the Python wrapper it replaced
    cost a tenth of a 16-row block's call."""

    predict_one: PredictOne
    """``predict_one(row, *, raw=False)``: the prediction for one row (anything numpy reads as a
    vector of floats), a float or one value per class; ``raw=True`` gives the raw margin.

    It is the native scorer's own method, not a Python wrapper around it: on a small model the
    wrapper's frame cost a sixth of the call."""

    def __init__(
        self,
        scorer: TreeEnsemble | CompiledModel,
        features: FeatureSpec | None = None,
        reference: artifact.Reference | None = None,
        name: str | None = None,
    ) -> None:
        self.name: Final = name
        """``name@version`` from the artifact's metadata (what metrics and the decision log call
        the model); None for a model not loaded from an artifact."""
        self._scorer: Final[_Scorer] = scorer
        self.predict = scorer.predict
        self.predict_one = scorer.predict_one
        # Built once here: `predict_request` would otherwise look the spec's extractor up per call.
        self._extractor: Final = None if features is None else features_module.Extractor(features)
        self._reference: Final = reference

    @property
    def reference(self) -> artifact.Reference | None:
        """The artifact's reference histograms of the score and top features
        (``reference.json``), what live traffic is compared with for drift; None for a model
        not loaded from an artifact."""
        return self._reference

    @property
    def features(self) -> FeatureSpec | None:
        """The artifact's feature spec (``features.toml``), when it has one."""
        return None if self._extractor is None else self._extractor.spec

    def predict_request(
        self,
        body: bytes,
        *,
        imp: int = 0,
        timestamp: float = math.nan,
        campaign: Mapping[str, float] | None = None,
        raw: bool = False,
    ) -> float | list[float]:
        """The prediction for one impression of a bid request, its features computed by the
        artifact's spec exactly as :func:`bidcore.features.matrix` computes training rows.
        Raises ``ValueError`` for a model without a spec, ``InvalidRequestError`` for a bad body.
        """
        if self._extractor is None:
            raise ValueError("this model has no feature spec (load it from an artifact with one)")
        row = self._extractor.extract(body, imp=imp, timestamp=timestamp, campaign=campaign)
        return self._scorer.predict_one(row, raw=raw)

    @property
    def scorer(self) -> ScorerKind:
        """Which scorer computes the predictions."""
        return "compiled" if isinstance(self._scorer, CompiledModel) else "native"

    @property
    def num_features(self) -> int:
        return self._scorer.num_features

    @property
    def num_outputs(self) -> int:
        """Values per row: 1, or the number of classes of a multiclass model."""
        return self._scorer.num_outputs

    @property
    def num_trees(self) -> int:
        return self._scorer.num_trees

    @property
    def feature_names(self) -> list[str]:
        return self._scorer.feature_names


def from_lightgbm(model: str | Path, *, features: FeatureSpec | None = None) -> Model:
    """A model from LightGBM's model text, or the path of a file holding it; ``features`` is
    its feature spec (what :meth:`Model.predict_request` and the engine build rows with).

    Raises :class:`bidcore.ModelError` for text that is not a LightGBM model bidcore can score
    (cut short, inconsistent trees, linear trees, an unsupported objective).
    """
    text = model.read_text() if isinstance(model, Path) else model
    return Model(TreeEnsemble.from_lightgbm(text), features)


def from_treelite(model: str | treelite.Model) -> Model:
    """A model from Treelite: a ``treelite.Model`` or the JSON its ``dump_as_json`` writes.

    The way in for the ensembles Treelite imports (XGBoost, scikit-learn): rows are routed as
    Treelite's reference predictor (GTIL) routes them. NaN takes each split's default child;
    float32 models (XGBoost) compare features rounded to float32, as XGBoost does; categorical
    features are integer codes. Margins are summed in float64, where XGBoost and GTIL sum a
    float32 model in float32, so they agree with those to float32 rounding, not to the bit.
    scikit-learn's trees round features to float32 before comparing: pass rows already rounded
    (``X.astype(np.float32)``) for its exact predictions. Feature names are not in Treelite's
    model (``feature_names`` is empty). For LightGBM, :func:`from_lightgbm` reads LightGBM's
    own text, zero-as-missing included, which Treelite cannot express.

    Raises :class:`bidcore.ModelError` for a model bidcore cannot score as Treelite does (an
    unsupported postprocessor or comparison, inconsistent trees). Needs ``treelite`` only to
    pass a ``treelite.Model``.

    >>> import treelite, xgboost
    >>> X = np.random.default_rng(0).normal(size=(200, 3))
    >>> booster = xgboost.train(
    ...     {"objective": "binary:logistic", "max_depth": 3},
    ...     xgboost.DMatrix(X, label=(X[:, 0] > 0).astype(float)),
    ...     num_boost_round=5,
    ... )
    >>> model = from_treelite(treelite.frontend.from_xgboost(booster))
    >>> margin = booster.predict(xgboost.DMatrix(X), output_margin=True)
    >>> bool(np.abs(model.predict(X, raw=True) - margin).max() < 1e-6)
    True
    """
    text = model if isinstance(model, str) else _treelite_json(model)
    return Model(TreeEnsemble.from_treelite_json(text))


_JSON_HOLE: Final = re.compile(r'"(\w+)":(?=[,}])')
_JSON_TREE: Final = re.compile(r'"num_nodes":')
_JSON_NODE: Final = re.compile(r'"node_id":(\d+)')


def _treelite_json(model: treelite.Model) -> str:
    """``model.dump_as_json()``, with the values it leaves out filled in.

    Treelite's JSON writer (rapidjson) writes nothing for an infinite or NaN number, leaving
    ``"threshold":,``; scikit-learn's splits that send only missing values right have threshold
    +inf. bidcore's reader takes the strings ``"inf"``, ``"-inf"`` and ``"nan"`` there, and the
    values come from the model's own arrays (thresholds, leaf values; a field bidcore does not
    read becomes ``null``).
    """
    text = model.dump_as_json(pretty_print=False)
    holes = list(_JSON_HOLE.finditer(text))
    if not holes:
        return text
    trees = [m.start() for m in _JSON_TREE.finditer(text)]
    nodes = [(m.start(), int(m.group(1))) for m in _JSON_NODE.finditer(text)]
    node_starts = [start for start, _ in nodes]
    pieces: list[str] = []
    last = 0
    for hole in holes:
        value = "null"
        tree = bisect.bisect_right(trees, hole.start()) - 1
        node = bisect.bisect_right(node_starts, hole.start()) - 1
        # A node field of a tree (the node found after the tree's start, not in the tree before).
        in_node = tree >= 0 and node >= 0 and nodes[node][0] > trees[tree]
        if in_node and hole.group(1) in ("threshold", "leaf_value"):
            field = model.get_tree_accessor(tree).get_field(hole.group(1))
            number = float(field[nodes[node][1]])
            value = repr(number) if math.isfinite(number) else f'"{number}"'
        pieces += [text[last : hole.end()], value]
        last = hole.end()
    pieces.append(text[last:])
    return "".join(pieces)


def load(path: str | os.PathLike[str], *, scorer: ScorerKind = "native") -> Model:
    """The model of an artifact directory (what ``bidcore compile`` writes), checked first.

    :func:`bidcore.artifact.verify` checks every file against the manifest; the model text
    must be a model bidcore can score with the feature, output and tree counts
    ``metadata.json`` states. ``scorer="compiled"`` scores with the artifact's TL2cgen library
    instead of bidcore's evaluator; its SHA-256 is checked again as it is loaded (a file
    swapped after the check is refused), and so are its feature and output counts and its raw
    margins against the evaluator's on rows made up at load (a library built from another
    model is refused). Raises :class:`bidcore.ModelError` with the reason for every artifact
    that is missing a file or does not hold together.

    >>> from bidcore.compile import build_artifact
    >>> from bidcore.testing.models import ModelSpec, TINY, ctr_data, model_path
    >>> tmp = getfixture("tmp_path")
    >>> text = model_path(ModelSpec(size=TINY), tmp)
    >>> out = build_artifact(text, tmp / "ctr", cache_dir=tmp, progress=False)
    >>> native, compiled = load(out), load(out, scorer="compiled")
    >>> compiled.scorer, compiled.num_features
    ('compiled', 40)
    >>> rows = ctr_data(3, seed=1).features
    >>> bool(np.abs(compiled.predict(rows) - native.predict(rows)).max() <= 1e-9)
    True
    """
    if scorer not in ("native", "compiled"):
        raise ValueError(f"scorer must be 'native' or 'compiled', not {scorer!r}")
    root = Path(path)
    manifest = artifact.verify(root)
    metadata = artifact.read_metadata(root)
    text = _model_text(root, manifest)
    try:
        native = TreeEnsemble.from_lightgbm(text)
    except ModelError as err:
        raise ModelError(f"{root}: {artifact.MODEL}: {err}") from None
    _check_counts(root, metadata, native)
    spec = _feature_spec(root, manifest, native.num_features)
    reference = artifact.read_reference(root)
    name = f"{metadata.name}@{metadata.version}"
    if scorer == "native":
        return Model(native, spec, reference, name)
    entry = manifest.files.get(artifact.COMPILED_LIBRARY)
    if entry is None:
        raise ModelError(
            f"{root}: the artifact has no compiled library ({artifact.COMPILED_LIBRARY}): "
            f"{metadata.compiled_refused}"
        )
    # Checked in Rust against the text just checked: its counts, its margins, its SHA-256.
    return Model(
        CompiledModel.load(root / artifact.COMPILED_LIBRARY, text, sha256=entry.sha256),
        spec,
        reference,
        name,
    )


def _feature_spec(root: Path, manifest: artifact.Manifest, num_features: int) -> FeatureSpec | None:
    """``features.toml`` when the artifact has one: a valid spec with one feature per input."""
    if artifact.FEATURES not in manifest.files:
        return None
    try:
        spec = features_module.load(root / artifact.FEATURES)
    except (OSError, msgspec.DecodeError) as err:
        raise ModelError(f"{root}: {artifact.FEATURES}: {err}") from None
    if len(spec.features) != num_features:
        raise ModelError(
            f"{root}: {artifact.FEATURES} lists {len(spec.features)} features; the model takes "
            f"{num_features}"
        )
    return spec


def _model_text(root: Path, manifest: artifact.Manifest) -> str:
    """``model.txt``, read once and checked against the manifest (so the text parsed is the
    text verified, even if the file changed since)."""
    try:
        data = (root / artifact.MODEL).read_bytes()
    except OSError as err:
        reason = err.strerror or err
        raise ModelError(f"{root}: {artifact.MODEL} cannot be read: {reason}") from None
    digest = hashlib.sha256(data).hexdigest()
    expected = manifest.files[artifact.MODEL].sha256
    if digest != expected:
        raise ModelError(
            f"{root}: {artifact.MODEL} has SHA-256 {digest}, {artifact.MANIFEST} says {expected} "
            "(modified while loading)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ModelError(f"{root}: {artifact.MODEL} is not UTF-8 text: {err}") from None


def _check_counts(root: Path, metadata: artifact.Metadata, model: TreeEnsemble) -> None:
    counts = [
        ("features", metadata.num_features, model.num_features),
        ("outputs per row", metadata.num_class, model.num_outputs),
        ("trees", metadata.num_trees, model.num_trees),
    ]
    for what, stated, found in counts:
        if stated != found:
            raise ModelError(
                f"{root}: {artifact.METADATA} says {stated} {what}, {artifact.MODEL} has {found} "
                "(the files come from different models)"
            )
