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
    """Seconds the run held the timed CPU, from `go` to `done` (run in turns with another
    process: the sum of its turns)."""
    cpu_s: float | None = None
    turns: int = 0
    """How many turns on the timed CPU the run took (0: it never started; more than one: it
    ran in turns with another process)."""
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
        self.fd, self.buf, self.closed = fd, b"", False

    def next(self, timeout_s: float) -> str | None:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                self.closed = True
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
            self._timed_cpus(True)
            try:
                yield
            finally:
                self._timed_cpus(False)

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
        """How many runs got the CPU: before the first, none of the file's code has run."""
        return sum(1 for r in self.outcome.runs if r.turns > 0)

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the whole process tree."""
        return self._proc.cpu_seconds()

    @property
    def can_freeze(self) -> bool:
        return self._proc is not None and self._proc.can_freeze

    @property
    def next_run_id(self) -> str | None:
        """The id of the run `run_next` would time; None when none is left or it is unusable."""
        return self._pending[0].id if self._pending and not self.outcome.error else None

    def run_next(self) -> RunOutput | None:
        """Time the next run; None when none is left or the process is no longer usable."""
        run = self._next_run()
        if run is None:
            return None
        if not _one_run(self, run):
            self._unusable(run.error)
        else:
            self._read_results(run)
        return run

    def _next_run(self) -> RunOutput | None:
        """The next run (its inputs not given yet); None when none is left or the process is
        no longer usable."""
        if not self._pending or self.outcome.error:
            return None
        run = self._pending.pop(0)
        if run.id not in self._staged:
            raise RuntimeError(f"run {run.id} has no inputs: call give_inputs first")
        return run

    def _give(self, run: RunOutput) -> bool:
        """Put the run's inputs where the process can read them: only after it said `awake`,
        right before `go` (in turns: while it is frozen), so an earlier run or a thread it
        left cannot work ahead on a later run's data off the clock; the process loads them
        on the clock. False (the run's error set) when they could not be given."""
        if self._on_disk:
            os.sync()  # what a process wrote must not be written back during this timed run
        try:
            os.link(self._staged[run.id], self._io_in / f"{run.id}.npz")
        except OSError as exc:  # e.g. a neighbour used up the scratch filesystem's inodes
            run.error = f"run {run.id}: its inputs could not be given ({exc})"
            return False
        return True

    def _unusable(self, why: str | None) -> None:
        self.outcome.error = why
        self._pending = []

    def _read_results(self, run: RunOutput) -> None:
        if run.wall_s is None or not self.read_results:
            return
        try:
            run.arrays, run.meta = _load(self._io_out / f"{run.id}.npz")
        except Exception as exc:  # whatever the sandbox left there: never the grader's crash
            run.error = f"run {run.id}: its results could not be read ({exc})"

    def _timed_cpus(self, timed: bool) -> None:
        budget = self.spec.cpu_budget
        self._proc.set_affinity(budget_cpus(budget) if timed else untimed_cpus(budget))

    def _wake(self, run: RunOutput, nonce: str, spin_s: float) -> bool:
        """Ask the process to spin `spin_s` on the CPU it is on (warming it) and say it is
        awake; its inputs are not there yet."""
        woke = self._lines.next(30) if _send(self._go_w, f"wake {nonce} {spin_s}") else None
        if woke == f"awake {nonce}":
            return True
        run.error = f"run {run.id}: " + (
            _why_dead(self._proc, "before the run")
            if woke is None
            else f"a garbled answer to the grader's wake-up ({woke[:80]!r})"
        )
        return False

    def _conclude(self, run: RunOutput, msg: str | None, nonce: str) -> bool:
        """Read the run's answer (None: none came in its time); False when the process is no
        longer usable. The times are set by the caller."""
        if msg == f"done {run.id} {nonce}":
            return True
        run.wall_s = run.cpu_s = None
        if msg == f"error {run.id} {nonce}":
            run.error = f"run {run.id} raised: " + _tail(self._io_out / f"{run.id}.npz.error")
            return True
        if msg is not None:
            run.error = (
                f"run {run.id}: a forged or garbled message on the grader's pipe ({msg[:80]!r})"
            )
        elif self._proc.alive() and not self._lines.closed:
            run.error = f"run {run.id} exceeded its time limit of {self.timeout_s:.0f} s"
        else:
            run.error = f"run {run.id}: " + _why_dead(self._proc, "during the run")
        return False

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


def _wake_spin_s() -> float:
    """A busy loop on the timed CPU before timing: long when that CPU sat idle, short right
    after another timed run."""
    return SHORT_SPIN_S if time.monotonic() - _last_timed_end < 0.15 else WAKE_SPIN_S


def _one_run(tp: TimedProcess, run: RunOutput) -> bool:
    """Time one run from `go` to `done`; False when the process is no longer usable."""
    global _last_timed_end
    slot = timing_slot() if tp.timed else contextlib.nullcontext()
    nonce = secrets.token_hex(16)
    with slot:
        slot_start = time.time()
        tp._timed_cpus(True)
        try:
            if not (tp._wake(run, nonce, _wake_spin_s()) and tp._give(run)):
                return False
            cpu0 = tp.cpu_seconds()
            t0 = time.perf_counter()
            sent = _send(tp._go_w, f"go {nonce}")
            run.turns = int(sent)
            msg = tp._lines.next(tp.timeout_s) if sent else None
            run.wall_s, run.cpu_s = time.perf_counter() - t0, tp.cpu_seconds() - cpu0
        finally:
            tp._timed_cpus(False)
            run.slot = (slot_start, time.time())
            _last_timed_end = time.monotonic()
    return tp._conclude(run, msg, nonce)


TURN_S = 0.1
"""How long one of two processes run in turns holds the timed CPU before the other gets it."""


@dataclass
class _Turn:
    """One side of a pair of runs taken in turns."""

    tp: TimedProcess
    run: RunOutput
    nonce: str = field(default_factory=lambda: secrets.token_hex(16))
    msg: str | None = None
    ended: bool = False
    cpu0: float = 0.0
    cpu_at_end: float = 0.0

    def left_s(self) -> float:
        return self.tp.timeout_s - (self.run.wall_s or 0.0)


def run_in_turns(
    reference: TimedProcess, candidate: TimedProcess, reference_first: bool
) -> tuple[RunOutput | None, RunOutput | None, float]:
    """Time the next run of each process side by side: both on the timed CPU, taking turns of
    TURN_S, the one whose turn it is not frozen; when one is done, the other goes on alone.

    The host's speed swings by 20-40% within seconds (other tenants), so two whole runs timed
    one after the other see different machines; in turns of 0.1 s both see the same one.
    Measured here on pytorch-nn's reference against itself: a pair's log ratio varied by 0.03
    in turns of 0.1 s (0.06 with 0.2 s) against 0.13-0.16 timed one after the other (docs/
    grading.md). Each run's time is the sum of its turns, each from the start of its thaw to
    its confirmed freeze; one side is stopped before the other starts, so neither runs while
    the other is clocked. Each gets its inputs only after it said `awake` and was frozen.

    Returns both runs (None where a process had none left or was unusable) and the CPU
    seconds the candidate used while it should have been frozen. Needs the freezer
    (`can_freeze`)."""
    global _last_timed_end
    ref_run, cand_run = reference._next_run(), candidate._next_run()
    if ref_run is None or cand_run is None:
        return ref_run, cand_run, 0.0
    ref, cand = _Turn(reference, ref_run), _Turn(candidate, cand_run)
    sides = [ref, cand] if reference_first else [cand, ref]
    parked, ready = 0.0, False
    try:
        with timing_slot():
            slot_start = time.time()
            try:
                # each says it is awake and is frozen, and only then gets its inputs; the
                # reference's spin warms the timed CPU for the first turn
                for t, spin_s in ((cand, 0.0), (ref, _wake_spin_s())):
                    t.tp._timed_cpus(True)
                    if not t.tp._wake(t.run, t.nonce, spin_s):
                        t.tp._unusable(t.run.error)
                        break
                    t.tp.freeze(True)
                    if not t.tp._give(t.run):
                        t.tp._unusable(t.run.error)
                        break
                else:
                    ready = True
                    parked = _alternate(sides, cand)
            finally:
                for t in sides:
                    t.tp._timed_cpus(False)
                slot = (slot_start, time.time())
                for t in sides:
                    t.run.slot = slot
                _last_timed_end = time.monotonic()
        for t in sides if ready else ():  # the candidate's results: read before it may run again
            t.run.cpu_s = t.cpu_at_end - t.cpu0
            if t.tp._conclude(t.run, t.msg, t.nonce):
                t.tp._read_results(t.run)
            else:
                t.tp._unusable(t.run.error)
    finally:
        for t in sides:
            t.tp.freeze(False)
    return ref_run, cand_run, parked


def _alternate(sides: list[_Turn], cand: _Turn) -> float:
    """`go` to both (frozen), then turns until both are done (see run_in_turns); returns the
    CPU seconds the candidate used while it was frozen or done."""
    for t in sides:
        t.cpu0 = t.cpu_at_end = t.tp.cpu_seconds()
        t.run.wall_s = 0.0
        if not _send(t.tp._go_w, f"go {t.nonce}"):
            t.ended = t.tp._lines.closed = True  # nobody reads its pipe: it is gone
    parked = 0.0
    parked_from = cand.cpu0 if sides[0] is not cand else None

    def thaw(t: _Turn) -> float:
        nonlocal parked, parked_from
        if t is cand and parked_from is not None:
            parked += cand.tp.cpu_seconds() - parked_from
            parked_from = None
        started = time.perf_counter()  # (its turn includes the thaw)
        t.tp.freeze(False)
        return started

    cur = next((i for i, t in enumerate(sides) if not t.ended), None)
    started = thaw(sides[cur]) if cur is not None else 0.0
    while cur is not None:
        t, other = sides[cur], sides[1 - cur]
        left = t.left_s() - (time.perf_counter() - started)
        t.msg = t.tp._lines.next(left if other.ended else min(TURN_S, left))
        now = time.perf_counter()
        done = t.msg is not None or t.tp._lines.closed or t.left_s() <= now - started
        if not done and other.ended:
            continue  # alone: it goes on
        if done:
            t.ended, t.cpu_at_end = True, t.tp.cpu_seconds()
        # this one stops before the other starts: no moment when both may run (a candidate
        # could otherwise work unclocked while the reference is being stopped)
        t.tp.freeze(True)
        if not done:
            now = time.perf_counter()
        t.run.wall_s += now - started
        t.run.turns += 1
        if t is cand:
            parked_from = t.cpu_at_end if done else cand.tp.cpu_seconds()
        if other.ended:
            break
        cur, started = 1 - cur, thaw(other)
    if parked_from is not None:
        parked += cand.tp.cpu_seconds() - parked_from
    return parked
