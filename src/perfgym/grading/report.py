"""The GradeReport: every verdict as structured data that explains itself."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from perfgym.atomic_file import write_json_atomic

PASS, FAIL, ERROR = "pass", "fail", "error"


@dataclass
class Check:
    """One named check; `passed` is None when it was skipped after an earlier failure."""

    name: str
    passed: bool | None
    detail: str


@dataclass
class GradeReport:
    task: str
    size: str
    submission: dict[str, Any]
    seeds: str = "hidden"
    """`hidden` for a grading; `public` for the agent's own check on the public seed."""
    verdict: str = ERROR
    reasons: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, Any] = field(default_factory=dict)
    reward: float = 0.0
    target_speedup: float = 0.0
    reference_speedup: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)
    grading_seconds: float = 0.0

    def add(self, name: str, passed: bool | None, detail: str) -> bool | None:
        self.checks.append(Check(name, passed, detail))
        if passed is False:
            self.reasons.append(f"{name}: {detail}")
        return passed

    def failed(self) -> bool:
        return any(c.passed is False for c in self.checks)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        return write_json_atomic(directory / "grade.json", self.to_dict())
