"""Readers for WikiQA (tokenised and official forms), TREC-QA and users' own TSV / JSONL files, one
format detector, and the writer of the generic TSV form. Every error names the file and line."""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from ..atomic import atomic_path
from ..errors import InputError
from .dataset import AS2Dataset, Question

WIKIQA_TSV_HEADER = (
    "QuestionID", "Question", "DocumentID", "DocumentTitle", "SentenceID", "Sentence", "Label",
)
TOKS_FILES = ("a.toks", "b.toks", "id.txt", "sim.txt")


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


def plain_name(path: Path) -> Path:
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
        raise InputError(path, "no such file or folder; expected an AS2 data file or folder")
    suffix = plain_name(path).suffix.lower()
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
