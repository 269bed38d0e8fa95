"""The sandbox contains hostile code: every case ends cleanly and the host is untouched."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from perfgym.sandbox import Limits, cgroup_limits, run_sandboxed, sandbox_mode, tree_cpu_seconds

PY = os.sys.executable


def _run(tmp_path: Path, code: str, **limits):
    (tmp_path / "job.py").write_text(textwrap.dedent(code))
    return run_sandboxed([PY, "-I", "job.py"], tmp_path, Limits(**limits))


def test_runs_code_in_the_workspace(tmp_path):
    r = _run(tmp_path, "open('out.txt', 'w').write('hi'); print('ok')")
    assert r.ok and r.stdout.strip() == "ok"
    assert (tmp_path / "out.txt").read_text() == "hi"


def test_infinite_loop_times_out(tmp_path):
    start = time.monotonic()
    r = _run(tmp_path, "while True: pass", timeout_s=2)
    assert r.timed_out and not r.ok
    assert time.monotonic() - start < 20


def test_memory_bomb_is_stopped(tmp_path):
    r = _run(tmp_path, "x = bytearray(8 * 2**30); print('survived')", memory_bytes=2 * 2**30)
    assert not r.ok and "survived" not in r.stdout
    assert "MemoryError" in r.stderr


def test_huge_output_is_capped(tmp_path):
    r = _run(tmp_path, "import sys\nfor _ in range(100): sys.stdout.write('x' * 2**20)")
    assert r.ok
    assert r.stdout_bytes == 100 * 2**20
    assert len(r.stdout) < 70_000 and "output cut" in r.stdout


def test_environment_is_scrubbed(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-secret-value")
    r = _run(
        tmp_path, "import os; print(sorted(os.environ)); print(os.environ.get('ANTHROPIC_API_KEY'))"
    )
    assert r.ok
    assert "sk-secret-value" not in r.stdout and "ANTHROPIC" not in r.stdout


@pytest.mark.skipif(sandbox_mode() != "bwrap", reason="isolation needs bubblewrap")
class TestIsolation:
    def test_no_network(self, tmp_path):
        r = _run(
            tmp_path,
            """
            import socket
            try:
                socket.create_connection(("127.0.0.1", 22), timeout=2)
                print("connected")
            except OSError as e:
                print("blocked", e)
            """,
        )
        assert "blocked" in r.stdout

    def test_cannot_write_outside_the_workspace(self, tmp_path):
        target = tmp_path.parent / "outside.txt"
        r = _run(
            tmp_path,
            f"""
            for p in [{str(target)!r}, "/usr/evil", "/etc/evil"]:
                try:
                    open(p, "w").write("x"); print("wrote", p)
                except OSError as e:
                    print("denied", p)
            """,
        )
        assert "wrote" not in r.stdout and not target.exists()

    def test_perfgym_and_its_cache_are_invisible(self, tmp_path, grader_cache):
        import perfgym

        (grader_cache / "marker").write_text("secret")
        src = Path(perfgym.__file__).parent
        r = _run(
            tmp_path,
            f"""
            import os
            for p in [{str(src)!r}, {str(grader_cache)!r}]:
                print(p, os.path.exists(p) and os.listdir(p))
            try:
                import perfgym; print("imported", perfgym.__file__)
            except ImportError:
                print("no perfgym")
            """,
        )
        assert r.ok, r.stderr
        assert "imported" not in r.stdout and "marker" not in r.stdout
        assert "reference.py" not in r.stdout

    def test_fork_bomb_is_contained(self, tmp_path):
        start = time.monotonic()
        r = _run(
            tmp_path,
            """
            import os
            n = 0
            while True:
                try:
                    os.fork(); n += 1
                except OSError:
                    pass
            """,
            timeout_s=5,
            max_processes=32,
        )
        assert not r.ok
        assert time.monotonic() - start < 30
        # The host can still start processes afterwards.
        assert _run(tmp_path, "print('alive')").stdout.strip() == "alive"

    def test_background_processes_die_with_the_sandbox(self, tmp_path):
        r = _run(
            tmp_path,
            """
            import subprocess, sys
            late = "import time; time.sleep(30); open('late', 'w')"
            subprocess.Popen([sys.executable, "-c", late])
            print("spawned")
            """,
        )
        assert "spawned" in r.stdout
        time.sleep(1)
        assert not (tmp_path / "late").exists()


def test_tree_cpu_counts_reaped_children():
    """CPU burnt by a child that has already exited still counts (that is how extra CPUs show)."""
    import subprocess

    busy = "import time; t = time.process_time()\nwhile time.process_time() - t < 1.0: pass"
    code = (
        "import subprocess, sys, time\n"
        f"subprocess.run([sys.executable, '-c', {busy!r}])\n"
        "time.sleep(3)"
    )
    parent = subprocess.Popen([PY, "-c", code])
    try:
        time.sleep(2.5)
        assert tree_cpu_seconds(parent.pid) >= 0.9
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.skipif(
    "cpuset" not in cgroup_limits() or os.cpu_count() < 2, reason="needs a cpuset cgroup"
)
def test_code_cannot_widen_its_cpus(tmp_path):
    """Affinity set from outside holds even when the code asks the kernel for every CPU."""
    r = _run(
        tmp_path,
        """
        import os
        try:
            os.sched_setaffinity(0, range(os.cpu_count()))
        except OSError as e:
            print("refused", e)
        print(sorted(os.sched_getaffinity(0)))
        """,
        cpus=(1,),
    )
    assert r.ok, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[1]"
