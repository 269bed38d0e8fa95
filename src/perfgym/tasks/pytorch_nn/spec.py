"""pytorch-nn: a small MLP trained one sample at a time with a sync every step."""

from __future__ import annotations

import numpy as np

from perfgym.tasks.probe_inputs import probe_features, probe_images, probe_model_state
from perfgym.tasks.spec import ProbeCall, Size, TaskSpec


def _probe_inputs(seed: int) -> dict[str, np.ndarray]:
    from perfgym.tasks.pytorch_nn import baseline

    rng = np.random.default_rng(seed + 4)
    return {
        "images": probe_images(baseline, seed),
        **probe_features(seed, 8),
        **probe_model_state(baseline.SimpleNN, seed),
        "x": rng.normal(0.0, 2.0, size=(64, 8)).astype(np.float32),
    }


SPEC = TaskSpec(
    id="pytorch-nn",
    title="SimpleNN trained one sample at a time (PyTorch)",
    package="perfgym.tasks.pytorch_nn",
    summary="Pixel-loop features, then a small MLP trained with batch size 1 and a .item() "
    "sync every step.",
    sizes={
        "full": Size(n_samples=3000, target_speedup=2.0, reference_speedup=69.0, run_timeout_s=300),
        "small": Size(
            n_samples=1500,
            target_speedup=1.5,
            reference_speedup=40.0,
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
    probes=(
        ProbeCall("extract_features", "call", "extract_features", args=("images",), rtol=1e-9),
        ProbeCall(
            "normalize_features",
            "call",
            "normalize_features",
            args=("train_features", "test_features"),
            rtol=1e-9,
        ),
        ProbeCall(
            "SimpleNN.forward", "module_forward", "SimpleNN", state="state.", input="x", rtol=1e-4
        ),
    ),
    make_probe_inputs=_probe_inputs,
    must_keep="the 8 features, the normalization, SimpleNN's architecture, Adam with its "
    "learning rate, CrossEntropyLoss, torch.manual_seed(seed) before the model is built, and "
    "every epoch over the whole training set with the model called as model(x)",
    may_change="the batch size and how batches are formed (shuffling with a seeded generator); "
    "how the features and the normalization are computed",
)
