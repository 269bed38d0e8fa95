"""Where perfgym keeps state on the host: the grader's cache and the machine's secret."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def cache_dir() -> Path:
    """The grader's cache (baseline timings, hidden-seed outputs); never mounted in a sandbox."""
    root = os.environ.get("PERFGYM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "perfgym"
    )
    return Path(root).resolve()


def machine_secret() -> str:
    """A per-machine secret the hidden seeds derive from (PERFGYM_SECRET overrides it)."""
    if env := os.environ.get("PERFGYM_SECRET"):
        return env
    path = cache_dir() / "secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(secrets.token_hex(16))
        tmp.chmod(0o600)
        os.replace(tmp, path) if not path.exists() else tmp.unlink()
    return path.read_text().strip()
