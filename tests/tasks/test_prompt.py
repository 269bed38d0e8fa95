"""The prompt states the rules the grader enforces, with the task's own numbers."""

from __future__ import annotations

import pytest

from perfgym.tasks import TASKS
from perfgym.tasks.prompt import render_prompt


@pytest.mark.parametrize("task_id", sorted(TASKS))
def test_prompt_names_rules_and_numbers(task_id):
    spec = TASKS[task_id]
    text = render_prompt(spec, "small", output="fast.py")
    for name in spec.required_names:
        assert name in text
    assert f"{spec.sizes['small'].target_speedup:g}x" in text
    assert str(spec.sizes["small"].n_samples) in text
    assert "fast.py" in text and "hidden" in text and "scores zero" in text
    assert "{" not in text.replace('{"model"', "")
