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


def _forest_predict(arrays: dict[str, np.ndarray], n_trees: int, x: np.ndarray) -> np.ndarray:
    """Average of the trees' leaf class frequencies, as scikit-learn's forest predicts."""
    x32 = x.astype(np.float32).astype(np.float64)  # trees compare float32 inputs
    rows = np.arange(len(x32))
    total = 0.0
    for i in range(n_trees):
        left, right = arrays[f"t{i}:left"], arrays[f"t{i}:right"]
        feature, threshold = arrays[f"t{i}:feature"], arrays[f"t{i}:threshold"]
        node = np.zeros(len(x32), dtype=np.int64)
        while True:
            leaf = left[node] == -1
            if leaf.all():
                break
            f = np.where(leaf, 0, feature[node])
            go_left = x32[rows, f] <= threshold[node]
            node = np.where(leaf, node, np.where(go_left, left[node], right[node]))
        value = arrays[f"t{i}:value"][node]
        total = total + value / value.sum(axis=1, keepdims=True)
    return arrays["classes"][np.argmax(total, axis=1)].astype(np.int64)


def predict_exported(
    spec: TaskSpec, arrays: dict[str, np.ndarray], meta: dict[str, Any], x: np.ndarray
) -> np.ndarray:
    """Predictions of an exported model on features `x`, by the grader's own code."""
    model = meta.get("model", {})
    if model.get("kind") != spec.model_kind:
        raise EvaluationError(
            f"the returned model is a {model.get('class', '?')}, "
            f"not the task's {spec.model_kind} model"
        )
    if spec.model_kind == "forest":
        try:
            return _forest_predict(arrays, int(model["n_trees"]), x)
        except (KeyError, IndexError, ValueError) as exc:
            raise EvaluationError(f"the exported forest is malformed ({exc})") from exc
    import torch

    ref = spec.reference()
    net = getattr(ref, spec.model_class)()
    state = {k[2:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("w:")}
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise EvaluationError(f"the weights do not fit {spec.model_class}: {first}") from exc
    return np.asarray(ref.predict(net, x), dtype=np.int64)


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predictions == labels))
