"""Workspace: containment of every path, and file access that no symlink or FIFO can abuse."""

from __future__ import annotations

import os
import time

import pytest

from perfgym.agent.tools import Workspace, prepare_workspace
from perfgym.agent.tools.base import ToolInputError


def test_prepare_workspace_copies_the_baseline(tmp_path, spec):
    path = prepare_workspace(spec, tmp_path / "new" / "ws")
    assert path == tmp_path / "new" / "ws" / "baseline.py"
    assert path.read_bytes() == spec.baseline_path.read_bytes()
    assert sorted(p.name for p in path.parent.iterdir()) == ["baseline.py"]


def test_relative_paths_resolve_inside(workspace):
    ws = Workspace(workspace)
    assert ws.resolve("baseline.py") == ws.root / "baseline.py"
    assert ws.resolve("./sub/../baseline.py") == ws.root / "baseline.py"
    assert ws.resolve(".") == ws.root
    assert ws.relative(ws.resolve(".")) == "."


def test_the_sandbox_view_of_the_workspace_is_an_alias(workspace):
    ws = Workspace(workspace)
    assert ws.resolve("/workspace/baseline.py") == ws.root / "baseline.py"
    assert ws.resolve("/workspace") == ws.root


@pytest.mark.parametrize(
    ("path", "phrase"),
    [
        ("../outside.txt", "resolves outside the workspace"),
        ("sub/../../outside.txt", "resolves outside the workspace"),
        ("/workspace/../etc/passwd", "resolves outside the workspace"),
        ("/etc/passwd", "absolute path"),
        ("/workspacex/a.py", "absolute path"),
        ("", "empty"),
        ("   ", "empty"),
        ("a\x00b", "NUL"),
    ],
)
def test_escapes_are_refused(workspace, path, phrase):
    with pytest.raises(ToolInputError, match=phrase):
        Workspace(workspace).resolve(path)


def test_symlinks_are_followed_only_inside(workspace, tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", workspace / "out_link")
    os.symlink(tmp_path, workspace / "out_dir")
    os.symlink("baseline.py", workspace / "in_link.py")
    ws = Workspace(workspace)
    for path in ("out_link", "out_dir", "out_dir/secret.txt"):
        with pytest.raises(ToolInputError, match="outside the workspace"):
            ws.resolve(path)
    assert ws.resolve("in_link.py") == ws.root / "baseline.py"


def test_a_fifo_is_refused_without_blocking(workspace):
    os.mkfifo(workspace / "pipe")
    start = time.monotonic()
    with pytest.raises(ToolInputError, match="not a regular file"):
        Workspace(workspace).read_bytes("pipe", 100)
    with pytest.raises(ToolInputError, match="not a regular file"):
        Workspace(workspace).write_bytes("pipe", b"x")
    assert time.monotonic() - start < 1


def test_read_bytes_is_capped(workspace):
    (workspace / "big.txt").write_bytes(b"a" * 5000)
    data, size = Workspace(workspace).read_bytes("big.txt", 100)
    assert data == b"a" * 100 and size == 5000
