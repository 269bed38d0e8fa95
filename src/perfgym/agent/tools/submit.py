"""submit_answer: names the optimized file and ends the episode.

The file must be a non-empty UTF-8 .py file inside the workspace; anything else is an error
result and the episode goes on. `read_submission` is the one safe way for the harness (the
check tool, the runner) to take the submitted bytes out of the workspace.
"""

from __future__ import annotations

from typing import Any

from perfgym.agent.tools.base import Tool, ToolInputError
from perfgym.agent.tools.context import EpisodeContext
from perfgym.agent.tools.workspace import Workspace
from perfgym.agent.types import ToolResult

MAX_SUBMISSION_BYTES = 1_000_000


def read_submission(workspace: Workspace, path: str) -> tuple[str, bytes]:
    """The submission's workspace-relative name and its bytes, after every validity check."""
    real, _ = workspace.file_info(path)
    shown = workspace.relative(real)
    if real.suffix != ".py":
        raise ToolInputError(f"{shown!r} is not a .py file; submit the Python file you wrote.")
    data, size = workspace.read_bytes(path, MAX_SUBMISSION_BYTES + 1)
    if size > MAX_SUBMISSION_BYTES:
        raise ToolInputError(f"{shown!r} is {size} bytes; at most {MAX_SUBMISSION_BYTES}.")
    if not data.strip():
        raise ToolInputError(f"{shown!r} is empty.")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolInputError(f"{shown!r} is not UTF-8 text.") from None
    return shown, data


def submit_tool(ctx: EpisodeContext) -> Tool:
    """The submit_answer tool of an episode."""

    async def submit_answer(args: dict[str, Any]) -> ToolResult:
        shown, data = read_submission(ctx.workspace, args["path"])
        return ToolResult(
            f"Submitted {shown} ({len(data)} bytes). The episode ends here; it will be graded "
            "on hidden seeds.",
            submission=shown,
        )

    return Tool(
        name="submit_answer",
        description=(
            "Submit your optimized file for grading. This ends the episode: call it once, "
            "when the file is complete and tested. The file must be a "
            "non-empty .py file in the workspace."
        ),
        properties={
            "path": {
                "type": "string",
                "description": "The optimized file, relative to the workspace, e.g. "
                "'optimized.py'.",
            }
        },
        required=("path",),
        handler=submit_answer,
    )
