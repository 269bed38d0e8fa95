"""complex-pipeline: O(n^2) normalization, per-element activation, nested-loop gradients."""

from __future__ import annotations

import numpy as np

from perfgym.tasks.probe_inputs import (
    FEATURE_PROBES,
    feature_probe_inputs,
    model_probe,
    model_probe_inputs,
    probe_activations,
)
from perfgym.tasks.spec import ProbeCall, Size, TaskSpec


def _probe_inputs(seed: int) -> dict[str, np.ndarray]:
    from perfgym.tasks.complex_pipeline import baseline

    return {
        **feature_probe_inputs(baseline, seed, 13),
        **model_probe_inputs(baseline.ComplexNN, seed, 13),
        **probe_activations(seed),
    }


SPEC = TaskSpec(
    id="complex-pipeline",
    title="ComplexNN with pairwise-distance normalization and a custom activation",
    package="perfgym.tasks.complex_pipeline",
    summary="13 features (statistical, nested-loop gradients, FFT bands), an O(n^2) "
    "pairwise-distance normalization, a per-element Python activation and batch size 8.",
    sizes={
        "full": Size(
            n_samples=2500,
            target_speedup=10.0,
            reference_speedup=65.0,
            run_timeout_s=400,
            seeds=4,  # 0.7 s reference runs vary most: eight pairs (twelve overran, docs/tasks.md)
        ),
        "small": Size(
            n_samples=800,
            target_speedup=3.0,
            reference_speedup=29.0,
            run_timeout_s=120,
            accuracy_tolerance=0.05,
        ),
    },
    accuracy_tolerance=0.03,
    required_names=(
        "extract_features",
        "normalize_features",
        "CustomActivation",
        "ComplexNN",
        "train_model",
        "predict",
        "run_pipeline",
    ),
    model_kind="torch",
    model_class="ComplexNN",
    epochs=3,
    preload=("numpy", "torch"),
    probes=(
        *FEATURE_PROBES,
        ProbeCall(
            "CustomActivation.backward",
            "module_backward",
            "CustomActivation",
            input="act_x",
            grad="act_grad",
            rtol=1e-4,
        ),
        model_probe("ComplexNN"),
    ),
    make_probe_inputs=_probe_inputs,
    must_keep="the 13 features exactly as defined (the gradient window is 27x27), the "
    "pairwise-distance median normalization (a z-score is not equivalent), CustomActivation's "
    "function forward and backward, ComplexNN's architecture, Adam with its learning rate, "
    "CrossEntropyLoss, torch.manual_seed(seed) before the model is built, and every epoch over "
    "the whole training set with the model called as model(x)",
    may_change="the batch size and how batches are formed (shuffling with a seeded generator); "
    "how every component is computed (vectorize it)",
)
