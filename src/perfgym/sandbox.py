"""The only place that starts untrusted code.

Everything an agent wrote or ran executes in a child process started here: under bubblewrap
(no network, private /tmp, read-only system, own pid namespace, no capabilities, a scrubbed
environment) where `bwrap` exists, otherwise in a plainly isolated subprocess (recorded as
`fallback` in every report). Both modes get resource limits, a timeout, capped output and a
whole-tree kill afterwards. The perfgym package, its reference solutions and the grader's cache
are never visible inside.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

WORKSPACE = "/workspace"
"""Where the writable workspace appears inside the bubblewrap sandbox."""

_SYSTEM_DIRS = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")
_PASSTHROUGH_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "TZ")
_CGROUP_ROOT = Path("/sys/fs/cgroup")


class SandboxError(RuntimeError):
    """The sandbox itself could not start or run (an infrastructure error, not the agent's)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed process tree."""

    timeout_s: float = 300.0
    memory_bytes: int = 8 * 2**30
    file_size_bytes: int = 256 * 2**20
    max_processes: int = 64
    output_bytes: int = 64 * 1024
    cpus: tuple[int, ...] | None = None
    threads: int = 1

    @property
    def tmpfs_bytes(self) -> int:
        """The size of each private tmpfs (/tmp, /dev/shm): files there are RAM that no rlimit
        charges to the process, so they get a cap of their own (half the memory limit, at most
        1 GiB; the kernel's default is half the machine's RAM)."""
        return min(self.memory_bytes // 2, 2**30)


@dataclass
class Mount:
    """A host path made visible inside the sandbox."""

    host: Path
    target: str
    writable: bool = False


@dataclass
class SandboxResult:
    """What a finished sandboxed process left behind."""

    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
    timed_out: bool
    mode: str
    stdout_bytes: int = 0
    stderr_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def sandbox_mode() -> str:
    """`bwrap` where bubblewrap is installed, else `fallback` (forced by PERFGYM_SANDBOX)."""
    if os.environ.get("PERFGYM_SANDBOX") == "fallback":
        return "fallback"
    return "bwrap" if shutil.which("bwrap") else "fallback"


def hidden_paths() -> list[Path]:
    """Host paths that must never be readable from inside: perfgym itself and its cache."""
    from perfgym.paths import cache_dir

    return [Path(__file__).resolve().parent, cache_dir()]


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that pin the numeric libraries' thread pools."""
    n = str(threads)
    return {
        name: n
        for name in (
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "NUMEXPR_NUM_THREADS",
            "VECLIB_MAXIMUM_THREADS",
            "TORCH_NUM_THREADS",
        )
    }


def _scrubbed_env(limits: Limits, extra: dict[str, str] | None) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "MPLCONFIGDIR": "/tmp",
    }
    env.update({k: os.environ[k] for k in _PASSTHROUGH_ENV if k in os.environ})
    env.update(thread_env(limits.threads))
    env.update(extra or {})
    return env


def _python_roots() -> list[Path]:
    """Directories the interpreter and its packages live in, to mount read-only."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    roots.add(Path(os.path.realpath(sys.executable)).parent.parent)
    return sorted(r for r in roots if not any(r != o and r.is_relative_to(o) for o in roots))


class _Cgroups:
    """Per-sandbox cgroups (v1), where the machine allows them: `pids` caps the process count
    (a fork bomb), `cpuset` confines the tree to its CPUs in a way no process inside can widen
    (sched_setaffinity can be undone from inside; a cpuset cannot), `memory` caps what the tree
    holds including tmpfs and memfd pages that no rlimit sees (so filling memory kills the tree
    itself, not a neighbour), `cpuacct` counts the CPU time of every process that was ever in
    the tree (however it was reaped), and `freezer` stops the whole tree while a neighbour is
    timed."""

    def __init__(
        self, max_processes: int, cpus: tuple[int, ...] | None, memory_bytes: int | None = None
    ) -> None:
        self.paths: dict[str, Path] = {}
        name = f"perfgym/{uuid.uuid4().hex}"
        self._make("pids", name, {"pids.max": str(max_processes)})
        if cpus:
            mems = _read(_CGROUP_ROOT / "cpuset" / "cpuset.mems") or "0"
            self._make("cpuset", name, {"cpuset.mems": mems, "cpuset.cpus": _cpulist(cpus)})
        if memory_bytes:
            self._make("memory", name, {"memory.limit_in_bytes": str(memory_bytes)})
        self._make("cpuacct", name, {})
        self._make("freezer", name, {})

    def cpu_seconds(self) -> float | None:
        """CPU seconds of everything that ever ran in the tree, or None without cpuacct."""
        path = self.paths.get("cpuacct")
        usage = _read(path / "cpuacct.usage") if path else ""
        return int(usage) / 1e9 if usage.isdigit() else None

    def freeze(self, frozen: bool) -> bool:
        """Freeze (or thaw) every process of the tree; False where the machine has no freezer."""
        path = self.paths.get("freezer")
        if path is None:
            return False
        want = "FROZEN" if frozen else "THAWED"
        try:
            (path / "freezer.state").write_text(want)
            for _ in range(2000):  # freezing completes asynchronously (within 1 s here)
                if _read(path / "freezer.state") == want:
                    return True
                time.sleep(0.0005)
        except OSError:
            return False
        return False

    def _make(self, controller: str, name: str, settings: dict[str, str]) -> None:
        root = _CGROUP_ROOT / controller
        try:
            path = root / name
            if controller == "cpuset" and not (root / "perfgym").exists():
                (root / "perfgym").mkdir()  # a cpuset child needs cpus and mems before use
                for key in ("cpuset.cpus", "cpuset.mems"):
                    (root / "perfgym" / key).write_text(_read(root / key))
            path.mkdir(parents=True)
            for key, value in settings.items():
                (path / key).write_text(value)
            self.paths[controller] = path
        except OSError:
            pass

    @property
    def confines_cpus(self) -> bool:
        return "cpuset" in self.paths

    def set_cpus(self, cpus: tuple[int, ...]) -> bool:
        path = self.paths.get("cpuset")
        if path is None:
            return False
        try:
            (path / "cpuset.cpus").write_text(_cpulist(cpus))
        except OSError:
            return False
        return True

    def join_from_child(self) -> None:
        for path in self.paths.values():
            with contextlib.suppress(OSError):
                (path / "cgroup.procs").write_text(str(os.getpid()))

    def kill_all(self) -> None:
        self.freeze(False)  # a frozen process does not die until it is thawed
        pids_path = self.paths.get("pids")
        for _ in range(50 if pids_path else 0):
            try:
                pids = [int(p) for p in (pids_path / "cgroup.procs").read_text().split()]
            except OSError:
                break
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        for path in self.paths.values():
            with contextlib.suppress(OSError):
                path.rmdir()


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _cpulist(cpus: tuple[int, ...]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


class _CappedReader(threading.Thread):
    """Drains a pipe so the child never blocks, keeping only the first `cap` bytes."""

    def __init__(self, stream, cap: int) -> None:
        super().__init__(daemon=True)
        self.stream, self.cap = stream, cap
        self.chunks: list[bytes] = []
        self.kept = 0
        self.total = 0

    def run(self) -> None:
        while True:
            chunk = self.stream.read1(65536)
            if not chunk:
                break
            self.total += len(chunk)
            if self.kept < self.cap:
                piece = chunk[: self.cap - self.kept]
                self.chunks.append(piece)
                self.kept += len(piece)

    def text(self) -> str:
        data = b"".join(self.chunks).decode("utf-8", "replace")
        if self.total > self.kept:
            data += f"\n[... output cut: {self.total} bytes in all, first {self.kept} kept]"
        return data


@dataclass
class SandboxProcess:
    """One running sandboxed process tree; use `start()`, then `wait()` (which always kills)."""

    argv: Sequence[str]
    workdir: Path
    limits: Limits = field(default_factory=Limits)
    mounts: Sequence[Mount] = ()
    env: dict[str, str] | None = None
    pass_fds: Sequence[int] = ()
    mode: str = field(default_factory=sandbox_mode)

    def __post_init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._cgroup: _Cgroups | None = None
        self._started = 0.0
        self._readers: list[_CappedReader] = []

    # -- paths -----------------------------------------------------------------------------
    def inside(self, host_path: Path) -> str:
        """The path at which a host path (the workdir or a mount) is seen inside the sandbox."""
        host_path = Path(host_path).resolve()
        if self.mode == "fallback":
            return str(host_path)
        for m in [Mount(Path(self.workdir), WORKSPACE, True), *self.mounts]:
            root = Path(m.host).resolve()
            if host_path.is_relative_to(root):
                return str(Path(m.target) / host_path.relative_to(root))
        raise SandboxError(f"{host_path} is not mounted in the sandbox")

    @property
    def python(self) -> str:
        """The interpreter to run inside (the harness's own, mounted read-only)."""
        return sys.executable

    def _bwrap_argv(self, env: dict[str, str]) -> list[str]:
        args = ["bwrap"]
        for d in _SYSTEM_DIRS:
            if os.path.isdir(d):
                args += ["--ro-bind", d, d]
        for f in _ETC_FILES:
            if os.path.exists(f):
                args += ["--ro-bind", f, f]
        # The private /tmp first: the interpreter may live below /tmp (a clone there) and its
        # bind must land on top of the tmpfs, not under it.
        tmpfs = ["--size", str(self.limits.tmpfs_bytes), "--tmpfs"]
        args += ["--proc", "/proc", "--dev", "/dev", *tmpfs, "/tmp", *tmpfs, "/dev/shm"]
        for root in _python_roots():
            args += ["--ro-bind", str(root), str(root)]
        for hidden in hidden_paths():
            if any(hidden.is_relative_to(r) for r in _python_roots()) and hidden.exists():
                args += ["--tmpfs", str(hidden)]
        args += ["--bind", str(Path(self.workdir).resolve()), WORKSPACE]
        for m in self.mounts:
            args += ["--bind" if m.writable else "--ro-bind", str(Path(m.host).resolve()), m.target]
        args += ["--remount-ro", "/"]
        args += ["--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534"]
        args += ["--cap-drop", "ALL", "--die-with-parent", "--new-session", "--clearenv"]
        for k, v in env.items():
            args += ["--setenv", k, v]
        args += ["--chdir", WORKSPACE, "--"]
        return args + list(self.argv)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SandboxProcess:
        env = _scrubbed_env(self.limits, self.env)
        self._cgroup = _Cgroups(
            self.limits.max_processes, self.limits.cpus, self.limits.memory_bytes
        )
        limits, cgroup = self.limits, self._cgroup

        def in_child() -> None:  # runs in the forked child before exec
            cgroup.join_from_child()
            resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
            resource.setrlimit(
                resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes)
            )
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
            if limits.cpus:
                os.sched_setaffinity(0, limits.cpus)

        if self.mode == "bwrap":
            argv, cwd = self._bwrap_argv(env), None
        else:
            argv, cwd = list(self.argv), str(self.workdir)
        try:
            self._proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env if self.mode == "fallback" else {"PATH": os.environ.get("PATH", "")},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=tuple(self.pass_fds),
                preexec_fn=in_child,
                start_new_session=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            self._cgroup.kill_all()
            raise SandboxError(f"could not start the sandbox: {exc}") from exc
        self._started = time.monotonic()
        self._readers = [
            _CappedReader(self._proc.stdout, self.limits.output_bytes),
            _CappedReader(self._proc.stderr, self.limits.output_bytes),
        ]
        for r in self._readers:
            r.start()
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None, "start() first"
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def deadline_left(self) -> float:
        return self.limits.timeout_s - (time.monotonic() - self._started)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the whole process tree: from its cpuacct
        cgroup where there is one (it also counts processes reaped without a trace), else from
        /proc."""
        counted = self._cgroup.cpu_seconds() if self._cgroup is not None else None
        return counted if counted is not None else tree_cpu_seconds(self.pid)

    def freeze(self, frozen: bool = True) -> bool:
        """Stop (or resume) every process of the tree; False where the machine cannot."""
        return self._cgroup is not None and self._cgroup.freeze(frozen)

    @property
    def can_freeze(self) -> bool:
        """Whether `freeze` stops the tree: its freezer cgroup exists and holds the tree's
        root (joining it can fail quietly)."""
        path = self._cgroup.paths.get("freezer") if self._cgroup is not None else None
        return path is not None and str(self.pid) in _read(path / "cgroup.procs").split()

    def set_affinity(self, cpus: tuple[int, ...]) -> None:
        """Move every thread of the whole tree to `cpus` (for the timed phase and back)."""
        if self._cgroup is not None:
            self._cgroup.set_cpus(cpus)
        for pid in tree_pids(self.pid):
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            except OSError:
                continue
            for tid in tids:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(tid, cpus)

    def kill(self) -> None:
        """Kill the whole tree: the process group, the pid namespace and the cgroup."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        if self._cgroup is not None:
            self._cgroup.kill_all()

    def wait(self, timeout_s: float | None = None) -> SandboxResult:
        """Wait for the end (or the time limit), then kill whatever is left and collect output."""
        assert self._proc is not None, "start() first"
        timed_out = False
        try:
            self._proc.wait(timeout=max(0.0, timeout_s or self.deadline_left()))
        except subprocess.TimeoutExpired:
            timed_out = True
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=10)
        for r in self._readers:
            r.join(timeout=5)
        out, err = self._readers
        return SandboxResult(
            returncode=self._proc.returncode,
            stdout=out.text(),
            stderr=err.text(),
            wall_s=time.monotonic() - self._started,
            timed_out=timed_out,
            mode=self.mode,
            stdout_bytes=out.total,
            stderr_bytes=err.total,
        )


