"""Plays N episodes, K at a time, and keeps the run's summary current on disk.

Episodes overlap freely while agents think and tools run; the grader's timed phases never do
(each holds the machine-wide timing slot), so concurrency cannot distort a speedup. The summary
is rewritten atomically after every episode, so Ctrl-C or a crash leaves a valid partial one,
and `--resume` plays only the episodes without a final grade (none yet, or an infrastructure
error, which a new attempt may not repeat).
"""

from __future__ import annotations

import asyncio
import os
import traceback
from dataclasses import asdict
from pathlib import Path

from perfgym.agent.providers.anthropic_provider import AnthropicProvider
from perfgym.agent.scripted import noop_agent, reference_agent, replay_agent
from perfgym.agent.types import Provider
from perfgym.atomic_file import write_json_atomic
from perfgym.runner.config import RunConfig
from perfgym.runner.display import LiveDisplay, PlainDisplay
from perfgym.runner.episode import episode_dir, play_episode
from perfgym.runner.summary import (
    ERROR,
    SUMMARY_FILE,
    EpisodeRecord,
    read_episode,
    summarize,
)
from perfgym.tasks.registry import get_task


def resolve_agent(agent: str) -> tuple[str, str | None]:
    """`auto` means Claude when a key is set, else the offline reference agent; the second
    value is the line that tells the user which it chose and why."""
    if agent != "auto":
        return agent, None
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "claude", None
    return "reference", (
        "No ANTHROPIC_API_KEY is set, so this runs the offline `reference` agent; "
        "set ANTHROPIC_API_KEY (or pass --agent claude with a key) to run Claude."
    )


def make_provider(config: RunConfig) -> Provider:
    """The agent for one episode (a fresh one each time: episodes share nothing)."""
    spec = get_task(config.task)
    if config.agent == "claude":
        return AnthropicProvider(
            model=config.model,
            base_url=config.base_url,
            max_retries=config.api_retries,
            backoff_s=config.api_backoff_s,
        )
    if config.agent == "reference":
        return reference_agent(spec, config.size, check=config.check_tool)
    if config.agent == "noop":
        return noop_agent()
    if config.agent == "replay":
        return replay_agent(Path(config.replay or ""))
    raise ValueError(f"unknown agent {config.agent!r}")


def _graded(ep_dir: Path) -> bool:
    record = read_episode(ep_dir)
    return record is not None and record.status != ERROR


def finished_records(run_dir: Path, runs: int) -> list[EpisodeRecord]:
    records = [read_episode(episode_dir(run_dir, i)) for i in range(runs)]
    return [r for r in records if r is not None]


def write_summary(run_dir: Path, config: RunConfig) -> dict:
    summary = summarize(finished_records(run_dir, config.runs), config.runs, asdict(config))
    write_json_atomic(run_dir / SUMMARY_FILE, summary)
    return summary


async def run_episodes(
    config: RunConfig, run_dir: Path, display: PlainDisplay | LiveDisplay, label: str = ""
) -> dict:
    """Play every episode of `run_dir` without a final grade (none yet, or an infrastructure
    error); returns the summary."""
    spec = get_task(config.task)
    todo = [i for i in range(config.runs) if not _graded(episode_dir(run_dir, i))]
    slots = asyncio.Semaphore(config.concurrency)

    def show(index: int, kind: str, data: dict) -> None:
        display.event(f"{label}run_{index}", kind, data)

    async def one(index: int) -> None:
        async with slots:
            try:
                provider = make_provider(config)
                await play_episode(config, spec, run_dir, index, provider, show)
            except Exception as exc:  # a harness fault ends this episode, not the run
                record = EpisodeRecord(index, ERROR, config.agent, "error", reason_kind="harness")
                record.reason = f"the harness failed: {type(exc).__name__}: {exc}"
                ep_dir = episode_dir(run_dir, index)
                ep_dir.mkdir(parents=True, exist_ok=True)
                (ep_dir / "harness_error.txt").write_text(traceback.format_exc())
                record.write(ep_dir)
                show(index, "done", {"record": record})
        write_summary(run_dir, config)

    try:
        await asyncio.gather(*(one(i) for i in todo))
    finally:
        summary = write_summary(run_dir, config)
    return summary
