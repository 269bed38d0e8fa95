"""The episode transcript: one JSON object per line, each line on disk before the next step.

An episode can die at any point (Ctrl-C, a crashed worker, a killed machine), and its transcript
is the only record of what the agent did, so every event is flushed and fsynced as it is
written; a reader accepts a last line cut in half by a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Transcript:
    """Appends events (`{"type": ..., "step": n, "time": iso, ...}`) to a JSONL file.

    Event types the loop writes: system, user, assistant, tool_result, usage, error, end.
    Values that JSON cannot encode are written as their `str()`, so recording never fails an
    episode.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open on purpose

    def write(self, type: str, step: int | None = None, **data: Any) -> dict[str, Any]:
        """Append one event and make it durable; returns the event as written."""
        event: dict[str, Any] = {"type": type, "step": step, "time": _now(), **data}
        line = json.dumps(event, ensure_ascii=False, default=str)
        with self._lock:
            if self._file.closed:
                raise ValueError(f"transcript {self.path} is closed")
            self._file.write(line + "\n")
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
        return event

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self) -> Transcript:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_transcript(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The events of a transcript, in order.

    A last line without its newline that does not parse is what a crash mid-write leaves, and is
    dropped; a bad line anywhere else means the file is corrupt and raises ValueError.
    """
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    complete, tail = lines[:-1], lines[-1]  # `tail` is "" when the file ends with a newline
    events: list[dict[str, Any]] = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {number} is not valid JSON ({exc.msg})") from None
    if tail.strip():
        with contextlib.suppress(json.JSONDecodeError):  # cut by a crash while being written
            events.append(json.loads(tail))
    return events
