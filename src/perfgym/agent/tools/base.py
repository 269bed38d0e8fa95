"""What every tool is made of: a schema the model reads and a handler that checks its input.

Arguments come from a model and may be anything; they are checked against the tool's own JSON
schema here, so handlers only see well-typed values and a mistake comes back to the model as
one clear sentence instead of an exception.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from perfgym.agent.types import ToolResult


class ToolInputError(Exception):
    """A tool call the agent got wrong; its message goes back to the agent as an error result."""


Handler = Callable[[dict[str, Any]], Awaitable[ToolResult]]

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
}


@dataclass(frozen=True)
class Tool:
    """One tool: its Anthropic definition and the coroutine that runs it."""

    name: str
    description: str
    properties: dict[str, dict[str, Any]]
    handler: Handler
    required: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)

    def schema(self) -> dict[str, Any]:
        """The tool definition in the Anthropic format."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": {
                "type": "object",
                "properties": self.properties,
                "required": list(self.required),
                "additionalProperties": False,
            },
        }

    def parse(self, arguments: Any) -> dict[str, Any]:
        """The arguments checked against the schema, with defaults filled in."""
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ToolInputError(
                f"{self.name} takes an object of named arguments, not {_describe(arguments)}."
            )
        unknown = sorted(set(arguments) - set(self.properties))
        if unknown:
            raise ToolInputError(
                f"{self.name} has no argument {', '.join(map(repr, unknown))}; its arguments are "
                f"{', '.join(self.properties) or 'none'}."
            )
        missing = [name for name in self.required if arguments.get(name) is None]
        if missing:
            raise ToolInputError(f"{self.name} needs the argument {', '.join(map(repr, missing))}.")
        parsed = dict(self.defaults)
        for name, value in arguments.items():
            if value is None and name not in self.required:
                continue
            parsed[name] = _check(f"{self.name}: argument {name!r}", value, self.properties[name])
        return parsed


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {str: "a string", int: "an integer", float: "a number", list: "a list"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _check(where: str, value: Any, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }.get(kind, True)
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        value, ok = int(value), True
    if not ok:
        raise ToolInputError(f"{where} must be {_TYPE_NAMES[kind]}, not {_describe(value)}.")
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(repr(c) for c in schema["enum"])
        raise ToolInputError(f"{where} must be one of {choices}, not {value!r}.")
    if kind in ("integer", "number") and "minimum" in schema and value < schema["minimum"]:
        raise ToolInputError(f"{where} must be at least {schema['minimum']}, not {value}.")
    if kind == "array" and "items" in schema:
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise ToolInputError(f"{where} may hold at most {schema['maxItems']} items.")
        value = [_check(f"{where} item {i}", v, schema["items"]) for i, v in enumerate(value)]
    return value
