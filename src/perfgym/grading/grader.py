"""grade(): static checks, equivalence probes, timed hidden-seed runs, verdict and reward.

Order matters for cost: static checks first (nothing runs if they fail), then run A with the
probes (a failed probe ends the grading), then runs B and A again. Every check is recorded,
with those skipped after a failure marked as skipped.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from perfgym.grading.baseline_cache import BaselineError, BaselineRecord, get_baseline
from perfgym.grading.compare import compare_arrays
from perfgym.grading.environment import describe
from perfgym.grading.evaluate import (
    EvaluationError,
    accuracy,
    normalized_features,
    predict_exported,
)
from perfgym.grading.measure import (
    PARKED_CPU_ALLOWANCE_S,
    Measurement,
    Progress,
    ReferenceRunError,
    measure,
    run_seeds,
)
from perfgym.grading.report import ERROR, FAIL, PASS, GradeReport
from perfgym.grading.static_checks import run_static_checks
from perfgym.grading.timing import (
    budget_cpus,
    normalized_reward,
    paired_speedup,
    speedup_interval,
    typical_time,
)
from perfgym.sandbox import SandboxError
from perfgym.tasks.spec import TaskSpec

CPU_OVERUSE = 1.3
"""A timed run may use at most this many CPU-seconds per wall second per CPU of budget."""
SELF_CONSISTENCY = 0.98
"""Share of the submission's own test predictions that must match the grader's evaluation."""
LATER_CHECKS = (
    "probes",
    "e2e.ran",
    "e2e.model",
    "e2e.work",
    "e2e.components",
    "e2e.accuracy",
    "e2e.agreement",
    "e2e.self_consistency",
    "e2e.determinism",
    "budget.cpu",
    "speed.target",
)


def grade(
    spec: TaskSpec,
    submission: Path,
    size: str = "full",
    refresh_baseline: bool = False,
    progress: Progress = lambda _: None,
    public: bool = False,
) -> GradeReport:
    """Grade one submission file for `spec` at `size`; never raises for the submission's faults.
    `public` runs every check on the public seed instead of the hidden ones (see check_public)."""
    start = time.monotonic()
    data = submission.read_bytes()
    size_spec = spec.size(size)
    report = GradeReport(
        task=spec.id,
        size=size,
        submission={"path": str(submission), "sha256": hashlib.sha256(data).hexdigest()},
        seeds="public" if public else "hidden",
        target_speedup=size_spec.target_speedup,
        reference_speedup=size_spec.reference_speedup,
        environment=describe(spec.cpu_budget, budget_cpus(spec.cpu_budget)),
    )
    try:
        _grade(
            spec,
            data.decode("utf-8", "replace"),
            submission,
            size,
            refresh_baseline,
            progress,
            report,
            public,
        )
    except (BaselineError, ReferenceRunError, SandboxError) as exc:
        report.verdict = ERROR
        report.reasons.append(f"infrastructure: {exc}")
    if public:  # the same checks, on the public seed: say so in their own words
        for c in report.checks:
            c.detail = c.detail.replace("hidden", "public")
        report.reasons = [r.replace("hidden", "public") for r in report.reasons]
    report.grading_seconds = round(time.monotonic() - start, 3)
    return report


def check_public(
    spec: TaskSpec, submission: Path, size: str = "full", progress: Progress = lambda _: None
) -> GradeReport:
    """The grader's checks and timing on the public seed alone: what the agent's `check` tool
    shows. Its data is the data the agent already has, so it reveals nothing hidden, while
    every edge a component gets wrong there still shows up."""
    return grade(spec, submission, size, progress=progress, public=True)


def _finish(spec: TaskSpec, report: GradeReport) -> None:
    done = {c.name.split(".")[0] if c.name.startswith("probe.") else c.name for c in report.checks}
    optional = set() if spec.prediction_agreement else {"e2e.agreement"}
    for name in LATER_CHECKS:
        if name not in done | optional and not (name == "probes" and "probe" in done):
            report.add(name, None, "skipped after an earlier failure")
    report.verdict = FAIL if report.failed() else PASS


def _grade(spec, source, path, size, refresh, progress, report: GradeReport, public) -> None:
    progress("static checks")
    for r in run_static_checks(
        source, spec.baseline_path.read_text(), spec.required_names, spec.entry
    ):
        report.add(r.name, r.passed, r.detail)
    if report.failed():
        return _finish(spec, report)

    baseline, expected, cached = get_baseline(spec, size, refresh, progress, public)
    report.timing["baseline"] = {
        "samples": baseline.samples,
        "reference_samples": baseline.reference_samples,
        "median": baseline.median,
        "cpu": baseline.cpu,
        "cached": cached,
    }
    timeout = max(30.0, 2.0 * max(baseline.samples.values()) + 20.0)

    def probes_failed(m: Measurement) -> bool:
        return not _check_probes(spec, m, expected, report)

    m = measure(spec, path, size, timeout, progress, stop_after_probes=probes_failed, public=public)
    splits = m.splits
    if not any(c.name.startswith("probe.") for c in report.checks):
        _check_probes(spec, m, expected, report)
    if report.failed():
        return _finish(spec, report)
    _check_results(spec, size, m, splits, baseline, expected, report)
    if report.failed():
        return _finish(spec, report)
    _check_speed(spec, size, m, baseline, report)
    _finish(spec, report)


def _check_results(spec, size, m, splits, baseline, expected, report: GradeReport) -> None:
    """The end-to-end checks, on results that the submission's process wrote: if they are not
    what the sandbox entry writes (the submission tampered with them), that is its failure,
    never the grader's crash."""
    try:
        _check_runs(spec, size, m, splits, baseline, expected, report)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        report.add(
            "e2e.results",
            False,
            f"the runs' results are not what the grader's harness writes ({type(exc).__name__}:"
            f" {exc}); the submission's process tampered with them",
        )


