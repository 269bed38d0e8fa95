"""The episode loop, driven by scripted Claude replies from the fake Messages API through the
real SDK and provider, with a fake toolbox (the real tools are tested on their own)."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from fake_messages_api import (
    ScriptedError,
    message,
    overloaded,
    rate_limited,
    server_error,
    text,
    tool_use,
)

from perfgym.agent.loop import (
    AFTER_SUBMISSION,
    NUDGE,
    EpisodeLimits,
    EpisodeOutcome,
    run_episode,
)
from perfgym.agent.pricing import estimate_cost
from perfgym.agent.transcript import Transcript, read_transcript
from perfgym.agent.types import Reply, ToolResult, Usage

SYSTEM = "You are a performance engineer."
PROMPT = "Make baseline.py faster and submit it."


class FakeToolbox:
    """Records every call and answers with canned results; handlers may be async or raise."""

    def __init__(self, **overrides: Any) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.handlers: dict[str, Any] = {
            "read_file": lambda a: ToolResult(f"contents of {a['path']}: for x in data: ..."),
            "run_profile": lambda a: ToolResult(f"{a['path']}: 92% in extract_features"),
            "write_file": lambda a: ToolResult(f"wrote {len(a['content'])} chars to {a['path']}"),
            "submit_answer": lambda a: ToolResult("Submitted.", submission=a["path"]),
            **overrides,
        }

    def schemas(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "description": f"The {name} tool.", "input_schema": {"type": "object"}}
            for name in self.handlers
        ]

    async def call(self, name: str, arguments: Any) -> ToolResult:
        self.calls.append((name, arguments))
        result = self.handlers[name](arguments)
        return await result if asyncio.iscoroutine(result) else result


def play(
    fake_api,
    make_provider,
    tmp_path,
    *script,
    limits: EpisodeLimits | None = None,
    toolbox: FakeToolbox | None = None,
    provider=None,
    events: list | None = None,
    **provider_options,
) -> tuple[EpisodeOutcome, FakeToolbox, list[dict[str, Any]]]:
    """Runs one episode over `script`; returns the outcome, the toolbox and the transcript."""
    fake_api.push(*script)
    toolbox = toolbox or FakeToolbox()
    provider = provider or make_provider(**provider_options)
    path = tmp_path / f"transcript-{len(list(tmp_path.iterdir()))}.jsonl"
    on_event = (lambda kind, data: events.append((kind, data))) if events is not None else None

    async def main() -> EpisodeOutcome:
        try:
            return await run_episode(
                provider, toolbox, SYSTEM, PROMPT, limits, transcript, on_event
            )
        finally:
            await provider.aclose()

    with Transcript(path) as transcript:
        outcome = asyncio.run(main())
    return outcome, toolbox, read_transcript(path)


def last_user_blocks(request: dict[str, Any]) -> list[dict[str, Any]]:
    last = request["messages"][-1]
    assert last["role"] == "user"
    return [{k: v for k, v in b.items() if k != "cache_control"} for b in last["content"]]


def assert_conversation_is_valid(messages: list[dict[str, Any]]) -> None:
    """Roles alternate from the user, and every tool_use is answered in the next turn."""
    roles = [m["role"] for m in messages]
    assert roles == [("user", "assistant")[i % 2] for i in range(len(messages))]
    for current, following in itertools.pairwise(messages):
        if current["role"] == "assistant":
            asked = [b["id"] for b in current["content"] if b["type"] == "tool_use"]
            answered = [
                b["tool_use_id"] for b in following["content"] if b["type"] == "tool_result"
            ]
            assert answered == asked


WORK_USAGE = {
    "input_tokens": 1200,
    "output_tokens": 300,
    "cache_creation_input_tokens": 4000,
    "cache_read_input_tokens": 0,
}


def test_a_scripted_claude_reads_profiles_writes_and_submits(fake_api, make_provider, tmp_path):
    script = [
        message(
            "I'll read the pipeline first.",
            tool_use("read_file", {"path": "baseline.py"}, id="toolu_read"),
            usage=WORK_USAGE,
        ),
        message(
            tool_use("run_profile", {"path": "baseline.py"}, id="toolu_prof1"),
            usage={**WORK_USAGE, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4000},
        ),
        message(
            "Vectorizing extract_features.",
            tool_use("write_file", {"path": "fast.py", "content": "import numpy"}, id="toolu_w"),
            tool_use("run_profile", {"path": "fast.py"}, id="toolu_prof2"),
        ),
        message(tool_use("submit_answer", {"path": "fast.py"}, id="toolu_submit")),
    ]
    outcome, toolbox, events = play(fake_api, make_provider, tmp_path, *script)

    assert outcome.status == "submitted" and outcome.submission == "fast.py"
    assert outcome.steps == 4 and outcome.error is None
    assert toolbox.calls == [
        ("read_file", {"path": "baseline.py"}),
        ("run_profile", {"path": "baseline.py"}),
        ("write_file", {"path": "fast.py", "content": "import numpy"}),
        ("run_profile", {"path": "fast.py"}),
        ("submit_answer", {"path": "fast.py"}),
    ]
    assert outcome.tool_counts == {
        "read_file": 1,
        "run_profile": 2,
        "write_file": 1,
        "submit_answer": 1,
    }

    # Each tool result went back to the model, answering its tool_use by id.
    assert fake_api.invalid == [] and len(fake_api.requests) == 4
    assert last_user_blocks(fake_api.requests[1]) == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_read",
            "content": "contents of baseline.py: for x in data: ...",
            "is_error": False,
        }
    ]
    assert [b["tool_use_id"] for b in last_user_blocks(fake_api.requests[3])] == [
        "toolu_w",
        "toolu_prof2",
    ]
    assert_conversation_is_valid(outcome.messages)
    assert outcome.messages[-1]["content"][0]["tool_use_id"] == "toolu_submit"

    # Tokens and cost add up over the four replies (the fake's default usage for the last two).
    default = Usage(100, 20)
    usages = [
        Usage(**WORK_USAGE),
        Usage(1200, 300, 0, 4000),
        default,
        default,
    ]
    total = Usage()
    for u in usages:
        total.add(u)
    assert outcome.usage == total
    expected = sum(estimate_cost(u, "claude-haiku-4-5") for u in usages)
    assert outcome.cost_usd == pytest.approx(expected) and outcome.cost_known

    # The transcript holds every message, tool call, tool result and usage, in order.
    kinds = [e["type"] for e in events]
    assert kinds[0] == "system" and kinds[-1] == "end"
    assert events[0]["text"] == SYSTEM and [t["name"] for t in events[0]["tools"]] == list(
        toolbox.handlers
    )
    assert kinds.count("assistant") == 4 and kinds.count("usage") == 4
    assert kinds.count("tool_result") == 5
    assert events[-1]["status"] == "submitted" and events[-1]["submission"] == "fast.py"
    recorded = [e["content"] for e in events if e["type"] in ("user", "assistant")]
    for msg in outcome.messages:
        for block in msg["content"]:
            assert any(block in blocks for blocks in recorded), block
    tool_results = [e for e in events if e["type"] == "tool_result"]
    assert [e["name"] for e in tool_results] == [name for name, _ in toolbox.calls]
    assert tool_results[-1]["submission"] == "fast.py"
    usage_events = [e for e in events if e["type"] == "usage"]
    assert usage_events[0]["usage"] == WORK_USAGE
    assert usage_events[-1]["total_usage"]["input_tokens"] == total.input_tokens
    assert [e["step"] for e in events if e["type"] == "assistant"] == [1, 2, 3, 4]


def test_every_transcript_line_is_json_and_durable(fake_api, make_provider, tmp_path):
    outcome, _, _ = play(
        fake_api, make_provider, tmp_path, message(tool_use("submit_answer", {"path": "a.py"}))
    )
    (path,) = tmp_path.iterdir()
    lines = path.read_text().splitlines()
    parsed = [json.loads(line) for line in lines]
    assert all({"type", "step", "time"} <= event.keys() for event in parsed)
    assert outcome.status == "submitted"


def test_ending_the_turn_without_submitting_gets_a_nudge(fake_api, make_provider, tmp_path):
    outcome, _, _ = play(
        fake_api,
        make_provider,
        tmp_path,
        message("I believe the code is already fast enough."),
        message(tool_use("submit_answer", {"path": "baseline.py"})),
    )
    assert outcome.status == "submitted" and outcome.steps == 2
    assert last_user_blocks(fake_api.requests[1]) == [text(NUDGE)]
    assert "submit_answer" in NUDGE


def test_an_empty_reply_keeps_the_conversation_valid(fake_api, make_provider, tmp_path):
    outcome, _, _ = play(
        fake_api,
        make_provider,
        tmp_path,
        message(),
        message(tool_use("submit_answer", {"path": "a.py"})),
    )
    assert outcome.status == "submitted"
    # No empty assistant turn: the nudge joins the prompt's user turn.
    assert fake_api.requests[1]["messages"][0]["role"] == "user"
    assert len(fake_api.requests[1]["messages"]) == 1
    assert fake_api.invalid == []


def test_a_model_that_never_submits_ends_without_submission(fake_api, make_provider, tmp_path):
    fake_api.fallback = lambda body: message("Done, I think.")
    outcome, toolbox, events = play(
        fake_api, make_provider, tmp_path, limits=EpisodeLimits(max_steps=3)
    )
    assert outcome.status == "no_submission" and outcome.steps == 3
    assert len(fake_api.requests) == 3 and toolbox.calls == []
    assert "step limit (3)" in outcome.detail
    assert events[-1]["type"] == "end" and events[-1]["status"] == "no_submission"
    # No nudge is recorded after the last step: nothing would read it.
    assert [e["type"] for e in events[-3:]] == ["assistant", "usage", "end"]


def test_a_model_still_working_at_the_step_limit_hits_the_limit(fake_api, make_provider, tmp_path):
    fake_api.fallback = lambda body: message(tool_use("read_file", {"path": "baseline.py"}))
    outcome, toolbox, _ = play(fake_api, make_provider, tmp_path, limits=EpisodeLimits(max_steps=4))
    assert outcome.status == "limit" and outcome.detail == "step limit of 4 reached"
    assert outcome.steps == 4 and len(toolbox.calls) == 4
    assert outcome.tool_counts == {"read_file": 4}
    assert fake_api.invalid == []


def test_a_reply_cut_at_max_tokens_without_a_tool_call(fake_api, make_provider, tmp_path):
    outcome, toolbox, _ = play(
        fake_api,
        make_provider,
        tmp_path,
        message(
            "Here is the whole optimized file: import numpy as np ...",
            stop_reason="max_tokens",
            usage={"output_tokens": 16000},
        ),
        message(tool_use("submit_answer", {"path": "fast.py"})),
    )
    assert outcome.status == "submitted" and outcome.steps == 2
    (note,) = last_user_blocks(fake_api.requests[1])
    assert note["type"] == "text"
    assert "cut off at the output token limit (16000 tokens)" in note["text"]
    assert "split a large file" in note["text"]
    assert toolbox.calls == [("submit_answer", {"path": "fast.py"})]


def test_a_tool_call_cut_at_max_tokens_is_not_run_but_answered(fake_api, make_provider, tmp_path):
    outcome, toolbox, events = play(
        fake_api,
        make_provider,
        tmp_path,
        message(
            "Let me check the file and then write the new version.",
            tool_use("read_file", {"path": "baseline.py"}, id="toolu_whole"),
            tool_use("write_file", {"path": "fast.py"}, id="toolu_cut"),  # content was cut off
            stop_reason="max_tokens",
        ),
        message(tool_use("submit_answer", {"path": "baseline.py"})),
    )
    assert outcome.status == "submitted"
    # The whole call before the cut ran; the cut one did not.
    assert [name for name, _ in toolbox.calls] == ["read_file", "submit_answer"]
    blocks = last_user_blocks(fake_api.requests[1])
    assert [b["type"] for b in blocks] == ["tool_result", "tool_result", "text"]
    assert blocks[0]["tool_use_id"] == "toolu_whole" and not blocks[0]["is_error"]
    assert blocks[1]["tool_use_id"] == "toolu_cut" and blocks[1]["is_error"]
    assert "cut off" in blocks[1]["content"] and "incomplete" in blocks[1]["content"]
    assert "cut off" in blocks[2]["text"]
    assert fake_api.invalid == []  # every tool_use answered, results before the text
    assert outcome.tool_counts == {"read_file": 1, "submit_answer": 1}
    cut_events = [e for e in events if e["type"] == "tool_result" and e["is_error"]]
    assert [e["tool_use_id"] for e in cut_events] == ["toolu_cut"]


def test_malformed_tool_calls_become_errors_the_model_can_read(fake_api, make_provider, tmp_path):
    def crash(arguments):
        raise RuntimeError("sandbox exploded")

    toolbox = FakeToolbox(run_profile=crash)
    outcome, toolbox, events = play(
        fake_api,
        make_provider,
        tmp_path,
        message(tool_use("rm_rf", {"path": "/"}, id="toolu_unknown")),
        message(tool_use("read_file", ["baseline.py"], id="toolu_list")),
        message(tool_use("run_profile", {"path": "baseline.py"}, id="toolu_crash")),
        message(tool_use("submit_answer", {"path": "baseline.py"})),
        toolbox=toolbox,
    )
    assert outcome.status == "submitted" and outcome.steps == 4
    assert [name for name, _ in toolbox.calls] == ["run_profile", "submit_answer"]

    unknown, not_a_dict, crashed = (last_user_blocks(r)[0] for r in fake_api.requests[1:4])
    assert unknown["is_error"] and unknown["tool_use_id"] == "toolu_unknown"
    assert unknown["content"].startswith("Unknown tool rm_rf. The tools are: read_file,")
    assert not_a_dict["is_error"] and "must be a JSON object" in not_a_dict["content"]
    assert "not list" in not_a_dict["content"]
    assert crashed["is_error"] and "RuntimeError: sandbox exploded" in crashed["content"]
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 1 and errors[0]["source"] == "tool"
    assert "sandbox exploded" in errors[0]["traceback"]
    assert outcome.tool_counts == {
        "rm_rf": 1,
        "read_file": 1,
        "run_profile": 1,
        "submit_answer": 1,
    }


def test_calls_after_the_submission_are_not_run(fake_api, make_provider, tmp_path):
    outcome, toolbox, _ = play(
        fake_api,
        make_provider,
        tmp_path,
        message(
            tool_use("submit_answer", {"path": "fast.py"}),
            tool_use("read_file", {"path": "fast.py"}),
        ),
    )
    assert outcome.status == "submitted" and outcome.submission == "fast.py"
    assert [name for name, _ in toolbox.calls] == ["submit_answer"]
    last = outcome.messages[-1]["content"]
    assert [b["is_error"] for b in last] == [False, True]
    assert last[1]["content"] == AFTER_SUBMISSION
    assert_conversation_is_valid(outcome.messages)


def test_rate_limits_and_overload_are_retried_within_a_step(fake_api, make_provider, tmp_path):
    retries: list[tuple[int, float, str]] = []
    outcome, _, _ = play(
        fake_api,
        make_provider,
        tmp_path,
        rate_limited(retry_after=0),
        overloaded(),
        message(tool_use("submit_answer", {"path": "fast.py"})),
        on_retry=lambda *a: retries.append(a),
    )
    assert outcome.status == "submitted" and outcome.steps == 1
    assert len(fake_api.requests) == 3 and len(retries) == 2


def test_an_api_that_keeps_failing_is_an_error_and_the_next_episode_works(
    fake_api, make_provider, tmp_path
):
    provider = make_provider(max_retries=2)
    outcome, _, events = play(
        fake_api,
        make_provider,
        tmp_path,
        server_error(),
        server_error(),
        server_error(),
        provider=provider,
    )
    assert outcome.status == "error" and outcome.steps == 1
    assert outcome.error == (
        "The Anthropic API kept failing after 3 attempts (last error: 500 api_error: "
        "Internal server error)."
    )
    assert [e["type"] for e in events[-2:]] == ["error", "end"]
    assert events[-1]["status"] == "error" and events[-1]["error"] == outcome.error

    again, _, _ = play(
        fake_api,
        make_provider,
        tmp_path,
        message(tool_use("submit_answer", {"path": "fast.py"})),
        provider=provider,
    )
    assert again.status == "submitted"


def test_a_full_context_window_ends_the_episode_as_a_limit(fake_api, make_provider, tmp_path):
    outcome, _, _ = play(
        fake_api,
        make_provider,
        tmp_path,
        ScriptedError(400, "invalid_request_error", "prompt is too long: 200001 tokens > 200000"),
    )
    assert outcome.status == "limit" and "context window" in outcome.detail


def test_a_refusal_ends_the_episode(fake_api, make_provider, tmp_path):
    outcome, toolbox, _ = play(
        fake_api,
        make_provider,
        tmp_path,
        message("I can't help with that.", stop_reason="refusal"),
    )
    assert outcome.status == "refused" and outcome.steps == 1
    assert outcome.detail == "I can't help with that." and toolbox.calls == []


def test_pause_turn_sends_the_turn_back_as_it_is(fake_api, make_provider, tmp_path):
    paused = [text("Let me think about the profile.")]
    outcome, _, _ = play(
        fake_api,
        make_provider,
        tmp_path,
        message(*paused, stop_reason="pause_turn"),
        message(tool_use("submit_answer", {"path": "fast.py"})),
    )
    assert outcome.status == "submitted" and outcome.steps == 2
    second = fake_api.requests[1]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant"]
    assert second[-1]["content"] == paused


def test_the_token_limit_ends_the_episode(fake_api, make_provider, tmp_path):
    fake_api.fallback = lambda body: message(
        tool_use("read_file", {"path": "baseline.py"}), usage={"input_tokens": 1000}
    )
    outcome, _, _ = play(
        fake_api, make_provider, tmp_path, limits=EpisodeLimits(max_total_tokens=2500)
    )
    assert outcome.status == "limit" and outcome.steps == 3
    assert outcome.usage.total == 3 * 1020
    assert outcome.detail == "token limit of 2,500 reached (3,060 tokens used)"


def test_the_cost_limit_ends_the_episode(fake_api, make_provider, tmp_path):
    # 100k input tokens on haiku-4-5 cost $0.10 a step.
    fake_api.fallback = lambda body: message(
        tool_use("read_file", {"path": "baseline.py"}),
        usage={"input_tokens": 100_000, "output_tokens": 0},
    )
    outcome, _, _ = play(fake_api, make_provider, tmp_path, limits=EpisodeLimits(max_cost_usd=0.25))
    assert outcome.status == "limit" and outcome.steps == 3
    assert outcome.cost_usd == pytest.approx(0.30)
    assert outcome.detail.startswith("cost limit of $0.25 reached")


def test_the_wall_clock_limit_interrupts_a_slow_step(fake_api, make_provider, tmp_path):
    async def slow_profile(arguments):
        await asyncio.sleep(30)
        return ToolResult("never")

    outcome, _, events = play(
        fake_api,
        make_provider,
        tmp_path,
        message(tool_use("run_profile", {"path": "baseline.py"})),
        limits=EpisodeLimits(max_wall_s=0.3),
        toolbox=FakeToolbox(run_profile=slow_profile),
    )
    assert outcome.status == "limit" and outcome.detail == "wall-clock limit of 0.3 s reached"
    assert 0.3 <= outcome.wall_s < 5
    assert events[-1]["type"] == "end" and events[-1]["status"] == "limit"


def test_an_unknown_model_has_an_unknown_cost(fake_api, make_provider, tmp_path):
    outcome, _, _ = play(
        fake_api,
        make_provider,
        tmp_path,
        message(tool_use("submit_answer", {"path": "a.py"})),
        model="claude-from-the-future",
    )
    assert outcome.status == "submitted"
    assert outcome.cost_usd == 0.0 and not outcome.cost_known
    assert outcome.to_dict()["cost_known"] is False


def test_live_events_report_steps_and_tools_and_a_broken_display_is_harmless(
    fake_api, make_provider, tmp_path
):
    events: list[tuple[str, dict[str, Any]]] = []

    class BrokenList(list):
        def append(self, item):
            super().append(item)
            if item[0] == "tool":
                raise RuntimeError("display crashed")

    events = BrokenList()
    outcome, _, _ = play(
        fake_api,
        make_provider,
        tmp_path,
        message(tool_use("read_file", {"path": "baseline.py"})),
        message(tool_use("submit_answer", {"path": "fast.py"})),
        events=events,
    )
    assert outcome.status == "submitted"
    assert [d["step"] for k, d in events if k == "step"] == [1, 2]
    assert [d["name"] for k, d in events if k == "tool"] == ["read_file", "submit_answer"]
    assert events[-1] == ("end", {"status": "submitted", "detail": "submitted"})


def test_ctrl_c_propagates_after_the_transcript_records_the_end(fake_api, make_provider, tmp_path):
    started = asyncio.Event()

    async def slow_profile(arguments):
        started.set()
        await asyncio.sleep(30)
        return ToolResult("never")

    fake_api.push(message(tool_use("run_profile", {"path": "baseline.py"})))
    path = tmp_path / "transcript.jsonl"

    provider = make_provider()

    async def main() -> None:
        with Transcript(path) as transcript:
            task = asyncio.create_task(
                run_episode(
                    provider,
                    FakeToolbox(run_profile=slow_profile),
                    SYSTEM,
                    PROMPT,
                    EpisodeLimits(),
                    transcript,
                )
            )
            await asyncio.wait_for(started.wait(), 10)
            task.cancel()
            try:
                await task
            finally:
                await provider.aclose()

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())
    events = read_transcript(path)
    assert events[-1]["type"] == "end" and events[-1]["status"] == "cancelled"
    assert events[-1]["steps"] == 1 and events[-1]["tool_counts"] == {"run_profile": 1}


class _BuggyProvider:
    name = "buggy"

    async def complete(self, system, messages, tools) -> Reply:
        raise KeyError("oops")


def test_a_provider_bug_is_an_error_not_a_crash(tmp_path):
    with Transcript(tmp_path / "t.jsonl") as transcript:
        outcome = asyncio.run(
            run_episode(_BuggyProvider(), FakeToolbox(), SYSTEM, PROMPT, None, transcript)
        )
    assert outcome.status == "error" and "KeyError" in outcome.error
    errors = [e for e in read_transcript(tmp_path / "t.jsonl") if e["type"] == "error"]
    assert "Traceback" in errors[0]["traceback"]


def test_the_loop_runs_without_a_transcript():
    class OneShot:
        name = "one-shot"

        async def complete(self, system, messages, tools) -> Reply:
            call = tool_use("submit_answer", {"path": "a.py"})
            return Reply([call], "tool_use", Usage(5, 5), 0.0, "scripted")

    outcome = asyncio.run(run_episode(OneShot(), FakeToolbox(), SYSTEM, PROMPT))
    assert outcome.status == "submitted" and outcome.submission == "a.py"


def test_read_transcript_drops_a_line_cut_by_a_crash(tmp_path):
    path = tmp_path / "t.jsonl"
    with Transcript(path) as transcript:
        transcript.write("user", step=0, content="hi")
        transcript.write("assistant", step=1, content=[{"type": "text", "text": "ünïcode"}])
    with path.open("a") as f:
        f.write('{"type": "tool_result", "step": 1, "cont')
    events = read_transcript(path)
    assert [e["type"] for e in events] == ["user", "assistant"]
    assert events[1]["content"][0]["text"] == "ünïcode"

    # A complete last line without its newline is kept.
    path.write_text(path.read_text().rsplit("\n", 1)[0] + '\n{"type": "end"}')
    assert read_transcript(path)[-1] == {"type": "end"}


def test_read_transcript_refuses_a_corrupt_middle_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"type": "user"}\nnot json\n{"type": "end"}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_transcript(path)


def test_a_transcript_appends_and_never_loses_a_written_line(tmp_path):
    path = tmp_path / "deep" / "t.jsonl"
    first = Transcript(path)
    first.write("user", step=0, content="one")
    # Another reader sees the line at once, before close (it was flushed and fsynced).
    assert read_transcript(path)[0]["content"] == "one"
    first.close()
    with Transcript(path) as second:
        second.write("end", step=1, data={1, 2})  # not JSON: written as its str()
    events = read_transcript(path)
    assert [e["type"] for e in events] == ["user", "end"]
    assert events[1]["data"] == "{1, 2}"
    with pytest.raises(ValueError, match="closed"):
        first.write("user")
