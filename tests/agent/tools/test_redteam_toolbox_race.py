"""Red team: the file tools check a path (realpath inside the workspace) and then open it,
with O_NOFOLLOW on the last component only. Toolbox calls may overlap (sandbox runs go to
worker threads; test_sandboxed_tools_run_concurrently relies on it), so sandboxed code still
running in the same workspace can swap a directory for a symlink between the check and the
open: `read_file("d/data.txt")` then reads a host file outside the workspace (and
`write_file` writes one). The episode loop runs calls one at a time, but any adapter that runs
an assistant turn's parallel tool calls concurrently is exposed. A file operation must never
leave the workspace, whatever runs beside it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from perfgym.agent.tools import Workspace
from perfgym.agent.tools.base import ToolInputError
from perfgym.sandbox import sandbox_mode


@pytest.mark.skipif(sandbox_mode() != "bwrap", reason="needs bubblewrap")
def test_read_file_cannot_be_raced_out_of_the_workspace(toolbox, workspace, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.txt").write_text("CANARY-OUTSIDE\n")
    swapper = f"""
import os, time
os.makedirs('d_dir')
open('d_dir/data.txt', 'w').write('decoy\\n')
os.symlink({str(outside)!r}, 'd_link')
os.rename('d_dir', 'd')
open('ready', 'w').close()
end = time.time() + 4
while time.time() < end:
    os.rename('d', 'd_dir'); os.rename('d_link', 'd')
    os.rename('d', 'd_link'); os.rename('d_dir', 'd')
"""

    async def race() -> int:
        run = asyncio.create_task(toolbox.call("run_python", {"code": swapper, "timeout_s": 20}))
        while not (workspace / "ready").exists() and not run.done():
            await asyncio.sleep(0.02)
        leaks, end = 0, time.monotonic() + 3
        while time.monotonic() < end and not run.done():
            result = await toolbox.call("read_file", {"path": "d/data.txt"})
            leaks += "CANARY" in result.content
            await asyncio.sleep(0)
        await run
        return leaks

    assert asyncio.run(race()) == 0, "read_file read a file outside the workspace"


SWAPPER = """
import ctypes, os, sys, time
os.chdir(sys.argv[1])
os.makedirs('d')
open('d/data.txt', 'w').write('decoy\\n')
os.symlink(sys.argv[2], 'd_link')
open('ready', 'w').close()
libc = ctypes.CDLL(None, use_errno=True)
end = time.time() + float(sys.argv[3])
while time.time() < end:  # 'd' is the directory, then the symlink, never missing
    if libc.renameat2(-100, b'd', -100, b'd_link', 2) != 0:  # RENAME_EXCHANGE
        sys.exit('renameat2: errno %d' % ctypes.get_errno())
"""


def test_the_open_itself_never_leaves_the_workspace(workspace, tmp_path):
    """Whatever serializes the tools, the open must hold on its own: here a plain process swaps
    a directory for a symlink to the host as fast as it can while the harness opens, creates
    and writes files through it (the runner reads the submission outside any toolbox)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.txt").write_text("CANARY-OUTSIDE\n")
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(workspace), str(outside), "2.5"])
    try:
        while not (workspace / "ready").exists() and swapper.poll() is None:
            time.sleep(0.01)
        ws = Workspace(workspace)
        reads = refused = 0
        end = time.monotonic() + 2
        while time.monotonic() < end:
            for op in (
                lambda: ws.read_bytes("d/data.txt", 100)[0],
                lambda: ws.file_info("d/data.txt") and b"",
                lambda: ws.write_bytes("d/new/written.txt", b"x") and b"",
                lambda: ws.write_bytes("d/data.txt", b"decoy\n") and b"",
            ):
                try:
                    assert b"CANARY" not in op(), "read a file outside the workspace"
                    reads += 1
                except ToolInputError:
                    refused += 1
        assert swapper.poll() is None, "the swapper stopped early"
    finally:
        swapper.kill()
        swapper.wait()
    assert sorted(p.name for p in outside.iterdir()) == ["data.txt"], "wrote outside"
    assert (outside / "data.txt").read_text() == "CANARY-OUTSIDE\n"
    assert reads > 0  # the decoy was reachable: the race ran
