"""Reading a run directory's artifacts in runner tests."""

from __future__ import annotations

import itertools
import json
from pathlib import Path


def read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def timed_slots(run_dir: Path) -> list[tuple[float, float]]:
    """Every timed phase of every grading in the run, from the grade reports, in order."""
    slots = []
    for grade_file in run_dir.glob("run_*/grade.json"):
        timing = json.loads(grade_file.read_text())["timing"]
        slots += [tuple(s) for s in timing["candidate"]["slots"].values()]
    return sorted(slots)


def assert_no_overlap(slots: list[tuple[float, float]]) -> None:
    for (_, end), (start, _) in itertools.pairwise(slots):
        assert end <= start, "two timed phases overlapped"
