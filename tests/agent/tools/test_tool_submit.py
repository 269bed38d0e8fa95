"""submit_answer: a valid .py file in the workspace ends the episode; anything else does not."""

from __future__ import annotations

import os

import pytest

from perfgym.agent.tools import Workspace, read_submission
from perfgym.agent.tools.base import ToolInputError


def test_a_valid_file_is_submitted(call, workspace):
    (workspace / "optimized.py").write_text("print('fast')\n")
    result = call("submit_answer", path="optimized.py")
    assert not result.is_error
    assert result.submission == "optimized.py"
    assert "Submitted optimized.py (14 bytes)" in result.content


def test_the_submission_is_named_relative_to_the_workspace(call, workspace):
    (workspace / "sub").mkdir()
    (workspace / "sub" / "fast.py").write_text("x = 1\n")
    assert call("submit_answer", path="./sub/../sub/fast.py").submission == "sub/fast.py"
    assert call("submit_answer", path="/workspace/sub/fast.py").submission == "sub/fast.py"


@pytest.mark.parametrize(
    ("path", "phrase"),
    [
        ("missing.py", "does not exist"),
        ("notes.txt", "not a .py file"),
        ("empty.py", "is empty"),
        ("blank.py", "is empty"),
        ("latin.py", "not UTF-8"),
        ("dir.py", "is a directory"),
        ("../outside.py", "outside the workspace"),
        ("/tmp/outside.py", "absolute path"),
        ("link_out.py", "outside the workspace"),
    ],
)
def test_invalid_submissions_are_errors(call, workspace, tmp_path, path, phrase):
    (workspace / "notes.txt").write_text("x = 1\n")
    (workspace / "empty.py").write_text("")
    (workspace / "blank.py").write_text("\n  \n")
    (workspace / "latin.py").write_bytes("# café\n".encode("latin-1"))
    (workspace / "dir.py").mkdir()
    (tmp_path / "outside.py").write_text("x = 1\n")
    os.symlink(tmp_path / "outside.py", workspace / "link_out.py")
    result = call("submit_answer", path=path)
    assert result.is_error and result.submission is None
    assert phrase in result.content


def test_read_submission_returns_the_bytes(workspace):
    (workspace / "optimized.py").write_bytes(b"x = 1\n")
    assert read_submission(Workspace(workspace), "optimized.py") == ("optimized.py", b"x = 1\n")
    (workspace / "huge.py").write_bytes(b"#" * 2_000_000)
    with pytest.raises(ToolInputError, match="at most"):
        read_submission(Workspace(workspace), "huge.py")
