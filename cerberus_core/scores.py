"""Score tables: one small table per (model, dataset, split), keyed by (question id, candidate index).

Teacher outputs are data (style guide, point 4): computed once, saved as a TSV with a
JSON sidecar holding the fingerprints of what produced them, and checked on load so
a stale table is never silently used.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path
from .data import AS2Dataset
from .errors import InputError

KEY_COLUMNS = ("qid", "cand_idx", "label")


@dataclass
class ScoreTable:
    """Per-pair scores; `columns` maps a name ("score", "pooled", "head0", ...) to values."""

    qids: list[str]
    cand_idx: np.ndarray
    labels: np.ndarray
    columns: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.qids)
        for name, values in self.columns.items():
            if len(values) != n:
                raise ValueError(f"column {name!r} has {len(values)} values for {n} pairs")
            if not np.all(np.isfinite(values)):
                raise ValueError(f"column {name!r} holds NaN or infinite scores; refusing to store them")

    @classmethod
    def for_dataset(cls, ds: AS2Dataset, columns: dict[str, np.ndarray], meta: dict[str, Any]) -> ScoreTable:
        qids, cand_idx, labels = ds.flat()
        meta = {"data_fingerprint": ds.fingerprint(), "dataset": ds.name, "split": ds.split,
                "filter": ds.filter, **meta}
        return cls(list(qids), np.asarray(cand_idx), np.asarray(labels), dict(columns), meta)

    def head_columns(self) -> list[str]:
        return sorted((c for c in self.columns if c.startswith("head")), key=lambda c: int(c[4:]))

    def save(self, path: str | Path) -> Path:
        """Write `path` (TSV) and `path`.json (meta) atomically."""
        path = Path(path)
        names = list(self.columns)
        with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow([*KEY_COLUMNS, *names])
            for i, qid in enumerate(self.qids):
                values = [repr(float(self.columns[n][i])) for n in names]
                writer.writerow([qid, int(self.cand_idx[i]), int(self.labels[i]), *values])
        with atomic_path(meta_path(path)) as tmp:
            tmp.write_text(json.dumps(self.meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path, expect: dict[str, Any] | None = None) -> ScoreTable:
        """Read a table; `expect` lists meta values that must match (fingerprints, settings)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "score table not found")
        meta = json.loads(meta_path(path).read_text(encoding="utf-8")) if meta_path(path).is_file() else {}
        stale = {k: (meta.get(k), v) for k, v in (expect or {}).items() if meta.get(k) != v}
        if stale:
            key, (found, wanted) = next(iter(stale.items()))
            raise InputError(path, f"stale score table: {key} is {found!r}, expected {wanted!r}; recompute it")
        qids, cand_idx, labels, rows = [], [], [], []
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t")
            header = next(reader, None)
            if header is None or tuple(header[:3]) != KEY_COLUMNS or len(header) < 4:
                raise InputError(path, f"expected a header {' '.join(KEY_COLUMNS)} <score columns> (tab-separated)", 1)
            for line, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    raise InputError(path, f"expected {len(header)} tab-separated fields, got {len(row)}", line)
                try:
                    values = [float(v) for v in row[3:]]
                    idx, label = int(row[1]), int(row[2])
                except ValueError:
                    raise InputError(path, "expected an integer cand_idx and label and numeric scores", line) from None
                if not all(math.isfinite(v) for v in values):
                    raise InputError(path, "NaN or infinite score", line)
                qids.append(row[0])
                cand_idx.append(idx)
                labels.append(label)
                rows.append(values)
        matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(header) - 3)
        columns = {name: matrix[:, j] for j, name in enumerate(header[3:])}
        return cls(qids, np.asarray(cand_idx), np.asarray(labels), columns, meta)

    def aligned(self, ds: AS2Dataset, column: str = "score") -> np.ndarray:
        """The column's values in the dataset's pair order; every pair must be present."""
        index = {(q, int(c)): i for i, (q, c) in enumerate(zip(self.qids, self.cand_idx))}
        qids, cand_idx, _ = ds.flat()
        try:
            rows = [index[(q, int(c))] for q, c in zip(qids, cand_idx)]
        except KeyError as err:
            raise InputError(self.meta.get("path"), f"score table lacks pair {err.args[0]} of {ds.name}/{ds.split}") from None
        return self.columns[column][rows]


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
