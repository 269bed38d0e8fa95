"""Runs a submission (or the baseline) in the sandbox on the grader's inputs, with its clock.

One sandboxed process imports and warms the libraries, says `ready`, and then runs the
pipeline once per `go`. The grader's own clock measures from writing `go` to reading `done`,
under the machine-wide timing slot; CPU time of the whole process tree is read from /proc at
both ends, so work on extra CPUs shows. Results are read the moment `done` arrives.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import select
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perfgym.grading import sandbox_entry
from perfgym.grading.timing import budget_cpus, timing_slot, untimed_cpus
from perfgym.sandbox import Limits, Mount, SandboxProcess, SandboxResult
from perfgym.tasks.spec import ProbeCall, TaskSpec

_IN, _OUT = "/io/in", "/io/out"


@dataclass
class RunOutput:
    """One timed pipeline run: the grader's measurements and what the run returned."""

    id: str
    wall_s: float | None = None
    cpu_s: float | None = None
    slot: tuple[float, float] | None = None
    """Epoch seconds at which this run took and released the machine-wide timing slot."""
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Outcome:
    runs: list[RunOutput]
    probe_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    probe_errors: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    """Why the process as a whole failed (crash, timeout), if it did."""
    sandbox: SandboxResult | None = None


class _Lines:
    """Reads newline-terminated messages from a pipe, with a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buf = fd, b""

    def next(self, timeout_s: float) -> str | None:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "replace").strip()


MAX_RESULT_BYTES = 256 * 2**20


def _read_result(path: Path, limit: int = MAX_RESULT_BYTES) -> bytes:
    """A file the sandboxed process wrote to its output directory, read safely: the code that
    wrote it could have put a symlink (to a host file), a FIFO or a device there instead. Only
    a regular file at that very name is read, and at most `limit` bytes of it."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path.name} is not a regular file")
        if info.st_size > limit:
            raise ValueError(f"{path.name} is larger than {limit >> 20} MiB")
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise ValueError(f"{path.name} is larger than {limit >> 20} MiB")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _load(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A run's arrays and metadata; any problem with them raises (the caller reports it)."""
    with np.load(io.BytesIO(_read_result(path)), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(_read_result(Path(str(path) + ".json"), 16 * 2**20))
    if not isinstance(meta, dict):
        raise ValueError("its metadata is not a JSON object")
    return arrays, meta


def _why_dead(proc: SandboxProcess, what: str) -> str:
    result = proc.wait(timeout_s=5)
    tail = (result.stderr or "").strip().splitlines()[-3:]
    code = result.returncode
    extra = f"; stderr: {' | '.join(tail)}" if tail else ""
    return f"the sandboxed process ended {what} (exit code {code}){extra}"


def execute(
    spec: TaskSpec,
    source: Path,
    runs: list[tuple[str, dict[str, np.ndarray]]],
    run_timeout_s: float,
    probes: tuple[dict[str, np.ndarray], tuple[ProbeCall, ...]] | None = None,
    timed: bool = True,
) -> Outcome:
    """Run `source` in one sandboxed process: each run timed, then the probes (untimed)."""
    tmp = Path(tempfile.mkdtemp(prefix="perfgym-exec-"))
    try:
        return _execute(spec, source, runs, run_timeout_s, probes, timed, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _execute(spec, source, runs, run_timeout_s, probes, timed, tmp: Path) -> Outcome:
    ws, io_in, io_out = tmp / "ws", tmp / "in", tmp / "out"
    for d in (ws, io_in, io_out):
        d.mkdir()
        d.chmod(0o777)
    shutil.copyfile(source, ws / "submission.py")
    shutil.copyfile(sandbox_entry.__file__, io_in / "entry.py")
    for run_id, inputs in runs:
        np.savez(io_in / f"{run_id}.npz", **inputs)
    if probes is not None:
        np.savez(io_in / "probes.npz", **probes[0])
    mounts = [Mount(io_in, _IN), Mount(io_out, _OUT, writable=True)]
    limits = Limits(
        timeout_s=spec.import_timeout_s + run_timeout_s * len(runs) + 120,
        cpus=untimed_cpus(spec.cpu_budget),
        threads=spec.cpu_budget,
    )
    go_r, go_w = os.pipe()
    ctrl_r, ctrl_w = os.pipe()
    proc = SandboxProcess([], ws, limits, mounts, pass_fds=(go_r, ctrl_w))
    in_dir, out_dir = proc.inside(io_in), proc.inside(io_out)
    job = {
        "workspace": proc.inside(ws),
        "module": "submission",
        "entry": spec.entry,
        "preload": list(spec.preload),
        "threads": spec.cpu_budget,
        "count_forward": [spec.model_class] if spec.model_class else [],
        "trace": list(spec.traced_components),
        "trace_outputs": list(spec.traced_outputs),
        "runs": [
            {"id": r, "inputs": f"{in_dir}/{r}.npz", "output": f"{out_dir}/{r}.npz"}
            for r, _ in runs
        ],
        "probes": None
        if probes is None
        else {
            "inputs": f"{in_dir}/probes.npz",
            "output": f"{out_dir}/probes.npz",
            "calls": [c.to_json() for c in probes[1]],
        },
    }
    proc.argv = [sys.executable, "-I", f"{in_dir}/entry.py", str(go_r), str(ctrl_w)]
    proc.start()
    os.close(go_r)
    os.close(ctrl_w)
    os.write(go_w, (json.dumps(job) + "\n").encode())
    lines = _Lines(ctrl_r)
    outcome = Outcome(runs=[RunOutput(r) for r, _ in runs])
    try:
        if lines.next(spec.import_timeout_s) != "ready":
            outcome.error = _why_dead(proc, "before it was ready (importing the libraries)")
            return outcome
        for run in outcome.runs:
            cpus = (budget_cpus(spec.cpu_budget), untimed_cpus(spec.cpu_budget))
            if not _one_run(proc, cpus, lines, go_w, run, run_timeout_s, io_out, timed):
                outcome.error = run.error
                return outcome
        if probes is not None:
            msg = lines.next(120)
            if msg == "probes":
                try:
                    outcome.probe_arrays, meta = _load(io_out / "probes.npz")
                    outcome.probe_errors = dict(meta.get("errors", {}))
                except Exception as exc:  # whatever the sandbox left there
                    outcome.error = f"the probes' results could not be read ({exc})"
            elif msg == "error probes":
                outcome.error = "the probes crashed: " + _tail(io_out / "probes.npz.error")
            else:
                outcome.error = _why_dead(proc, "while running the equivalence probes")
        return outcome
    finally:
        os.close(go_w)
        os.close(ctrl_r)
        outcome.sandbox = proc.wait(timeout_s=10)


def _tail(path: Path) -> str:
    try:
        return _read_result(path, 1 << 20).decode("utf-8", "replace")[-1500:].strip()
    except (OSError, ValueError):
        return "(no traceback)"


def _one_run(
    proc: SandboxProcess,
    cpus: tuple[tuple[int, ...], tuple[int, ...]],
    lines: _Lines,
    go_w: int,
    run: RunOutput,
    timeout_s: float,
    io_out: Path,
    timed: bool,
) -> bool:
    """Time one run from `go` to `done`; False when the process is no longer usable."""
    slot = timing_slot() if timed else contextlib.nullcontext()
    nonce = secrets.token_hex(16)
    with slot:
        slot_start = time.time()
        proc.set_affinity(cpus[0])
        os.write(go_w, f"wake {nonce}\n".encode())  # a short busy loop on the timed CPU
        woke = lines.next(30)
        if woke != f"awake {nonce}":
            run.error = f"run {run.id}: " + (
                _why_dead(proc, "before the run")
                if woke is None
                else f"a garbled answer to the grader's wake-up ({woke[:80]!r})"
            )
            return False
        cpu0 = proc.cpu_seconds()
        t0 = time.perf_counter()
        os.write(go_w, f"go {nonce}\n".encode())
        msg = lines.next(timeout_s)
        t1 = time.perf_counter()
        cpu1 = proc.cpu_seconds()
        proc.set_affinity(cpus[1])
        run.slot = (slot_start, time.time())
    if msg == f"done {run.id} {nonce}":
        run.wall_s, run.cpu_s = t1 - t0, cpu1 - cpu0
        try:
            run.arrays, run.meta = _load(io_out / f"{run.id}.npz")
        except Exception as exc:  # whatever the sandbox left there: never the grader's crash
            run.error = f"run {run.id}: its results could not be read ({exc})"
        return True
    if msg == f"error {run.id} {nonce}":
        run.error = f"run {run.id} raised: " + _tail(io_out / f"{run.id}.npz.error")
        return True
    if msg is not None:
        run.error = f"run {run.id}: a forged or garbled message on the grader's pipe ({msg[:80]!r})"
        return False
    if msg is None and proc.alive():
        run.error = f"run {run.id} exceeded its time limit of {timeout_s:.0f} s"
    else:
        run.error = f"run {run.id}: " + _why_dead(proc, "during the run")
    return False
