"""The contracts between the episode loop, the model providers and the tools.

Messages and content blocks are plain dicts in the Anthropic Messages format, whatever the
provider: the transcript, the replay agent and the loop all read the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Usage:
    """Tokens one model reply used (Anthropic's fields; zero for offline agents)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_creation_input_tokens += other.cache_creation_input_tokens
        self.cache_read_input_tokens += other.cache_read_input_tokens

    @property
    def total(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
        )


@dataclass
class Reply:
    """One assistant turn: content blocks as dicts (`text`, `tool_use`, ...), why it stopped,
    what it cost."""

    content: list[dict[str, Any]]
    stop_reason: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    model: str = ""


class ProviderError(Exception):
    """The model could not be reached or kept failing after retries: an infrastructure error,
    not the agent's failure."""


class ContextWindowExceeded(ProviderError):
    """The conversation outgrew the model's context window: the episode ran out of room, a
    limit of the episode rather than an infrastructure failure."""


class Provider(Protocol):
    """Something that answers a conversation with the next assistant turn."""

    name: str

    async def complete(
        self, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> Reply: ...


@dataclass
class ToolResult:
    """What a tool call gives back to the model. `submission` is set by `submit_answer`
    (a path inside the workspace) and ends the episode."""

    content: str
    is_error: bool = False
    submission: str | None = None


class Toolbox(Protocol):
    """The tools of one episode, all acting on its sandboxed workspace."""

    def schemas(self) -> list[dict[str, Any]]:
        """Tool definitions in the Anthropic tool format (name, description, input_schema)."""
        ...

    async def call(self, name: str, arguments: Any) -> ToolResult:
        """Run one tool; bad input gives an `is_error` result, never an exception."""
        ...
