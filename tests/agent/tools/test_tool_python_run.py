"""run_python and python_expression: sandboxed runs, cut output, timeouts, nothing leaks in."""

from __future__ import annotations

import hashlib
import json
import textwrap

import pytest

from perfgym.agent.tools import SandboxSettings
from perfgym.paths import cache_dir
from perfgym.sandbox import sandbox_mode
from perfgym.tasks.registry import TASKS

needs_bwrap = pytest.mark.skipif(sandbox_mode() != "bwrap", reason="isolation needs bubblewrap")


def test_run_python_file_with_args(call, workspace):
    (workspace / "hello.py").write_text(
        "import os, sys\nprint('args', sys.argv[1:], os.getcwd())\n"
        "open('made.txt', 'w').write('x')\nsys.exit(3)\n"
    )
    result = call("run_python", path="hello.py", args=["a", "b c"])
    assert not result.is_error
    first, *rest = result.content.splitlines()
    assert first.startswith("exit code 3, wall time ")
    assert "args ['a', 'b c']" in result.content
    assert "--- stderr: (empty) ---" in rest
    assert (workspace / "made.txt").read_text() == "x"


def test_run_python_inline_code_imports_from_the_workspace(call, workspace):
    (workspace / "helper.py").write_text("N_CLASSES = 10\n")
    result = call("run_python", code="import helper; print(helper.N_CLASSES)")
    assert result.content.startswith("exit code 0")
    assert "--- stdout (3 bytes) ---\n10" in result.content


def test_run_python_pins_threads_like_grading(call):
    code = "import os; print(os.environ['OMP_NUM_THREADS'], len(os.sched_getaffinity(0)))"
    assert "\n1 1" in call("run_python", code=code).content


def test_run_python_reports_exceptions_in_stderr(call):
    result = call("run_python", code="raise ValueError('bad value')")
    assert result.content.startswith("exit code 1") and not result.is_error
    assert "ValueError: bad value" in result.content


@pytest.mark.parametrize(
    ("arguments", "phrase"),
    [
        ({}, "exactly one of"),
        ({"path": "baseline.py", "code": "print(1)"}, "exactly one of"),
        ({"path": "missing.py"}, "does not exist"),
        ({"path": "notes.txt"}, "not a .py file"),
        ({"path": "../x.py"}, "outside the workspace"),
        ({"code": "x" * 200_000}, "write_file"),
        ({"code": "print(1)", "args": ["x"] * 101}, "at most 100"),
    ],
)
def test_run_python_input_errors(call, workspace, arguments, phrase):
    (workspace / "notes.txt").write_text("hi")
    result = call("run_python", arguments)
    assert result.is_error and phrase in result.content


def test_long_output_keeps_head_and_tail(call):
    code = "print('HEAD'); print('x' * 100_000); print('TAIL')"
    result = call("run_python", code=code)
    assert "HEAD" in result.content and "TAIL" in result.content
    assert "cut from the middle" in result.content and "cut to its head and tail" in result.content
    assert len(result.content) < 12_000


def test_output_beyond_the_capture_is_noted(make_toolbox):
    import asyncio

    box = make_toolbox(sandbox=SandboxSettings(capture_bytes=1000, shown_chars=400))
    result = asyncio.run(box.call("run_python", {"code": "print('y' * 5000)"}))
    assert "(5001 bytes)" in result.content
    assert "only the first 1000 bytes were captured" in result.content
    assert "output cut:" not in result.content  # the sandbox's own note is replaced


def test_timeout_is_reported_and_capped(call, toolbox):
    result = call("run_python", code="print('started', flush=True)\nwhile True: pass", timeout_s=1)
    assert result.content.startswith("TIMED OUT")
    assert "after 1 s" in result.content and "started" in result.content
    assert toolbox.context.sandbox.timeout(10_000) == 600
    assert toolbox.context.sandbox.timeout(None) == 120


