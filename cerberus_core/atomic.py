"""Write-then-rename, so a crash or a bad input never leaves a half-written file behind.

Output paths follow these rules, for every command that writes:

* a file result is written to a temporary beside its target and renamed onto it, so the
  target is either the old file or the whole new one; it never replaces a folder;
* a folder given where a command writes one file receives that file under a fixed name
  (`output_file`): `evaluate --out DIR` writes DIR/scores.tsv, `bench --out DIR` DIR/bench.json;
* missing parent folders are created; nothing outside the target is ever removed;
* the folder a command writes into is checked writable (a real probe file, created and
  removed) before the work starts, and a write that fails all the same (a full disk, a
  quota) is a `WriteError` naming the target: its temporary is removed and the old target,
  if any, is left as it was;
* files that belong together (a score table and its sidecar) are written to temporaries
  first and renamed in a fixed order (`atomic_paths`); a reader detects a pair a crash
  left mismatched (scores.py).

Files read as input are bounded too (`read_text_bounded`): only regular files, and only
up to a size cap, so a FIFO, /dev/zero or a huge file is refused before it is read.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import InputError

MAX_TEXT_BYTES = 16 << 20  # the largest JSON file (experiment config, model config) read whole


class WriteError(InputError):
    """The file system refused to write a result (full disk, quota, read-only, permission).
    Names the target, never a temporary; nothing half-written is left behind. `reason` is
    what the OS said."""

    def __init__(self, path: str | Path | None, message: str, reason: str = ""):
        super().__init__(path, message)
        self.reason = reason


# errors that only a write can cause; a permission error only counts when it is about our temporaries
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
_ACCESS_ERRNOS = {errno.EACCES, errno.EPERM, errno.EIO}


def _os_errno(err: BaseException) -> int | None:
    """The errno of an OSError, or of a library error that wraps one (safetensors reports
    'No space left on device (os error 28)')."""
    if isinstance(err, OSError):
        return err.errno
    match = re.search(r"\(os error (\d+)\)", str(err))
    return int(match[1]) if match else None


def _write_failed(path: Path, err: BaseException, temps: list[Path]) -> WriteError | None:
    """A WriteError naming `path` when `err` is the file system refusing a write (None otherwise:
    e.g. an input that could not be read inside the block keeps its own error)."""
    code = _os_errno(err)
    name = str(getattr(err, "filename", "") or "")
    ours = not name or any(name == str(t) or name.startswith(f"{t.parent}{os.sep}") for t in temps)
    if code not in _WRITE_ERRNOS and not (code in _ACCESS_ERRNOS and ours):
        return None
    return WriteError(path, f"could not be written ({os.strerror(code)}); the previous {path.name}, if any, "
                            "is unchanged", reason=os.strerror(code))


def read_text_bounded(path: str | Path, what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `max_bytes`; a FIFO, a device (/dev/zero),
    a folder or a bigger file is refused before anything is read (reading one could block or
    fill the memory)."""
    path = Path(path)
    try:
        info = os.stat(path)
    except OSError as err:
        raise InputError(path, f"cannot be read ({err.strerror or err}); expected {what}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = ("a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode)
                else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a regular file")
        raise InputError(path, f"is {kind}; expected {what} (a regular file)")
    if info.st_size > max_bytes:
        raise InputError(path, f"is {info.st_size} bytes; expected {what} of at most {max_bytes} bytes")
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)  # the file may have grown since stat
    except OSError as err:
        raise InputError(path, f"cannot be read ({err.strerror or err}); expected {what}") from None
    if len(data) > max_bytes:
        raise InputError(path, f"is more than {max_bytes} bytes; expected {what} of at most {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(path, f"not UTF-8 text; expected {what}") from None


def _is_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def make_parents(path: str | Path) -> None:
    """Create the missing folders above `path`, or say which existing path is in the way."""
    check_parents(path)
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(parent, f"cannot create the folder ({err.strerror or err})") from None


def check_parents(path: str | Path) -> None:
    """Refuse a path whose nearest existing ancestor is not a folder (it could never be created)."""
    ancestor = Path(path).parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        if ancestor.is_symlink():  # a dangling link: mkdir would fail on it
            raise InputError(ancestor, "is a broken symbolic link; expected a folder")
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise InputError(ancestor, f"is a file, so {Path(path).parent} cannot be created under it; expected a folder")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it onto `path` only if the block succeeds.

    Works for files and folders (e.g. a saved model directory). A file never replaces a
    folder (nor a folder a file): that is refused with an InputError before anything moves.
    A folder replaces a folder of the same name (the run's best/ model, the model cache).
    """
    with atomic_paths(path) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(*paths: str | Path) -> Iterator[tuple[Path, ...]]:
    """`atomic_path` for files that belong together: one temporary per path, all moved onto
    their targets, in the order given, only once the block has written every one. A crash
    between two renames can still leave a new file beside an old one: put first the file
    whose content lets a reader detect that (scores.py renames the sidecar, which holds the
    table's checksum, before the table). A failed write (full disk, permission) is a
    WriteError naming the target; the temporaries are removed and no target changes."""
    targets = [Path(p) for p in paths]
    for path in targets:
        if path.name in ("", ".", ".."):
            raise InputError(path, "expected a file or folder name to write, not a reference to an existing folder")
        make_parents(path)
    temps: list[Path] = []
    try:
        for path in targets:
            try:
                temps.append(Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name)
            except OSError as err:
                raise _write_failed(path, err, []) or err from None
        try:
            yield tuple(temps)
        except Exception as err:
            failed = _write_failed(_target_of(err, targets, temps), err, temps)
            if failed is None:
                raise
            raise failed from None
        for path, tmp in zip(targets, temps):
            if path.exists() or path.is_symlink():
                if not tmp.is_dir() and path.is_dir():
                    raise InputError(path, "is a folder; refusing to replace it with a file")
                if tmp.is_dir() and not _is_folder(path):
                    raise InputError(path, "is a file or link; refusing to replace it with a folder")
        for path, tmp in zip(targets, temps):
            try:
                if tmp.is_dir() and path.exists():
                    shutil.rmtree(path)
                os.replace(tmp, path)
            except OSError as err:
                raise _write_failed(path, err, temps) or err from None
    finally:
        for tmp in temps:
            shutil.rmtree(tmp.parent, ignore_errors=True)


def _target_of(err: BaseException, targets: list[Path], temps: list[Path]) -> Path:
    """The target whose temporary a failed write was writing (the first when it cannot be told)."""
    name = str(getattr(err, "filename", "") or "")
    for path, tmp in zip(targets, temps):
        if name and (name == str(tmp) or name.startswith(f"{tmp.parent}{os.sep}")):
            return path
    return targets[0]


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def output_file(out: str | Path, default_name: str, companions: Iterable[str] = ()) -> Path:
    """Where a command writes its one output file: `out` itself, or `out/default_name` when
    `out` is an existing folder (or ends with a path separator). Checked before any work is
    done: the file (and each companion suffix, e.g. ".json" for a sidecar) must not be a
    folder, and its parent must be creatable."""
    text = str(out)
    path = Path(out)
    if not text:
        raise InputError(None, "--out is empty; expected a file or folder path")
    if text.endswith(("/", os.sep)) or path.is_dir():
        path = path / default_name
    return check_output_file(path, companions)


def check_output_file(path: str | Path, companions: Iterable[str] = ()) -> Path:
    """`path` (and `path` + each companion suffix) can be written as a file: none is a folder,
    and the parent folder exists or can be created."""
    path = Path(path)
    for candidate in [path, *(Path(f"{path}{suffix}") for suffix in companions)]:
        if candidate.is_dir():
            raise InputError(candidate, "is a folder; expected a file path (a file is never written over a folder)")
    check_parents(path)
    check_writable(path.parent)
    return path


def check_writable(folder: str | Path) -> None:
    """Files can be created in `folder` (or, while it is missing, in its nearest existing
    ancestor): a probe file is created and removed, so a read-only file system, a missing
    permission or a full disk is reported before any work, naming the folder."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return  # check_parents names what is in the way
    try:
        fd, probe = tempfile.mkstemp(prefix=".cerberus-probe-", dir=folder)
    except OSError as err:
        raise WriteError(folder, f"cannot write here ({err.strerror or err}); expected a folder this user "
                                 "can write to", reason=err.strerror or str(err)) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def check_free_space(path: str | Path, needed: int) -> None:
    """At least `needed` bytes are free on the file system `path` will be written to (its
    nearest existing ancestor); checked before the work that produces the file."""
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        info = os.statvfs(folder)
    except OSError:
        return  # nothing to tell: the write reports it
    free = info.f_bavail * info.f_frsize
    if free < needed:
        raise WriteError(folder, f"{free} bytes free on this file system, {Path(path).name} needs about "
                                 f"{needed}: {os.strerror(errno.ENOSPC)}; free some space or choose another --out",
                         reason=os.strerror(errno.ENOSPC))


def output_folder(out: str | Path) -> Path:
    """A folder a command writes several files into: it may exist (it is written into) or be
    created with its parents; an existing file there is refused."""
    path = Path(out)
    if not str(out):
        raise InputError(None, "--out is empty; expected a folder path")
    if path.exists() and not path.is_dir():
        raise InputError(path, "is a file; expected a folder (it is created if missing)")
    check_parents(path / "x")
    check_writable(path)
    return path
