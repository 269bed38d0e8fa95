"""Text the model reads: long output cut to its head and tail, run results in one shape."""

from __future__ import annotations

import re
import signal

from perfgym.sandbox import SandboxResult

_SANDBOX_CUT = re.compile(r"\n\[\.\.\. output cut: \d+ bytes in all, first \d+ kept\]$")


def cut_middle(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its head and tail with a note between
    (the tail is where tracebacks and final results are)."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 5
    tail = limit - head
    cut = len(text) - head - tail
    return (
        f"{text[:head]}\n[... {cut} characters cut from the middle; "
        f"{len(text)} in all ...]\n{text[-tail:]}"
    )


def describe_exit(result: SandboxResult, timeout_s: float) -> str:
    """One line: how the process ended and how long it took."""
    if result.timed_out:
        return (
            f"TIMED OUT: the process was still running after {timeout_s:g} s and was killed "
            "(raise timeout_s, up to the tool's maximum, or run less work, e.g. a smaller "
            "input)."
        )
    code = result.returncode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        ended = f"killed by {name} (exit code {code})"
    else:
        ended = f"exit code {code}"
    return f"{ended}, wall time {result.wall_s:.2f} s"


def stream_text(label: str, text: str, total_bytes: int, kept_bytes: int, limit: int) -> str:
    """One output stream under a header, cut to `limit` characters with a note saying so."""
    text = _SANDBOX_CUT.sub("", text)
    if not text and total_bytes == 0:
        return f"--- {label}: (empty) ---"
    note = ""
    if total_bytes > kept_bytes:
        note = f" (only the first {kept_bytes} bytes were captured)"
    body = cut_middle(text, limit)
    cut = " (cut to its head and tail)" if len(body) != len(text) else ""
    return f"--- {label} ({total_bytes} bytes){cut}{note} ---\n{body.rstrip()}"


def format_run(
    result: SandboxResult, timeout_s: float, capture_bytes: int, shown_chars: int
) -> str:
    """A run's exit status, wall time, stdout and stderr, each stream cut for the model."""
    parts = [describe_exit(result, timeout_s)]
    parts.append(
        stream_text("stdout", result.stdout, result.stdout_bytes, capture_bytes, shown_chars)
    )
    parts.append(
        stream_text("stderr", result.stderr, result.stderr_bytes, capture_bytes, shown_chars)
    )
    return "\n".join(parts)
