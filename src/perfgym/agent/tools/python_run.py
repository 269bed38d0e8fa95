"""run_python and python_expression: the agent's code, run in the sandbox.

Both start a fresh sandboxed interpreter in the workspace (cwd), with grading's thread and CPU
limits, a memory cap and a timeout; stdout and stderr come back cut to their head and tail.
"""

from __future__ import annotations

from typing import Any

from perfgym.agent.tools import drivers
from perfgym.agent.tools.base import Tool, ToolInputError
from perfgym.agent.tools.context import EpisodeContext
from perfgym.agent.tools.output import cut_middle, format_run
from perfgym.agent.tools.runner import DEFAULT_TIMEOUT_S, python, run_in_sandbox
from perfgym.agent.types import ToolResult

MAX_CODE_CHARS = 100_000
"""Code goes through argv, which Linux caps at 128 KiB per argument."""
MAX_ARGS = 100
MAX_ARG_CHARS = 10_000
EXPRESSION_TIMEOUT_S = 60.0


def script_args(args: list[str]) -> list[str]:
    """The script's command-line arguments, checked against argv's limits."""
    if len(args) > MAX_ARGS:
        raise ToolInputError(f"args may hold at most {MAX_ARGS} items.")
    for a in args:
        if len(a) > MAX_ARG_CHARS or "\x00" in a:
            raise ToolInputError(
                f"Each item of args must be at most {MAX_ARG_CHARS} characters, without NUL."
            )
    return args


def python_script(ctx: EpisodeContext, path: str) -> str:
    """A .py file of the workspace, as the sandbox (cwd the workspace) names it."""
    real, _ = ctx.workspace.file_info(path)
    if real.suffix != ".py":
        raise ToolInputError(f"{path!r} is not a .py file.")
    return ctx.workspace.relative(real)


def _code(code: str) -> str:
    if "\x00" in code:
        raise ToolInputError("The code contains a NUL character.")
    if len(code) > MAX_CODE_CHARS:
        raise ToolInputError(
            f"The code is {len(code)} characters; at most {MAX_CODE_CHARS} can be passed "
            "inline. Write it to a file with write_file and run it with `path`."
        )
    return code


def python_tools(ctx: EpisodeContext) -> list[Tool]:
    """run_python and python_expression for an episode."""
    settings = ctx.sandbox
    max_timeout = settings.max_timeout_s

    async def run_python(args: dict[str, Any]) -> ToolResult:
        path, code = args.get("path"), args.get("code")
        if (path is None) == (code is None):
            raise ToolInputError("Give exactly one of `path` (a .py file) or `code` (source).")
        extra = script_args(args["args"])
        target = [python_script(ctx, path)] if path is not None else ["-c", _code(code)]
        timeout = settings.timeout(args.get("timeout_s"))
        result = await run_in_sandbox(
            [python(), *target, *extra], ctx.workspace.root, settings.limits(timeout)
        )
        return ToolResult(format_run(result, timeout, settings.capture_bytes, settings.shown_chars))

    async def python_expression(args: dict[str, Any]) -> ToolResult:
        expression = _code(args["expression"])
        timeout = settings.timeout(args.get("timeout_s", EXPRESSION_TIMEOUT_S))
        argv = [python(), "-c", drivers.source("expression"), expression]
        result = await run_in_sandbox(argv, ctx.workspace.root, settings.limits(timeout))
        if result.ok and not result.stderr and result.stdout_bytes <= settings.capture_bytes:
            out = cut_middle(result.stdout.rstrip("\n"), settings.shown_chars)
            return ToolResult(out or "(no output, and the last expression's value was None)")
        return ToolResult(format_run(result, timeout, settings.capture_bytes, settings.shown_chars))

    timeout_schema = {
        "type": "number",
        "minimum": 1,
        "description": f"Seconds before the process is killed (default {DEFAULT_TIMEOUT_S:g}, "
        f"at most {max_timeout:g}).",
    }
    return [
        Tool(
            name="run_python",
            description=(
                "Run Python in a sandbox with the workspace as the current directory: either a "
                "file (`path`, like `python path args...`) or inline source (`code`, like "
                "`python -c code args...`). Each call starts a fresh interpreter with "
                f"{settings.threads} CPU thread(s) as in grading, no network, and numpy, "
                "scikit-learn and torch installed; files it writes stay in the workspace. "
                "Returns the exit code, the wall time and stdout/stderr (long output is cut to "
                "its head and tail). Use it to run the baseline or your optimized version, e.g. "
                "to time them or to compare their outputs."
            ),
            properties={
                "path": {
                    "type": "string",
                    "description": "A .py file relative to the workspace, e.g. 'optimized.py'.",
                },
                "code": {
                    "type": "string",
                    "description": "Python source to run instead of a file.",
                },
                "args": {
                    "type": "array",
                    "items": {"type": "string"},
                    "maxItems": MAX_ARGS,
                    "description": "Command-line arguments (sys.argv[1:]).",
                },
                "timeout_s": timeout_schema,
            },
            defaults={"args": []},
            handler=run_python,
        ),
        Tool(
            name="python_expression",
            description=(
                "Evaluate a Python snippet in a fresh sandboxed interpreter (workspace as the "
                "current directory, so `import baseline` works) and return what it prints; "
                "when the last statement is an expression, its value's repr is printed too, "
                "like in a REPL. Quick checks only: nothing is kept between calls."
            ),
            properties={
                "expression": {
                    "type": "string",
                    "description": "Python statements and/or an expression, e.g. "
                    '"import numpy as np; np.arange(6).reshape(2, 3).sum(axis=0)".',
                },
                "timeout_s": {
                    **timeout_schema,
                    "description": f"Seconds before the process is killed (default "
                    f"{EXPRESSION_TIMEOUT_S:g}, at most {max_timeout:g}).",
                },
            },
            required=("expression",),
            handler=python_expression,
        ),
    ]
