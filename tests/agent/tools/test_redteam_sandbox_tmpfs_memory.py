"""Red team: the sandbox's private /tmp and /dev/shm are tmpfs mounts with the kernel's default
size (half the machine's RAM each), and nothing charges what is stored there to the sandbox:
RLIMIT_AS counts a process's address space, not tmpfs pages, and RLIMIT_FSIZE caps one file,
not how many. A tool call (or a submission in grading) can fill the host's RAM with files the
OOM killer cannot free by killing their small writer, so it kills the harness instead.

Here the limit is 512 MiB and the code stores 768 MiB in /dev/shm in 192 MiB files (each under
the file-size limit); the sandbox must stop it (a memory cgroup charges tmpfs pages, or a
`size=` on the tmpfs mounts)."""

from __future__ import annotations

import asyncio

import pytest

from perfgym.agent.tools import SandboxSettings
from perfgym.sandbox import sandbox_mode

pytestmark = pytest.mark.skipif(sandbox_mode() != "bwrap", reason="needs bubblewrap")

FILL = """
import os
chunk = b"x" * 2**20
for i in range(4):
    with open(f"/dev/shm/fill{i}", "wb") as f:
        for _ in range(192):
            f.write(chunk)
print("STORED", sum(os.path.getsize(f"/dev/shm/fill{i}") for i in range(4)) >> 20, "MiB")
"""


def test_tmpfs_files_count_against_the_memory_limit(make_toolbox):
    box = make_toolbox(
        sandbox=SandboxSettings(memory_bytes=512 * 2**20, file_size_bytes=256 * 2**20)
    )
    result = asyncio.run(box.call("run_python", {"code": FILL, "timeout_s": 60}))
    assert "STORED 768 MiB" not in result.content, result.content
