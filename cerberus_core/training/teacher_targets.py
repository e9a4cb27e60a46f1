"""The teacher side of distillation: a run's teacher score tables, checked against the training
data and aligned to it as one margin column per teacher."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..results.artifacts import from_run
from .config import TrainConfig
from ..data import AS2Dataset, load_as2
from ..errors import InputError
from ..results.scores import ScoreTable


def load_teacher_margins(cfg: TrainConfig, ds: AS2Dataset, run_dir: str | Path = ".") -> torch.Tensor | None:
    """(n_pairs, n_teachers) teacher margins aligned to `ds`; the data must match the tables'."""
    if cfg.strategy == "gold":
        return None
    if not cfg.teachers:
        raise InputError(None, f"strategy {cfg.strategy!r} needs teacher score tables (config field 'teachers')")
    columns, full_split = [], {}
    for folder in cfg.teachers:
        path = from_run(run_dir, folder) / f"{cfg.train_split}.tsv"
        table = ScoreTable.load_teacher(path, data_root=cfg.data_root)
        _check_teacher_data(table, cfg, ds, full_split)
        columns.append(table.aligned(ds))
    return torch.tensor(np.stack(columns, axis=1), dtype=torch.float32)


def _check_teacher_data(table: ScoreTable, cfg: TrainConfig, ds: AS2Dataset, full_split: dict[str, str]) -> None:
    """A teacher table must have been made for this very data, not merely share its keys:
    its `data_fingerprint` must be that of the whole training split (under the filter the
    table records: teachers score the full split once, students train on subsets of it) or of
    exactly the training set `ds`. Keys alone would accept a table made before the data was
    edited or re-labelled. `full_split` caches fingerprints per filter."""
    made_for = table.meta.get("data_fingerprint")
    if made_for is None:
        raise InputError(table.path, "teacher table has no data_fingerprint in its .json sidecar, so "
                         "nothing shows it was made for this data; make it with ScoreTable.for_dataset")
    if made_for == ds.fingerprint():
        return
    policy = table.meta.get("filter", cfg.train_filter)
    if policy not in full_split:
        full_split[policy] = load_as2(cfg.dataset, split=cfg.train_split, filter=policy,
                                      data_root=cfg.data_root).fingerprint()
    if made_for != full_split[policy]:
        raise InputError(table.path, f"stale teacher table: made for data {made_for[:12]}, but "
                         f"{cfg.dataset}/{cfg.train_split} (filter {policy}) is now {full_split[policy][:12]}; "
                         "recompute the teacher scores")
