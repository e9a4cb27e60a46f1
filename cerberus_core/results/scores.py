"""Score tables: one small table per (model, dataset, split), keyed by (question id, candidate index).

Teacher outputs are data: computed once, saved as a TSV with a
JSON sidecar holding the fingerprints of what produced them, and checked on load so
a stale table is never silently used.

A saved table holds scores only, never gold labels: some datasets (WikiQA) may not be
redistributed, and committed tables must not carry them. The sidecar names the dataset,
split and filter the table was made for; `load` re-joins the labels from that dataset.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atomic import WriteError, atomic_paths
from ..data import DATASETS, AS2Dataset, find_data, is_registered_source, load_as2
from ..errors import InputError
from .metrics import metrics_with_ci

if TYPE_CHECKING:
    from ..model.modeling import CerberusForRanking

KEY_COLUMNS = ("qid", "cand_idx")
DATASET_META = ("dataset", "split", "filter")  # what a saved table needs to get its labels back
TABLE_CHECKSUM = "table_sha256"  # sidecar key: the table file it was written with (a mismatched pair is refused)


def head_names(names: Iterable[str]) -> list[str]:
    """The "head<i>" names among `names` in head order: head10 after head9, not after head1."""
    return sorted((n for n in names if re.fullmatch(r"head\d+", n)), key=lambda n: int(n[4:]))


@dataclass
class ScoreTable:
    """Per-pair scores; `columns` maps a name ("score", "pooled", "head0", ...) to values.

    `labels` are held in memory only: `save` drops them and `load` re-joins them from the
    dataset named in `meta`. `path` is the file a table was loaded from (None otherwise).
    """

    qids: list[str]
    cand_idx: np.ndarray
    labels: np.ndarray
    columns: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        n = len(self.qids)
        for name, values in self.columns.items():
            if len(values) != n:
                raise ValueError(f"column {name!r} has {len(values)} values for {n} pairs")
            if not np.all(np.isfinite(values)):
                raise ValueError(f"column {name!r} holds NaN or infinite scores; refusing to store them")

    @classmethod
    def for_dataset(cls, ds: AS2Dataset, columns: dict[str, np.ndarray], meta: dict[str, Any]) -> ScoreTable:
        qids, cand_idx, labels = ds.pair_arrays()
        return cls(list(qids), np.asarray(cand_idx), np.asarray(labels), dict(columns), {**dataset_meta(ds), **meta})

    def head_columns(self) -> list[str]:
        return head_names(self.columns)

    def key_index(self) -> dict[tuple[str, int], int]:
        """Row of each (qid, cand_idx): tables are joined by key, never by position."""
        return {(q, int(c)): i for i, (q, c) in enumerate(zip(self.qids, self.cand_idx))}

    def save(self, path: str | Path) -> Path:
        """Write `path` (TSV: qid, cand_idx, scores; no labels) and `path`.json (meta) atomically.

        The meta must name the dataset, split and filter the table was made for (as
        `for_dataset` records), since `load` gets the labels from there.
        """
        path = Path(path)
        missing = [k for k in DATASET_META if k not in self.meta]
        if missing or not isinstance(self.meta.get("dataset"), str) or not self.meta["dataset"]:
            raise InputError(path, f"cannot save a score table whose meta lacks {', '.join(missing) or 'a dataset name'}: "
                                   "saved tables hold no labels, so the .json sidecar must name the dataset, "
                                   "split and filter they were made for; make the table with "
                                   "ScoreTable.for_dataset or copy the meta of the table it came from")
        names = list(self.columns)
        # one unit: both written before either is renamed, the sidecar (holding the table's
        # checksum) first, so a crash between the renames leaves a pair `load` refuses
        try:
            with atomic_paths(meta_path(path), path) as (meta_tmp, tmp):
                with tmp.open("w", newline="", encoding="utf-8") as f:
                    writer = csv.writer(f, delimiter="\t", lineterminator="\n")
                    writer.writerow([*KEY_COLUMNS, *names])
                    for i, qid in enumerate(self.qids):
                        values = [repr(float(self.columns[n][i])) for n in names]
                        writer.writerow([qid, int(self.cand_idx[i]), *values])
                meta = {**self.meta, TABLE_CHECKSUM: file_fingerprint(tmp)}
                meta_tmp.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        except WriteError as err:  # the pair is the unit: name the table
            raise WriteError(path, f"could not be written with its sidecar {meta_path(path).name} ({err.reason}); "
                                   "the previous pair, if any, is unchanged", reason=err.reason) from None
        return path

    @classmethod
    def load(cls, path: str | Path, expect: dict[str, Any] | None = None,
             data_root: str | Path | None = None) -> ScoreTable:
        """Read a table; `expect` lists meta values that must match (fingerprints, settings).

        Labels come from the dataset named in the sidecar (`load_as2(dataset, split,
        filter="none", data_root=data_root)`), looked up by (qid, cand_idx).
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "score table not found")
        meta = _read_meta(meta_path(path))
        checksum = meta.pop(TABLE_CHECKSUM, None)  # absent from tables written before it was recorded
        stale = {k: (meta.get(k), v) for k, v in (expect or {}).items() if meta.get(k) != v}
        if stale:
            key, (found, wanted) = next(iter(stale.items()))
            raise InputError(path, f"stale score table: {key} is {found!r}, expected {wanted!r}; recompute it")
        qids, cand_idx, names, rows, lines = _read_rows(path)
        matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
        columns = {name: matrix[:, j] for j, name in enumerate(names)}
        if not (isinstance(meta.get("dataset"), str) and meta["dataset"]):
            raise InputError(meta_path(path), "score table has no labels and its .json sidecar names no dataset "
                                              "to take them from (expected keys: " + ", ".join(DATASET_META) + ")")
        labels = _join_labels(path, meta, qids, cand_idx, lines, data_root)
        if checksum is not None and checksum != file_fingerprint(path):
            raise InputError(path, f"does not match its sidecar {meta_path(path).name} (written with another "
                                   "version of the table: a write was interrupted, or one of the two was "
                                   "replaced); recompute the table")
        return cls(qids, np.asarray(cand_idx, dtype=np.int64), labels, columns, meta, path)

    @classmethod
    def load_teacher(cls, path: str | Path, data_root: str | Path | None = None) -> ScoreTable:
        """A teacher's table (what `score` writes: one "score" column of KD targets), refused in one
        line when it is a table of another kind (an evaluated student's pooled and head columns)."""
        table = cls.load(path, data_root=data_root)
        if "score" not in table.columns:
            raise InputError(path, f"has columns {list(table.columns)}; expected a teacher's table (a 'score' "
                                   "column, as `cerberus score` writes)")
        return table

    def aligned(self, ds: AS2Dataset, column: str = "score") -> np.ndarray:
        """The column's values in the dataset's pair order; every pair must be present."""
        index = self.key_index()
        qids, cand_idx, _ = ds.pair_arrays()
        try:
            rows = [index[(q, int(c))] for q, c in zip(qids, cand_idx)]
        except KeyError as err:
            raise InputError(self.path, f"score table lacks pair {err.args[0]} of {ds.name}/{ds.split}") from None
        return self.columns[column][rows]


