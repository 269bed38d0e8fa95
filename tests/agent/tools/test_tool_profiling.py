"""profile: hot spots from each profiler, the full profile in the artifacts, none in the
workspace."""

from __future__ import annotations

import json

import pytest

from perfgym.agent.tools.profiling import py_spy_binary

SLOW_SCRIPT = """\
import sys


def quick_helper():
    return sum(range(100))


def painfully_slow_loop(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


if __name__ == "__main__":
    print("result", painfully_slow_loop(int(sys.argv[1])), quick_helper())
"""


@pytest.fixture
def slow_script(workspace):
    (workspace / "slow.py").write_text(SLOW_SCRIPT)
    return "slow.py"


def _workspace_files(workspace):
    return sorted(p.name for p in workspace.iterdir())


def test_cprofile_names_the_slow_function(call, slow_script, workspace, artifacts):
    result = call("profile", path=slow_script, args=["400000"], top=10)
    assert not result.is_error, result.content
    text = result.content
    assert text.startswith("Profiled slow.py with cprofile: exit code 0")
    assert "result " in text  # the script's own output
    by_tottime = text.split("by own time (tottime)")[1]
    first_row = next(line for line in by_tottime.splitlines() if "slow.py:" in line)
    assert "painfully_slow_loop" in first_row
    assert "<string>" not in text  # the driver's frames are left out
    assert "profile_1_cprofile.prof" in text and "outside your workspace" in text
    assert (artifacts / "profile_1_cprofile.prof").stat().st_size > 0
    assert "painfully_slow_loop" in (artifacts / "profile_1_cprofile.txt").read_text()
    assert _workspace_files(workspace) == ["baseline.py", "slow.py"]


def test_pyinstrument_names_the_slow_function(call, slow_script, workspace, artifacts):
    result = call("profile", path=slow_script, args=["400000"], profiler="pyinstrument")
    assert not result.is_error, result.content
    hot = result.content.split("functions by own time")[1].split("call tree")[0]
    assert "painfully_slow_loop" in hot
    assert "_     ._" not in result.content  # no ASCII-art banner
    saved = sorted(p.name for p in artifacts.iterdir())
    assert saved == [
        "profile_1_pyinstrument.html",
        "profile_1_pyinstrument.speedscope.json",
        "profile_1_pyinstrument.txt",
    ]
    assert json.loads((artifacts / saved[1]).read_text())  # valid speedscope JSON
    assert _workspace_files(workspace) == ["baseline.py", "slow.py"]


@pytest.mark.skipif(py_spy_binary() is None, reason="py-spy is not installed")
def test_py_spy_names_the_slow_function_and_line(call, slow_script, workspace, artifacts):
    result = call("profile", path=slow_script, args=["1500000"], profiler="py-spy", top=5)
    assert not result.is_error, result.content
    functions, lines = result.content.split("functions by total time")[1].split("lines by own")
    assert "painfully_slow_loop (slow.py)" in functions
    first_line = next(line for line in lines.splitlines() if "%" in line)
    assert "painfully_slow_loop (slow.py:1" in first_line  # line 11 or 12, the loop
    data = json.loads((artifacts / "profile_1_pyspy.speedscope.json").read_text())
    assert data["profiles"]
    assert _workspace_files(workspace) == ["baseline.py", "slow.py"]


def test_artifact_numbers_go_up(call, slow_script, artifacts):
    call("profile", path=slow_script, args=["10"])
    call("profile", path=slow_script, args=["10"])
    assert sorted(p.name for p in artifacts.glob("*.prof")) == [
        "profile_1_cprofile.prof",
        "profile_2_cprofile.prof",
    ]


def test_a_script_past_its_time_still_gives_a_profile(call, workspace):
    (workspace / "forever.py").write_text(
        "def spin_forever():\n    while True:\n        pass\n\nspin_forever()\n"
    )
    result = call("profile", path="forever.py", timeout_s=1.5)
    assert "stopped after 1.5 s" in result.content
    assert "spin_forever" in result.content


def test_a_crashing_script_still_gives_a_profile(call, workspace):
    (workspace / "crash.py").write_text(
        "def work():\n    return sum(range(10_000))\n\nwork()\nraise RuntimeError('oops')\n"
    )
    result = call("profile", path="crash.py")
    assert "exit code 1" in result.content
    assert "RuntimeError: oops" in result.content and "work" in result.content


def test_a_killed_script_says_no_profile(call, workspace):
    (workspace / "exit.py").write_text("import os\nos._exit(0)\n")
    result = call("profile", path="exit.py")
    assert "No profile was produced" in result.content


@pytest.mark.parametrize(
    ("arguments", "phrase"),
    [
        ({"path": "nope.py"}, "does not exist"),
        ({"path": "../x.py"}, "outside the workspace"),
        ({"path": "data.txt"}, "not a .py file"),
        ({"path": "slow.py", "profiler": "perf"}, "must be one of"),
        ({"args": []}, "needs the argument 'path'"),
    ],
)
def test_profile_input_errors(call, workspace, slow_script, arguments, phrase):
    (workspace / "data.txt").write_text("x")
    result = call("profile", arguments)
    assert result.is_error and phrase in result.content


def test_py_spy_missing_is_a_clear_error(call, slow_script, monkeypatch):
    monkeypatch.setattr("perfgym.agent.tools.profiling.py_spy_binary", lambda: None)
    result = call("profile", path=slow_script, profiler="py-spy")
    assert result.is_error and "py-spy is not installed" in result.content
