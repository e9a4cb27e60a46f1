"""Write-then-rename, so a crash or a bad input never leaves a half-written file behind.

Output paths follow three rules, for every command that writes:

* a file result is written to a temporary beside its target and renamed onto it, so the
  target is either the old file or the whole new one; it never replaces a folder;
* a folder given where a command writes one file receives that file under a fixed name
  (`output_file`): `evaluate --out DIR` writes DIR/scores.tsv, `bench --out DIR` DIR/bench.json;
* missing parent folders are created; nothing outside the target is ever removed.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import InputError


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
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise InputError(path, "expected a file or folder name to write, not a reference to an existing folder")
    make_parents(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        yield tmp
        if path.exists() or path.is_symlink():
            if not tmp.is_dir() and path.is_dir():
                raise InputError(path, "is a folder; refusing to replace it with a file")
            if tmp.is_dir() and not _is_folder(path):
                raise InputError(path, "is a file or link; refusing to replace it with a folder")
            if tmp.is_dir():
                shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


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
    return path


def output_folder(out: str | Path) -> Path:
    """A folder a command writes several files into: it may exist (it is written into) or be
    created with its parents; an existing file there is refused."""
    path = Path(out)
    if not str(out):
        raise InputError(None, "--out is empty; expected a folder path")
    if path.exists() and not path.is_dir():
        raise InputError(path, "is a file; expected a folder (it is created if missing)")
    check_parents(path / "x")
    return path
