"""The episode's workspace as the harness sees it: path containment and safe file access.

Sandboxed code shares this directory and may leave symlinks, FIFOs or anything else in it, so
every path the agent names is resolved with realpath and must stay inside, and files are opened
without blocking on a FIFO by walking that resolved path down from the workspace one directory
at a time, following no symlink: code still running in the sandbox that swaps a directory for a
symlink after the check makes the open fail instead of leave the workspace. The harness only
ever reads and writes bytes here; it never imports or runs what it finds.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from pathlib import Path, PurePosixPath

from perfgym.agent.tools.base import ToolInputError
from perfgym.sandbox import WORKSPACE
from perfgym.tasks.spec import TaskSpec

BASELINE_NAME = "baseline.py"


def prepare_workspace(spec: TaskSpec, workspace: Path) -> Path:
    """Create the workspace (if needed) holding a fresh copy of the task's baseline."""
    workspace.mkdir(parents=True, exist_ok=True)
    target = workspace / BASELINE_NAME
    shutil.copyfile(spec.baseline_path, target)
    return target


class Workspace:
    """The directory an episode's files live in; paths are given relative to it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))

    def resolve(self, path: str) -> Path:
        """The real host path of `path`, which must stay inside the workspace.

        `/workspace/...` (how the directory looks from inside the sandbox) is accepted as an
        alias; any other absolute path is refused."""
        if not isinstance(path, str) or not path.strip():
            raise ToolInputError("The path is empty; give a path relative to the workspace.")
        if "\x00" in path:
            raise ToolInputError("The path contains a NUL character.")
        pure = PurePosixPath(path.strip())
        if pure.is_absolute():
            if pure == PurePosixPath(WORKSPACE) or pure.is_relative_to(WORKSPACE):
                pure = pure.relative_to(WORKSPACE)
            else:
                raise ToolInputError(
                    f"{path!r} is an absolute path outside the workspace; use a path relative "
                    "to the workspace, such as 'optimized.py'."
                )
        try:
            real = Path(os.path.realpath(self.root / pure))
        except OSError as exc:  # a symlink on the way vanished while being read
            raise ToolInputError(f"Cannot resolve {path!r}: {exc.strerror}.") from None
        if real != self.root and not real.is_relative_to(self.root):
            raise ToolInputError(
                f"{path!r} resolves outside the workspace (through '..' or a symlink); only "
                "files inside the workspace can be used."
            )
        return real

    def relative(self, real: Path) -> str:
        """How the agent names a resolved path: relative to the workspace, '.' for the root."""
        rel = real.relative_to(self.root).as_posix()
        return rel or "."

    def read_bytes(self, path: str, max_bytes: int) -> tuple[bytes, int]:
        """Up to `max_bytes` of a regular file, and its full size."""
        real = self.resolve(path)
        fd = self._open_regular(real, path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            chunks, kept = [], 0
            while kept < max_bytes:
                chunk = os.read(fd, min(1 << 20, max_bytes - kept))
                if not chunk:
                    break
                chunks.append(chunk)
                kept += len(chunk)
            return b"".join(chunks), size
        finally:
            os.close(fd)

    def write_bytes(self, path: str, data: bytes) -> Path:
        """Write a regular file (creating parent directories), never through a symlink."""
        real = self.resolve(path)
        if real == self.root or real.is_dir():
            raise ToolInputError(f"{path!r} is a directory; give a file path.")
        if real.is_symlink() or (real.exists() and not real.is_file()):
            raise ToolInputError(f"{path!r} exists and is not a regular file.")
        # no O_TRUNC: only a file found to be regular is emptied
        fd = self._open_regular(real, path, os.O_WRONLY | os.O_CREAT, make_parents=True)
        try:
            os.ftruncate(fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        return real

    def file_info(self, path: str) -> tuple[Path, os.stat_result]:
        """The resolved path and stat of an existing regular file (for validation)."""
        real = self.resolve(path)
        fd = self._open_regular(real, path, os.O_RDONLY)
        try:
            return real, os.fstat(fd)
        finally:
            os.close(fd)

    def _open_regular(self, real: Path, shown: str, flags: int, make_parents: bool = False) -> int:
        """Open `real` (a path `resolve` returned) as a regular file, without blocking on a FIFO.

        The open walks `real` down from the workspace root, each directory opened relative to
        the one before and none through a symlink (there is none in a realpath, unless one was
        swapped in since), so the file opened is inside the workspace whatever changes meanwhile.
        `make_parents` creates missing directories on the way."""
        *dirs, name = real.relative_to(self.root).parts or (".",)
        dir_flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        dir_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in dirs:
                try:
                    if make_parents:
                        with contextlib.suppress(FileExistsError):
                            os.mkdir(part, 0o777, dir_fd=dir_fd)
                    next_fd = os.open(part, dir_flags, dir_fd=dir_fd)
                except OSError as exc:
                    raise _open_error(exc, shown, parent=True) from None
                os.close(dir_fd)
                dir_fd = next_fd
            flags |= os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            try:
                fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
            except OSError as exc:
                raise _open_error(exc, shown, parent=False) from None
        finally:
            os.close(dir_fd)
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            what = (
                "a directory; use list_files for it" if stat.S_ISDIR(mode) else "not a regular file"
            )
            raise ToolInputError(f"{shown!r} is {what}.")
        return fd


def _open_error(exc: OSError, shown: str, parent: bool) -> ToolInputError:
    """What the agent is told when opening (a directory on the way to) `shown` fails."""
    if isinstance(exc, FileNotFoundError):
        return ToolInputError(f"{shown!r} does not exist in the workspace.")
    if parent and exc.errno == errno.ENOTDIR:
        return ToolInputError(f"A parent of {shown!r} is a file, not a directory.")
    if exc.errno in (errno.ELOOP, errno.EMLINK):  # realpath left no symlink: it is new or a loop
        where = "a directory on its path" if parent else "it"
        return ToolInputError(
            f"{shown!r} cannot be opened: {where} is a symlink (a loop, or swapped in while it "
            "was being opened)."
        )
    if exc.errno == errno.EISDIR:
        return ToolInputError(f"{shown!r} is a directory; use list_files for it.")
    return ToolInputError(f"Cannot open {shown!r}: {exc.strerror}.")
