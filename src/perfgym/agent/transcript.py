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
    Values that JSON cannot encode are written as their `str()`, text that is not valid
    Unicode is escaped to ASCII, and a field that still cannot be encoded (nested too deep,
    circular) is replaced by a note, so recording never fails an episode.
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
        line = _dumps(event)
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


_UNENCODABLE = (RecursionError, TypeError, ValueError)
"""What json.dumps raises for a structure nested too deep, a circular one or odd keys."""


def _dumps(event: dict[str, Any]) -> str:
    """One JSON line for `event`, whatever the agent put in it."""
    try:
        line = json.dumps(event, ensure_ascii=False, default=str)
        line.encode("utf-8")  # a lone surrogate (a non-UTF-8 file name, say) fails here
        return line
    except UnicodeEncodeError:
        pass
    except _UNENCODABLE:
        return _salvaged(event)
    try:
        return json.dumps(event, ensure_ascii=True, default=str)  # escapes lone surrogates
    except _UNENCODABLE:
        return _salvaged(event)


def _salvaged(event: dict[str, Any]) -> str:
    """`event` with each field (or item of a list field) that cannot be encoded replaced by a
    note, and the names of those fields under "unrecorded"."""

    def keep(value: Any) -> tuple[Any, bool]:
        try:
            json.dumps(value, default=str)
            return value, True
        except _UNENCODABLE as exc:
            return f"<not recorded: {type(exc).__name__}>", False

    out: dict[str, Any] = {}
    unrecorded: list[str] = []
    for key, value in event.items():
        if isinstance(value, list):
            kept = [keep(item) for item in value]
            out[key] = [item for item, _ in kept]
            ok = all(good for _, good in kept)
        else:
            out[key], ok = keep(value)
        if not ok:
            unrecorded.append(str(key))
    out["unrecorded"] = unrecorded
    try:
        return json.dumps(out, default=str)
    except _UNENCODABLE:  # the fields encode one by one but not together: keep the frame
        frame = {k: event.get(k) for k in ("type", "step", "time")}
        return json.dumps({**frame, "unrecorded": ["*"]}, default=str)


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
