"""Claude through the Anthropic Messages API, as a `Provider` for the episode loop.

Why it does its own retries instead of the SDK's: an episode must survive rate limits and
overload (429, 529, 5xx, dropped connections) with a backoff the runner can configure and the
tests can shrink, and once it gives up the user must read one clear sentence, not a traceback.
Prompt caching marks the system prompt, the last tool definition and the newest user turn, so
each step re-reads the conversation so far from the cache instead of paying for it again.
"""

from __future__ import annotations

import asyncio
import copy
import os
import random
from collections.abc import Callable
from typing import Any

import anthropic

from perfgym.agent.pricing import estimate_cost
from perfgym.agent.types import ContextWindowExceeded, ProviderError, Reply, Usage

DEFAULT_MODEL = "claude-haiku-4-5"
RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every 5xx, 529 (overloaded) included
_EPHEMERAL = {"type": "ephemeral"}


class MissingApiKey(ProviderError):
    """No API key was given and ANTHROPIC_API_KEY is not set."""


__all__ = ["AnthropicProvider", "ContextWindowExceeded", "MissingApiKey", "block_to_dict"]

RetryCallback = Callable[[int, float, str], None]


class AnthropicProvider:
    """Answers a conversation with Claude's next turn (`Reply` with plain-dict content blocks).

    `max_retries` is how many times a retryable failure is retried (so up to `max_retries + 1`
    requests); the n-th wait is `backoff_s * 2**n` with jitter, at least what the server asks for
    in `retry-after`, at most `max_backoff_s`. `on_retry(attempt, delay_s, reason)` is called
    before each wait, for a live display.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        max_tokens: int = 16000,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        max_retries: int = 6,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        timeout_s: float = 600.0,
        temperature: float | None = None,
        on_retry: RetryCallback | None = None,
    ) -> None:
        key = api_key or os.environ.get("ANTHROPIC_API_KEY", "").strip()
        if not key:
            raise MissingApiKey(
                "No Anthropic API key: set the ANTHROPIC_API_KEY environment variable "
                "(or pass api_key) to run the Claude agent."
            )
        if max_retries < 0 or backoff_s < 0 or max_backoff_s < 0:
            raise ValueError("max_retries, backoff_s and max_backoff_s must not be negative")
        self.model = model
        self.name = f"anthropic:{model}"
        self.max_tokens = max_tokens
        self.base_url = base_url
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.temperature = temperature
        self.on_retry = on_retry
        self.retries = 0  # retries taken over the provider's life, for run summaries
        self._api_key = key
        self._client: anthropic.AsyncAnthropic | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def _client_for_this_loop(self) -> anthropic.AsyncAnthropic:
        # An HTTP connection pool belongs to the event loop that opened it; a provider reused
        # under a new loop (one asyncio.run per episode) gets a fresh client. The old pool's
        # sockets cannot be closed from here and are left to the garbage collector: call
        # aclose() before the loop ends to close them cleanly.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            # A plain client, not the SDK's default one, which on garbage collection schedules
            # its own close on whatever loop is running, and fails when that is a new loop.
            http_client = anthropic.DefaultAsyncHttpxClient(timeout=self.timeout_s)
            self._client = anthropic.AsyncAnthropic(
                api_key=self._api_key,
                base_url=self.base_url,
                max_retries=0,  # retries are ours, see the module docstring
                timeout=self.timeout_s,
                http_client=http_client,
            )
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close the pooled HTTP connections, on the loop that used them; a later `complete`
        opens new ones. Also `async with AnthropicProvider(...) as provider:`."""
        if self._client is not None:
            client, self._client, self._client_loop = self._client, None, None
            await client.close()

    async def __aenter__(self) -> AnthropicProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def request_params(
        self, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The keyword arguments of `messages.create`, with cache breakpoints; the caller's
        messages and tools are not modified."""
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": _with_cache_breakpoint(messages),
        }
        if system:
            params["system"] = [{"type": "text", "text": system, "cache_control": _EPHEMERAL}]
        if tools:
            cached_tools = [dict(tool) for tool in tools]
            cached_tools[-1]["cache_control"] = _EPHEMERAL
            params["tools"] = cached_tools
        if self.temperature is not None:
            params["temperature"] = self.temperature
        return params

    async def complete(
        self, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> Reply:
        """The next assistant turn; raises ProviderError once retries are exhausted or at once
        for errors a retry cannot fix (bad key, unknown model, invalid request)."""
        params = self.request_params(system, messages, tools)
        client = self._client_for_this_loop()
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                message = await client.messages.create(**params, timeout=self.timeout_s)
            except anthropic.APIStatusError as exc:
                if not _retryable_status(exc.status_code):
                    raise _fatal_status_error(exc, self.model) from exc
                reason, retry_after = _describe_status(exc), _retry_after_s(exc)
            except anthropic.APITimeoutError:
                reason, retry_after = f"no answer within {self.timeout_s:g} s", None
            except anthropic.APIConnectionError as exc:
                reason, retry_after = _describe_connection_error(exc), None
            except anthropic.APIError as exc:
                raise ProviderError(f"The Anthropic API call failed: {exc.message}") from exc
            else:
                return self._reply(message)
            if attempt + 1 == attempts:
                break
            delay = self.backoff_delay(attempt, retry_after)
            self.retries += 1
            if self.on_retry is not None:
                self.on_retry(attempt + 1, delay, reason)
            await asyncio.sleep(delay)
        raise ProviderError(
            f"The Anthropic API kept failing after {attempts} attempt"
            f"{'s' if attempts != 1 else ''} (last error: {reason})."
        )

    def backoff_delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry `attempt + 1`: exponential with jitter (50-100% of
        `backoff_s * 2**attempt`), at least `retry_after_s`, at most `max_backoff_s`."""
        exponential = self.backoff_s * (2.0 ** min(attempt, 30)) * random.uniform(0.5, 1.0)
        return min(max(exponential, retry_after_s or 0.0), self.max_backoff_s)

    def _reply(self, message: Any) -> Reply:
        raw = message.usage
        usage = Usage(
            input_tokens=raw.input_tokens or 0,
            output_tokens=raw.output_tokens or 0,
            cache_creation_input_tokens=raw.cache_creation_input_tokens or 0,
            cache_read_input_tokens=raw.cache_read_input_tokens or 0,
        )
        model = message.model or self.model
        cost = estimate_cost(usage, model)
        if cost is None:  # a dated or new id may be unknown while the requested alias is known
            cost = estimate_cost(usage, self.model)
        return Reply(
            content=[block_to_dict(block) for block in message.content],
            stop_reason=message.stop_reason or "end_turn",
            usage=usage,
            cost_usd=cost or 0.0,
            model=model,
        )


def block_to_dict(block: Any) -> dict[str, Any]:
    """A response content block as the plain dict the API accepts back (None fields dropped;
    a tool_use input kept exactly as received, even when it is not a dict)."""
    if isinstance(block, dict):
        return copy.deepcopy(block)
    data = block.model_dump(mode="json", exclude_none=True, exclude={"input"})
    if getattr(block, "type", None) == "tool_use":
        data["input"] = copy.deepcopy(block.input)
    return data


def _with_cache_breakpoint(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of `messages` whose last block of the newest user turn carries cache_control, so
    the next request finds everything up to here in the prompt cache."""
    result = list(messages)
    for index in range(len(result) - 1, -1, -1):
        message = result[index]
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            if not content:
                break
            blocks = [{"type": "text", "text": content}]
        elif isinstance(content, list) and content and isinstance(content[-1], dict):
            blocks = list(content)
        else:
            break
        blocks[-1] = {**blocks[-1], "cache_control": _EPHEMERAL}
        result[index] = {**message, "content": blocks}
        break
    return result


def _retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def _describe_status(exc: anthropic.APIStatusError) -> str:
    kind = exc.type or "error"
    detail = exc.api_message or ""
    return f"{exc.status_code} {kind}" + (f": {detail}" if detail else "")


def _describe_connection_error(exc: anthropic.APIConnectionError) -> str:
    cause = exc.__cause__
    return f"connection error ({cause})" if cause and str(cause) else "connection error"


def _retry_after_s(exc: anthropic.APIStatusError) -> float | None:
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue  # an HTTP date: fall back to our own backoff
    return None


def _fatal_status_error(exc: anthropic.APIStatusError, model: str) -> ProviderError:
    """One sentence for an error that retrying cannot fix."""
    detail = exc.api_message or ""
    if exc.status_code == 401:
        return ProviderError(
            "The Anthropic API rejected the API key (401 authentication_error): "
            "check ANTHROPIC_API_KEY."
        )
    if exc.status_code == 403:
        return ProviderError(
            f"The Anthropic API refused access (403 permission_error): {detail or 'forbidden'}."
        )
    if exc.status_code == 404:
        return ProviderError(
            f"The Anthropic API does not know the model '{model}' (404 not_found_error)."
        )
    if exc.status_code == 400 and "prompt is too long" in detail.lower():
        return ContextWindowExceeded(
            f"The conversation no longer fits the model's context window ({detail})."
        )
    return ProviderError(f"The Anthropic API rejected the request ({_describe_status(exc)}).")
