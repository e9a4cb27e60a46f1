"""The registered datasets and where they are looked for: $CERBERUS_DATA, then ./data (and the
checkout's data/), then the download; `load_as2` reads a registered name or a file."""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..provenance import REPO
from .dataset import FILTERS, SPLITS, AS2Dataset, check_filter
from .download import Unreachable, download_root, download_wikiqa
from .filters import default_filter
from .readers import READERS, detect_format, plain_name


# --------------------------------------------------------------------------- registered datasets
@dataclass(frozen=True)
class _Registered:
    folder: str                                # under the data root
    files: dict[str, tuple[str, ...]]          # split -> accepted names, first found wins
    how: str                                   # how to get it, for the not-found error
    fmt: str                                   # key in READERS
    fallback: _Registered | None = None        # the same data in another form, read if absent
    in_archive: bool = False                   # the official WikiQA archive holds it


_WIKIQA_HOW = ("copy the {train,dev,test}/ folders of castorini/data WikiQA/ into DATA/wikiqa or "
               "the official WikiQA-{train,dev,test}.tsv into DATA/wikiqa_tsv "
               "(`python -m cerberus_core download`)")
DATASETS: dict[str, _Registered] = {
    "wikiqa": _Registered(
        "wikiqa", {s: (s,) for s in SPLITS}, _WIKIQA_HOW, "wikiqa-toks",
        fallback=_Registered("wikiqa_tsv", {s: (f"WikiQA-{s}.tsv",) for s in SPLITS},
                             _WIKIQA_HOW, "wikiqa-official"),
        in_archive=True),
    "wikiqa-tsv": _Registered(
        "wikiqa_tsv", {"train": ("WikiQA-train.tsv",), "dev": ("WikiQA-dev.tsv",),
                       "test": ("WikiQA-test-gold.tsv", "WikiQA-test.tsv")},
        "run `python -m cerberus_core download` (official WikiQACorpus.zip into "
        "DATA/wikiqa_tsv)", "wikiqa-tsv", in_archive=True),
    "trecqa": _Registered(
        "trecqa", {"train": ("TRAIN.xml",), "dev": ("DEV.xml",), "test": ("TEST.xml",)},
        "copy TRAIN.xml, DEV.xml, TEST.xml from castorini/data TrecQA/data/ into DATA/trecqa",
        "trecqa"),
}


def data_roots(data_root: str | Path | None = None) -> list[Path]:
    """Where registered datasets are looked for, in order.

    An explicit data_root is the only place searched. Otherwise: $CERBERUS_DATA (which must then
    be a folder: a set variable that names nothing is an error, never silently skipped), ./data,
    then data/ of the repository (so notebooks/ works); with WikiQA in none of them it is downloaded.
    """
    if data_root is not None:
        return [Path(data_root)]
    env = os.environ.get("CERBERUS_DATA")
    roots = []
    if env:
        if not Path(env).is_dir():
            raise InputError(env, "$CERBERUS_DATA names no folder; set it to the folder holding the datasets "
                                  "(wikiqa/, wikiqa_tsv/, trecqa/) or unset it to use ./data")
        roots.append(Path(env))
    roots += [Path.cwd() / "data", REPO / "data"]
    return list(dict.fromkeys(Path(os.path.abspath(r)) for r in roots))


def _forms(reg: _Registered) -> list[_Registered]:
    return [reg] if reg.fallback is None else [reg, *_forms(reg.fallback)]


def _candidates(reg: _Registered, split: str, roots: Sequence[Path]) -> list[tuple[Path, str]]:
    """(path, reader format) that would hold the split, in search order: a form in every root
    before the next form, so a fallback is read only when no root has the dataset's own form."""
    return [(root / form.folder / fname, form.fmt) for form in _forms(reg) for root in roots
            for fname in form.files[split]]


def _locate(name: str, split: str, roots: Sequence[Path]) -> tuple[Path, str] | None:
    return next((c for c in _candidates(DATASETS[name], split, roots) if c[0].exists()), None)


def _download_if_absent(name: str, data_root: str | Path | None) -> bool:
    """Fetch the official WikiQA archive when `name` comes from it and no data root holds any
    WikiQA form at all (a partial copy is the user's to complete); True if it did."""
    roots = data_roots(data_root)
    archive = [n for n, reg in DATASETS.items() if reg.in_archive]
    if name not in archive or any(_locate(n, s, roots) for n in archive for s in SPLITS):
        return False
    try:
        out = download_wikiqa(download_root(data_root))
    except Unreachable as e:
        raise InputError(name, f"WikiQA not found (looked in: {', '.join(map(str, roots))}) and "
                               f"not downloadable ({e}). Two ways to get it: copy a folder "
                               "holding wikiqa/ (castorini {train,dev,test}/) or wikiqa_tsv/ "
                               "(official WikiQA-*.tsv) to this machine and set $CERBERUS_DATA "
                               "to it, or run `python -m cerberus_core download` on a machine "
                               "with internet and copy the data/ folder it writes to ./data "
                               "here") from None
    print(f"WikiQA was in no data root: downloaded the official archive into {out}",
          file=sys.stderr)
    return True


def find_data(name: str, split: str, data_root: str | Path | None = None) -> Path:
    """Path of a registered dataset split: the first data root that holds it (in its own form,
    else its fallback form); WikiQA is downloaded first when no root holds any of it."""
    return _resolve(name, split, data_root)[0]


def _resolve(name: str, split: str, data_root: str | Path | None) -> tuple[Path, str]:
    """(path, reader format) of a registered split, downloading WikiQA if need be."""
    if split not in SPLITS:
        raise InputError(name, f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    roots = data_roots(data_root)
    found = _locate(name, split, roots)
    if found is None and _download_if_absent(name, data_root):
        found = _locate(name, split, roots)
    if found is None:
        raise _not_found(name, split, roots)
    return found


def _not_found(name: str, split: str, roots: Sequence[Path]) -> InputError:
    reg = DATASETS[name]
    tried = ", ".join(str(path) for path, _ in _candidates(reg, split, roots))
    return InputError(name, f"split {split!r} not found; looked in: {tried}. "
                            f"To get it: {reg.how}, or set $CERBERUS_DATA to the data folder")


def load_as2(name_or_path: str, split: str | None = None, filter: str | None = None,
             data_root: str | Path | None = None) -> AS2Dataset:
    """Load a registered dataset split (wikiqa, wikiqa-tsv, trecqa) or a file/folder path.

    The filter defaults to `default_filter(split)`.
    """
    policy = check_filter(filter or default_filter(split))
    if name_or_path in DATASETS:
        if split is None:
            raise InputError(name_or_path, f"a registered dataset needs split= one of "
                                           f"{', '.join(SPLITS)}")
        (path, fmt), name = _resolve(name_or_path, split, data_root), name_or_path
    else:
        path = Path(name_or_path)
        if not path.exists():
            raise InputError(path, f"no such file or folder; registered datasets: {', '.join(DATASETS)}")
        fmt, name = detect_format(path), plain_name(path).stem
    questions = [q for q in READERS[fmt](path) if FILTERS[policy](q)]
    return AS2Dataset(name, split, questions, str(path), policy)


def is_registered_source(name: str, split: str | None, source: str | Path) -> bool:
    """Whether `source` is where registered dataset `name` keeps `split`, in any of its forms:
    then the dataset is named by `name`, which finds it again on another machine."""
    reg, source = DATASETS.get(name), Path(source)
    return reg is not None and split in SPLITS and any(
        source.parent.name == form.folder and source.name in form.files[split]
        for form in _forms(reg))
