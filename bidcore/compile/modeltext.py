"""What the build needs to know from a LightGBM model text, read from the text itself.

Thresholds are parsed from the text's own digits (LightGBM writes them round-trippable), not from
``Booster.dump_model()``, so a probe at ``nextafter(threshold)`` is really on the other side.

>>> text = '''tree
... version=v4
... num_class=1
... num_tree_per_iteration=1
... max_feature_idx=1
... objective=binary sigmoid:1
... feature_names=a b
... feature_infos=[-1:1] 0:1:2
...
... Tree=0
... num_leaves=3
... num_cat=1
... split_feature=0 1
... threshold=0.5 0
... decision_type=2 1
... left_child=1 -1
... right_child=-2 -3
... cat_boundaries=0 1
... cat_threshold=5
... is_linear=0
...
... end of trees
...
... parameters:
... [zero_as_missing: 0]
... end of parameters
... '''
>>> summary = parse(text)
>>> summary.objective, summary.num_features, summary.num_trees, summary.total_leaves
('binary sigmoid:1', 2, 1, 3)
>>> summary.thresholds, summary.categories, summary.zero_as_missing
({0: [0.5]}, {1: [0, 2]}, False)
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator

from bidcore.errors import ModelError

__all__ = ["ModelSummary", "parse"]

# LightGBM's decision_type bits: 1 = categorical, 2 = default left, (>> 2) & 3 = missing type.
_CATEGORICAL = 1
_MISSING_ZERO = 1


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    """The header, the parameters and the splits of a LightGBM model text."""

    objective: str
    """The objective line, e.g. ``binary sigmoid:1``; ``none`` if the text has none."""
    num_class: int
    num_features: int
    feature_names: tuple[str, ...]
    feature_infos: tuple[str, ...]
    """LightGBM's per-feature summary: ``[min:max]``, ``c1:c2:...`` (categories) or ``none``."""
    num_trees: int
    total_leaves: int
    linear_trees: int
    """How many trees carry a linear model in their leaves (``is_linear=1``)."""
    zero_missing_splits: int
    """How many splits treat zero as missing (missing type ``Zero``)."""
    parameters: dict[str, str]
    """The training parameters LightGBM appends (``[key: value]`` lines)."""
    thresholds: dict[int, list[float]]
    """Numeric split thresholds per feature index, sorted, unique."""
    categories: dict[int, list[int]]
    """Categories named in categorical splits per feature index, sorted, unique."""

    @property
    def zero_as_missing(self) -> bool:
        """Whether the model treats zero as missing anywhere (its parameter, or its splits)."""
        return self.parameters.get("zero_as_missing") == "1" or self.zero_missing_splits > 0

    @property
    def categorical_features(self) -> frozenset[int]:
        """Features LightGBM saw as categorical (its info lists categories, or it splits so)."""
        listed = {
            j
            for j, info in enumerate(self.feature_infos)
            if info != "none" and not info.startswith("[")
        }
        return frozenset(listed | self.categories.keys())

    def seen_categories(self, feature: int) -> list[int]:
        """The categories of a categorical feature in the training data (from its info)."""
        info = self.feature_infos[feature] if feature < len(self.feature_infos) else "none"
        if info == "none" or info.startswith("["):
            return []
        return sorted({int(code) for code in info.split(":") if code})


def parse(text: str) -> ModelSummary:
    """Summarize a LightGBM model text; raises :class:`~bidcore.errors.ModelError` if the text
    is not one."""
    text = text.replace("\r\n", "\n")
    if not text.startswith("tree\n"):
        raise ModelError("not a LightGBM model text (it does not start with 'tree')")
    head, _, rest = text.partition("\nTree=")
    header = dict(_key_values(head.splitlines()))
    try:
        num_features = int(header["max_feature_idx"]) + 1
        num_class = int(header.get("num_class", "1"))
    except (KeyError, ValueError) as err:
        raise ModelError(f"LightGBM model text with a broken header: {err}") from None
    trees_text, _, tail = rest.partition("end of trees")
    tree_blocks = ("Tree=" + trees_text).split("\nTree=") if rest else []
    parameters = _parameters(tail)

    thresholds: defaultdict[int, set[float]] = defaultdict(set)
    categories: defaultdict[int, set[int]] = defaultdict(set)
    total_leaves = linear = zero_missing = 0
    for number, block in enumerate(tree_blocks):
        tree = dict(_key_values(block.splitlines()))
        try:
            total_leaves += int(tree["num_leaves"])
            linear += tree.get("is_linear", "0") == "1"
            zero_missing += _read_splits(tree, thresholds, categories)
        except (KeyError, ValueError, IndexError) as err:
            raise ModelError(f"LightGBM model text: tree {number} is broken: {err!r}") from None

    return ModelSummary(
        objective=header.get("objective", "none"),
        num_class=num_class,
        num_features=num_features,
        feature_names=tuple(header.get("feature_names", "").split()),
        feature_infos=tuple(header.get("feature_infos", "").split()),
        num_trees=len(tree_blocks),
        total_leaves=total_leaves,
        linear_trees=linear,
        zero_missing_splits=zero_missing,
        parameters=parameters,
        thresholds={j: sorted(values) for j, values in sorted(thresholds.items())},
        categories={j: sorted(values) for j, values in sorted(categories.items())},
    )


def _read_splits(
    tree: dict[str, str],
    thresholds: defaultdict[int, set[float]],
    categories: defaultdict[int, set[int]],
) -> int:
    """Add a tree's split values to the per-feature sets; return its zero-as-missing splits."""
    if int(tree["num_leaves"]) < 2:
        return 0
    features = [int(v) for v in tree["split_feature"].split()]
    values = tree["threshold"].split()
    decisions = [int(v) for v in tree["decision_type"].split()]
    boundaries = [int(v) for v in tree.get("cat_boundaries", "").split()]
    words = [int(v) for v in tree.get("cat_threshold", "").split()]
    zero_missing = 0
    for feature, value, decision in zip(features, values, decisions, strict=True):
        zero_missing += (decision >> 2) & 3 == _MISSING_ZERO
        if decision & _CATEGORICAL:
            index = int(float(value))
            bitset = words[boundaries[index] : boundaries[index + 1]]
            categories[feature].update(
                32 * w + bit
                for w, word in enumerate(bitset)
                for bit in range(32)
                if word >> bit & 1
            )
        else:
            thresholds[feature].add(float(value))
    return zero_missing


def _key_values(lines: list[str]) -> Iterator[tuple[str, str]]:
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            yield key.strip(), value.strip()


def _parameters(tail: str) -> dict[str, str]:
    _, found, rest = tail.partition("parameters:")
    if not found:
        return {}
    body, _, _ = rest.partition("end of parameters")
    parameters = {}
    for line in body.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]") and ": " in line:
            key, _, value = line[1:-1].partition(": ")
            parameters[key] = value
    return parameters
