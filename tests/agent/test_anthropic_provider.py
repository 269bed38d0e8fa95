"""The Anthropic provider through the real SDK against the fake Messages API: request shape and
prompt caching, reply parsing and cost, retries and the errors users read."""

from __future__ import annotations

import asyncio
import gc
import os
import time

import pytest
from fake_messages_api import (
    Disconnect,
    ScriptedError,
    message,
    overloaded,
    rate_limited,
    server_error,
    text,
    tool_use,
    unauthorized,
)

from perfgym.agent.pricing import estimate_cost
from perfgym.agent.providers.anthropic_provider import (
    AnthropicProvider,
    ContextWindowExceeded,
    MissingApiKey,
)
from perfgym.agent.types import ProviderError, Usage

TOOLS = [
    {"name": "read_file", "description": "Read a file.", "input_schema": {"type": "object"}},
    {"name": "submit_answer", "description": "Submit.", "input_schema": {"type": "object"}},
]
CONVERSATION = [
    {"role": "user", "content": "Make it fast."},
    {
        "role": "assistant",
        "content": [tool_use("read_file", {"path": "baseline.py"}, id="toolu_1")],
    },
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "print(1)"}],
    },
]


def sent_key(headers: dict[str, str]) -> str:
    """The API key a request carried (this SDK sends it as a bearer token or x-api-key)."""
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


def complete(provider: AnthropicProvider, messages=CONVERSATION, tools=TOOLS, system="Be fast."):
    """One request in its own event loop, closing the connections before the loop ends."""

    async def main():
        try:
            return await provider.complete(system, messages, tools)
        finally:
            await provider.aclose()

    return asyncio.run(main())


def test_request_has_cache_breakpoints_and_leaves_the_callers_messages_alone(
    fake_api, make_provider
):
    fake_api.push(message("ok"))
    before = repr(CONVERSATION), repr(TOOLS)
    complete(make_provider(model="claude-sonnet-4-6", max_tokens=1234))

    body, headers = fake_api.requests[0], fake_api.request_headers[0]
    assert sent_key(headers) == "sk-ant-test"
    assert body["model"] == "claude-sonnet-4-6" and body["max_tokens"] == 1234
    assert body["system"] == [
        {"type": "text", "text": "Be fast.", "cache_control": {"type": "ephemeral"}}
    ]
    assert "cache_control" not in body["tools"][0]
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    # The newest user turn is the moving breakpoint; older turns stay as they were.
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"][0] == {"role": "user", "content": "Make it fast."}
    assert (repr(CONVERSATION), repr(TOOLS)) == before
    assert fake_api.invalid == []


def test_a_string_prompt_becomes_a_cached_text_block(fake_api, make_provider):
    fake_api.push(message("ok"))
    complete(make_provider(), messages=[{"role": "user", "content": "hi"}], tools=[])
    body = fake_api.requests[0]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}],
        }
    ]
    assert "tools" not in body


def test_reply_blocks_become_plain_dicts_with_usage_and_cost(fake_api, make_provider):
    usage = {
        "input_tokens": 1000,
        "output_tokens": 200,
        "cache_creation_input_tokens": 3000,
        "cache_read_input_tokens": 40000,
    }
    fake_api.push(
        message(
            {"type": "thinking", "thinking": "Profile first.", "signature": "sig=="},
            "Let me read it.",
            tool_use("read_file", {"path": "baseline.py", "limit": None}, id="toolu_9"),
            usage=usage,
        )
    )
    reply = complete(make_provider(model="claude-haiku-4-5"))

    assert reply.stop_reason == "tool_use"
    assert reply.content == [
        {"type": "thinking", "thinking": "Profile first.", "signature": "sig=="},
        {"type": "text", "text": "Let me read it."},
        {
            "type": "tool_use",
            "id": "toolu_9",
            "name": "read_file",
            "input": {"path": "baseline.py", "limit": None},
        },
    ]
    assert all(type(block) is dict for block in reply.content)
    assert reply.usage == Usage(**usage)
    # haiku-4-5: $1 in, $5 out, cache writes $1.25, cache reads $0.10 per million tokens
    expected = (1000 * 1 + 200 * 5 + 3000 * 1.25 + 40000 * 0.1) / 1e6
    assert reply.cost_usd == pytest.approx(expected)
    assert reply.model == "claude-haiku-4-5"