def _check_probes(spec: TaskSpec, m: Measurement, expected: dict, report: GradeReport) -> bool:
    if m.process_errors and not m.probe_arrays and not m.probe_errors:
        report.add("e2e.ran", False, m.process_errors[0])  # died before the probes ran
        return False
    ok = True
    for probe in spec.probes:
        name = f"probe.{probe.id}"
        if probe.id in m.probe_errors:
            ok &= bool(report.add(name, False, f"raised {m.probe_errors[probe.id]}"))
            continue
        keys = sorted(k.split("/", 1)[1] for k in expected if k.startswith(f"probe/{probe.id}."))
        details = []
        passed = bool(keys)
        for key in keys:
            if key not in m.probe_arrays:
                passed, detail = False, "missing output"
            else:
                same, detail = compare_arrays(
                    m.probe_arrays[key], expected["probe/" + key], probe.rtol
                )
                passed &= same
            details.append(f"output {key.rsplit('.', 1)[1]}: {detail}")
        ok &= bool(report.add(name, passed, "; ".join(details) or "no baseline output"))
    return ok


def _check_runs(
    spec, size, m: Measurement, splits, baseline: BaselineRecord, expected, report
) -> None:
    errors = m.process_errors + [r.error for r in m.runs.values() if r.error]
    seeds = run_seeds(spec, size)
    if errors or set(m.runs) != set(seeds):
        report.add("e2e.ran", False, "; ".join(errors) or "not every timed run finished")
        return
    report.add("e2e.ran", True, f"timed runs {', '.join(seeds)} finished on hidden seeds")

    model_problems, work_problems = _model_and_work(spec, size, m, baseline)
    report.add(
        "e2e.model",
        not model_problems,
        "; ".join(model_problems) or "same model kind and architecture as the baseline",
    )
    report.add("e2e.work", not work_problems, "; ".join(work_problems) or _work_summary(spec, size))
    features = {label: normalized_features(spec, split) for label, split in splits.items()}
    report.add("e2e.components", *_components(spec, m, features, seeds))
    if model_problems:
        return

    acc_rows, acc_ok, consistency, agreement = [], True, [], []
    for label, split in splits.items():
        run = m.runs[label]
        try:
            preds = predict_exported(spec, run.arrays, run.meta, features[label][1])
        except EvaluationError as exc:
            report.add("e2e.accuracy", False, str(exc))
            return
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            # the arrays are the submission's: whatever they break is its failure, not ours
            report.add(
                "e2e.accuracy",
                False,
                f"the grader could not evaluate the returned model ({type(exc).__name__}: {exc})",
            )
            return
        cand = accuracy(preds, split.test_labels)
        base = baseline.accuracy[label]
        acc_ok &= abs(cand - base) <= spec.tolerance(size) + 1e-12
        if spec.prediction_agreement is not None:
            agreement.append(float(np.mean(preds == expected[f"pred/{label}"])))
        acc_rows.append({"seed": label, "baseline": base, "candidate": cand})
        own = run.arrays.get("predictions")
        agree = (
            float(np.mean(own == preds)) if own is not None and own.shape == preds.shape else 0.0
        )
        consistency.append(agree)
    report.accuracy = {
        "chance": 0.1,
        "tolerance": spec.tolerance(size),
        "per_seed": acc_rows,
    }
    report.add(
        "e2e.accuracy",
        acc_ok,
        ", ".join(
            f"seed {r['seed']}: {r['candidate']:.4f} vs baseline {r['baseline']:.4f}"
            for r in acc_rows
        )
        + f" (tolerance {spec.tolerance(size)})",
    )
    if agreement:
        report.add(
            "e2e.agreement",
            min(agreement) >= spec.prediction_agreement,
            "the model predicts the baseline model's labels on "
            + ", ".join(f"{a:.1%}" for a in agreement)
            + f" of hidden test samples (need {spec.prediction_agreement:.0%}: same features and"
            " seed give the same forest)",
        )
    report.add(
        "e2e.self_consistency",
        min(consistency) >= SELF_CONSISTENCY,
        "the returned predictions agree with the grader's evaluation of the returned model on "
        + ", ".join(f"{c:.1%}" for c in consistency)
        + f" of test samples (need {SELF_CONSISTENCY:.0%})",
    )
    report.add("e2e.determinism", *_determinism(m, seeds))


