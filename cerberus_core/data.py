"""AS2 data: one in-memory form, readers for WikiQA / TREC-QA / users' own files, filters, stats.

Every candidate keeps a stable address (question id, candidate index): the index is its position
within its question in the source file. Filters drop whole questions only, so addresses survive
filtering and can key caches (teacher scores) across runs. Files may be gzipped.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .atomic import atomic_path
from .download import Unreachable, fetch
from .errors import InputError
from .filters import RULES, default_filter

WIKIQA_URL = (
    "https://download.microsoft.com/download/E/5/F/"
    "E5FCFCEE-7005-4814-853D-DAA7C66507E0/WikiQACorpus.zip"
)
# sha256 of that archive (7,094,233 bytes), recorded from the official archive by Hugging Face
# `datasets` (datasets/wiki_qa/dataset_infos.json and urls_checksums/checksums.txt).
WIKIQA_SHA256 = "467c13f9e104552c0a9c16f41836ca8d89f9c0cc4b6e4355e104d5c3109ffa45"
SPLITS = ("train", "dev", "test")
WIKIQA_TSV_HEADER = (
    "QuestionID", "Question", "DocumentID", "DocumentTitle", "SentenceID", "Sentence", "Label",
)
TOKS_FILES = ("a.toks", "b.toks", "id.txt", "sim.txt")
_REPO_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- in-memory form
@dataclass(frozen=True)
class Question:
    """One question with its candidates; labels[i] is 1 when candidates[i] answers it."""

    qid: str
    text: str
    candidates: tuple[str, ...]
    labels: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.candidates) != len(self.labels):
            raise ValueError(f"question {self.qid!r}: {len(self.candidates)} candidates "
                             f"but {len(self.labels)} labels")

    @property
    def n_positive(self) -> int:
        return sum(self.labels)

    @property
    def has_positive(self) -> bool:
        return self.n_positive > 0

    @property
    def has_negative(self) -> bool:
        return self.n_positive < len(self.labels)


# Which questions count: the rules of filters.RULES as predicates on one question, loosest first
# (the order of the stats columns), so a policy is a name.
FILTERS: dict[str, Callable[[Question], bool]] = {
    name: (lambda q, keeps=keeps: bool(keeps(q.n_positive, len(q.labels))))
    for name, keeps in reversed(RULES.items())
}


def check_filter(name: str) -> str:
    """Return `name` if it is a known filter policy, else raise naming the valid ones."""
    if name not in FILTERS:
        raise InputError(None, f"unknown filter {name!r}; valid filters: {', '.join(FILTERS)}")
    return name


@dataclass
class AS2Dataset:
    """Questions in source order; pair-level views are flattened in the same order."""

    name: str
    split: str | None
    questions: list[Question]
    source: str
    filter: str = "none"

    def __len__(self) -> int:
        return len(self.questions)

    def __iter__(self) -> Iterator[Question]:
        return iter(self.questions)

    def __getitem__(self, i: int) -> Question:
        return self.questions[i]

    @property
    def n_pairs(self) -> int:
        return sum(len(q.candidates) for q in self.questions)

    @property
    def n_positives(self) -> int:
        return sum(q.n_positive for q in self.questions)

    def pairs(self) -> list[tuple[str, str]]:
        """(question, candidate) texts, the model's input order."""
        return [(q.text, c) for q in self.questions for c in q.candidates]

    def keys(self) -> list[tuple[str, int]]:
        """(qid, candidate index) per pair: the stable address of each candidate."""
        return [(q.qid, i) for q in self.questions for i in range(len(q.candidates))]

    def pair_arrays(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(qids, candidate indices, labels) per pair, ready for metrics."""
        qids = [q.qid for q in self.questions for _ in q.candidates]
        idx = np.array([i for _, i in self.keys()], dtype=np.int64)
        labels = np.array([y for q in self.questions for y in q.labels], dtype=np.int64)
        return qids, idx, labels

    def fingerprint(self) -> str:
        """sha256 of the content (qids, texts, labels, in order), to detect stale caches."""
        h = hashlib.sha256()
        for q in self.questions:
            h.update(json.dumps([q.qid, q.text, q.candidates, q.labels]).encode("utf-8"))
            h.update(b"\n")
        return h.hexdigest()

    def subset(self, n_questions: int, seed: int) -> AS2Dataset:
        """A deterministic random subset of questions (kept in source order), for quick runs."""
        if n_questions < 1:
            raise ValueError(f"n_questions must be >= 1, got {n_questions}")
        n = min(n_questions, len(self.questions))
        keep = sorted(random.Random(seed).sample(range(len(self.questions)), n))
        return AS2Dataset(self.name, self.split, [self.questions[i] for i in keep],
                          self.source, self.filter)


# --------------------------------------------------------------------------- low-level reading
class _Row(NamedTuple):
    line: int  # where the row (or TREC-QA element) starts, for error messages
    qid: str | None  # None: derive from the question text
    question: str
    candidate: str | None  # None: declares the question only (TREC-QA has candidate-less ones)
    label: int


def _read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file, gunzipped if gzipped; empty, binary and non-UTF-8 files are
    rejected by line (lines of the decompressed text)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip magic: sniffed, so a .gz suffix is not required
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise InputError(path, f"corrupt gzip file ({e})") from None
    if not data.strip():
        raise InputError(path, "file is empty; expected AS2 data", line=1)
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise InputError(path, "binary file (NUL byte); expected UTF-8 text", line=line)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(path, f"not UTF-8 (byte 0x{data[e.start]:02x}); re-save the file "
                               "as UTF-8", line=line) from None
    lines = [ln.removesuffix("\r") for ln in text.split("\n")]
    return lines[:-1] if lines[-1] == "" else lines


def _text(value: str, what: str, path: Path, line: int) -> str:
    value = value.strip()
    if not value:
        raise InputError(path, f"empty {what}", line=line)
    return value


def _label(value: object, path: Path, line: int) -> int:
    s = str(value).strip()
    if s not in ("0", "1"):
        raise InputError(path, f"label must be 0 or 1, got {str(value)[:20]!r}", line=line)
    return int(s)


def text_qid(question: str) -> str:
    """A short stable id for a question given without one (same text, same id)."""
    return "q" + hashlib.sha256(question.encode("utf-8")).hexdigest()[:12]


def _group(rows: Sequence[_Row], path: Path) -> list[Question]:
    """Group rows by qid in order of first appearance; a qid must keep one question text."""
    if not rows:
        raise InputError(path, "no data rows; expected at least one (question, candidate, label)",
                         line=1)
    groups: dict[str, tuple[str, int, list[str], list[int]]] = {}
    labelled: dict[tuple[str, str], tuple[int, int]] = {}  # (qid, candidate) -> (label, line)
    for r in rows:
        qid = r.qid if r.qid is not None else text_qid(r.question)
        g = groups.setdefault(qid, (r.question, r.line, [], []))
        if g[0] != r.question:
            raise InputError(path, f"question id {qid!r} has a different question text than at "
                                   f"line {g[1]}", line=r.line)
        if r.candidate is not None:
            label, line = labelled.setdefault((qid, r.candidate), (r.label, r.line))
            if label != r.label:
                raise InputError(path, f"candidate {r.candidate[:40]!r} of question {qid!r} is labelled {r.label} "
                                       f"here and {label} at line {line}; one candidate has one label",
                                 line=r.line)
            g[2].append(r.candidate)
            g[3].append(r.label)
    return [Question(qid, text, tuple(c), tuple(y)) for qid, (text, _, c, y) in groups.items()]


def _fields(line: str, n: int, path: Path, lineno: int) -> list[str]:
    parts = line.split("\t")
    if len(parts) != n:
        raise InputError(path, f"expected {n} tab-separated fields, got {len(parts)}", line=lineno)
    return parts


# --------------------------------------------------------------------------- readers
def read_wikiqa_toks(folder: str | Path) -> list[Question]:
    """WikiQA as four line-aligned files (castorini layout): question, candidate, qid, label."""
    folder = Path(folder)
    columns = {}
    for name in TOKS_FILES:
        if not (folder / name).is_file():
            raise InputError(folder / name, f"missing; a WikiQA toks folder needs "
                                            f"{', '.join(TOKS_FILES)}")
        columns[name] = _read_lines(folder / name)
    n = max(len(c) for c in columns.values())
    for name, col in columns.items():
        if len(col) < n:
            longest = max(columns, key=lambda k: len(columns[k]))
            raise InputError(folder / name, f"file ends at line {len(col)} but {longest} has {n} "
                                            "lines; the four files must be line-aligned",
                             line=len(col) + 1)
    rows = []
    for i, (q, c, qid, y) in enumerate(zip(*(columns[k] for k in TOKS_FILES)), start=1):
        rows.append(_Row(i, _text(qid, "question id", folder / "id.txt", i),
                         _text(q, "question", folder / "a.toks", i),
                         _text(c, "candidate", folder / "b.toks", i),
                         _label(y, folder / "sim.txt", i)))
    return _group(rows, folder / "id.txt")


def read_wikiqa_tsv(path: str | Path) -> list[Question]:
    """WikiQA's official 7-column TSV (plain tabs, no quoting: sentences contain quotes)."""
    path = Path(path)
    lines = _read_lines(path)
    header = tuple(h.strip() for h in lines[0].split("\t"))
    if header != WIKIQA_TSV_HEADER:
        raise InputError(path, f"expected header {' '.join(WIKIQA_TSV_HEADER)} (tab-separated)",
                         line=1)
    rows = []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        qid, q, _, _, _, c, y = _fields(line, 7, path, i)
        rows.append(_Row(i, _text(qid, "QuestionID", path, i), _text(q, "question", path, i),
                         _text(c, "sentence", path, i), _label(y, path, i)))
    return _group(rows, path)


def read_wikiqa_official(path: str | Path) -> list[Question]:
    """The official WikiQA TSV read as dataset `wikiqa` (the castorini toks form), for machines
    that have only the official archive.

    As castorini/data's create-train-dev-test-data.py makes the toks form: a question's id is its
    1-based position among all questions of the file, and questions with no correct sentence are
    dropped. Ids, candidates and labels then equal the toks form's; the text stays cased and
    untokenised. A copy already stripped of those questions would shift every id, so it is refused.
    """
    questions = read_wikiqa_tsv(path)
    if all(q.has_positive for q in questions):
        raise InputError(path, "every question here has a correct sentence, so this is a filtered "
                               "copy, not the official file: dataset 'wikiqa' numbers questions by "
                               "their position among all questions of the official file; read this "
                               "file as 'wikiqa-tsv' or get the official archive (`python -m "
                               "cerberus_core download`)")
    return [Question(str(i), q.text, q.candidates, q.labels)
            for i, q in enumerate(questions, start=1) if q.has_positive]


_TAG = re.compile(r"^<(/?)(QApairs|question|positive|negative)(?:\s+id=(['\"])(.*)\3)?\s*>$")


def read_trecqa(path: str | Path) -> list[Question]:
    """TREC-QA jacana pseudo-XML, parsed line by line (it is not well-formed XML).

    Only the first line of each element (its tab-separated tokens) is kept; the following
    lines (POS, dependencies, NER) are ignored.
    """
    path = Path(path)
    rows: list[_Row] = []
    qid = question = None        # current <QApairs> block
    block_line = 0
    elem: str | None = None      # open element tag
    elem_line = 0
    first: str | None = None     # first line of the open element
    for i, line in enumerate(_read_lines(path), start=1):
        m = _TAG.match(line.strip())
        if elem is not None:
            if m and m[1] == "/" and m[2] == elem:
                text = _text(" ".join((first or "").split()), f"<{elem}> element", path, elem_line)
                if elem == "question":
                    question = text
                    rows.append(_Row(elem_line, qid, question, None, 0))
                else:
                    rows.append(_Row(elem_line, qid, question, text, int(elem == "positive")))
                elem = None
            elif m:
                raise InputError(path, f"<{elem}> element is not closed: found {line.strip()} "
                                       f"at line {i}", line=elem_line)
            elif first is None:
                first = line
            continue
        if not line.strip():
            continue
        if qid is None:
            if not (m and m[2] == "QApairs" and not m[1] and m[4]):
                raise InputError(path, f"expected <QApairs id='...'>, got {line.strip()[:40]!r}",
                                 line=i)
            qid, question, block_line = m[4], None, i
        elif m and not m[1] and m[2] in ("question", "positive", "negative"):
            if (m[2] == "question") != (question is None):
                want = "a <question> first" if question is None else "one <question> only"
                raise InputError(path, f"<QApairs id='{qid}'> must have {want}", line=i)
            elem, elem_line, first = m[2], i, None
        elif m and m[1] and m[2] == "QApairs":
            if question is None:
                raise InputError(path, f"<QApairs id='{qid}'> has no <question>", line=block_line)
            qid = None
        else:
            raise InputError(path, "expected <question>, <positive>, <negative> or </QApairs>, "
                                   f"got {line.strip()[:40]!r}", line=i)
    if elem is not None:
        raise InputError(path, f"truncated: <{elem}> element is not closed at end of file",
                         line=elem_line)
    if qid is not None:
        raise InputError(path, f"truncated: <QApairs id='{qid}'> is not closed at end of file",
                         line=block_line)
    return _group(rows, path)


GENERIC_COLUMNS = ("question", "candidate", "label")


def _is_generic_header(first_line: str) -> bool:
    """A first line naming any generic column is a header (then it must name all three)."""
    return bool({h.strip().lower() for h in first_line.split("\t")} & set(GENERIC_COLUMNS))


def read_generic_tsv(path: str | Path) -> list[Question]:
    """Users' TSV: header with question, candidate, label (qid optional; extra columns ignored),
    or no header and exactly question, candidate, label (the layout of WikiQA's .txt files).

    Fields are split on tabs with no quoting, like WikiQA's own files. Without a header there is
    no qid: rows of one question text form one question, as in a headed file without qid.
    """
    path = Path(path)
    lines = _read_lines(path)
    headed = _is_generic_header(lines[0])
    header = [h.strip().lower() for h in lines[0].split("\t")] if headed else list(GENERIC_COLUMNS)
    missing = [c for c in GENERIC_COLUMNS if c not in header]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}; the header needs "
                               "question, candidate, label (qid optional)", line=1)
    col = {name: header.index(name) for name in (*GENERIC_COLUMNS, "qid") if name in header}
    rows = []
    for i, line in enumerate(lines, start=1):
        if (headed and i == 1) or not line.strip():
            continue
        f = _fields(line, len(header), path, i)
        if not headed and i == 1 and f[2].strip() not in ("0", "1"):
            raise InputError(path, f"label must be 0 or 1, got {f[2][:20]!r} (if this line is a "
                                   "header, it must name question, candidate, label)", line=1)
        qid = _text(f[col["qid"]], "qid", path, i) if "qid" in col else None
        rows.append(_Row(i, qid, _text(f[col["question"]], "question", path, i),
                         _text(f[col["candidate"]], "candidate", path, i),
                         _label(f[col["label"]], path, i)))
    return _group(rows, path)


