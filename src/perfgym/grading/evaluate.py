"""The grader's own evaluation of a returned model, in the grader's process, with trusted code.

The sandbox exports a model as plain arrays (tree nodes, or a state dict); here the grader
computes the hidden test features with the trusted reference implementation, predicts with its
own code (a tree walk, or the task's model class loaded with the returned weights) and scores
against test labels that never left this process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from perfgym.tasks.spec import TaskSpec


class EvaluationError(ValueError):
    """The exported model cannot be evaluated as the task's model (wrong kind or shape)."""


@dataclass
class HiddenSplit:
    """One hidden dataset: what the sandbox gets, and what stays with the grader."""

    seed: int
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    def sandbox_inputs(self) -> dict[str, np.ndarray]:
        return {
            "train_images": self.train_images,
            "train_labels": self.train_labels,
            "test_images": self.test_images,
            "seed": np.asarray(self.seed, dtype=np.int64),
        }


def hidden_split(spec: TaskSpec, n_samples: int, seed: int) -> HiddenSplit:
    baseline = spec.baseline()
    images, labels = baseline.make_dataset(n_samples, seed)
    return HiddenSplit(seed, *baseline.split(images, labels))


def normalized_features(spec: TaskSpec, split: HiddenSplit) -> tuple[np.ndarray, np.ndarray]:
    """Normalized hidden (train, test) features, computed by the trusted reference."""
    ref = spec.reference()
    train_f = ref.extract_features(split.train_images)
    test_f = ref.extract_features(split.test_images)
    return ref.normalize_features(train_f, test_f)


_NUMERIC = "biuf"
"""numpy dtype kinds the grader computes with: bool, signed and unsigned integers, floats."""


def _array(arrays: dict[str, np.ndarray], key: str, kinds: str, ndim: int) -> np.ndarray:
    """`arrays[key]`, checked to be a numeric array of `ndim` dimensions: the sandbox chose it."""
    try:
        a = arrays[key]
    except KeyError:
        raise EvaluationError(f"the exported model has no array {key!r}") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in kinds or a.ndim != ndim:
        what = f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a)
        raise EvaluationError(f"the exported {key!r} is a {what}, not a {ndim}-d numeric array")
    return a


def _checked_tree(
    arrays: dict[str, np.ndarray], i: int, n_features: int, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tree `i`'s (left, right, feature, threshold, value), checked to be a tree the walk ends
    on: every split's children come after it (as scikit-learn numbers nodes), so no path can
    loop, and every index a walk uses is in range."""
    left = _array(arrays, f"t{i}:left", "i", 1)
    right = _array(arrays, f"t{i}:right", "i", 1)
    feature = _array(arrays, f"t{i}:feature", "i", 1)
    threshold = _array(arrays, f"t{i}:threshold", "f", 1)
    value = _array(arrays, f"t{i}:value", "biuf", 2)
    n = len(left)
    if n == 0 or not len(right) == len(feature) == len(threshold) == len(value) == n:
        raise EvaluationError(f"tree {i}: its node arrays are empty or differ in length")
    if value.shape[1] != n_classes:
        raise EvaluationError(
            f"tree {i}: leaf values for {value.shape[1]} classes, the forest has {n_classes}"
        )
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        raise EvaluationError(f"tree {i}: a node has exactly one child")
    split = ~leaf
    node = np.flatnonzero(split)
    lo, hi = np.minimum(left[split], right[split]), np.maximum(left[split], right[split])
    if not ((lo > node) & (hi < n)).all():
        raise EvaluationError(
            f"tree {i}: a child index is out of range or not after its parent (a cycle?)"
        )
    used = feature[split]
    if not ((used >= 0) & (used < n_features)).all():
        raise EvaluationError(f"tree {i}: a split uses a feature outside 0..{n_features - 1}")
    if not np.isfinite(threshold[split]).all():
        raise EvaluationError(f"tree {i}: a split threshold is not finite")
    if not (np.isfinite(value).all() and (value >= 0).all() and (value[leaf].sum(1) > 0).all()):
        raise EvaluationError(f"tree {i}: leaf values must be finite, non-negative, not all 0")
    return left, right, feature, threshold, value.astype(np.float64)


def _forest_predict(arrays: dict[str, np.ndarray], n_trees: int, x: np.ndarray) -> np.ndarray:
    """Average of the trees' leaf class frequencies, as scikit-learn's forest predicts."""
    if n_trees < 1:
        raise EvaluationError(f"the exported forest has {n_trees} trees")
    classes = _array(arrays, "classes", "biuf", 1)
    x32 = x.astype(np.float32).astype(np.float64)  # trees compare float32 inputs
    rows = np.arange(len(x32))
    total = 0.0
    for i in range(n_trees):
        left, right, feature, threshold, value = _checked_tree(
            arrays, i, x32.shape[1], len(classes)
        )
        node = np.zeros(len(x32), dtype=np.int64)
        for _ in range(len(left)):  # each step goes deeper: a walk ends within the node count
            leaf = left[node] == -1
            if leaf.all():
                break
            f = np.where(leaf, 0, feature[node])
            go_left = x32[rows, f] <= threshold[node]
            node = np.where(leaf, node, np.where(go_left, left[node], right[node]))
        else:
            if not (left[node] == -1).all():
                raise EvaluationError(f"tree {i}: a walk did not reach a leaf")
        leaf_value = value[node]
        total = total + leaf_value / leaf_value.sum(axis=1, keepdims=True)
    return classes[np.argmax(total, axis=1)].astype(np.int64)


def _tensor(key: str, a: np.ndarray) -> Any:
    """A weight array as a torch tensor; only numbers load (torch refuses strings and the
    like with a TypeError, and other byte orders with a ValueError)."""
    import torch

    if not isinstance(a, np.ndarray) or a.dtype.kind not in _NUMERIC:
        what = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
        raise EvaluationError(f"the weight {key!r} holds {what}, not numbers")
    kind = a.dtype.kind
    if kind == "f":
        dtype = np.float32 if a.dtype.itemsize <= 4 else np.float64
    else:
        dtype = np.bool_ if kind == "b" else np.int64
    return torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))


def predict_exported(
    spec: TaskSpec, arrays: dict[str, np.ndarray], meta: dict[str, Any], x: np.ndarray
) -> np.ndarray:
    """Predictions of an exported model on features `x`, by the grader's own code.

    Raises EvaluationError for anything the arrays or `meta` hold that is not the task's model."""
    model = meta.get("model", {}) if isinstance(meta, dict) else None
    if not isinstance(model, dict):
        raise EvaluationError("the returned model's description is malformed")
    if model.get("kind") != spec.model_kind:
        raise EvaluationError(
            f"the returned model is a {model.get('class', '?')}, "
            f"not the task's {spec.model_kind} model"
        )
    if spec.model_kind == "forest":
        n_trees = model.get("n_trees")
        if not isinstance(n_trees, int) or isinstance(n_trees, bool):
            raise EvaluationError(f"the exported forest's tree count {n_trees!r} is not a number")
        try:
            return _forest_predict(arrays, n_trees, x)
        except EvaluationError:
            raise
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise EvaluationError(f"the exported forest is malformed ({exc})") from exc

    ref = spec.reference()
    net = getattr(ref, spec.model_class)()
    state = {k[2:]: _tensor(k, v) for k, v in arrays.items() if k.startswith("w:")}
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EvaluationError(f"the weights do not fit {spec.model_class}: {first}") from exc
    return np.asarray(ref.predict(net, x), dtype=np.int64)


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predictions == labels))
