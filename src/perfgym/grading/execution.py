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
from collections.abc import Iterator
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
    calls = probes[1] if probes is not None else None
    with TimedProcess(spec, source, [r for r, _ in runs], run_timeout_s, calls, timed) as proc:
        proc.give_inputs(dict(runs), probes[0] if probes is not None else None)
        if proc.wait_ready():
            while proc.run_next() is not None:
                pass
            proc.run_probes()
        return proc.outcome


class TimedProcess:
    """One sandboxed process of a pipeline file, driven run by run by the grader, so that two
    of them (a candidate and the reference it is compared with) can take turns on the timed
    CPU. Use it as a context manager: the process tree and its files go at exit.

    The process starts with only its run ids; `give_inputs` supplies the data before the first
    run, so the grader can make it while the process imports its libraries."""

    def __init__(
        self,
        spec: TaskSpec,
        source: Path,
        run_ids: list[str],
        run_timeout_s: float,
        probes: tuple[ProbeCall, ...] | None = None,
        timed: bool = True,
        read_results: bool = True,
    ) -> None:
        self.spec, self.timeout_s, self.timed = spec, run_timeout_s, timed
        # False where only the runs' times count (the reference's paired runs): reading a
        # forest's results costs the grader 0.15 s per run
        self.read_results = read_results
        self.outcome = Outcome(runs=[RunOutput(r) for r in run_ids])
        self._pending = list(self.outcome.runs)
        self._probes = probes
        self._staged: dict[str, Path] = {}
        scratch = _scratch_root()
        self._on_disk = scratch is None  # then what it writes is flushed before each timed run
        self._tmp = Path(tempfile.mkdtemp(prefix="perfgym-exec-", dir=scratch))
        self._fds: list[int] = []
        self._proc: SandboxProcess | None = None
        try:
            self._start(source)
        except BaseException:
            self.__exit__()
            raise

    def _start(self, source: Path) -> None:
        spec, probes = self.spec, self._probes
        ws, io_in, io_out = self._tmp / "ws", self._tmp / "in", self._tmp / "out"
        for d in (ws, io_in, io_out, self._tmp / "stage"):
            d.mkdir()
            d.chmod(0o777)
        self._io_in, self._io_out = io_in, io_out
        shutil.copyfile(source, ws / "submission.py")
        shutil.copyfile(sandbox_entry.__file__, io_in / "entry.py")
        run_ids = [r.id for r in self.outcome.runs]
        mounts = [Mount(io_in, _IN), Mount(io_out, _OUT, writable=True)]
        limits = Limits(
            timeout_s=spec.import_timeout_s + self.timeout_s * len(run_ids) + 120,
            cpus=untimed_cpus(spec.cpu_budget),
            threads=spec.cpu_budget,
        )
        go_r, go_w = os.pipe()
        ctrl_r, ctrl_w = os.pipe()
        self._fds = [go_w, ctrl_r]
        self._go_w, self._ctrl_r = go_w, ctrl_r
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
                for r in run_ids
            ],
            "probes": None
            if probes is None
            else {
                "inputs": f"{in_dir}/probes.npz",
                "output": f"{out_dir}/probes.npz",
                "calls": [c.to_json() for c in probes],
            },
        }
        proc.argv = [sys.executable, "-I", f"{in_dir}/entry.py", str(go_r), str(ctrl_w)]
        self._lines = _Lines(ctrl_r)
        try:
            proc.start()
        finally:
            os.close(go_r)
            os.close(ctrl_w)
        self._proc = proc
        with contextlib.suppress(OSError):  # a process dead at once shows at `ready`
            os.write(go_w, (json.dumps(job) + "\n").encode())

    def give_inputs(
        self,
        inputs: dict[str, dict[str, np.ndarray]],
        probe_inputs: dict[str, np.ndarray] | None = None,
    ) -> None:
        """The data of every run (by run id) and of the probes, kept outside the sandbox until
        each run's turn (the probes' from now on). Runs that share one inputs dict share its
        file."""
        stage = self._tmp / "stage"  # never mounted: a run's inputs appear in `in` at its turn
        written: dict[int, Path] = {}
        for run in self.outcome.runs:
            data = inputs[run.id]
            if id(data) not in written:
                written[id(data)] = stage / f"{len(written)}.npz"
                np.savez(written[id(data)], **data)
            self._staged[run.id] = written[id(data)]
        if self._probes is not None:
            if probe_inputs is None:
                raise ValueError("a process with probes needs their inputs")
            np.savez(self._io_in / "probes.npz", **probe_inputs)

    def __enter__(self) -> TimedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
        if self._proc is not None:
            self.outcome.sandbox = self._proc.wait(timeout_s=10)
            self._proc = None
        shutil.rmtree(self._tmp, ignore_errors=True)

    def freeze(self, frozen: bool = True) -> bool:
        """Stop (or resume) the whole process tree while another process is timed; False where
        the machine has no freezer."""
        return self._proc is not None and self._proc.freeze(frozen)

    @contextlib.contextmanager
    def importing_on_timed_cpu(self) -> Iterator[None]:
        """Let this process import on the timed CPU, holding the timing slot (no one times
        meanwhile), while another imports on the untimed one and the grader makes the data:
        two imports for the time of one. Call `wait_ready` inside."""
        if not self.timed:
            yield
            return
        with timing_slot():
            self._proc.set_affinity(budget_cpus(self.spec.cpu_budget))
            try:
                yield
            finally:
                self._proc.set_affinity(untimed_cpus(self.spec.cpu_budget))

    def wait_ready(self) -> bool:
        """Wait until the libraries are imported and warm; False (and the reason kept in
        `outcome.error`) when the process died first."""
        ready = self._lines.next(self.spec.import_timeout_s)
        if ready != "ready":
            self.outcome.error = _why_dead(
                self._proc, "before it was ready (importing the libraries)"
            )
            self._pending = []
            return False
        return True

    @property
    def started_runs(self) -> int:
        """How many runs were started: before the first, none of the file's code has run."""
        return len(self.outcome.runs) - len(self._pending)

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the whole process tree."""
        return self._proc.cpu_seconds()

    def run_next(self) -> RunOutput | None:
        """Time the next run; None when none is left or the process is no longer usable."""
        if not self._pending or self.outcome.error:
            return None
        run = self._pending.pop(0)
        cpus = (budget_cpus(self.spec.cpu_budget), untimed_cpus(self.spec.cpu_budget))
        if run.id not in self._staged:
            raise RuntimeError(f"run {run.id} has no inputs: call give_inputs first")
        # only now do this run's inputs exist where the process can read them: an earlier run
        # cannot work ahead on a later one's data
        try:
            os.link(self._staged[run.id], self._io_in / f"{run.id}.npz")
        except OSError as exc:  # e.g. a neighbour used up the scratch filesystem's inodes
            run.error = self.outcome.error = f"run {run.id}: its inputs could not be given ({exc})"
            self._pending = []
            return run
        if self._on_disk:
            os.sync()  # what a process wrote must not be written back during this timed run
        if not _one_run(
            self._proc, cpus, self._lines, self._go_w, run, self.timeout_s, self._io_out, self.timed
        ):
            self.outcome.error = run.error
            self._pending = []
        elif run.wall_s is not None and self.read_results:
            try:
                run.arrays, run.meta = _load(self._io_out / f"{run.id}.npz")
            except Exception as exc:  # whatever the sandbox left there: never the grader's crash
                run.error = f"run {run.id}: its results could not be read ({exc})"
        return run

    def run_probes(self) -> None:
        """After the last run: read the equivalence probes' outputs (computed untimed)."""
        if self._probes is None or self.outcome.error or self._pending:
            return
        msg = self._lines.next(120) if _send(self._go_w, "probes") else None
        io_out, outcome = self._io_out, self.outcome
        if msg == "probes":
            try:
                outcome.probe_arrays, meta = _load(io_out / "probes.npz")
                outcome.probe_errors = dict(meta.get("errors", {}))
            except Exception as exc:  # whatever the sandbox left there
                outcome.error = f"the probes' results could not be read ({exc})"
        elif msg == "error probes":
            outcome.error = "the probes crashed: " + _tail(io_out / "probes.npz.error")
        else:
            outcome.error = _why_dead(self._proc, "while running the equivalence probes")


