"""Red team: text the agent controls must never crash the episode's record.

A file name that is not UTF-8 (any sandboxed `run_python` can make one) comes back from
`list_files` with a lone surrogate escape; the transcript writes with `ensure_ascii=False`, so
encoding the line fails and the whole episode ends as a harness `error` (out of the pass rate,
replayed by `--resume`) instead of going on. A tool input nested deeper than the recursion
limit does the same. The transcript promises that "recording never fails an episode".
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from perfgym.agent.loop import EpisodeLimits, run_episode
from perfgym.agent.scripted import ScriptedProvider
from perfgym.agent.tools import EpisodeToolbox, prepare_workspace
from perfgym.agent.transcript import Transcript, read_transcript
from perfgym.agent.types import ToolResult
from perfgym.tasks.registry import get_task


def _play(tmp_path: Path, turns) -> tuple[object, list[dict]]:
    spec = get_task("complex-pipeline")
    ws = tmp_path / "workspace"
    prepare_workspace(spec, ws)
    os.close(os.open(os.path.join(os.fsencode(ws), b"bad-\xff-name.txt"), os.O_CREAT, 0o644))
    box = EpisodeToolbox(spec, "small", ws, tmp_path / "profiles", check=False)
    with Transcript(tmp_path / "transcript.jsonl", fsync=False) as transcript:
        outcome = asyncio.run(
            run_episode(
                ScriptedProvider("redteam", turns),
                box,
                "system",
                "prompt",
                EpisodeLimits(max_steps=4),
                transcript,
            )
        )
    return outcome, read_transcript(tmp_path / "transcript.jsonl")


def _call(i: int, name: str, args: dict) -> list[dict]:
    return [{"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": args}]


def test_a_non_utf8_file_name_does_not_crash_the_episode(tmp_path):
    turns = [
        _call(0, "list_files", {"path": "."}),
        _call(1, "submit_answer", {"path": "baseline.py"}),
    ]
    outcome, events = _play(tmp_path, turns)  # raises UnicodeEncodeError today
    assert outcome.status == "submitted"
    # what goes back to the model must be valid Unicode too (the SDK sends UTF-8 JSON)
    json.dumps(outcome.messages, ensure_ascii=False).encode("utf-8")
    listing = next(e for e in events if e["type"] == "tool_result")
    assert "bad-" in listing["content"]
    assert "bad-\\xff-name.txt (0 bytes)" in listing["content"]  # the byte, shown escaped


def test_a_deeply_nested_tool_input_does_not_crash_the_episode(tmp_path):
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    turns = [
        _call(0, "list_files", {"path": ".", "junk": deep}),
        _call(1, "submit_answer", {"path": "baseline.py"}),
    ]
    outcome, events = _play(tmp_path, turns)  # raises RecursionError today
    assert outcome.status == "submitted"
    first = next(e for e in events if e["type"] == "tool_result")
    assert first["is_error"] and "50 levels deep" in first["content"]
    # the assistant turn is recorded, with the part JSON cannot encode replaced by a note
    said = next(e for e in events if e["type"] == "assistant")
    assert said["unrecorded"] == ["content"]


class _BytesToolbox:
    """A toolbox whose output passes undecodable bytes on as surrogates, as os APIs do."""

    def schemas(self) -> list[dict]:
        return [{"name": n, "input_schema": {"type": "object"}} for n in ("echo", "submit_answer")]

    async def call(self, name: str, arguments: dict) -> ToolResult:
        if name == "submit_answer":
            return ToolResult("Submitted.", submission="a.py")
        return ToolResult("caf\udcc3\udca9 \udcff lone \ud800 end")


def test_every_tool_result_is_valid_unicode_before_it_is_sent_or_recorded(tmp_path):
    turns = [_call(0, "echo", {}), _call(1, "submit_answer", {})]
    with Transcript(tmp_path / "t.jsonl", fsync=False) as transcript:
        outcome = asyncio.run(
            run_episode(
                ScriptedProvider("bytes", turns),
                _BytesToolbox(),
                "system",
                "prompt",
                EpisodeLimits(max_steps=3),
                transcript,
            )
        )
    assert outcome.status == "submitted"
    json.dumps(outcome.messages, ensure_ascii=False).encode("utf-8")
    result = next(e for e in read_transcript(tmp_path / "t.jsonl") if e["type"] == "tool_result")
    # escaped bytes that form UTF-8 decode; the rest show as escapes
    assert result["content"] == "caf\u00e9 \\xff lone \\ud800 end"


def test_the_transcript_records_what_json_cannot_encode(tmp_path):
    loop: list = []
    loop.append(loop)
    with Transcript(tmp_path / "t.jsonl", fsync=False) as transcript:
        transcript.write("tool_result", content="name-\udcff", submission=None)
        transcript.write("assistant", content=[{"type": "text", "text": "ok"}, loop])
        transcript.write("odd", data={(1, 2): "tuple key"})
    surrogate, circular, odd = read_transcript(tmp_path / "t.jsonl")
    assert surrogate["content"] == "name-\udcff"  # escaped as JSON, read back the same
    assert circular["content"][0] == {"type": "text", "text": "ok"}
    assert circular["unrecorded"] == ["content"] and "not recorded" in circular["content"][1]
    assert odd["unrecorded"] == ["data"]