def dataset_meta(ds: AS2Dataset) -> dict[str, Any]:
    """The meta that ties a table to `ds`: its fingerprint and how to load it again (for labels).

    `dataset` is the registered name (wikiqa, ...) when `ds` was loaded as one, else the
    absolute path of the file or folder it was read from.
    """
    return {"data_fingerprint": ds.fingerprint(), "dataset": _dataset_ref(ds), "split": ds.split,
            "filter": ds.filter}


def _dataset_ref(ds: AS2Dataset) -> str:
    """What `load_as2` needs to load `ds` again: a registered name, or a path."""
    source = Path(ds.source)
    if is_registered_source(ds.name, ds.split, ds.source):
        return ds.name
    if source.exists():
        return str(source.resolve())
    return ds.name


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        where = getattr(err, "lineno", None)
        raise InputError(path, f"corrupt score-table sidecar: not valid JSON ({getattr(err, 'msg', err)}); "
                               "recompute the table", where) from None
    if not isinstance(meta, dict):
        raise InputError(path, f"corrupt score-table sidecar: expected a JSON object, got {type(meta).__name__}")
    meta.pop("path", None)  # written by older code; the path is an attribute now
    return meta


def _read_rows(path: Path) -> tuple[list[str], list[int], list[str], list[list[float]], list[int]]:
    """(qids, cand_idx, score column names, score rows, line numbers)."""
    qids, cand_idx, rows, lines = [], [], [], []
    n_keys = len(KEY_COLUMNS)
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None or tuple(header[:n_keys]) != KEY_COLUMNS or len(header) <= n_keys:
            raise InputError(path, f"expected a header {' '.join(KEY_COLUMNS)} <score columns> (tab-separated)", 1)
        names = header[n_keys:]
        if "label" in names:  # written before tables dropped their labels: its labels may be stale
            raise InputError(path, "a score table with a label column (an old format that stored gold labels); "
                                   "recompute it (`cerberus score`)", 1)
        if len(set(names)) != len(names) or not all(names):
            raise InputError(path, "score column names must be non-empty and distinct", 1)
        seen: dict[tuple[str, int], int] = {}
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise InputError(path, f"expected {len(header)} tab-separated fields, got {len(row)}", line)
            try:
                values = [float(v) for v in row[n_keys:]]
                idx = int(row[1])
            except ValueError:
                raise InputError(path, "expected an integer cand_idx and numeric scores", line) from None
            if not all(math.isfinite(v) for v in values):
                raise InputError(path, "NaN or infinite score", line)
            if (row[0], idx) in seen:
                raise InputError(path, f"pair ({row[0]!r}, {idx}) appears twice (first at line {seen[row[0], idx]})", line)
            seen[row[0], idx] = line
            qids.append(row[0])
            cand_idx.append(idx)
            rows.append(values)
            lines.append(line)
    return qids, cand_idx, names, rows, lines


