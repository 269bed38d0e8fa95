"""Red team: the grader reads a run's results from the host side of the sandbox's writable
`/io/out` with plain `open`/`np.load`, which follow symlinks. The submission runs in the same
sandboxed process as the entry script, so it can plant a symlink there before the entry writes
its results. The entry writes through it inside the sandbox (harmlessly), but the grader then
reads whatever the link names *on the host*:

- `A.npz.json` -> `<host path of /workspace>/forged.json` (the host path comes from
  /proc/self/mountinfo; inside the sandbox the same path is a private tmpfs dir): the run's meta
  (trained rows, component calls) is forged -> e2e.work passes with fewer epochs.
- `A.npz.error` -> `<host ws>/leak` -> any host file: its tail lands in the report, and the
  `check` tool shows it to the agent (the machine secret, /proc/self/environ of the harness).
- `A.npz` -> `<host ws>/empty` (an empty file): np.load raises EOFError, which nobody
  catches: the grading crashes and the episode becomes a harness `error` (out of the pass
  rate, replayed on --resume). -> a FIFO: the grader blocks forever. `A.npz.json` ->
  /dev/zero: it reads until it runs out of memory.
- an object-dtype probe output is pickled by np.savez and `_load(probes.npz)` (no try) raises.

Every result file must be opened without following symlinks, only if it is a regular file,
size-capped, and any failure to read it must be a run error, never an exception.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from perfgym.grading.execution import execute
from perfgym.sandbox import sandbox_mode
from perfgym.tasks.spec import ProbeCall

pytestmark = pytest.mark.skipif(sandbox_mode() != "bwrap", reason="needs bubblewrap")

HEAD = textwrap.dedent(
    """
    import os, json
    import numpy as np
    OUT = os.path.join('..', 'i' + 'o', 'out')

    def host_workspace():
        for line in open('/' + 'proc/self/mountinfo'):
            f = line.split()
            if f[4] == '/workspace':
                return f[3]

    def plant(name, target):
        os.symlink(target, os.path.join(OUT, name))

    def result(test_images):
        return {"model": None, "predictions": np.zeros(len(test_images))}
    """
)
SPEC = SimpleNamespace(
    import_timeout_s=60.0,
    cpu_budget=1,
    entry="run_pipeline",
    preload=(),
    model_class=None,
    traced_components=(),
    traced_outputs=(),
)
INPUTS = {
    "train_images": np.zeros((4, 3)),
    "train_labels": np.zeros(4, dtype=np.int64),
    "test_images": np.zeros((2, 3)),
    "seed": np.asarray(0),
}


def _execute(tmp_path: Path, body: str, probes=None, timeout_s: float = 30.0):
    src = tmp_path / "submission.py"
    src.write_text(HEAD + textwrap.dedent(body))
    return execute(SPEC, src, [("A", dict(INPUTS))], timeout_s, probes=probes, timed=False)


def test_the_grader_does_not_read_forged_meta_through_a_symlink(tmp_path):
    out = _execute(
        tmp_path,
        """
        def run_pipeline(train_images, train_labels, test_images, seed):
            hw = host_workspace()
            os.makedirs(hw, exist_ok=True)
            with open('/workspace/forged.json', 'w') as f:
                json.dump({"trained_rows": {"SimpleNN": 10**9}, "FORGED": True}, f)
            plant('A.npz.json', hw + '/forged.json')
            return result(test_images)
        """,
    )
    run = out.runs[0]
    assert "FORGED" not in run.meta, "the grader took the run's meta from a planted file"
    assert run.meta.get("trained_rows") != {"SimpleNN": 10**9}


def test_the_error_tail_does_not_follow_a_symlink_to_a_host_file(tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("CANARY-HOST-SECRET-5678")
    out = _execute(
        tmp_path,
        f"""
        def run_pipeline(train_images, train_labels, test_images, seed):
            hw = host_workspace()
            os.makedirs(hw, exist_ok=True)
            os.symlink({str(canary)!r}, '/workspace/leak')
            plant('A.npz.error', hw + '/leak')
            raise RuntimeError('boom')
        """,
    )
    assert "CANARY" not in (out.runs[0].error or ""), out.runs[0].error


def test_an_unloadable_result_is_a_run_error_not_a_crash(tmp_path):
    out = _execute(  # raises EOFError today
        tmp_path,
        """
        def run_pipeline(train_images, train_labels, test_images, seed):
            hw = host_workspace()
            os.makedirs(hw, exist_ok=True)
            open('/workspace/empty', 'w').close()
            plant('A.npz', hw + '/empty')
            return result(test_images)
        """,
    )
    assert out.runs[0].error


def test_an_object_array_from_a_probe_is_a_probe_error_not_a_crash(tmp_path):
    probes = ({"x": np.zeros(3)}, (ProbeCall(id="p", kind="call", target="f", args=("x",)),))
    out = _execute(  # raises ValueError (allow_pickle=False) today
        tmp_path,
        """
        def run_pipeline(train_images, train_labels, test_images, seed):
            return result(test_images)

        def f(x):
            return np.array([None, 1], dtype=object)
        """,
        probes=probes,
    )
    assert out.error or out.probe_errors


def test_a_fifo_behind_a_symlink_does_not_hang_the_grader(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # to find (and free) the FIFO
    done: list = []

    def run() -> None:
        try:
            done.append(
                _execute(
                    tmp_path,
                    """
                    def run_pipeline(train_images, train_labels, test_images, seed):
                        hw = host_workspace()
                        os.makedirs(hw, exist_ok=True)
                        os.mkfifo('/workspace/fifo')
                        plant('A.npz', hw + '/fifo')
                        return result(test_images)
                    """,
                )
            )
        except BaseException as exc:
            done.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=20)
    hung = worker.is_alive()
    for fifo in tmp_path.glob("perfgym-exec-*/ws/fifo"):  # let a hung grader go
        with open(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK), "wb"):
            pass
    worker.join(timeout=15)
    assert not hung, "the grader blocked opening a FIFO the submission planted"
    assert done and not isinstance(done[0], BaseException), done


def test_an_endless_result_file_is_not_read_to_the_end(tmp_path):
    """/dev/zero as the meta: today the grader reads until it runs out of memory (here capped
    at 1.5 GiB in a child process, so the test fails fast instead of taking the machine)."""
    src = tmp_path / "submission.py"
    src.write_text(
        HEAD
        + textwrap.dedent(
            """
            def run_pipeline(train_images, train_labels, test_images, seed):
                plant('A.npz.json', '/dev/zero')
                return result(test_images)
            """
        )
    )
    driver = textwrap.dedent(
        f"""
        import resource, sys
        import numpy as np
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_redteam_grader_result_files import SPEC, INPUTS
        from perfgym.grading.execution import execute
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**29, resource.RLIM_INFINITY))
        out = execute(SPEC, __import__('pathlib').Path({str(src)!r}), [("A", INPUTS)], 30.0,
                      timed=False)
        print("RUN-ERROR:", bool(out.runs[0].error))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", driver], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "RUN-ERROR: True" in proc.stdout, proc.stderr[-2000:]


