"""A run's settings, kept in `run.json` beside its episodes so `--resume` and `perfgym report`
know what the run was."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from perfgym.atomic_file import write_json_atomic

AGENTS = ("auto", "claude", "reference", "noop", "replay")
DEFAULT_MODEL = "claude-haiku-4-5"
CONFIG_FILE = "run.json"


@dataclass
class RunConfig:
    task: str
    agent: str
    runs: int = 1
    concurrency: int = 1
    model: str = DEFAULT_MODEL
    size: str = "full"
    max_steps: int = 20
    max_tokens_per_episode: int | None = None
    max_cost_usd: float | None = None
    max_episode_s: float | None = None
    check_tool: bool = True
    replay: str | None = None
    """The transcript the `replay` agent replays."""
    base_url: str | None = None
    """Another Messages API endpoint (ANTHROPIC_BASE_URL; tests point it at a fake server)."""
    api_retries: int = 6
    """Retries of a failed API call (429, 5xx, overloaded, connection) before the episode is an
    infrastructure error."""
    api_backoff_s: float = 1.0
    """The first retry's wait; each later one doubles it (with jitter, at most 60 s)."""

    def save(self, run_dir: Path) -> None:
        write_json_atomic(run_dir / CONFIG_FILE, asdict(self))


def load_config(run_dir: Path) -> RunConfig | None:
    try:
        data = json.loads((run_dir / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    known = {f.name for f in fields(RunConfig)}
    return RunConfig(**{k: v for k, v in data.items() if k in known})


def default_run_dir(root: Path, config: RunConfig) -> Path:
    """`output/<task>-<agent>-<size>-<time>`: unique, sortable, says what it holds."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = root / f"{config.task}-{config.agent}-{config.size}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path
