"""One run per run folder: an OS file lock (flock) on RUN/.run.lock while a run writes there.

The lock belongs to the process: the OS drops it when the process ends, however it ends
(exit, exception, SIGKILL), so a killed run never leaves a stale lock. A second run into a
locked folder fails at once with one line naming the folder and the holder's process id.

The lock file holds the holder's pid. The holder deletes it before letting go, so a folder
has a lock file only while a run lives in it (or after a run was killed, when the next run
takes the file over). Deleting a lock file safely needs one rule on the taking side: after
locking, check that the path still names the file we locked, else try again.

Taking the lock is re-entrant within a process (`run_lock` inside `run_lock` on the same
folder is a no-op), so a caller may hold it around `train()`, which takes it itself.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..atomic import check_parents
from ..errors import InputError

LOCK_NAME = ".run.lock"


class RunBusy(InputError):
    """The run folder is locked by another live process (so `reproduce` can leave that run to it)."""

    def __init__(self, folder: Path, holder: str):
        self.holder = holder  # "pid N", for a worker's one line
        super().__init__(folder, f"another run ({holder}) is writing to this run folder; wait for it to end, "
                                 "or choose another output folder")


_held: dict[str, int] = {}  # real path of a folder this process has locked -> nesting depth


def _create_folders(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders this call created (outermost first)."""
    check_parents(folder / LOCK_NAME)
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        if probe == probe.parent:
            break
        probe = probe.parent
    created = []
    for path in reversed(missing):
        try:
            path.mkdir()
            created.append(path)
        except FileExistsError:
            if not path.is_dir():
                raise InputError(path, "is a file; expected a run folder") from None
        except OSError as err:
            raise InputError(path, f"cannot create the run folder ({err.strerror or err})") from None
    if not folder.is_dir():
        raise InputError(folder, "is a file; expected a run folder")
    return created


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "a process that is starting"


def _acquire(folder: Path) -> int:
    lock = folder / LOCK_NAME
    for _ in range(100):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # the folder was removed meanwhile
            _create_folders(folder)
            continue
        except OSError as err:
            raise InputError(lock, f"cannot create the run lock ({err.strerror or err})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunBusy(folder, holder) from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)  # the holder deleted the file after we opened it: lock the new one
    raise InputError(folder, "could not take the run lock (the lock file keeps changing)")


def _release(folder: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.unlink(folder / LOCK_NAME)  # while still holding it: see the module docstring
    os.close(fd)


@contextlib.contextmanager
def run_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the run lock of `folder` (created with its parents if missing) for the block.

    Folders this call created are removed again on the way out if they are still empty,
    so a refused run leaves nothing behind.
    """
    folder = Path(folder)
    key = os.path.realpath(folder)
    if key in _held:
        _held[key] += 1
        try:
            yield folder
        finally:
            _held[key] -= 1
        return
    created = _create_folders(folder)
    try:
        fd = _acquire(folder)
    except BaseException:
        _remove_if_empty(created)
        raise
    _held[key] = 1
    try:
        yield folder
    finally:
        del _held[key]
        _release(folder, fd)
        _remove_if_empty(created)


def _remove_if_empty(created: list[Path]) -> None:
    for path in reversed(created):
        try:
            path.rmdir()  # only ever an empty folder this call made
        except OSError:
            return


def is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch, or a plain process."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0


def locks_run_folder(train: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate `train(cfg, out_dir, ...)`: its main process holds the run lock of `out_dir`
    for the whole call (the other processes of a distributed run follow the main one)."""
    @functools.wraps(train)
    def locked(cfg: Any, out_dir: str | Path, *args: Any, **kwargs: Any) -> Any:
        if not is_main_process():
            return train(cfg, out_dir, *args, **kwargs)
        with run_lock(out_dir):
            return train(cfg, out_dir, *args, **kwargs)
    return locked
