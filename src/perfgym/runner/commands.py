"""The runner's commands: `perfgym run`, `perfgym demo` and `perfgym report`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from perfgym.errors import UsageError
from perfgym.runner.config import AGENTS, DEFAULT_MODEL, RunConfig, default_run_dir, load_config
from perfgym.runner.display import make_display
from perfgym.runner.summary import SUMMARY_FILE, render_summary, summarize

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 2, 130
DEFAULT_OUTPUT = Path("output")
DEMO_TASK, DEMO_SIZE = "complex-pipeline", "small"


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise UsageError(f"--{name} must be at least 1 (got {value})")
    return value


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    from perfgym.cli import size_arg, task_arg

    spec = task_arg(args.task)
    size_arg(spec, args.size)
    agent = args.agent
    if args.api_retries < 0 or args.api_backoff < 0:
        raise UsageError("--api-retries and --api-backoff must not be negative")
    if agent == "claude" and not os.environ.get("ANTHROPIC_API_KEY"):
        raise UsageError(
            "ANTHROPIC_API_KEY is not set: export it to run Claude, or use --agent reference "
            "(offline)"
        )
    if agent == "replay":
        if not args.replay:
            raise UsageError("--agent replay needs --replay TRANSCRIPT (a run's transcript.jsonl)")
        from perfgym.agent.scripted import ReplayError, replay_agent

        try:
            replay_agent(Path(args.replay))
        except (ReplayError, ValueError) as exc:
            raise UsageError(str(exc)) from None
    return RunConfig(
        task=spec.id,
        agent=agent,
        runs=_positive("runs", args.runs),
        concurrency=_positive("concurrency", args.concurrency),
        model=args.model,
        size=args.size,
        max_steps=_positive("max-steps", args.max_steps),
        max_tokens_per_episode=args.max_tokens,
        max_cost_usd=args.max_cost,
        max_episode_s=args.max_episode_seconds,
        check_tool=not args.no_check,
        replay=str(Path(args.replay).resolve()) if args.replay else None,
        base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
        api_retries=args.api_retries,
        api_backoff_s=args.api_backoff,
    )


def _latest_run(root: Path) -> Path | None:
    runs = [p.parent for p in root.glob("*/run.json")]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def _prepare(args: argparse.Namespace) -> tuple[RunConfig, Path, list[str]]:
    """The run's config and directory: a new run, or the saved one when resuming."""
    notes: list[str] = []
    if args.resume:
        run_dir = Path(args.output) if args.output else _latest_run(DEFAULT_OUTPUT)
        if run_dir is None:
            raise UsageError(f"--resume found no run in {DEFAULT_OUTPUT}/; pass --output DIR")
        config = load_config(run_dir)
        if config is None:
            raise UsageError(f"{run_dir} holds no run to resume (no readable run.json)")
        config.concurrency = _positive("concurrency", args.concurrency)
        notes.append(f"resuming {run_dir}")
        return config, run_dir, notes
    from perfgym.runner.run import resolve_agent

    config = _config_from_args(args)
    config.agent, why = resolve_agent(config.agent)
    if why:
        notes.append(why)
    if args.output:
        run_dir = Path(args.output)
        if (run_dir / "run.json").exists():
            raise UsageError(f"{run_dir} already holds a run: add --resume to finish it")
    else:
        run_dir = default_run_dir(DEFAULT_OUTPUT, config)
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir)
    return config, run_dir, notes


def execute_runs(runs: list[tuple[RunConfig, Path]], plain: bool | None) -> list[dict]:
    """Play runs side by side under one display; Ctrl-C ends the process at once, after writing
    a valid partial summary of each (gradings still running in worker threads are abandoned,
    and their sandboxes die with this process)."""
    from perfgym.runner.run import run_episodes, write_summary

    display = make_display(plain)
    labelled = len(runs) > 1

    async def play() -> list[dict]:
        return list(
            await asyncio.gather(
                *(run_episodes(c, d, display, f"{c.agent}/" if labelled else "") for c, d in runs)
            )
        )

    try:
        with display:
            return asyncio.run(play())
    except KeyboardInterrupt:
        for config, run_dir in runs:
            write_summary(run_dir, config)
        dirs = " ".join(str(d) for _, d in runs)
        print(
            f"perfgym: interrupted; finished episodes and a partial summary are in {dirs}; "
            "`perfgym run --resume --output DIR` plays the rest",
            file=sys.stderr,
            flush=True,
        )
        sys.stdout.flush()
        os._exit(EXIT_INTERRUPTED)


