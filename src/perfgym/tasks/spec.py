"""What a task is: its files, sizes, targets, tolerances, budget and equivalence probes.

A TaskSpec is plain data plus two trusted hooks (probe inputs and the grader's own evaluation
of a returned model); the grader reads it and never needs task-specific code of its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Size:
    """One size of a task. `full` keeps the original design's sizes (or larger, see docs)."""

    n_samples: int
    target_speedup: float
    reference_speedup: float
    """Measured speedup of the hidden reference at this size; the reward's 1.0 point."""
    run_timeout_s: float
    accuracy_tolerance: float | None = None
    """Overrides the task's tolerance at this size (small test sets need a wider one)."""
    paired_timing: bool = True
    """Time every run beside a run of the reference solution (grading/measure.py): the host's
    drift cancels. False only where the grading allowance cannot hold the reference's runs
    (no task now: unpaired gradings varied up to 1.35x with the host's drift)."""
    seeds: int = 3
    """Hidden seeds timed, each once in each of two processes (2 x seeds timed runs): more
    where short, noisy runs need more samples and the grading allowance holds them."""
    pairs_per_process: int | None = None
    """How many runs of each process (its first ones) are timed beside a reference run; None:
    every run. Runs in turns vary so little (a pair's log ratio by 0.03-0.04) that a few
    pairs hold the spread, and each pair left out saves a reference run of grading time."""

    def __post_init__(self) -> None:
        if not 2 <= self.seeds <= 8:  # at least two hidden seeds; labels A-H
            raise ValueError(f"a size times 2 to 8 hidden seeds, not {self.seeds}")


@dataclass(frozen=True)
class ProbeCall:
    """One component call the grader makes on hidden inputs and compares with the baseline's."""

    id: str
    kind: str  # "call" | "module_forward" | "module_backward"
    target: str
    args: tuple[str, ...] = ()
    state: str = ""
    input: str = ""
    grad: str = ""
    rtol: float = 1e-7
    """Relative tolerance, scaled per column by the expected values (never a bare atol)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "args": list(self.args),
            "state": self.state,
            "input": self.input,
            "grad": self.grad,
        }


@dataclass(frozen=True)
class TaskSpec:
    id: str
    title: str
    package: str
    summary: str
    sizes: dict[str, Size]
    accuracy_tolerance: float
    required_names: tuple[str, ...]
    model_kind: str  # "forest" | "torch"
    preload: tuple[str, ...]
    probes: tuple[ProbeCall, ...]
    make_probe_inputs: Callable[[int], dict[str, np.ndarray]]
    must_keep: str
    may_change: str
    model_class: str | None = None
    epochs: int | None = None
    cpu_budget: int = 1
    entry: str = "run_pipeline"
    traced_outputs: tuple[str, ...] = ("normalize_features",)
    """Components whose output on the hidden data the grader checks inside the pipeline."""
    import_timeout_s: float = 120.0
    prediction_agreement: float | None = None
    """Share of test predictions that must equal the baseline's (for deterministic models)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def tolerance(self, size: str) -> float:
        override = self.size(size).accuracy_tolerance
        return self.accuracy_tolerance if override is None else override

    @property
    def package_dir(self) -> Path:
        return Path(importlib.import_module(self.package).__file__).parent

    @property
    def baseline_path(self) -> Path:
        return self.package_dir / "baseline.py"

    @property
    def reference_path(self) -> Path:
        return self.package_dir / "reference.py"

    def baseline(self) -> ModuleType:
        """The trusted baseline module (the specification), imported in the grader."""
        return importlib.import_module(self.package + ".baseline")

    def reference(self) -> ModuleType:
        """The trusted fast reference, which the grader uses for its own evaluation."""
        return importlib.import_module(self.package + ".reference")

    @property
    def traced_components(self) -> tuple[str, ...]:
        """Required functions the pipeline must call (classes are checked through the model)."""
        base = self.baseline()
        return tuple(
            n
            for n in self.required_names
            if n != self.entry and not isinstance(getattr(base, n, None), type)
        )

    def size(self, name: str) -> Size:
        if name not in self.sizes:
            raise KeyError(f"task {self.id} has no size {name!r} (sizes: {', '.join(self.sizes)})")
        return self.sizes[name]

    def n_train(self, size: str) -> int:
        n = self.size(size).n_samples
        return round(n * (1.0 - self.baseline().TEST_FRACTION))