def test_python_expression_prints_the_value(call):
    result = call("python_expression", expression="import numpy as np\nnp.arange(4) * 2")
    assert result.content == "array([0, 2, 4, 6])" and not result.is_error
    assert call("python_expression", expression="print('hi')").content == "hi"
    assert "no output" in call("python_expression", expression="x = 1").content
    workspace_file = call("python_expression", expression="len(open('baseline.py').read()) > 0")
    assert workspace_file.content == "True"


def test_python_expression_errors_show_the_snippet(call):
    result = call("python_expression", expression="a = 1\nb = a / 0")
    assert result.content.startswith("exit code 1")
    assert 'File "<expression>", line 2' in result.content and "ZeroDivisionError" in result.content
    assert "<string>" not in result.content  # the driver's frames are hidden
    syntax = call("python_expression", expression="def (")
    assert "SyntaxError" in syntax.content
    timeout = call("python_expression", expression="while True: pass", timeout_s=1)
    assert timeout.content.startswith("TIMED OUT")


@needs_bwrap
def test_a_symlink_made_by_sandboxed_code_cannot_reach_out(call, workspace, tmp_path):
    (tmp_path / "host_secret.txt").write_text("top secret")
    code = textwrap.dedent(
        f"""
        import os
        os.symlink({str(tmp_path / "host_secret.txt")!r}, "secret_link")
        os.symlink("/etc/passwd", "passwd_link")
        os.symlink("/", "root_link")
        os.mkfifo("pipe")
        print("made")
        """
    )
    assert "made" in call("run_python", code=code).content
    for path in ("secret_link", "passwd_link", "root_link/etc/passwd"):
        result = call("read_file", path=path)
        assert result.is_error and "outside the workspace" in result.content
        assert "secret" not in result.content.replace("secret_link", "")
    assert call("write_file", path="root_link/tmp/x.txt", content="x").is_error
    assert call("write_file", path="secret_link", content="x").is_error
    assert (tmp_path / "host_secret.txt").read_text() == "top secret"
    assert call("list_files", path="root_link").is_error
    assert call("submit_answer", path="passwd_link").is_error
    assert call("read_file", path="pipe").is_error
    assert call("run_python", path="root_link/etc/passwd").is_error


LEAK_PROBE = textwrap.dedent(
    """
    import json, os, sys
    key, reference_hashes, reference_paths, cache = json.loads(sys.argv[1])
    found = []
    if key in open("/proc/self/environ", "rb").read().decode("utf-8", "replace"):
        found.append("key in environ")
    if any(key in v for v in os.environ.values()) or "ANTHROPIC_API_KEY" in os.environ:
        found.append("key in os.environ")
    for p in [*reference_paths, cache, os.path.expanduser("~/.cache/perfgym")]:
        if os.path.exists(p):
            found.append("exists: " + p)
    try:
        import perfgym  # noqa: F401
        found.append("perfgym importable")
    except ImportError:
        pass
    import hashlib
    for root, dirs, files in os.walk("/"):
        if root == "/":
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
        for name in files:
            if name == "reference.py" or ("perfgym" in root and name.endswith(".py")):
                path = os.path.join(root, name)
                try:
                    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
                except OSError:
                    continue
                if digest in reference_hashes or "perfgym" in root:
                    found.append(path)
    print("FOUND", json.dumps(found))
    """
)


@needs_bwrap
def test_sandboxed_code_finds_no_secret_reference_or_cache(call, workspace, monkeypatch):
    key = "sk-ant-api03-toolstest-0123456789"
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "tools-test-marker").write_text("marker")
    refs = [t.reference_path for t in TASKS.values()]
    hashes = [hashlib.sha256(p.read_bytes()).hexdigest() for p in refs]
    (workspace / "probe.py").write_text(LEAK_PROBE)
    payload = json.dumps([key, hashes, [str(p) for p in refs], str(cache)])
    result = call("run_python", path="probe.py", args=[payload])
    assert result.content.startswith("exit code 0"), result.content
    found = json.loads(result.content.split("FOUND ", 1)[1].splitlines()[0])
    assert found == []
    assert key not in result.content
