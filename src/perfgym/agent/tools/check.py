"""check: the grader's checks and timing on the public seed, as a compact report.

The submission is copied out of the workspace (a safe read) into a private file before the
grader sees it, so nothing sandboxed code leaves in the workspace (a symlink swapped in later)
can point the grader elsewhere. Grading blocks for a while, so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perfgym.agent.tools.base import Tool
from perfgym.agent.tools.context import EpisodeContext
from perfgym.agent.tools.submit import read_submission
from perfgym.agent.types import ToolResult
from perfgym.grading import GradeReport, check_public

Progress = Callable[[str], None]

_MARK = {True: "pass", False: "FAIL", None: "skip"}


def format_report(report: GradeReport, shown_path: str) -> str:
    """The verdict, the speedup against the target and every check, for the model."""
    lines = [
        f"check of {shown_path} on the public seed (size {report.size}): {report.verdict.upper()}"
    ]
    timing = report.timing
    if "speedup" in timing:
        lo, hi = timing.get("speedup_interval_95", [None, None])
        base = timing.get("baseline", {}).get("lower_quartile")
        cand = timing.get("candidate", {}).get("lower_quartile")
        interval = f" (95% interval {lo:.2f}-{hi:.2f})" if lo is not None else ""
        times = (
            f"; run time {cand:.2f} s vs baseline {base:.2f} s (second fastest of five runs"
            + (
                "; the speedup compares each run with a run of a fixed program timed beside it)"
                if timing.get("paired")
                else ")"
            )
            if base
            else ""
        )
        lines.append(
            f"speedup {timing['speedup']:.2f}x{interval}, target {report.target_speedup:g}x{times}"
        )
    if report.checks:
        lines.append("checks:")
        lines += [f"  [{_MARK[c.passed]}] {c.name}: {c.detail}" for c in report.checks]
    listed = {f"{c.name}: {c.detail}" for c in report.checks}
    extra = [r for r in report.reasons if r not in listed]
    if extra:
        lines.append("problems: " + "; ".join(extra))
    lines.append(
        "Grading proper uses hidden seeds (different data) but the same checks and timing."
    )
    return "\n".join(lines)


def check_tool(ctx: EpisodeContext, progress: Progress | None = None) -> Tool:
    """The check tool of an episode (grading on the public seed)."""

    async def check(args: dict[str, Any]) -> ToolResult:
        shown, data = read_submission(ctx.workspace, args["path"])
        tmp = Path(tempfile.mkdtemp(prefix="perfgym-check-"))
        try:
            copy = tmp / Path(shown).name
            copy.write_bytes(data)
            report = await asyncio.to_thread(
                check_public, ctx.spec, copy, ctx.size, progress or (lambda _: None)
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return ToolResult(format_report(report, shown))

    return Tool(
        name="check",
        description=(
            "Grade a candidate file the way the final grader does, but on the public seed "
            "(the data baseline.py makes): static checks (required names and signatures, "
            "forbidden constructs), component-by-component equivalence with the baseline, "
            "the returned model's accuracy, training work and determinism, and timing against "
            "the baseline under the same CPU budget. Returns the verdict, each check "
            "with pass/FAIL and detail, and the speedup vs the target. It takes a while "
            "(several timed runs of your code and, the first time, of the baseline), so use "
            "it on a version you believe is correct and fast."
        ),
        properties={
            "path": {
                "type": "string",
                "description": "The file to check, relative to the workspace (default "
                "'optimized.py').",
            }
        },
        defaults={"path": "optimized.py"},
        handler=check,
    )
