"""Scripts that run inside the sandbox, passed to `python -c` as source text.

The harness never imports them; `source(name)` reads one as text.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def source(name: str) -> str:
    """The source of the driver `name` (e.g. "profile"), to pass to `python -c`."""
    return (Path(__file__).parent / f"{name}.py").read_text()