def cmd_run(args: argparse.Namespace) -> int:
    config, run_dir, notes = _prepare(args)
    for note in notes:
        print(f"perfgym: {note}", file=sys.stderr)
    print(f"perfgym: run directory {run_dir}", file=sys.stderr, flush=True)
    (summary,) = execute_runs([(config, run_dir)], args.plain or None)
    print(render_summary(summary))
    print(f"artifacts: {run_dir} (summary: {run_dir / SUMMARY_FILE})")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """The offline reference and noop agents on complex-pipeline (small), side by side."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = Path(args.output) if args.output else DEFAULT_OUTPUT / f"demo-{stamp}"
    start = time.monotonic()
    runs = []
    for agent in ("reference", "noop"):
        run_dir = root / agent
        if (run_dir / "run.json").exists():
            raise UsageError(f"{run_dir} already holds a run: choose another --output")
        # Without `check`: its first call measures the baseline on the public seed too, a
        # third minute of timed runs on a fresh machine (the tests cover the tool).
        config = RunConfig(task=DEMO_TASK, agent=agent, runs=1, size=DEMO_SIZE, check_tool=False)
        run_dir.mkdir(parents=True)
        config.save(run_dir)
        runs.append((config, run_dir))
    print(
        f"perfgym demo: the offline reference and noop agents on {DEMO_TASK} ({DEMO_SIZE}), "
        f"side by side; artifacts in {root}",
        file=sys.stderr,
        flush=True,
    )
    summaries = execute_runs(runs, args.plain or None)
    for (config, _), summary in zip(runs, summaries, strict=True):
        print(f"\n== agent {config.agent} ==")
        print(render_summary(summary))
    print(f"\ndemo finished in {time.monotonic() - start:.0f} s; artifacts in {root}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    run_dir = Path(args.dir)
    config = load_config(run_dir)
    if config is None:
        raise UsageError(f"{run_dir} is not a perfgym run directory (no readable run.json)")
    from dataclasses import asdict

    from perfgym.runner.run import finished_records

    summary = summarize(finished_records(run_dir, config.runs), config.runs, asdict(config))
    print(json.dumps(summary, indent=2) if args.json else render_summary(summary))
    return EXIT_OK


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="play N agent episodes on a task and report the pass rate",
        description="Play N episodes of an agent on a task: each gets a sandboxed workspace "
        "and tools, its submission is graded, and every artifact is kept in the run directory.",
    )
    p.add_argument("--task", default=DEMO_TASK, help=f"task id (default {DEMO_TASK})")
    p.add_argument(
        "--agent",
        default="auto",
        choices=AGENTS,
        help="claude, or an offline agent: reference, noop, replay; auto (default) is claude "
        "when ANTHROPIC_API_KEY is set, else reference",
    )
    p.add_argument("--runs", type=int, default=1, help="episodes to play (default 1)")
    p.add_argument(
        "--concurrency", type=int, default=1, help="episodes at a time (default 1: sequential)"
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"Claude model (default {DEFAULT_MODEL})")
    p.add_argument("--size", default="full", help="full (default) or small")
    p.add_argument("--max-steps", type=int, default=20, help="model turns per episode (default 20)")
    p.add_argument("--max-tokens", type=int, help="token limit per episode")
    p.add_argument("--max-cost", type=float, help="estimated USD limit per episode")
    p.add_argument("--max-episode-seconds", type=float, help="wall-clock limit per episode")
    p.add_argument("--no-check", action="store_true", help="do not give the agent the check tool")
    p.add_argument(
        "--api-retries",
        type=int,
        default=6,
        help="retries of a failing API call (429, 5xx, overloaded) before the episode counts "
        "as an infrastructure error (default 6)",
    )
    p.add_argument(
        "--api-backoff",
        type=float,
        default=1.0,
        help="seconds before the first retry; doubled each time, with jitter (default 1)",
    )
    p.add_argument("--replay", metavar="TRANSCRIPT", help="the transcript --agent replay replays")
    p.add_argument("--output", metavar="DIR", help="the run directory (default output/<name>)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="finish the run in --output (default: the latest in output/): play only the "
        "episodes without a final grade",
    )
    p.add_argument("--plain", action="store_true", help="plain progress lines, no live table")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "demo",
        help="the offline reference and noop agents end to end (no API key needed)",
    )
    p.add_argument("--output", metavar="DIR", help="where the demo's runs go")
    p.add_argument("--plain", action="store_true", help="plain progress lines, no live table")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("report", help="print the summary of a run directory again")
    p.add_argument("dir", help="a run directory (holds run.json)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_report)
