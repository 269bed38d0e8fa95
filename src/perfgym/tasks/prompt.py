"""The agent's prompt for a task: what to optimize, what must stay, how it is graded."""

from __future__ import annotations

from perfgym.tasks.spec import TaskSpec

TEMPLATE = """\
You are an ML performance engineer. `{baseline}` in your workspace is a deliberately slow
training pipeline: {summary}

Goal: write `{output}`, a faster version of `{baseline}` that computes the same thing, and
submit it. The target is a {target:g}x speedup of `{entry}` over the baseline at this size
({n_samples} images); beyond the target, more speedup earns more reward.

Find the bottlenecks with a profiler before you change code.

What must stay the same:
- The public names and signatures: {required}. `{entry}(train_images, train_labels,
  test_images, seed)` must return {{"model": <the fitted model>, "predictions": <test labels>}}.
- {must_keep}.
- Every component must compute the same numbers as the baseline's on any input, edge cases
  included (windows, ddof, medians of an even count, constant images). Equivalence is checked
  component by component on hidden inputs, with tolerances scaled to each value.

What you may change: {may_change}.

How grading works: the grader runs `{output}` in a sandbox with one CPU ({budget} thread), on
data from hidden seeds you never see, and times it with its own clock against the baseline run
the same way. It evaluates the returned model itself on hidden test data (accuracy within
{tolerance} of the baseline's), checks the training work and that the same seed gives the same
result, and rejects code that uses threads, processes, exec/eval, monkeypatching, or
introspection. Anything printed is ignored. Cheating is detected and scores zero.

Write one self-contained file, `{output}`, importing only the standard library, numpy,
scikit-learn and torch.
"""


def render_prompt(
    spec: TaskSpec, size: str = "full", baseline: str = "baseline.py", output: str = "optimized.py"
) -> str:
    """The prompt an agent gets for `spec` at `size`, naming its workspace files."""
    s = spec.size(size)
    return TEMPLATE.format(
        baseline=baseline,
        output=output,
        summary=spec.summary,
        target=s.target_speedup,
        entry=spec.entry,
        n_samples=s.n_samples,
        required=", ".join(spec.required_names),
        must_keep=spec.must_keep[0].upper() + spec.must_keep[1:],
        may_change=spec.may_change,
        budget=spec.cpu_budget,
        tolerance=spec.tolerance(size),
    )