def _components(
    spec: TaskSpec, m: Measurement, features: dict, seeds: dict[str, str]
) -> tuple[bool, str]:
    """The pipeline called the probed components, and their output on the hidden data is the
    grader's own: a pipeline cannot run an unprobed copy (a subsampled median, say)."""
    rtol = {p.target: p.rtol for p in spec.probes}
    for run_id, run in m.runs.items():
        calls = run.meta.get("calls", {})
        missing = [n for n in spec.traced_components if not calls.get(n)]
        if missing:
            return False, f"run {run_id}: {spec.entry} never called {', '.join(missing)}"
        for name in spec.traced_outputs:
            for i, want in enumerate(features[seeds[run_id]]):
                got = run.arrays.get(f"trace:{name}.{i}")
                if got is None:
                    return False, f"run {run_id}: no output {i} from {name}"
                same, detail = compare_arrays(got, want, rtol.get(name, 1e-9))
                if not same:
                    return False, f"run {run_id}: {name} output {i} on the hidden data: {detail}"
    names = ", ".join(spec.traced_components)
    return (
        True,
        f"{spec.entry} called {names}; {', '.join(spec.traced_outputs)} matched on hidden data",
    )


def _model_and_work(
    spec, size, m: Measurement, baseline: BaselineRecord
) -> tuple[list[str], list[str]]:
    model_problems, work_problems = [], []
    want = baseline.model
    for run_id, run in m.runs.items():
        got = run.meta.get("model", {})
        if got.get("kind") != want["kind"]:
            model_problems.append(
                f"run {run_id} returned a {got.get('class', '?')}, not a {want['class']}"
            )
            continue
        if want["kind"] == "forest":
            diff = {
                k: (got["params"].get(k), v)
                for k, v in want["params"].items()
                if k != "random_state" and got["params"].get(k) != v
            }
            if diff:
                model_problems.append(
                    f"run {run_id}: forest parameters differ from the baseline's: "
                    + ", ".join(f"{k}={a!r} (baseline {b!r})" for k, (a, b) in diff.items())
                )
            if got.get("n_trees") != want["n_trees"]:
                work_problems.append(
                    f"run {run_id} fitted {got.get('n_trees')} trees, "
                    f"the baseline {want['n_trees']}"
                )
        else:
            shapes = {k: list(v.shape) for k, v in run.arrays.items() if k.startswith("w:")}
            if got.get("class") != want["class"] or shapes != want["weights"]:
                model_problems.append(
                    f"run {run_id}: {got.get('class')} with weights {_fmt_shapes(shapes)} "
                    f"is not the baseline's {want['class']} {_fmt_shapes(want['weights'])}"
                )
            need = spec.epochs * spec.n_train(size)
            seen = run.meta.get("trained_rows", {}).get(spec.model_class, 0)
            if seen < need:
                work_problems.append(
                    f"run {run_id}: {spec.model_class} was trained on {seen} rows (model(x) calls "
                    f"with a backward pass), but {spec.epochs} epochs over {spec.n_train(size)} "
                    f"samples need {need}"
                )
    return model_problems, work_problems


