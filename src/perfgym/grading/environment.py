"""Facts about the machine and libraries that a measurement depends on."""

from __future__ import annotations

import hashlib
import os
import platform
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from perfgym.sandbox import cgroup_limits, sandbox_mode


@cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "scikit-learn": _version("scikit-learn"),
    }


def describe(cpu_budget: int, cpus: tuple[int, ...]) -> dict[str, Any]:
    """The environment block of a GradeReport."""
    mode = sandbox_mode()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_budget": cpu_budget,
        "pinned_cpus": list(cpus),
        "platform": platform.platform(),
        "libraries": library_versions(),
        "sandbox": mode,
        "sandbox_note": "bubblewrap: no network, private /tmp, read-only system, pid namespace"
        if mode == "bwrap"
        else "FALLBACK: bwrap is missing; plain subprocess with limits, no filesystem or "
        "network isolation",
        "cgroups": cgroup_limits(),
    }


def file_sha256(path: os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
