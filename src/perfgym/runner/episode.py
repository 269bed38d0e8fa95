"""One episode: a fresh workspace, the agent's loop through the tools, the grading of what it
submitted, and every artifact in `run_<i>/` as it happens."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perfgym.agent.loop import EpisodeLimits, run_episode
from perfgym.agent.tools import EpisodeToolbox, Workspace, prepare_workspace, read_submission
from perfgym.agent.tools.base import ToolInputError
from perfgym.agent.transcript import Transcript
from perfgym.agent.types import Provider, Reply, Toolbox, ToolResult
from perfgym.grading import grade
from perfgym.runner.config import RunConfig
from perfgym.runner.summary import ERROR, FAIL, PASS, EpisodeRecord
from perfgym.tasks.prompt import render_prompt
from perfgym.tasks.spec import TaskSpec

SYSTEM_PROMPT = """\
You are an expert ML performance engineer. You work in a sandboxed workspace through tools;
every path is relative to the workspace. Measure before you optimize: run and profile the code,
find where the time goes, then rewrite those parts so they compute exactly the same numbers.
Use `check` to see how the grader judges your file on the public data, and call `submit_answer`
with your optimized file when you are done. Your episode ends at submission or after a limited
number of steps, so do not stop without submitting."""

SUBMISSION_FILE = "submission.py"
EventSink = Callable[[int, str, dict[str, Any]], None]


class _TimedProvider:
    """Adds up the time spent waiting for the model, to tell harness overhead apart."""

    def __init__(self, inner: Provider) -> None:
        self.inner, self.name, self.seconds = inner, inner.name, 0.0

    async def complete(self, system: str, messages: list, tools: list) -> Reply:
        start = time.monotonic()
        try:
            return await self.inner.complete(system, messages, tools)
        finally:
            self.seconds += time.monotonic() - start


class _TimedToolbox:
    """Adds up the time the tools take (sandboxed runs, profiles, checks)."""

    def __init__(self, inner: Toolbox) -> None:
        self.inner, self.seconds = inner, 0.0

    def schemas(self) -> list[dict[str, Any]]:
        return self.inner.schemas()

    async def call(self, name: str, arguments: Any) -> ToolResult:
        start = time.monotonic()
        try:
            return await self.inner.call(name, arguments)
        finally:
            self.seconds += time.monotonic() - start


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def episode_dir(run_dir: Path, index: int) -> Path:
    return run_dir / f"run_{index}"


async def play_episode(
    config: RunConfig,
    spec: TaskSpec,
    run_dir: Path,
    index: int,
    provider: Provider,
    on_event: EventSink = lambda *_: None,
) -> EpisodeRecord:
    """Play and grade episode `index`; an unfinished earlier attempt at it is replaced."""
    ep_dir = episode_dir(run_dir, index)
    shutil.rmtree(ep_dir, ignore_errors=True)
    workspace, artifacts = ep_dir / "workspace", ep_dir / "profiles"
    prepare_workspace(spec, workspace)
    artifacts.mkdir(parents=True, exist_ok=True)
    model = _TimedProvider(provider)
    tools = _TimedToolbox(
        EpisodeToolbox(spec, config.size, workspace, artifacts, check=config.check_tool)
    )
    limits = EpisodeLimits(
        max_steps=config.max_steps,
        max_total_tokens=config.max_tokens_per_episode,
        max_cost_usd=config.max_cost_usd,
        max_wall_s=config.max_episode_s,
    )
    record = EpisodeRecord(index=index, status=ERROR, agent=provider.name, agent_status="")
    record.started_at = _now()
    start = time.monotonic()
    on_event(index, "start", {})
    with Transcript(ep_dir / "transcript.jsonl") as transcript:
        try:
            outcome = await run_episode(
                model,
                tools,
                SYSTEM_PROMPT,
                render_prompt(spec, config.size),
                limits,
                transcript,
                on_event=lambda kind, data: on_event(index, kind, data),
            )
        finally:
            if close := getattr(provider, "aclose", None):
                await close()
    record.agent_status = outcome.status
    record.steps = outcome.steps
    record.tool_counts = dict(outcome.tool_counts)
    record.tokens = asdict(outcome.usage)
    record.cost_usd = outcome.cost_usd if outcome.cost_known else None
    record.model_seconds, record.tool_seconds = model.seconds, tools.seconds
    if outcome.status == "error":
        record.status, record.reason_kind = ERROR, "provider"
        record.reason = f"the model API failed: {outcome.error}"
    elif outcome.submission is None:
        record.status, record.reason_kind = FAIL, outcome.status
        record.reason = outcome.error or f"the agent ended without submitting ({outcome.status})"
    else:
        on_event(index, "grading", {})
        await _grade(config, spec, ep_dir, workspace, outcome.submission, record)
    record.wall_seconds = time.monotonic() - start
    record.finished_at = _now()
    record.write(ep_dir)
    on_event(index, "done", {"record": record})
    return record


async def _grade(
    config: RunConfig,
    spec: TaskSpec,
    ep_dir: Path,
    workspace: Path,
    path: str,
    record: EpisodeRecord,
) -> None:
    """Grade a copy of the submitted file, so nothing the agent left running can change it."""
    try:
        _, data = read_submission(Workspace(workspace), path)
    except ToolInputError as exc:
        record.status, record.reason_kind = FAIL, "no_submission"
        record.reason = f"the submitted file cannot be graded: {exc}"
        return
    submission = ep_dir / SUBMISSION_FILE
    submission.write_bytes(data)
    report = await asyncio.to_thread(grade, spec, submission, config.size)
    report.write(ep_dir)
    record.grading_seconds = report.grading_seconds
    record.speedup = report.timing.get("speedup")
    record.reward = report.reward
    if report.verdict == "pass":
        record.status = PASS
        return
    record.status = ERROR if report.verdict == "error" else FAIL
    record.reason = report.reasons[0] if report.reasons else "the grader gave no reason"
    failed = next((c.name for c in report.checks if c.passed is False), None)
    record.reason_kind = failed or ("grader" if record.status == ERROR else "unknown")
