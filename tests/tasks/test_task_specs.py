"""Each task's spec agrees with its baseline, and its data carries a learnable signal."""

from __future__ import annotations

import numpy as np
import pytest

from perfgym.tasks import TASKS, Size

TASK_IDS = sorted(TASKS)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_spec_matches_the_baseline_module(task_id):
    spec = TASKS[task_id]
    base = spec.baseline()
    assert spec.sizes["full"].n_samples == base.N_SAMPLES
    assert spec.epochs == getattr(base, "EPOCHS", None)
    for name in spec.required_names:
        assert hasattr(base, name) and hasattr(spec.reference(), name)
    for probe in spec.probes:
        assert hasattr(base, probe.target)
    for size in spec.sizes.values():
        assert size.reference_speedup >= 1.5 * size.target_speedup


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_dataset_is_seeded(task_id):
    base = TASKS[task_id].baseline()
    x1, y1 = base.make_dataset(50, 7)
    x2, y2 = base.make_dataset(50, 7)
    x3, _ = base.make_dataset(50, 8)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    assert x1.shape == (50, 28, 28) and x1.dtype == np.float64 and y1.dtype == np.int64


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_labels_are_learnable(task_id):
    """The reference pipeline on a modest hidden-like seed is far above chance (0.10)."""
    spec = TASKS[task_id]
    ref = spec.reference()
    images, labels = ref.make_dataset(1000, 12345)
    tr_x, tr_y, te_x, te_y = ref.split(images, labels)
    result = ref.run_pipeline(tr_x, tr_y, te_x, 12345)
    acc = float(np.mean(result["predictions"] == te_y))
    assert acc > 0.4, acc


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_probe_inputs_are_deterministic_and_include_edges(task_id):
    spec = TASKS[task_id]
    a, b = spec.make_probe_inputs(3), spec.make_probe_inputs(3)
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    images = a["images"]
    assert any(np.ptp(img) == 0 for img in images), "a constant image (std 0) is probed"
    assert np.ptp(a["train_features"][:, 1]) == 0, "a constant feature column is probed"


@pytest.mark.parametrize("seeds", [1, 9])
def test_a_size_times_two_to_eight_hidden_seeds(seeds):
    with pytest.raises(ValueError, match="2 to 8 hidden seeds"):
        Size(n_samples=10, target_speedup=2.0, reference_speedup=3.0, run_timeout_s=1, seeds=seeds)