def cgroup_limits() -> list[str]:
    """Which cgroup limits this machine gives sandboxes (`pids`, `cpuset`, `memory`, `cpuacct`,
    `freezer`), for the report."""
    probe = _Cgroups(8, (0,), 2**30)
    found = sorted(probe.paths)
    probe.kill_all()
    return found


def run_sandboxed(
    argv: Sequence[str],
    workdir: Path,
    limits: Limits | None = None,
    mounts: Sequence[Mount] = (),
    env: dict[str, str] | None = None,
) -> SandboxResult:
    """Run a command in the sandbox to completion (or its timeout) and return what it left."""
    proc = SandboxProcess(argv, workdir, limits or Limits(), mounts, env).start()
    return proc.wait()


def _proc_table() -> tuple[dict[int, list[str]], dict[int, list[int]]]:
    """/proc/PID/stat fields after the command name, and each pid's children."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2 :].split()
        pid = int(entry.name)
        stats[pid] = fields
        children.setdefault(int(fields[1]), []).append(pid)
    return stats, children


def _descendants(root_pid: int, stats: dict, children: dict) -> list[int]:
    found, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        if pid in stats:
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found


def tree_pids(root_pid: int) -> list[int]:
    """A process and all its live descendants."""
    stats, children = _proc_table()
    return _descendants(root_pid, stats, children)


def tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (alive or reaped)."""
    stats, children = _proc_table()
    # utime, stime, cutime, cstime are fields 14-17 of /proc/PID/stat (index 11-14 here)
    total = sum(
        sum(int(x) for x in stats[pid][11:15]) for pid in _descendants(root_pid, stats, children)
    )
    return total / os.sysconf("SC_CLK_TCK")
