"""Offline agents: fixed sequences of tool calls played through the same loop and tools as
Claude, so the whole pipeline runs (and is tested) without an API key.

  reference  reads, profiles, writes the task's reference solution, checks it, submits it
  noop       submits the baseline unchanged (it must fail on speed alone)
  replay     replays the assistant turns of a saved transcript
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfgym.agent.transcript import read_transcript
from perfgym.agent.types import Reply
from perfgym.tasks.spec import TaskSpec

ToolCall = tuple[str, dict[str, Any]]


class ScriptedProvider:
    """Answers each turn with the next scripted assistant content; after the script it ends
    its turn (the loop then nudges, and the step limit ends the episode)."""

    def __init__(self, name: str, turns: list[list[dict[str, Any]]]) -> None:
        self.name = name
        self.turns = turns

    async def complete(
        self, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> Reply:
        step = sum(1 for m in messages if m["role"] == "assistant")
        if step >= len(self.turns):
            return Reply(
                [{"type": "text", "text": "My script is over."}], "end_turn", model=self.name
            )
        content = self.turns[step]
        stop = "tool_use" if any(b.get("type") == "tool_use" for b in content) else "end_turn"
        return Reply(content, stop, model=self.name)


def _turns(calls: list[tuple[str, str, dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """One turn per (thought, tool, input): a text block, then the tool call."""
    return [
        [
            {"type": "text", "text": thought},
            {"type": "tool_use", "id": f"toolu_scripted_{i:02d}", "name": tool, "input": args},
        ]
        for i, (thought, tool, args) in enumerate(calls)
    ]


def reference_agent(spec: TaskSpec, size: str, check: bool = True) -> ScriptedProvider:
    """The agent a perfect engineer would be: it follows the prompt's method and submits the
    hidden reference solution (written through the tools, like any agent's file)."""
    profile_n = max(100, spec.size(size).n_samples // 4)
    calls = [
        ("Let me see the workspace.", "list_files", {"path": "."}),
        ("Reading the pipeline.", "read_file", {"path": "baseline.py"}),
        (
            "Profiling the baseline on a quarter of the data to find the hot spots.",
            "profile",
            {"path": "baseline.py", "args": ["--n-samples", str(profile_n)]},
        ),
        (
            "Writing the vectorized version.",
            "write_file",
            {"path": "optimized.py", "content": spec.reference_path.read_text()},
        ),
    ]
    if check:
        calls.append(("Checking it on the public seed.", "check", {"path": "optimized.py"}))
    calls.append(("Submitting.", "submit_answer", {"path": "optimized.py"}))
    return ScriptedProvider("reference", _turns(calls))


def noop_agent() -> ScriptedProvider:
    return ScriptedProvider(
        "noop",
        _turns([("Submitting the baseline as it is.", "submit_answer", {"path": "baseline.py"})]),
    )


class ReplayError(ValueError):
    """The transcript to replay is missing or holds no assistant turns."""


def replay_agent(transcript: Path) -> ScriptedProvider:
    """Replays the assistant turns of a saved transcript in order; the tools run again for
    real, so the replayed episode is graded on what those calls produce now."""
    if not transcript.is_file():
        raise ReplayError(f"there is no transcript at {transcript}")
    turns = [e["content"] for e in read_transcript(transcript) if e.get("type") == "assistant"]
    if not turns:
        raise ReplayError(f"{transcript} holds no assistant turns to replay")
    return ScriptedProvider("replay", turns)
