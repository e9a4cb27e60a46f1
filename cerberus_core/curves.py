"""A run's training curve, curve.tsv: one row per step with the epoch and every loss part
(total, per head, pooler). Torch-free, so figures and notebooks read curves without torch."""
from __future__ import annotations

import csv
from pathlib import Path

from .atomic import atomic_path

INT_COLUMNS = ("step", "epoch")


def read_curve(run_dir: str | Path, upto: int | None = None) -> list[dict[str, float]]:
    """The rows of RUN_DIR/curve.tsv (none if it is absent), up to step `upto` when given:
    a resumed run keeps only the rows its checkpoint had reached."""
    path = Path(run_dir) / "curve.tsv"
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as f:
        rows = [{k: int(float(v)) if k in INT_COLUMNS else float(v) for k, v in row.items()}
                for row in csv.DictReader(f, delimiter="\t")]
    return rows if upto is None else [r for r in rows if r["step"] <= upto]


def write_curve(run_dir: str | Path, rows: list[dict[str, float]]) -> None:
    """Write RUN_DIR/curve.tsv atomically: step and epoch first, then the loss parts by name."""
    names = sorted({k for r in rows for k in r}, key=lambda k: (k not in INT_COLUMNS, k))
    with atomic_path(Path(run_dir) / "curve.tsv") as tmp, tmp.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
