"""read_file, write_file and list_files: plain file operations on the workspace.

They run in the harness process, so they only move bytes (never import or execute what they
find), and every path goes through Workspace's containment check.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from perfgym.agent.tools.base import Tool, ToolInputError
from perfgym.agent.tools.context import EpisodeContext
from perfgym.agent.types import ToolResult

MAX_WRITE_BYTES = 1_000_000
MAX_READ_CHARS = 100_000
MAX_READ_LINES = 2000
MAX_LINE_CHARS = 5000
MAX_SCAN_BYTES = 16 * 2**20
"""read_file looks at most this far into a file (to count and number its lines)."""
MAX_LIST_ENTRIES = 500


def file_tools(ctx: EpisodeContext) -> list[Tool]:
    """The three file tools of an episode."""

    async def read_file(args: dict[str, Any]) -> ToolResult:
        return ToolResult(_read(ctx, args["path"], args["offset"], args["limit"]))

    async def write_file(args: dict[str, Any]) -> ToolResult:
        return ToolResult(_write(ctx, args["path"], args["content"]))

    async def list_files(args: dict[str, Any]) -> ToolResult:
        return ToolResult(_list(ctx, args["path"]))

    return [
        Tool(
            name="read_file",
            description=(
                "Read a text file from your workspace. Lines come numbered (line number, a "
                "tab, then the line as it is in the file; the numbers are not part of the "
                f"file). At most {MAX_READ_LINES} lines or {MAX_READ_CHARS} characters come "
                "back per call; when a file is longer the result says so and which offset "
                "to use to read on."
            ),
            properties={
                "path": {
                    "type": "string",
                    "description": "File path relative to the workspace, e.g. 'baseline.py'.",
                },
                "offset": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Line number to start reading at (1 = first line).",
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "description": f"How many lines to read (at most {MAX_READ_LINES}).",
                },
            },
            required=("path",),
            defaults={"offset": 1, "limit": MAX_READ_LINES},
            handler=read_file,
        ),
        Tool(
            name="write_file",
            description=(
                "Create or overwrite a text file in your workspace with exactly `content` "
                "(the whole file, not a diff). Parent directories are created. At most "
                f"{MAX_WRITE_BYTES} bytes."
            ),
            properties={
                "path": {
                    "type": "string",
                    "description": "File path relative to the workspace, e.g. 'optimized.py'.",
                },
                "content": {"type": "string", "description": "The full text of the file."},
            },
            required=("path", "content"),
            handler=write_file,
        ),
        Tool(
            name="list_files",
            description=(
                "List the files and directories under a directory of your workspace "
                "(recursively), with their sizes in bytes. Directories end with '/'."
            ),
            properties={
                "path": {
                    "type": "string",
                    "description": "Directory relative to the workspace; '.' (the default) "
                    "is the workspace itself.",
                },
            },
            defaults={"path": "."},
            handler=list_files,
        ),
    ]


def _shown(name: str) -> str:
    """A file name as the model sees it: bytes that are not UTF-8 on disk (sandboxed code can
    name a file anything) show as \\xNN, so the text stays valid Unicode."""
    try:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name decodes to
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _decode(data: bytes, truncated: bool, shown: str) -> str:
    if b"\x00" in data[:8192]:
        raise ToolInputError(f"{shown!r} is a binary file; read_file only reads text files.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if truncated and exc.start >= len(data) - 3:  # a character cut by the scan limit
            return data[: exc.start].decode("utf-8")
        raise ToolInputError(
            f"{shown!r} is not UTF-8 text (a binary file?); read_file only reads text files."
        ) from None


def _read(ctx: EpisodeContext, path: str, offset: int, limit: int) -> str:
    data, size = ctx.workspace.read_bytes(path, MAX_SCAN_BYTES)
    name = _shown(ctx.workspace.relative(ctx.workspace.resolve(path)))
    if size == 0:
        return f"{name} is empty (0 bytes)."
    truncated = size > len(data)
    lines = _decode(data, truncated, path).split("\n")
    if lines[-1] == "" and not truncated:
        lines.pop()
    total = f"{len(lines)}" if not truncated else f"at least {len(lines)}"
    if offset > len(lines):
        raise ToolInputError(f"offset {offset} is past the end of {name}, which has {total} lines.")
    limit = min(limit, MAX_READ_LINES)
    out: list[str] = []
    used = 0
    last = offset - 1
    for number in range(offset, min(len(lines), offset - 1 + limit) + 1):
        line = lines[number - 1]
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + f" [... line cut: {len(line)} characters in all]"
        row = f"{number:6}\t{line}"
        if out and used + len(row) + 1 > MAX_READ_CHARS:
            break
        out.append(row)
        used += len(row) + 1
        last = number
    header = f"{name}: lines {offset}-{last} of {total}"
    body = "\n".join(out)
    if last < len(lines) or truncated:
        more = (
            f"call read_file with offset={last + 1} to read more"
            if last < len(lines)
            else f"read_file only scans the first {MAX_SCAN_BYTES} bytes of a file"
        )
        body += f"\n[cut: showing lines {offset}-{last} of {total} ({size} bytes); {more}]"
    return f"{header}\n{body}"


def _write(ctx: EpisodeContext, path: str, content: str) -> str:
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolInputError(
            "The content is not valid Unicode (it holds a lone surrogate escape such as "
            "\\ud800); write the text itself."
        ) from None
    if len(data) > MAX_WRITE_BYTES:
        raise ToolInputError(
            f"The content is {len(data)} bytes; write_file writes at most {MAX_WRITE_BYTES}."
        )
    existed = ctx.workspace.resolve(path).exists()
    real = ctx.workspace.write_bytes(path, data)
    lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
    verb = "Overwrote" if existed else "Created"
    return f"{verb} {_shown(ctx.workspace.relative(real))}: {len(data)} bytes, {lines} lines."


def _list(ctx: EpisodeContext, path: str) -> str:
    real = ctx.workspace.resolve(path)
    name = _shown(ctx.workspace.relative(real))
    if not real.exists():
        raise ToolInputError(f"{path!r} does not exist in the workspace.")
    if not real.is_dir():
        return f"{name} ({real.lstat().st_size} bytes) is a file, not a directory."
    rows: list[str] = []
    more = 0
    for current, dirs, files in os.walk(real):
        dirs.sort()
        if len(rows) >= MAX_LIST_ENTRIES:
            more += len(dirs) + len(files)
            if more > 100 * MAX_LIST_ENTRIES:
                break
            continue
        for entry in [*(d + "/" for d in dirs), *sorted(files)]:
            if len(rows) >= MAX_LIST_ENTRIES:
                more += 1
                continue
            full = os.path.join(current, entry.rstrip("/"))
            rel = _shown(os.path.relpath(full, ctx.workspace.root))
            rows.append(_describe_entry(full, rel, entry.endswith("/")))
    if not rows:
        return f"{name}/ is empty."
    rows.sort()
    what = "workspace" if name == "." else "directory; paths are relative to the workspace"
    text = f"{name}/ ({what}):\n" + "\n".join(rows)
    if more:
        text += f"\n[cut: {more} more entries not shown; list a subdirectory to see them]"
    return text


def _describe_entry(full: str, rel: str, is_dir: bool) -> str:
    try:
        st = os.lstat(full)
    except OSError:
        return rel
    if os.path.islink(full):
        try:
            target = _shown(os.readlink(full))
        except OSError:
            target = "?"
        return f"{rel} -> {target} (symlink)"
    if is_dir:
        return f"{rel}/"
    if not stat.S_ISREG(st.st_mode):
        return f"{rel} (not a regular file)"
    return f"{rel} ({st.st_size} bytes)"