def _fmt_shapes(shapes: dict) -> str:
    return (
        "{"
        + ", ".join(f"{k[2:]}: {'x'.join(map(str, v))}" for k, v in sorted(shapes.items()))
        + "}"
    )


def _work_summary(spec: TaskSpec, size: str) -> str:
    if spec.model_kind == "forest":
        return "every run fitted the baseline's number of trees"
    return f"every run trained on at least {spec.epochs} epochs x {spec.n_train(size)} samples"


def _determinism(m: Measurement, seeds: dict[str, str]) -> tuple[bool, str]:
    """Every run of a hidden seed (one per process) gives the same result, bit for bit."""
    by_seed: dict[str, list[str]] = {}
    for run_id, label in seeds.items():
        by_seed.setdefault(label, []).append(run_id)
    for first, *again_runs in by_seed.values():
        for again in again_runs:
            a, a2 = m.runs[first].arrays, m.runs[again].arrays
            if a.keys() != a2.keys():
                return False, f"runs {first} and {again} returned different things"
            for key in sorted(a):
                if a[key].shape != a2[key].shape or not np.array_equal(a[key], a2[key]):
                    return False, (
                        f"hidden seed {first} run twice gave different {key!r}: "
                        "seed every random source"
                    )
    return True, (
        f"hidden seeds {', '.join(by_seed)}, each run in two processes, gave identical results"
    )


def _check_speed(
    spec: TaskSpec, size: str, m: Measurement, baseline: BaselineRecord, report
) -> None:
    cand = m.samples()
    over = []
    for run_id, run in m.runs.items():
        allowed = CPU_OVERUSE * spec.cpu_budget * run.wall_s + 0.05
        if run.cpu_s is not None and run.cpu_s > allowed:
            over.append(f"run {run_id} used {run.cpu_s:.2f} CPU-s in {run.wall_s:.2f} s")
    for run_id, used in m.parked_cpu.items():
        if used > PARKED_CPU_ALLOWANCE_S:
            over.append(
                f"while it should have been idle (the reference's run {run_id} had the timed"
                f" CPU, or its own run was done), it used {used:.2f} CPU-s"
            )
    report.add(
        "budget.cpu",
        not over,
        "; ".join(over) + f" (budget {spec.cpu_budget} CPU, nothing while waiting)"
        if over
        else f"within {spec.cpu_budget} CPU, idle while waiting",
    )
    base = list(baseline.samples.values())
    if spec.size(size).paired_timing:
        point, lo, hi = paired_speedup(baseline.pairs(), m.pairs())
        how = "through the reference solution's runs paired with each run"
    else:
        point, lo, hi = speedup_interval(base, cand)
        how = "ratio of the lower quartiles of the runs"
    by_median = baseline.median / float(np.median(cand))
    target = spec.size(size).target_speedup
    report.timing["candidate"] = {
        "samples": {k: r.wall_s for k, r in m.runs.items()},
        "reference_samples": {k: r.wall_s for k, r in m.reference_runs.items()},
        "lower_quartile": typical_time(cand),
        "median": float(np.median(cand)),
        "cpu": {k: r.cpu_s for k, r in m.runs.items()},
        "slots": {k: r.slot for k, r in m.runs.items()},
    }
    report.timing["baseline"]["lower_quartile"] = typical_time(base)
    report.timing.update(
        {
            "speedup": point,
            "speedup_interval_95": [lo, hi],
            "speedup_of_medians": by_median,
            "speedup_unpaired": typical_time(base) / typical_time(cand),
            "paired": spec.size(size).paired_timing,
        }
    )
    report.add(
        "speed.target",
        point >= target,
        f"speedup {point:.2f}x (95% interval {lo:.2f}-{hi:.2f}; {how}) vs target {target:g}x",
    )
    cheated_or_wrong = any(c.passed is False and c.name != "speed.target" for c in report.checks)
    if not cheated_or_wrong:
        report.reward = normalized_reward(point, spec.size(size).reference_speedup)
