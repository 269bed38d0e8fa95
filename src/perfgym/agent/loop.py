"""The episode loop: a model (any `Provider`) works on the task with the tools until it submits
or a limit ends the episode.

Provider-agnostic on purpose: the Claude policy, scripted policies and a model inside someone's
RL trainer all drive the same loop. Every message, tool call, tool result and token count goes
to the transcript as it happens. The loop keeps the conversation valid under the Messages API's
rules whatever the model does (cut-off replies, unknown tools, bad inputs, tools that crash), so
a confused model gets an error it can read instead of ending the episode as an infrastructure
failure; only the provider failing for good is status "error".
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from perfgym.agent.pricing import price_for
from perfgym.agent.transcript import Transcript
from perfgym.agent.types import (
    ContextWindowExceeded,
    Provider,
    ProviderError,
    Reply,
    Toolbox,
    ToolResult,
    Usage,
)

log = logging.getLogger(__name__)

Status = Literal["submitted", "no_submission", "limit", "refused", "error"]
EventCallback = Callable[[str, dict[str, Any]], None]

SUBMIT_TOOL = "submit_answer"
NUDGE = (
    "You ended your turn without submitting. Keep working on the task with the tools, and when "
    f"your faster version is written and tested, call {SUBMIT_TOOL} with its path."
)
CUT_OFF = (
    "Your previous reply was cut off at the output token limit{tokens}. Continue from where you "
    "stopped, and keep each reply shorter: split a large file into several smaller tool calls "
    "instead of writing it in one."
)
CUT_TOOL_CALL = (
    "Not run: your reply was cut off at the output token limit while you were writing this tool "
    "call, so its input is incomplete. Make the call again with a smaller input."
)
AFTER_SUBMISSION = f"Not run: the episode ended when {SUBMIT_TOOL} was called."
EMPTY_OUTPUT = "(no output)"
MAX_INPUT_DEPTH = 50
"""Deepest nesting of lists and objects a tool input may have; no tool needs more than a few,
and a deeper one breaks recursive code (JSON encoders) far from here."""
TOO_DEEP = (
    "Not run: the input of {name} nests lists or objects more than {depth} levels deep. "
    "Make the call again with the tool's parameters only."
)


@dataclass
class EpisodeLimits:
    """Budgets of one episode; None means unlimited. Tokens count every kind (input, output,
    cache writes and reads); the cost limit only works for models with a known price."""

    max_steps: int = 20
    max_total_tokens: int | None = None
    max_cost_usd: float | None = None
    max_wall_s: float | None = None


@dataclass
class EpisodeOutcome:
    """How an episode ended. `status` keeps the agent's results (submitted, no_submission,
    limit, refused) apart from infrastructure failures (error); `detail` says why it stopped."""

    status: Status
    submission: str | None = None
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    cost_known: bool = True  # False when some reply came from a model without a known price
    tool_counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    detail: str = ""
    wall_s: float = 0.0
    messages: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the conversation, which is in the transcript)."""
        # asdict copies recursively: leave out the conversation, which holds whatever the model
        # sent (a tool input nested thousands deep would overflow the stack)
        data = asdict(replace(self, messages=[]))
        del data["messages"]
        data["usage"]["total"] = self.usage.total
        return data


async def run_episode(
    provider: Provider,
    toolbox: Toolbox,
    system: str,
    prompt: str,
    limits: EpisodeLimits | None = None,
    transcript: Transcript | None = None,
    on_event: EventCallback | None = None,
) -> EpisodeOutcome:
    """Play one episode: each step is one `provider.complete` call, then the tools it asked for.

    `on_event(kind, data)` feeds a live display: kinds are step, reply, tool, tool_result and
    end. Cancellation (Ctrl-C) propagates after an "end" event with status "cancelled" is
    written.
    """
    episode = _Episode(provider, toolbox, system, prompt, limits or EpisodeLimits(), transcript)
    episode.on_event = on_event
    return await episode.run()


