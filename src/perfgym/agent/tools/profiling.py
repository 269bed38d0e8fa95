"""profile: run a workspace script under cProfile, pyinstrument or py-spy, in the sandbox.

The profiler and the formatting of its output run inside the sandbox (drivers/profile.py);
the profile files land in a private directory mounted for that run only, never in the
workspace, and the harness copies the known files (regular files, size-capped) into the run's
artifacts. The harness never unmarshals a profile: it only reads the text summary.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from perfgym.agent.tools import drivers
from perfgym.agent.tools.base import Tool, ToolInputError
from perfgym.agent.tools.context import EpisodeContext
from perfgym.agent.tools.output import cut_middle, describe_exit, stream_text
from perfgym.agent.tools.python_run import python_script, script_args
from perfgym.agent.tools.runner import DEFAULT_TIMEOUT_S, python, run_in_sandbox
from perfgym.agent.tools.workspace import Workspace
from perfgym.agent.types import ToolResult
from perfgym.sandbox import Mount

PROFILERS = ("cprofile", "pyinstrument", "py-spy")
OUTPUTS = {
    "cprofile": ("profile.prof", "profile.txt"),
    "pyinstrument": ("profile.html", "profile.speedscope.json", "profile.txt"),
    "py-spy": ("profile.speedscope.json",),
}
"""The files each profiler leaves, copied to the artifacts (anything else is ignored)."""
OUTPUT_DIR = "/profiler-output"
"""Where the private output directory appears inside the sandbox."""
MAX_ARTIFACT_BYTES = 64 * 2**20
SUMMARY_CHARS = 16_000
SCRIPT_OUTPUT_CHARS = 3_000
DEFAULT_TOP = 25
MAX_TOP = 100
GRACE_S = 45.0
"""Time the sandbox allows past the script's own limit, to write the profile."""


def py_spy_binary() -> str | None:
    """py-spy next to the interpreter (the venv's bin, mounted in the sandbox), else on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    if local.is_file():
        return str(local)
    return shutil.which("py-spy")


def _artifact_stem(artifacts: Path, number: int, profiler: str) -> str:
    """profile_<n>_<profiler>, with n past any earlier run's files in the same directory."""
    while any(artifacts.glob(f"profile_{number}_*")):
        number += 1
    return f"profile_{number}_{profiler.replace('-', '')}"


def _save_artifacts(out: Path, ctx: EpisodeContext, profiler: str) -> list[str]:
    """Copy the profiler's known output files from the private directory to the artifacts."""
    ctx.artifacts.mkdir(parents=True, exist_ok=True)
    stem = _artifact_stem(ctx.artifacts, ctx.next_number(), profiler)
    source = Workspace(out)
    saved = []
    for name in OUTPUTS[profiler]:
        try:
            data, size = source.read_bytes(name, MAX_ARTIFACT_BYTES)
        except ToolInputError:
            continue
        if size > MAX_ARTIFACT_BYTES:
            saved.append(f"{name} not saved ({size} bytes, over the {MAX_ARTIFACT_BYTES} cap)")
            continue
        target = ctx.artifacts / f"{stem}{name[len('profile') :]}"
        target.write_bytes(data)
        saved.append(target.name)
    return saved


def profile_tool(ctx: EpisodeContext) -> Tool:
    """The profile tool of an episode."""
    settings = ctx.sandbox

    async def profile(args: dict[str, Any]) -> ToolResult:
        profiler = args["profiler"]
        script = python_script(ctx, args["path"])
        extra = script_args(args["args"])
        top = max(1, min(int(args["top"]), MAX_TOP))
        timeout = settings.timeout(args.get("timeout_s"))
        spy = ""
        if profiler == "py-spy":
            spy = py_spy_binary() or ""
            if not spy:
                raise ToolInputError(
                    "py-spy is not installed in this environment; use profiler 'cprofile' or "
                    "'pyinstrument'."
                )
        out = Path(tempfile.mkdtemp(prefix="perfgym-profile-"))
        try:
            mount = Mount(out, OUTPUT_DIR, writable=True)

            def argv(proc) -> list[str]:
                driver = [python(), "-c", drivers.source("profile")]
                settings_ = [profiler, proc.inside(out), str(top), f"{timeout:g}", spy]
                return [*driver, *settings_, script, *extra]

            result = await run_in_sandbox(
                argv, ctx.workspace.root, settings.limits(timeout + GRACE_S), [mount]
            )
            try:
                raw, _size = Workspace(out).read_bytes("summary.txt", 4 * SUMMARY_CHARS)
                summary = raw.decode("utf-8", "replace")
            except ToolInputError:
                summary = None
            saved = _save_artifacts(out, ctx, profiler) if summary is not None else []
        finally:
            shutil.rmtree(out, ignore_errors=True)
        return ToolResult(_report(script, profiler, result, timeout, summary, saved, settings))

    return Tool(
        name="profile",
        description=(
            "Run a .py file of the workspace under a profiler in the sandbox (same limits as "
            "run_python) and return its hot spots. 'cprofile' (default) lists the functions "
            "with the most cumulative and own time, with call counts; 'pyinstrument' "
            "(sampling) shows a call tree and where the time goes, with little overhead; "
            "'py-spy' (sampling) shows the functions and source lines where samples land. "
            "cProfile slows pure-Python code down a lot, so profile a smaller input when you "
            "can (e.g. baseline.py --n-samples 500). If the script runs past timeout_s the "
            "profile of the run so far is returned. The full profile files are saved in the "
            "run's artifacts, outside your workspace."
        ),
        properties={
            "path": {
                "type": "string",
                "description": "The .py file to profile, relative to the workspace.",
            },
            "args": {
                "type": "array",
                "items": {"type": "string"},
                "maxItems": 100,
                "description": "Command-line arguments for the script.",
            },
            "profiler": {
                "type": "string",
                "enum": list(PROFILERS),
                "description": "Which profiler to use (default 'cprofile').",
            },
            "timeout_s": {
                "type": "number",
                "minimum": 1,
                "description": f"Seconds the script may run (default {DEFAULT_TIMEOUT_S:g}, "
                f"at most {settings.max_timeout_s:g}).",
            },
            "top": {
                "type": "integer",
                "minimum": 1,
                "description": f"How many hot spots to list (default {DEFAULT_TOP}, at most "
                f"{MAX_TOP}).",
            },
        },
        required=("path",),
        defaults={"args": [], "profiler": "cprofile", "top": DEFAULT_TOP},
        handler=profile,
    )


def _report(script, profiler, result, timeout, summary, saved, settings) -> str:
    parts = [f"Profiled {script} with {profiler}: {describe_exit(result, timeout + GRACE_S)}"]
    for label, text, total in (
        ("script stdout", result.stdout, result.stdout_bytes),
        ("script stderr", result.stderr, result.stderr_bytes),
    ):
        parts.append(stream_text(label, text, total, settings.capture_bytes, SCRIPT_OUTPUT_CHARS))
    if summary is None:
        parts.append(
            "No profile was produced: the process was killed before it could write one (out "
            "of time or memory, or the script ended the interpreter abruptly, e.g. with "
            "os._exit). Try a smaller input or a larger timeout_s."
        )
    else:
        parts.append(cut_middle(summary.rstrip(), SUMMARY_CHARS))
        if saved:
            parts.append(
                "Full profile saved in the run's artifacts (outside your workspace; you cannot "
                f"open them): {', '.join(saved)}."
            )
    return "\n".join(parts)
