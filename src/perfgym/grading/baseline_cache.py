"""The baseline's measurement, cached per task, size, machine and library versions.

The baseline runs through the same sandbox and clock as any candidate; its timings, its
hidden-seed results (the grader's own accuracy and predictions) and its probe outputs are kept
in the grader's cache, outside every workspace, and reused until something they depend on
changes or `--refresh` is asked for.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perfgym import sandbox
from perfgym.grading import execution, sandbox_entry, timing
from perfgym.grading import measure as measure_module
from perfgym.grading.environment import cpu_model, file_sha256, library_versions
from perfgym.grading.evaluate import accuracy, normalized_features, predict_exported
from perfgym.grading.measure import Progress, measure, paired_runs, processes, run_seeds
from perfgym.paths import cache_dir, machine_secret
from perfgym.tasks.spec import TaskSpec


class BaselineError(RuntimeError):
    """The baseline itself did not run cleanly: an infrastructure error."""


@dataclass
class BaselineRecord:
    task: str
    size: str
    key: str
    samples: dict[str, float]
    reference_samples: dict[str, float]
    """The reference solution's run timed beside each baseline run (the same id)."""
    cpu: dict[str, float]
    accuracy: dict[str, float]
    model: dict[str, Any]
    """Exported model description of run A (kind, class, params, weight shapes)."""
    measured_at: str
    measured_seconds: float

    @property
    def median(self) -> float:
        return float(np.median(list(self.samples.values())))

    def pairs(self) -> dict[str, tuple[float, float]]:
        """Run id -> (baseline time, the paired reference run's time); empty for a task that
        does not time in pairs."""
        return {
            k: (v, self.reference_samples[k])
            for k, v in self.samples.items()
            if k in self.reference_samples
        }


def cache_key(spec: TaskSpec, size: str, public: bool = False) -> str:
    parts = {
        "public": public,
        "task": spec.id,
        "size": size,
        "n_samples": spec.size(size).n_samples,
        "baseline": file_sha256(spec.baseline_path),
        "reference": file_sha256(spec.reference_path),
        "entry": file_sha256(sandbox_entry.__file__),
        "protocol": [
            file_sha256(Path(m.__file__)) for m in (execution, measure_module, timing, sandbox)
        ],
        "runs": processes(spec, size),
        "paired": paired_runs(spec, size),
        "probes": [p.to_json() for p in spec.probes],
        "versions": library_versions(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "budget": spec.cpu_budget,
        "secret": hashlib.sha256(machine_secret().encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def _dir(spec: TaskSpec, size: str, public: bool = False) -> Path:
    name = f"{spec.id}-{size}{'-public' if public else ''}"
    return cache_dir() / "baseline" / f"{name}-{cache_key(spec, size, public)}"


def load(
    spec: TaskSpec, size: str, d: Path | None = None
) -> tuple[BaselineRecord, dict[str, np.ndarray]] | None:
    d = d or _dir(spec, size)
    try:
        record = BaselineRecord(**json.loads((d / "record.json").read_text()))
        with np.load(d / "arrays.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, TypeError):
        return None
    return record, arrays


def measure_baseline(
    spec: TaskSpec,
    size: str,
    progress: Progress = lambda _: None,
    d: Path | None = None,
    public: bool = False,
) -> tuple[BaselineRecord, dict[str, np.ndarray]]:
    """Measure the baseline now and store it (atomically) in the cache directory `d`."""
    d = d or _dir(spec, size, public)
    start = time.monotonic()
    timeout = spec.size(size).run_timeout_s * 2
    m = measure(spec, spec.baseline_path, size, timeout, progress, public=public)
    splits = m.splits
    problems = list(m.process_errors) + [r.error for r in m.runs.values() if r.error]
    problems += [f"probe {k}: {v}" for k, v in m.probe_errors.items()]
    seeds = run_seeds(spec, size)
    unpaired = set(m.pairs()) != set(paired_runs(spec, size))
    if problems or set(m.runs) != set(seeds) or unpaired:
        raise BaselineError("the baseline did not run cleanly: " + "; ".join(problems))
    arrays = {f"probe/{k}": v for k, v in m.probe_arrays.items()}
    acc = {}
    for label, split in splits.items():
        preds = predict_exported(
            spec, m.runs[label].arrays, m.runs[label].meta, normalized_features(spec, split)[1]
        )
        acc[label] = accuracy(preds, split.test_labels)
        arrays[f"pred/{label}"] = preds
    model = dict(m.runs["A"].meta["model"])
    model["weights"] = {
        k: list(v.shape) for k, v in m.runs["A"].arrays.items() if k.startswith("w:")
    }
    record = BaselineRecord(
        task=spec.id,
        size=size,
        key=d.name.rsplit("-", 1)[1],
        samples={k: r.wall_s for k, r in m.runs.items()},
        reference_samples={k: r.wall_s for k, r in m.reference_runs.items()},
        cpu={k: r.cpu_s for k, r in m.runs.items()},
        accuracy=acc,
        model=model,
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        measured_seconds=time.monotonic() - start,
    )
    tmp = d.with_name(d.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "record.json").write_text(json.dumps(asdict(record), indent=2))
    np.savez(tmp / "arrays.npz", **arrays)
    shutil.rmtree(d, ignore_errors=True)
    tmp.rename(d)
    return record, arrays


def get_baseline(
    spec: TaskSpec,
    size: str,
    refresh: bool = False,
    progress: Progress = lambda _: None,
    public: bool = False,
) -> tuple[BaselineRecord, dict[str, np.ndarray], bool]:
    """The cached baseline, or a fresh measurement; the flag says whether it came from cache.
    `public` measures it on the public seed (for the agent's `check` tool)."""
    d = _dir(spec, size, public)  # hashes the task's files: once per call
    if not refresh and (hit := load(spec, size, d)) is not None:
        return *hit, True
    lock = d.with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:  # one measurement at a time; others wait, then reuse it
        fcntl.flock(f, fcntl.LOCK_EX)
        if not refresh and (hit := load(spec, size, d)) is not None:
            return *hit, True
        progress(f"measuring the baseline of {spec.id} ({size}); cached for later gradings")
        return *measure_baseline(spec, size, progress, d, public), False