def test_a_dated_model_id_is_priced_like_its_alias(fake_api, make_provider):
    fake_api.push(
        {
            "model": "claude-haiku-4-5-20251001",
            "content": [{"type": "text", "text": "hi"}],
            "usage": {"input_tokens": 1_000_000, "output_tokens": 0},
        }
    )
    reply = complete(make_provider())
    assert reply.model == "claude-haiku-4-5-20251001"
    assert reply.cost_usd == pytest.approx(1.0)


def test_rate_limit_overload_and_server_errors_are_retried(fake_api, make_provider):
    fake_api.push(rate_limited(retry_after=0), overloaded(), server_error(), message("finally"))
    retries: list[tuple[int, float, str]] = []
    provider = make_provider(on_retry=lambda *a: retries.append(a))

    reply = complete(provider)

    assert reply.content == [{"type": "text", "text": "finally"}]
    assert len(fake_api.requests) == 4
    assert [attempt for attempt, _, _ in retries] == [1, 2, 3]
    assert "429 rate_limit_error" in retries[0][2]
    assert "529 overloaded_error" in retries[1][2]
    assert "500 api_error" in retries[2][2]
    assert all(0 <= delay <= 0.01 for _, delay, _ in retries)
    assert provider.retries == 3


def test_retry_after_from_the_server_is_a_floor_for_the_wait(fake_api, make_provider):
    fake_api.push(rate_limited(retry_after=0.02), message("ok"))
    retries: list[tuple[int, float, str]] = []
    provider = make_provider(
        backoff_s=0.0001, max_backoff_s=1.0, on_retry=lambda *a: retries.append(a)
    )
    complete(provider)
    assert retries[0][1] == pytest.approx(0.02)


def test_a_dropped_connection_is_retried(fake_api, make_provider):
    fake_api.push(Disconnect(), message("back"))
    reply = complete(make_provider())
    assert reply.content[0]["text"] == "back"
    assert len(fake_api.requests) == 2


def test_an_api_that_keeps_failing_gives_one_clear_sentence(fake_api, make_provider):
    fake_api.push(*[overloaded() for _ in range(3)])
    with pytest.raises(ProviderError) as caught:
        complete(make_provider(max_retries=2))
    text = str(caught.value)
    assert text == (
        "The Anthropic API kept failing after 3 attempts (last error: 529 overloaded_error: "
        "Overloaded)."
    )
    assert len(fake_api.requests) == 3


def test_a_bad_key_fails_at_once(fake_api, make_provider):
    fake_api.push(unauthorized(), message("never"))
    with pytest.raises(ProviderError, match=r"rejected the API key.*ANTHROPIC_API_KEY"):
        complete(make_provider())
    assert len(fake_api.requests) == 1


def test_an_invalid_request_is_not_retried(fake_api, make_provider):
    fake_api.push(ScriptedError(400, "invalid_request_error", "tools.0.name: bad"))
    with pytest.raises(ProviderError) as caught:
        complete(make_provider())
    assert str(caught.value) == (
        "The Anthropic API rejected the request (400 invalid_request_error: tools.0.name: bad)."
    )
    assert len(fake_api.requests) == 1


def test_an_unknown_model_says_so(fake_api, make_provider):
    fake_api.push(ScriptedError(404, "not_found_error", "model: claude-nope"))
    with pytest.raises(ProviderError, match="does not know the model 'claude-nope'"):
        complete(make_provider(model="claude-nope"))


def test_a_full_context_window_is_its_own_error(fake_api, make_provider):
    fake_api.push(
        ScriptedError(400, "invalid_request_error", "prompt is too long: 210000 > 200000 maximum")
    )
    with pytest.raises(ContextWindowExceeded, match="context window"):
        complete(make_provider())


def test_a_missing_api_key_is_a_clear_error_when_constructing(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingApiKey) as caught:
        AnthropicProvider()
    assert isinstance(caught.value, ProviderError)
    assert "ANTHROPIC_API_KEY" in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1