def read_jsonl(path: str | Path) -> list[Question]:
    """Users' JSONL: one object per line with question, candidate, label (qid optional)."""
    path = Path(path)
    rows = []
    for i, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(path, f"invalid JSON ({e.msg})", line=i) from None
        if not isinstance(obj, dict):
            raise InputError(path, "expected a JSON object", line=i)
        missing = [k for k in GENERIC_COLUMNS if k not in obj]
        if missing:
            raise InputError(path, f"missing key(s) {', '.join(missing)}; each object needs "
                                   "question, candidate, label (qid optional)", line=i)
        for k in ("question", "candidate"):
            if not isinstance(obj[k], str):
                raise InputError(path, f"{k} must be a string", line=i)
        qid = obj.get("qid")
        if qid is not None and (isinstance(qid, bool) or not isinstance(qid, (str, int))):
            raise InputError(path, f"qid must be a string or an integer, got {json.dumps(qid)[:40]}", line=i)
        rows.append(_Row(i, None if qid is None else _text(str(qid), "qid", path, i),
                         _text(obj["question"], "question", path, i),
                         _text(obj["candidate"], "candidate", path, i),
                         _label(obj["label"], path, i)))
    return _group(rows, path)


READERS: dict[str, Callable[[str | Path], list[Question]]] = {
    "wikiqa-toks": read_wikiqa_toks,
    "wikiqa-tsv": read_wikiqa_tsv,
    "wikiqa-official": read_wikiqa_official,
    "trecqa": read_trecqa,
    "tsv": read_generic_tsv,
    "jsonl": read_jsonl,
}


