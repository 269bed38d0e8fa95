"""What a person watching a run sees: a live table (a line per running episode: step, last
tool, elapsed time) on a terminal, or one plain line per event for CI and pipes."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from perfgym.runner.summary import EpisodeRecord


def _finished_line(label: str, record: EpisodeRecord) -> str:
    speed = f"{record.speedup:.2f}x" if record.speedup is not None else "-"
    line = (
        f"{label}: {record.status.upper()} speedup {speed} reward {record.reward:.3f}"
        f" ({record.steps} steps, {record.wall_seconds:.0f} s)"
    )
    return line + (f": {record.reason}" if record.reason else "")


class PlainDisplay:
    """One line per episode start, tool call and result: readable in a log file."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def __enter__(self) -> PlainDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def event(self, label: str, kind: str, data: dict[str, Any]) -> None:
        if kind == "start":
            self._say(f"{label}: started")
        elif kind == "tool":
            self._say(f"{label}: step {data.get('step')}: {data.get('name')}")
        elif kind == "grading":
            self._say(f"{label}: grading the submission")
        elif kind == "done":
            self._say(_finished_line(label, data["record"]))

    def note(self, text: str) -> None:
        self._say(text)

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class LiveDisplay:
    """A rich live table of the running episodes; finished ones print above it as they end."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.rows: dict[str, dict[str, Any]] = {}
        self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=True)

    def __enter__(self) -> LiveDisplay:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(*exc)

    def _table(self) -> Table:
        table = Table(box=None, header_style="bold")
        for col in ("episode", "step", "last tool", "elapsed"):
            table.add_column(col)
        now = time.monotonic()
        for label, row in sorted(self.rows.items()):
            table.add_row(label, str(row["step"]), row["tool"], f"{now - row['start']:.0f} s")
        return table

    def event(self, label: str, kind: str, data: dict[str, Any]) -> None:
        if kind == "start":
            self.rows[label] = {"step": 0, "tool": "-", "start": time.monotonic()}
        elif kind == "tool" and label in self.rows:
            self.rows[label].update(step=data.get("step", 0), tool=str(data.get("name")))
        elif kind == "grading" and label in self.rows:
            self.rows[label]["tool"] = "(grading)"
        elif kind == "done":
            self.rows.pop(label, None)
            record: EpisodeRecord = data["record"]
            colour = {"pass": "green", "fail": "red"}.get(record.status, "yellow")
            self.console.print(f"[{colour}]{_finished_line(label, record)}[/]", highlight=False)
        self.live.update(self._table())

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False)


def make_display(plain: bool | None = None) -> PlainDisplay | LiveDisplay:
    """Live on an interactive terminal; plain under CI, in pipes, or when asked."""
    if plain is None:
        plain = not sys.stderr.isatty() or bool(os.environ.get("CI"))
    return PlainDisplay() if plain else LiveDisplay()