def test_the_key_comes_from_the_environment(monkeypatch, fake_api):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    fake_api.push(message("ok"))
    complete(AnthropicProvider(base_url=fake_api.url, max_retries=0))
    assert sent_key(fake_api.request_headers[0]) == "sk-ant-from-env"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_the_provider_survives_a_new_event_loop(fake_api, make_provider):
    """A caller may run each episode in its own asyncio.run with one provider."""
    provider = make_provider()
    fake_api.push(message("one"), message("two"), message("three"))
    assert complete(provider).content[0]["text"] == "one"
    assert complete(provider).content[0]["text"] == "two"
    # Even without aclose() in between (the old pool is left to the garbage collector).
    run = lambda: asyncio.run(provider.complete("s", CONVERSATION, TOOLS))  # noqa: E731
    assert run().content[0]["text"] == "three"
    fake_api.push(message("four"))
    assert complete(provider).content[0]["text"] == "four"
    gc.collect()  # the warnings of the pool left open belong to this test


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    provider = AnthropicProvider(api_key="k", backoff_s=1.0, max_backoff_s=30.0)
    for attempt in range(4):
        delays = [provider.backoff_delay(attempt) for _ in range(200)]
        assert min(delays) >= 0.5 * 2**attempt and max(delays) <= 2**attempt
        assert len(set(delays)) > 1
    assert provider.backoff_delay(10) == 30.0
    # The server's retry-after is a floor, still under the cap.
    assert provider.backoff_delay(0, retry_after_s=7.0) == 7.0
    assert provider.backoff_delay(0, retry_after_s=700.0) == 30.0


def test_unknown_models_have_no_price():
    assert estimate_cost(Usage(input_tokens=10), "gpt-something") is None
    assert estimate_cost(Usage(), "gpt-something") == 0.0
    assert estimate_cost(Usage(output_tokens=1_000_000), "claude-opus-4-1") == pytest.approx(75)
    assert estimate_cost(Usage(input_tokens=1_000_000), "claude-opus-4-5") == pytest.approx(5)
    assert estimate_cost(Usage(input_tokens=1_000_000), "claude-sonnet-4-20250514") == 3.0


@pytest.mark.skipif(
    not (os.environ.get("ANTHROPIC_API_KEY") and os.environ.get("PERFGYM_LIVE_API") == "1"),
    reason="live API test: needs ANTHROPIC_API_KEY and PERFGYM_LIVE_API=1 (costs real money)",
)
def test_live_api_answers_with_a_tool_call():
    provider = AnthropicProvider(max_tokens=200, max_retries=2)
    messages = [{"role": "user", "content": "Call submit_answer with path 'fast.py'."}]
    reply = complete(provider, messages, TOOLS, "Use the tools.")
    assert reply.usage.output_tokens > 0 and reply.cost_usd > 0
    assert any(b["type"] == "tool_use" and b["name"] == "submit_answer" for b in reply.content)


def test_the_fake_api_rejects_what_the_real_one_would(fake_api, make_provider):
    """The loop tests lean on this: an unanswered tool_use is a 400, as from the real API."""
    dangling = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [tool_use("read_file", {}, id="toolu_x")]},
        {"role": "user", "content": "and?"},
    ]
    results_last = [
        *CONVERSATION[:2],
        {
            "role": "user",
            "content": [
                text("first"),
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"},
            ],
        },
    ]
    with pytest.raises(ProviderError, match="without tool_result blocks immediately after"):
        complete(make_provider(), messages=dangling)
    with pytest.raises(ProviderError, match="tool_result blocks must come before"):
        complete(make_provider(), messages=results_last)
    assert len(fake_api.invalid) == 2


def test_the_fake_api_serves_requests_concurrently(fake_api, make_provider):
    fake_api.fallback = lambda body: message("slow", latency=0.3)
    providers = [make_provider() for _ in range(3)]

    async def main():
        try:
            return await asyncio.gather(*(p.complete("s", CONVERSATION, TOOLS) for p in providers))
        finally:
            for p in providers:
                await p.aclose()

    started = time.monotonic()
    replies = asyncio.run(main())
    assert [r.content[0]["text"] for r in replies] == ["slow"] * 3
    assert time.monotonic() - started < 0.8
    assert fake_api.max_in_flight == 3