def _plain_name(path: Path) -> Path:
    """The name without a .gz suffix: dev.tsv.gz is read as dev.tsv."""
    return path.with_suffix("") if path.suffix.lower() == ".gz" else path


def detect_format(path: str | Path) -> str:
    """Pick a reader from the folder layout, the extension (under any .gz), or (for .tsv/unknown)
    the first line; a first line of three tab-separated fields and no header is header-less TSV."""
    path = Path(path)
    if path.is_dir():
        if (path / "a.toks").is_file():
            return "wikiqa-toks"
        raise InputError(path, f"folder has no a.toks; expected a WikiQA toks folder "
                               f"({', '.join(TOKS_FILES)})")
    if path.exists() and not path.is_file():  # never opened: a FIFO blocks, /dev/zero never ends
        raise InputError(path, "is not a regular file (a FIFO, device or socket); expected an AS2 data file or folder")
    if not path.is_file():
        raise InputError(path, f"no such file or folder; registered datasets: "
                               f"{', '.join(DATASETS)}")
    suffix = _plain_name(path).suffix.lower()
    if suffix == ".xml":
        return "trecqa"
    if suffix == ".jsonl":
        return "jsonl"
    raw = _read_lines(path)[0]
    first = raw.strip()
    if suffix != ".tsv":
        if first.startswith("<QApairs"):
            return "trecqa"
        if first.startswith("{"):
            return "jsonl"
    if first.split("\t")[0].strip() == WIKIQA_TSV_HEADER[0]:  # near misses: the reader's error
        return "wikiqa-tsv"
    if _is_generic_header(raw) or len(raw.split("\t")) == len(GENERIC_COLUMNS):
        return "tsv"  # a bad header-less row gets the reader's error with its line
    raise InputError(path, "unrecognised format: expected a TSV header with question, "
                           f"candidate, label or {' '.join(WIKIQA_TSV_HEADER)}, header-less "
                           "question<TAB>candidate<TAB>label rows, a .jsonl, a .xml (TREC-QA) or "
                           "a WikiQA toks folder (files may be gzipped)", line=1)


