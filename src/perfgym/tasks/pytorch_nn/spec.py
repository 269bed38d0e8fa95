"""pytorch-nn: a small MLP trained one sample at a time with a sync every step."""

from __future__ import annotations

import numpy as np

from perfgym.tasks.probe_inputs import (
    FEATURE_PROBES,
    feature_probe_inputs,
    model_probe,
    model_probe_inputs,
)
from perfgym.tasks.spec import Size, TaskSpec


def _probe_inputs(seed: int) -> dict[str, np.ndarray]:
    from perfgym.tasks.pytorch_nn import baseline

    return {
        **feature_probe_inputs(baseline, seed, 8),
        **model_probe_inputs(baseline.SimpleNN, seed, 8),
    }


SPEC = TaskSpec(
    id="pytorch-nn",
    title="SimpleNN trained one sample at a time (PyTorch)",
    package="perfgym.tasks.pytorch_nn",
    summary="Pixel-loop features, then a small MLP trained with batch size 1 and a .item() "
    "sync every step.",
    sizes={
        # three seeds (six pairs): eight pairs overran the grading allowance (docs/tasks.md)
        "full": Size(n_samples=3000, target_speedup=2.0, reference_speedup=17.2, run_timeout_s=300),
        "small": Size(
            n_samples=1500,
            target_speedup=1.5,
            reference_speedup=21.0,
            run_timeout_s=90,
            accuracy_tolerance=0.05,
        ),
    },
    accuracy_tolerance=0.02,
    required_names=(
        "extract_features",
        "normalize_features",
        "SimpleNN",
        "train_model",
        "predict",
        "run_pipeline",
    ),
    model_kind="torch",
    model_class="SimpleNN",
    epochs=7,
    preload=("numpy", "torch"),
    probes=(*FEATURE_PROBES, model_probe("SimpleNN")),
    make_probe_inputs=_probe_inputs,
    must_keep="the 8 features, the normalization, SimpleNN's architecture, Adam with its "
    "learning rate, CrossEntropyLoss, torch.manual_seed(seed) before the model is built, and "
    "every epoch over the whole training set with the model called as model(x)",
    may_change="the batch size and how batches are formed (shuffling with a seeded generator); "
    "how the features and the normalization are computed",
)