def _join_labels(path: Path, meta: dict[str, Any], qids: list[str], cand_idx: list[int], lines: list[int],
                 data_root: str | Path | None) -> np.ndarray:
    """Gold labels of the table's pairs, from the dataset its meta names."""
    name, split = meta["dataset"], meta.get("split")
    try:
        root = None if data_root is None else str(data_root)
        by_key = _dataset_labels(name, split, root, _data_stamp(name, split, data_root))
    except InputError as err:
        raise InputError(path, f"score table needs its labels from dataset {name!r} split {split!r}, "
                               f"which could not be loaded: {err}") from None
    labels = np.empty(len(qids), dtype=np.int64)
    for i, key in enumerate(zip(qids, cand_idx)):
        try:
            labels[i] = by_key[key]
        except KeyError:
            raise InputError(path, f"pair {key} is not in dataset {name!r} split {split!r}, which the table "
                                   "was made for; the table is stale or for other data: recompute it", lines[i]) from None
    return labels


def _data_stamp(name: str, split: str | None, data_root: str | Path | None) -> tuple:
    """Where the dataset lives and when it last changed, so the label cache never goes stale."""
    where = find_data(name, split, data_root) if name in DATASETS else Path(name)
    try:
        files = sorted(p for p in where.iterdir() if p.is_file()) if where.is_dir() else [where]
        return (str(where.resolve()), *((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files))
    except OSError:
        return (str(where),)  # load_as2 reports what is wrong with it


@functools.lru_cache(maxsize=16)
def _dataset_labels(name: str, split: str | None, data_root: str | None, stamp: tuple) -> dict[tuple[str, int], int]:
    """(qid, cand_idx) -> gold label of a whole split (filter none); cached, as many tables share one."""
    del stamp  # part of the cache key only
    ds = load_as2(name, split=split, filter="none", data_root=data_root)
    qids, cand_idx, labels = ds.pair_arrays()
    return dict(zip(zip(qids, cand_idx.tolist()), labels.tolist()))


def meta_path(path: str | Path) -> Path:
    return Path(f"{path}.json")


def file_fingerprint(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file (a checkpoint's weights), to tie a table to the model that made it."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def model_fingerprint(model_dir: str | Path) -> str:
    """Fingerprint of a saved model folder: its safetensors weights and config."""
    model_dir = Path(model_dir)
    parts = [file_fingerprint(p) for p in sorted(model_dir.glob("*.safetensors"))]
    parts.append(hashlib.sha256((model_dir / "config.json").read_bytes()).hexdigest())
    return hashlib.sha256("".join(parts).encode()).hexdigest()[:16]


# ------------------------------------------------------------- scoring a model
# Only `model.predict` is needed, so anything that ranks (a student, a teacher, an ensemble
# of either) makes a table; the metrics come from the table, never from the model.
def score_dataset(
    model: CerberusForRanking, ds: AS2Dataset, batch_size: int = 64, max_length: int = 128,
    meta: dict[str, Any] | None = None, progress: bool = False,
) -> ScoreTable:
    """Pooled probability and every head's margin for every pair of `ds`."""
    pooled, heads = model.predict(ds.pairs(), batch_size=batch_size, max_length=max_length,
                                  return_heads=True, show_progress_bar=progress)
    columns = {"pooled": pooled.astype(np.float64)}
    columns.update({f"head{i}": heads[:, i].astype(np.float64) for i in range(heads.shape[1])})
    return ScoreTable.for_dataset(ds, columns, {"max_length": max_length, **(meta or {})})


def teacher_table(
    model: CerberusForRanking, ds: AS2Dataset, batch_size: int = 64, max_length: int = 128,
    meta: dict[str, Any] | None = None, progress: bool = False,
) -> ScoreTable:
    """A teacher's KD targets for `ds`: one "score" column holding a logit margin, the head's
    own for a one-head model, else log p/(1-p) of the pooled probability p."""
    table = score_dataset(model, ds, batch_size, max_length, meta, progress)
    if model.config.num_heads == 1:
        margin = table.columns["head0"]
    else:
        p = np.clip(table.columns["pooled"], 1e-12, 1 - 1e-12)
        margin = np.log(p) - np.log1p(-p)
    return ScoreTable(table.qids, table.cand_idx, table.labels, {"score": margin}, table.meta)


def tie_warning(table: ScoreTable, policy: str = "none") -> str | None:
    """One line when ties decided part of the metrics (None otherwise): how many questions have
    every candidate scored alike, and the span of P@1 and MAP over the tie orders. A model that
    scores every pair alike (wrong weights, a tokenizer reading [UNK]s, a --max-length that cuts
    every pair to the same tokens) otherwise looks perfect on a file whose positives come first."""
    from .metrics import tie_report

    reports = {column: tie_report(table.qids, table.labels, table.columns[column], policy=policy)
               for column in _metric_columns(table)}
    hit = [c for c, r in reports.items() if r["all_tied"] or r["p@1"][0] != r["p@1"][1] or r["map"][0] != r["map"][1]]
    if not hit:
        return None
    first, r = hit[0], reports[hit[0]]
    also = f"; also {', '.join(hit[1:])}" if hit[1:] else ""
    return (f"{first}: {r['all_tied']} of {r['n_questions']} questions have every candidate scored alike{also}; "
            f"the tie rule (candidate order) decided {first} P@1 between {r['p@1'][0]:.3f} and {r['p@1'][1]:.3f} "
            f"and MAP between {r['map'][0]:.3f} and {r['map'][1]:.3f}: a model that scores pairs alike is broken "
            "(its weights, its tokenizer or --max-length)")


def _metric_columns(table: ScoreTable) -> list[str]:
    """The columns evaluated: pooled and each head, or every column of a table without pooled."""
    return ["pooled", *table.head_columns()] if "pooled" in table.columns else list(table.columns)


def evaluate_table(table: ScoreTable, policy: str = "none", seed: int = 0) -> dict[str, dict[str, Any]]:
    """P@1 / MAP / MRR with 95% bootstrap intervals for the pooled score and each head."""
    results = {}
    for column in _metric_columns(table):
        m = metrics_with_ci(table.qids, table.labels, table.columns[column], policy=policy, seed=seed)
        results[column] = {k: v for k, v in m.items() if k != "per_question"}
    return results