def write_as2(ds: AS2Dataset, path: str | Path) -> Path:
    """Write a dataset as generic .tsv or .jsonl (with qid), atomically; read back by load_as2."""
    path = Path(path)
    if path.suffix.lower() not in (".tsv", ".jsonl"):
        raise InputError(path, "can only write .tsv or .jsonl")
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as f:
        if path.suffix.lower() == ".tsv":
            f.write("qid\tquestion\tcandidate\tlabel\n")
        for q in ds:
            for c, y in zip(q.candidates, q.labels):
                if path.suffix.lower() == ".jsonl":
                    row = {"qid": q.qid, "question": q.text, "candidate": c, "label": y}
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                elif any(ch in s for s in (q.qid, q.text, c) for ch in "\t\n\r"):
                    raise InputError(path, f"question {q.qid!r} has a tab or newline in its text; "
                                           "write .jsonl instead")
                else:
                    f.write(f"{q.qid}\t{q.text}\t{c}\t{y}\n")
    return path


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
    roots += [Path.cwd() / "data", _REPO_ROOT / "data"]
    return list(dict.fromkeys(Path(os.path.abspath(r)) for r in roots))


def download_root(data_root: str | Path | None = None) -> Path:
    """Where a download goes: the explicit data_root, else $CERBERUS_DATA, else ./data."""
    return Path(os.path.abspath(data_root or os.environ.get("CERBERUS_DATA") or "data"))


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
        fmt, name = detect_format(path), _plain_name(path).stem
    questions = [q for q in READERS[fmt](path) if FILTERS[policy](q)]
    return AS2Dataset(name, split, questions, str(path), policy)


