"""Hidden inputs for the equivalence probes, built by trusted code from a hidden seed.

They mix ordinary samples with the edges a rewrite tends to get wrong: constant images (a std
of 0), large and negative pixel values, feature columns of very different scales, a constant
feature column, and zeros and large values for an activation.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from perfgym.tasks.spec import ProbeCall

FEATURE_PROBES = (
    ProbeCall("extract_features", "call", "extract_features", args=("images",), rtol=1e-9),
    ProbeCall(
        "normalize_features",
        "call",
        "normalize_features",
        args=("train_features", "test_features"),
        rtol=1e-9,
    ),
)
"""The two feature components every task has, compared at float64 precision."""


def model_probe(model_class: str) -> ProbeCall:
    """The task model's forward for given weights, in eval and training mode."""
    return ProbeCall(
        f"{model_class}.forward",
        "module_forward",
        model_class,
        state="state.",
        input="x",
        rtol=1e-4,
    )


def feature_probe_inputs(baseline: ModuleType, seed: int, n_cols: int) -> dict[str, np.ndarray]:
    return {"images": probe_images(baseline, seed), **probe_features(seed, n_cols)}


def model_probe_inputs(model_class: type, seed: int, n_cols: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 4)
    return {
        **probe_model_state(model_class, seed),
        "x": rng.normal(0.0, 2.0, size=(64, n_cols)).astype(np.float32),
    }


def probe_images(baseline: ModuleType, seed: int, n: int = 40) -> np.ndarray:
    images, _ = baseline.make_dataset(n, seed)
    rng = np.random.default_rng(seed + 1)
    constant = np.full((1, 28, 28), 0.5)
    large = images[:1] * 1000.0
    negative = images[1:2] - 3.0
    spiky = rng.normal(0.0, 1.0, size=(1, 28, 28)) ** 3
    return np.concatenate([images, constant, large, negative, spiky]).astype(np.float64)


def probe_features(
    seed: int, n_cols: int, n_train: int = 240, n_test: int = 40
) -> dict[str, np.ndarray]:
    """Train/test feature tables with mixed column scales and one constant column."""
    rng = np.random.default_rng(seed + 2)
    scales = 10.0 ** rng.uniform(-3, 3, size=n_cols)
    offsets = rng.normal(0.0, 5.0, size=n_cols) * scales
    train = rng.normal(size=(n_train, n_cols)) * scales + offsets
    test = rng.normal(size=(n_test, n_cols)) * scales * 1.5 + offsets
    train[:, 1] = 7.0
    return {"train_features": train, "test_features": test}


def probe_model_state(
    model_class: type, seed: int, prefix: str = "state."
) -> dict[str, np.ndarray]:
    """Random weights for the task's model class, keyed `prefix + parameter name`."""
    import torch

    torch.manual_seed(seed)
    model = model_class()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    return {prefix + k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def probe_activations(seed: int, shape: tuple[int, int] = (16, 64)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 3)
    x = rng.normal(0.0, 3.0, size=shape).astype(np.float32)
    x[0, :8] = [0.0, -0.0, 20.0, -20.0, 1e-4, -1e-4, 60.0, -60.0]
    g = rng.normal(size=shape).astype(np.float32)
    return {"act_x": x, "act_grad": g}
