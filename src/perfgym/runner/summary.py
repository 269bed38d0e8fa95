"""What a run of N episodes amounts to: counts, the pass rate with its uncertainty, speedups,
rewards, why episodes failed, profiler use, tokens and cost.

Infrastructure errors (the API failing after retries, a sandbox or grader failure) are counted
apart and stay out of the pass rate: they say nothing about the agent.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from perfgym.atomic_file import write_json_atomic

PASS, FAIL, ERROR = "pass", "fail", "error"
EPISODE_FILE = "episode.json"
SUMMARY_FILE = "summary.json"


@dataclass
class EpisodeRecord:
    """The final record of one episode (`run_<i>/episode.json`); its presence means done."""

    index: int
    status: str
    """pass, fail or error (infrastructure)."""
    agent: str
    agent_status: str
    """How the agent's loop ended: submitted, no_submission, limit, refused, error."""
    reason: str | None = None
    """Why it failed or errored, in one line."""
    reason_kind: str | None = None
    """A short key for counting reasons: a check name, `no_submission`, `limit`, ..."""
    speedup: float | None = None
    reward: float = 0.0
    steps: int = 0
    tool_counts: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = 0.0
    model_seconds: float = 0.0
    tool_seconds: float = 0.0
    grading_seconds: float = 0.0
    wall_seconds: float = 0.0
    started_at: str = ""
    finished_at: str = ""

    @property
    def harness_seconds(self) -> float:
        """Time the harness itself added: the episode's wall time beyond the model's replies,
        the tools' work and the grading."""
        return max(
            0.0, self.wall_seconds - self.model_seconds - self.tool_seconds - self.grading_seconds
        )

    def write(self, run_dir: Path) -> Path:
        return write_json_atomic(run_dir / EPISODE_FILE, asdict(self))


def read_episode(run_dir: Path) -> EpisodeRecord | None:
    """The episode's final record, or None when it never finished (or its file is damaged)."""
    try:
        return EpisodeRecord(**json.loads((run_dir / EPISODE_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95% by default): unlike the normal
    approximation it stays inside [0, 1] and is sensible for 0/n and n/n."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
    }


def summarize(records: list[EpisodeRecord], planned: int, config: dict[str, Any]) -> dict:
    """The run's summary as a JSON-ready dict."""
    counts = Counter(r.status for r in records)
    passed, failed, errored = counts[PASS], counts[FAIL], counts[ERROR]
    graded = passed + failed
    lo, hi = wilson_interval(passed, graded)
    speedups = [r.speedup for r in records if r.status != ERROR and r.speedup is not None]
    profiled = sum(1 for r in records if r.tool_counts.get("profile", 0) > 0)
    tokens: Counter[str] = Counter()
    for r in records:
        tokens.update(r.tokens)
    costs = [r.cost_usd for r in records]
    return {
        "config": config,
        "planned": planned,
        "finished": len(records),
        "complete": len(records) == planned,
        "passed": passed,
        "failed": failed,
        "errored": errored,
        "pass_rate": passed / graded if graded else None,
        "pass_rate_95": [lo, hi] if graded else None,
        "speedup": _stats(speedups),
        "reward": _stats([r.reward for r in records if r.status != ERROR]),
        "failure_reasons": dict(
            Counter(r.reason_kind or "unknown" for r in records if r.status == FAIL)
        ),
        "errors": [{"run": r.index, "reason": r.reason} for r in records if r.status == ERROR],
        "profiler_used": {"episodes": profiled, "share": profiled / len(records) if records else 0},
        "tokens": dict(tokens),
        "cost_usd": None if any(c is None for c in costs) else sum(costs),
        "seconds": {
            "episode_wall": _stats([r.wall_seconds for r in records]),
            "grading": _stats([r.grading_seconds for r in records]),
            "harness_overhead": _stats([r.harness_seconds for r in records]),
        },
        "episodes": [
            {
                "run": r.index,
                "status": r.status,
                "speedup": r.speedup,
                "reward": r.reward,
                "reason": r.reason,
            }
            for r in sorted(records, key=lambda r: r.index)
        ],
    }


def render_summary(summary: dict) -> str:
    """The summary as a few plain lines a person can read at a glance."""
    c = summary["config"]
    lines = [
        f"run: {c.get('task')} ({c.get('size')}), agent {c.get('agent')}"
        + (f", model {c['model']}" if c.get("agent") == "claude" else "")
        + f": {summary['finished']}/{summary['planned']} episodes finished"
        + ("" if summary["complete"] else " (incomplete: --resume runs the rest)"),
        f"passed {summary['passed']}, failed {summary['failed']}, "
        f"errored {summary['errored']} (infrastructure; not in the pass rate)",
    ]
    if summary["pass_rate"] is not None:
        lo, hi = summary["pass_rate_95"]
        lines.append(
            f"pass rate {summary['pass_rate']:.0%} (95% Wilson interval {lo:.0%}-{hi:.0%})"
        )
    if s := summary["speedup"]:
        lines.append(
            f"speedup median {s['median']:.2f}x (min {s['min']:.2f}x, max {s['max']:.2f}x)"
        )
    if r := summary["reward"]:
        lines.append(f"reward mean {r['mean']:.3f}, median {r['median']:.3f}")
    if summary["failure_reasons"]:
        reasons = ", ".join(f"{k} x{v}" for k, v in sorted(summary["failure_reasons"].items()))
        lines.append(f"failure reasons: {reasons}")
    for e in summary["errors"]:
        lines.append(f"error in run_{e['run']}: {e['reason']}")
    p = summary["profiler_used"]
    lines.append(f"profiler used in {p['episodes']}/{summary['finished']} episodes")
    tokens = summary["tokens"]
    cost = summary["cost_usd"]
    lines.append(
        f"tokens in {tokens.get('input_tokens', 0)}, out {tokens.get('output_tokens', 0)}, "
        f"cache read {tokens.get('cache_read_input_tokens', 0)}; cost "
        + ("unknown (model without a price)" if cost is None else f"${cost:.4f}")
    )
    return "\n".join(lines)