def is_registered_source(name: str, split: str | None, source: str | Path) -> bool:
    """Whether `source` is where registered dataset `name` keeps `split`, in any of its forms:
    then the dataset is named by `name`, which finds it again on another machine."""
    reg, source = DATASETS.get(name), Path(source)
    return reg is not None and split in SPLITS and any(
        source.parent.name == form.folder and source.name in form.files[split]
        for form in _forms(reg))


# --------------------------------------------------------------------------- stats
def dataset_stats(ds: AS2Dataset) -> dict:
    """Counts for inspect-data, including what each filter policy would keep."""
    n_pairs = ds.n_pairs
    return {
        "name": ds.name, "split": ds.split, "source": ds.source, "filter": ds.filter,
        "questions": len(ds), "pairs": n_pairs, "positives": ds.n_positives,
        "no_positive": sum(not q.has_positive for q in ds),
        "all_positive": sum(q.has_positive and not q.has_negative for q in ds),
        "mean_candidates": n_pairs / len(ds) if len(ds) else 0.0,
        "positive_rate": ds.n_positives / n_pairs if n_pairs else 0.0,
        "by_filter": {
            f: {"questions": sum(map(pred, ds)),
                "pairs": sum(len(q.candidates) for q in ds if pred(q))}
            for f, pred in FILTERS.items()
        },
    }