class _Episode:
    """The state of one running episode."""

    def __init__(
        self,
        provider: Provider,
        toolbox: Toolbox,
        system: str,
        prompt: str,
        limits: EpisodeLimits,
        transcript: Transcript | None,
    ) -> None:
        self.provider = provider
        self.toolbox = toolbox
        self.system = system
        self.prompt = prompt
        self.limits = limits
        self.transcript = transcript
        self.on_event: EventCallback | None = None
        self.messages: list[dict[str, Any]] = []
        self.usage = Usage()
        self.cost_usd = 0.0
        self.cost_known = True
        self.tool_counts: dict[str, int] = {}
        self.step = 0
        self.started = time.monotonic()
        self.tools: list[dict[str, Any]] = []
        self.tool_names: set[str] = set()

    # the episode

    async def run(self) -> EpisodeOutcome:
        self.started = time.monotonic()
        try:
            self.tools = list(self.toolbox.schemas())
            self.tool_names = {t.get("name") for t in self.tools if isinstance(t, dict)}
            self._record(
                "system",
                text=self.system,
                tools=self.tools,
                provider=getattr(self.provider, "name", type(self.provider).__name__),
                limits=asdict(self.limits),
            )
            self._append("user", [{"type": "text", "text": self.prompt}])
            outcome = await self._run_within_wall_clock()
        except asyncio.CancelledError:
            self._end_cancelled()
            raise
        self._record("end", **outcome.to_dict())
        self._emit("end", {"status": outcome.status, "detail": outcome.detail})
        return outcome

    async def _run_within_wall_clock(self) -> EpisodeOutcome:
        if self.limits.max_wall_s is None:
            return await self._steps()
        deadline = asyncio.timeout(self.limits.max_wall_s)
        try:
            async with deadline:
                return await self._steps()
        except TimeoutError:
            if not deadline.expired():
                raise
            return self._outcome(
                "limit", detail=f"wall-clock limit of {self.limits.max_wall_s:g} s reached"
            )

    async def _steps(self) -> EpisodeOutcome:
        ended_turn = False  # the last reply stopped without asking for a tool
        while True:
            if self.step >= self.limits.max_steps:
                if ended_turn:
                    return self._outcome(
                        "no_submission",
                        detail=f"the model stopped without submitting and the step limit "
                        f"({self.limits.max_steps}) was reached",
                    )
                return self._outcome(
                    "limit", detail=f"step limit of {self.limits.max_steps} reached"
                )
            self.step += 1
            self._emit("step", {"step": self.step})

            reply = await self._complete()
            if isinstance(reply, EpisodeOutcome):
                return reply
            content = [block for block in reply.content if isinstance(block, dict)]
            self._account(reply, content)

            stop = reply.stop_reason
            tool_uses = [block for block in content if block.get("type") == "tool_use"]
            self._append("assistant", content)
            ended_turn = False
            submission: str | None = None
            if stop == "refusal":
                said = " ".join(b.get("text", "") for b in content if b.get("type") == "text")
                return self._outcome("refused", detail=said.strip() or "the model refused")
            if stop == "model_context_window_exceeded":
                return self._outcome(
                    "limit", detail="the conversation filled the model's context window"
                )
            if stop == "pause_turn":
                pass  # the assistant turn goes back as it is, and the model continues it
            elif stop == "max_tokens":
                # Only the last block can be the one that was cut; tool calls before it are whole.
                cut = tool_uses[-1:] if content and content[-1].get("type") == "tool_use" else []
                whole = tool_uses[: len(tool_uses) - len(cut)]
                results, submission = await self._run_tools(whole, cut)
                tokens = (
                    f" ({reply.usage.output_tokens} tokens)" if reply.usage.output_tokens else ""
                )
                note = {"type": "text", "text": CUT_OFF.format(tokens=tokens)}
                self._append("user", [*results, note] if submission is None else results)
            elif tool_uses:
                results, submission = await self._run_tools(tool_uses, [])
                self._append("user", results)
            else:
                ended_turn = True

            if submission is not None:
                return self._outcome("submitted", submission=submission, detail="submitted")
            exceeded = self._budget_exceeded()
            if exceeded:
                return self._outcome("limit", detail=exceeded)
            if ended_turn and self.step < self.limits.max_steps:
                self._append("user", [{"type": "text", "text": NUDGE}])

    async def _complete(self) -> Reply | EpisodeOutcome:
        """The provider's reply, or the outcome its failure ends the episode with."""
        try:
            return await self.provider.complete(self.system, self.messages, self.tools)
        except ContextWindowExceeded as exc:
            self._record("error", source="provider", message=str(exc))
            return self._outcome("limit", detail=str(exc))
        except ProviderError as exc:
            self._record("error", source="provider", message=str(exc))
            return self._outcome("error", error=str(exc), detail="the model provider failed")
        except Exception as exc:
            message = f"the model provider failed unexpectedly: {type(exc).__name__}: {exc}"
            self._record(
                "error", source="provider", message=message, traceback=traceback.format_exc()
            )
            return self._outcome("error", error=message, detail="the model provider failed")

    def _account(self, reply: Reply, content: list[dict[str, Any]]) -> None:
        self.usage.add(reply.usage)
        self.cost_usd += reply.cost_usd
        if reply.usage.total and not reply.cost_usd and price_for(reply.model or "") is None:
            self.cost_known = False
        self._record("assistant", content=content, stop_reason=reply.stop_reason, model=reply.model)
        self._record(
            "usage",
            usage=asdict(reply.usage),
            cost_usd=reply.cost_usd,
            total_usage=asdict(self.usage),
            total_cost_usd=self.cost_usd,
        )
        self._emit(
            "reply",
            {
                "step": self.step,
                "stop_reason": reply.stop_reason,
                "total_tokens": self.usage.total,
                "cost_usd": self.cost_usd,
            },
        )

    # tools

    async def _run_tools(
        self, calls: list[dict[str, Any]], cut: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Run the calls in order; every call (and every cut one) gets its tool_result, so the
        next user turn answers each tool_use of the assistant turn."""
        results: list[dict[str, Any]] = []
        submission: str | None = None
        for call in calls:
            duration: float | None = None
            if submission is not None:
                result = ToolResult(AFTER_SUBMISSION, is_error=True)
            else:
                started = time.monotonic()
                result = await self._call_tool(call)
                duration = time.monotonic() - started
                submission = result.submission
            results.append(self._tool_result(call, result, duration))
        for call in cut:
            results.append(self._tool_result(call, ToolResult(CUT_TOOL_CALL, is_error=True)))
        return results, submission

    async def _call_tool(self, call: dict[str, Any]) -> ToolResult:
        name, arguments = call.get("name"), call.get("input")
        label = name if isinstance(name, str) else repr(name)
        self.tool_counts[label] = self.tool_counts.get(label, 0) + 1
        self._emit("tool", {"step": self.step, "name": label})
        if not isinstance(name, str) or name not in self.tool_names:
            known = ", ".join(sorted(n for n in self.tool_names if isinstance(n, str)))
            return ToolResult(f"Unknown tool {label}. The tools are: {known}.", is_error=True)
        if not isinstance(arguments, dict):
            return ToolResult(
                f"The input of {name} must be a JSON object with the tool's parameters, "
                f"not {type(arguments).__name__}.",
                is_error=True,
            )
        if _nested_deeper(arguments, MAX_INPUT_DEPTH):
            return ToolResult(TOO_DEEP.format(name=name, depth=MAX_INPUT_DEPTH), is_error=True)
        try:
            result = await self.toolbox.call(name, arguments)
        except Exception as exc:
            self._record(
                "error",
                source="tool",
                name=name,
                message=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
            )
            return ToolResult(
                f"The tool {name} failed with an internal error ({type(exc).__name__}: {exc}).",
                is_error=True,
            )
        if not isinstance(result, ToolResult):
            return ToolResult(f"The tool {name} returned no result (internal error).", True)
        return result

    def _tool_result(
        self, call: dict[str, Any], result: ToolResult, duration_s: float | None = None
    ) -> dict[str, Any]:
        content = _valid_text(result.content)
        self._record(
            "tool_result",
            tool_use_id=call.get("id"),
            name=call.get("name"),
            content=content,
            is_error=result.is_error,
            submission=result.submission,
            duration_s=duration_s,
        )
        self._emit(
            "tool_result",
            {"step": self.step, "name": call.get("name"), "is_error": result.is_error},
        )
        return {
            "type": "tool_result",
            "tool_use_id": call.get("id"),
            "content": content or EMPTY_OUTPUT,
            "is_error": result.is_error,
        }

    # bookkeeping

    def _append(self, role: str, blocks: list[dict[str, Any]]) -> None:
        """Add blocks to the conversation, merging into the last message when it has the same
        role, so roles alternate and no message is empty. (Assistant turns are recorded with
        their stop reason by `_account`.)"""
        if not blocks:
            return
        if role == "user":
            self._record(role, content=blocks)
        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == role:
            last["content"] = [*last["content"], *blocks]
        else:
            self.messages.append({"role": role, "content": list(blocks)})

    def _budget_exceeded(self) -> str | None:
        limits = self.limits
        if limits.max_total_tokens is not None and self.usage.total >= limits.max_total_tokens:
            return (
                f"token limit of {limits.max_total_tokens:,} reached "
                f"({self.usage.total:,} tokens used)"
            )
        if limits.max_cost_usd is not None and self.cost_usd >= limits.max_cost_usd:
            return f"cost limit of ${limits.max_cost_usd:.2f} reached (${self.cost_usd:.4f} spent)"
        return None

    def _outcome(
        self,
        status: Status,
        *,
        submission: str | None = None,
        error: str | None = None,
        detail: str = "",
    ) -> EpisodeOutcome:
        return EpisodeOutcome(
            status=status,
            submission=submission,
            steps=self.step,
            usage=Usage(**asdict(self.usage)),
            cost_usd=self.cost_usd,
            cost_known=self.cost_known,
            tool_counts=dict(self.tool_counts),
            error=error,
            detail=detail,
            wall_s=time.monotonic() - self.started,
            messages=self.messages,
        )

    def _end_cancelled(self) -> None:
        try:
            summary = self._outcome("error", detail="cancelled").to_dict()
            summary["status"] = "cancelled"
            self._record("end", **summary)
        except Exception:  # the transcript itself may be what broke; the cancel matters more
            log.exception("could not record the cancelled episode's end")

    def _record(self, type: str, **data: Any) -> None:
        if self.transcript is not None:
            self.transcript.write(type, step=self.step, **data)

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(kind, data)
        except Exception:  # a broken display must not end the episode
            log.exception("on_event callback failed for %s", kind)


_LONE_SURROGATE = re.compile("[\ud800-\udc7f\udd00-\udfff]")
"""Surrogates that are not a byte escaped by surrogateescape (those are U+DC80-U+DCFF)."""


def _valid_text(text: Any) -> str:
    """`text` as valid Unicode, which the transcript and the Messages API (UTF-8 JSON) need.

    Tool output can hold lone surrogates: a file name that is not UTF-8 decodes to them, and so
    may bytes a tool passes through. Escaped bytes go back to bytes (which may well be UTF-8)
    and those that are not show as \\xNN; any other lone surrogate shows as \\uNNNN."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _nested_deeper(value: Any, limit: int) -> bool:
    """Whether lists and dicts in `value` nest more than `limit` levels deep (found without
    recursion, so any depth is safe to ask about)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