FORGE_META = '''

import json as _json_forge
import os as _os_forge


def _forge_meta() -> None:
    """Plant /io/out/<run>.npz.json -> <host path of /workspace>/m.json (read on the host)."""
    hw = None
    for line in open("/" + "proc/self/mountinfo"):
        f = line.split()
        if f[4] == "/workspace":
            hw = f[3]
    _os_forge.makedirs(hw, exist_ok=True)
    meta = {
        "model": {"class": "SimpleNN", "kind": "torch"},
        "trained_rows": {"SimpleNN": 10**9},
        "calls": {"extract_features": 2, "normalize_features": 1, "train_model": 1, "predict": 1},
    }
    with open("/workspace/m.json", "w") as fh:
        _json_forge.dump(meta, fh)
    out = _os_forge.path.join("..", "i" + "o", "out")
    for run in ("A", "B", "C", "A2", "B2", "C2"):
        link = _os_forge.path.join(out, run + ".npz.json")
        if not _os_forge.path.lexists(link):
            _os_forge.symlink(hw + "/m.json", link)
'''


@pytest.mark.slow
def test_fewer_epochs_with_forged_meta_still_fails_the_work_check(tmp_path):
    """End to end: the pytorch-nn fixture cheat_fewer_epochs (3 epochs of 7; expected to fail
    e2e.work) plus the forged meta. Today it PASSES with reward ~1.09 at size small."""
    from perfgym.grading import grade
    from perfgym.tasks.registry import get_task

    fixture = Path(__file__).parents[1] / "fixtures/submissions/pytorch-nn/cheat_fewer_epochs.py"
    head = "    train_features = extract_features(train_images)\n"
    source = fixture.read_text().replace(head, "    _forge_meta()\n" + head) + FORGE_META
    assert "    _forge_meta()\n" in source
    attack = tmp_path / "attack.py"
    attack.write_text(source)
    report = grade(get_task("pytorch-nn"), attack, "small")
    assert report.verdict != "pass"
    assert report.check("e2e.work") is None or report.check("e2e.work").passed is not True


def test_a_run_cannot_read_a_later_runs_inputs_ahead_of_time(tmp_path):
    """Run A could do B's expensive work while A is timed (reading B's inputs through an
    obfuscated path) and cache it, making B nearly free: a later run's inputs appear only at
    its turn."""
    src = tmp_path / "submission.py"
    src.write_text(
        HEAD
        + textwrap.dedent(
            """
            IN = os.path.join('..', 'i' + 'o', 'in')

            def run_pipeline(train_images, train_labels, test_images, seed):
                present = os.path.exists(os.path.join(IN, 'B.npz'))
                if int(seed) == 1 and present:
                    raise RuntimeError('run A sees the inputs of run B')
                if int(seed) == 2 and not present:
                    raise RuntimeError('run B does not see its own inputs')
                return result(test_images)
            """
        )
    )
    runs = [("A", dict(INPUTS, seed=np.asarray(1))), ("B", dict(INPUTS, seed=np.asarray(2)))]
    out = execute(SPEC, src, runs, 30.0, timed=False)
    assert out.error is None
    assert [r.error for r in out.runs] == [None, None]


def test_closing_the_grader_pipes_is_the_submissions_failure_not_a_crash(tmp_path):
    """A submission that closes the entry's end of the grader's pipe (its number is in
    sys.argv) ends the process after its run; the grader's next write meets a broken pipe. That
    must be a failed run, never an exception out of the grader (it raised BrokenPipeError, and
    a harness error is left out of the pass rate and replayed)."""
    src = tmp_path / "submission.py"
    src.write_text(
        HEAD
        + textwrap.dedent(
            """
            import sys

            def run_pipeline(train_images, train_labels, test_images, seed):
                os.close(int(sys.argv[1]))
                return result(test_images)
            """
        )
    )
    out = execute(SPEC, src, [("A", dict(INPUTS)), ("B", dict(INPUTS))], 30.0, timed=False)
    assert out.runs[0].error is None
    assert out.runs[1].error is not None and "ended before the run" in out.runs[1].error
    assert out.error == out.runs[1].error