def format_stats(stats: dict | Sequence[dict]) -> str:
    """A plain-text table, one row per split."""
    rows = [stats] if isinstance(stats, dict) else list(stats)
    head = ["split", "questions", "pairs", "positives", "cand/q", "pos.rate",
            "no-pos q", "all-pos q", *(f"{f} q/pairs" for f in FILTERS)]
    table = [head] + [
        [s["split"] or "-", str(s["questions"]), str(s["pairs"]), str(s["positives"]),
         f"{s['mean_candidates']:.2f}", f"{s['positive_rate']:.3f}", str(s["no_positive"]),
         str(s["all_positive"]),
         *(f"{s['by_filter'][f]['questions']}/{s['by_filter'][f]['pairs']}" for f in FILTERS)]
        for s in rows
    ]
    widths = [max(len(r[j]) for r in table) for j in range(len(head))]
    lines = [f"{rows[0]['name']} (filter as loaded: {rows[0]['filter']})"]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in table]
    lines += [f"source {s['split'] or '-'}: {s['source']}" for s in rows]
    return "\n".join(lines)


def inspect(name_or_path: str, split: str | None = None,
            data_root: str | Path | None = None) -> str:
    """The inspect-data report: unfiltered counts (every split of a registered name by default)."""
    if name_or_path in DATASETS and split is None:
        _download_if_absent(name_or_path, data_root)  # once, not once per split
        stats, missing = [], []
        for s in SPLITS:
            if _locate(name_or_path, s, data_roots(data_root)) is None:
                missing.append(s)
            else:
                stats.append(dataset_stats(load_as2(name_or_path, s, "none", data_root)))
        if not stats:
            raise _not_found(name_or_path, SPLITS[0], data_roots(data_root))
        note = f"\nnot found: {', '.join(missing)}" if missing else ""
        return format_stats(stats) + note
    return format_stats(dataset_stats(load_as2(name_or_path, split, "none", data_root)))


# --------------------------------------------------------------------------- download
def download_wikiqa(dest: str | Path | None = None, url: str | None = None,
                    sha256: str | None = None) -> Path:
    """Fetch the official WikiQACorpus.zip and install its three TSVs as DEST/wikiqa_tsv.

    DEST defaults to $CERBERUS_DATA, else ./data. url and sha256 default to $CERBERUS_WIKIQA_URL
    and $CERBERUS_WIKIQA_SHA256, else the official archive's (overridable for a mirror or a test
    server). The archive is kept only if its sha256 matches, and the folder appears only once all
    three files are extracted and parse, so a cut or corrupt download never half-installs.
    """
    out = download_root(dest) / "wikiqa_tsv"
    url = url or os.environ.get("CERBERUS_WIKIQA_URL") or WIKIQA_URL
    sha256 = sha256 or os.environ.get("CERBERUS_WIKIQA_SHA256") or WIKIQA_SHA256
    with tempfile.TemporaryDirectory(prefix="cerberus-wikiqa.") as tmpdir:
        archive = fetch(url, Path(tmpdir) / "WikiQACorpus.zip", sha256)
        if not zipfile.is_zipfile(archive):
            raise InputError(url, "not a zip archive; expected the official WikiQACorpus.zip")
        try:
            with zipfile.ZipFile(archive) as zf:
                names = set(zf.namelist())
                for s in SPLITS:
                    if f"WikiQACorpus/WikiQA-{s}.tsv" not in names:
                        raise InputError(url, f"archive lacks WikiQACorpus/WikiQA-{s}.tsv; "
                                              "expected the official WikiQACorpus.zip")
                with atomic_path(out) as tmp:
                    tmp.mkdir()
                    for s in SPLITS:
                        member, target = f"WikiQACorpus/WikiQA-{s}.tsv", tmp / f"WikiQA-{s}.tsv"
                        with zf.open(member) as src, target.open("wb") as dst:
                            shutil.copyfileobj(src, dst)
                        try:
                            read_wikiqa_tsv(target)
                        except InputError as e:
                            raise InputError(url, f"{member}: {e.message}", line=e.line) from None
        except zipfile.BadZipFile as e:
            raise InputError(url, f"corrupt zip archive ({e})") from None
        except OSError as e:  # a read-only or non-folder data root: say where, not a traceback
            raise InputError(out, f"cannot install the download here ({e.strerror or e}); set "
                                  "$CERBERUS_DATA to a writable folder") from None
    return out