def _tail(path: Path) -> str:
    try:
        return _read_result(path, 1 << 20).decode("utf-8", "replace")[-1500:].strip()
    except (OSError, ValueError):
        return "(no traceback)"


def _send(fd: int, line: str) -> bool:
    """Write one protocol line; False when nobody reads the pipe any more (the process died
    or closed its end): that is the process's failure, never the grader's crash."""
    try:
        os.write(fd, (line + "\n").encode())
    except OSError:
        return False
    return True


def _scratch_root() -> str | None:
    """Where sandboxes' files live: the host's /dev/shm (RAM) where it is roomy, so nothing a
    sandbox writes is ever written back to disk during someone's timed run (a container's
    default 64 MB /dev/shm is not: then the system's temporary directory)."""
    shm = "/dev/shm"
    try:
        st = os.statvfs(shm)
    except OSError:
        return None
    roomy = st.f_bavail * st.f_frsize >= 2 * 2**30 and st.f_favail >= 100_000
    return shm if roomy and os.access(shm, os.W_OK) else None


WAKE_SPIN_S = 0.25
"""Busy seconds on the timed CPU before a run when it sat idle: an idle virtual CPU runs the
first fraction of a second slower."""
SHORT_SPIN_S = 0.05
"""The same right after another timed run (runs of the candidate and of the reference take
turns), when that CPU is already awake."""
_last_timed_end = 0.0


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
    global _last_timed_end
    slot = timing_slot() if timed else contextlib.nullcontext()
    nonce = secrets.token_hex(16)
    with slot:
        slot_start = time.time()
        proc.set_affinity(cpus[0])
        # a busy loop on the timed CPU: long when that CPU sat idle, short right after a run
        spin = SHORT_SPIN_S if time.monotonic() - _last_timed_end < 0.15 else WAKE_SPIN_S
        woke = lines.next(30) if _send(go_w, f"wake {nonce} {spin}") else None
        if woke != f"awake {nonce}":
            run.error = f"run {run.id}: " + (
                _why_dead(proc, "before the run")
                if woke is None
                else f"a garbled answer to the grader's wake-up ({woke[:80]!r})"
            )
            return False
        cpu0 = proc.cpu_seconds()
        t0 = time.perf_counter()
        msg = lines.next(timeout_s) if _send(go_w, f"go {nonce}") else None
        t1 = time.perf_counter()
        cpu1 = proc.cpu_seconds()
        proc.set_affinity(cpus[1])
        run.slot = (slot_start, time.time())
        _last_timed_end = time.monotonic()
    if msg == f"done {run.id} {nonce}":
        run.wall_s, run.cpu_s = t1 - t0, cpu1 - cpu0
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
