"""Zero-shot transfer: a student trained on one dataset, scored as it is on another's test split.

In domain, heads taught by different teachers can rank almost alike; out of domain is where what
each teacher knows shows. So a programme may name target datasets, and every student is scored on
each target's test split: pooled by its built-in mean, by each head alone, and by the pooler chosen
on its own in-domain dev split (`pooling.choose_pooler`). Nothing of the target takes part in any
choice. The numbers go into the run's metrics.json under "zero_shot"; no score table of the target
is written (some AS2 datasets may not be redistributed, and a table is a copy of their pairs).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..results import artifacts
from .config import TrainConfig
from ..data import load_as2
from ..model.modeling import CerberusForRanking
from ..results.pooling import apply_pooler, choose_pooler
from ..results.runlock import RunBusy, run_lock
from ..results.scores import ScoreTable, evaluate_table, score_dataset

SPLIT = "test"


def zero_shot_metrics(model: CerberusForRanking, dev: ScoreTable, target: str, cfg: TrainConfig,
                      progress: bool = False) -> dict[str, Any]:
    """P@1/MAP/MRR (95% intervals) on `target`'s test split, pooled and per head, plus the pooler
    chosen on the in-domain `dev` table and what it scores on the target."""
    ds = load_as2(target, split=SPLIT, filter=cfg.eval_filter, data_root=cfg.data_root)
    if cfg.eval_questions:
        ds = ds.subset(cfg.eval_questions, seed=cfg.data_seed)
    table = score_dataset(model, ds, cfg.eval_batch_size, cfg.max_length, progress=progress)
    found: dict[str, Any] = {"split": SPLIT, "filter": cfg.eval_filter, **evaluate_table(table, policy=cfg.eval_filter)}
    if table.head_columns() and dev.head_columns():
        chosen, _ = choose_pooler(dev, policy=cfg.eval_filter)
        found["chosen_on_dev"] = {"pooler": chosen.name, **apply_pooler(chosen, table, policy=cfg.eval_filter)}
    return found


def ensure_zero_shot(cfg: TrainConfig, run_dir: Path, targets: tuple[str, ...], progress: bool = True) -> None:
    """Add each missing target to a finished run's metrics.json; skip (with a note) a run whose
    weights are not here or that another process holds."""
    metrics = artifacts.read_metrics(run_dir) or {}
    missing = [t for t in targets if t not in metrics.get("zero_shot", {})]
    if not missing or not artifacts.is_finished(run_dir):
        return
    if not artifacts.has_model(run_dir):
        print(f"note: {run_dir}: no weights here to score zero-shot on {', '.join(missing)}", file=sys.stderr)
        return
    try:
        with run_lock(run_dir):
            metrics = artifacts.read_metrics(run_dir)
            model = CerberusForRanking.from_pretrained(artifacts.best_dir(run_dir))
            dev = ScoreTable.load(artifacts.scores_path(run_dir, "dev"))
            zero_shot = dict(metrics.get("zero_shot", {}))
            for target in missing:
                zero_shot[target] = zero_shot_metrics(model, dev, target, cfg, progress)
            artifacts.write_metrics(run_dir, {**metrics, "zero_shot": zero_shot})
    except RunBusy as err:
        print(f"note: {run_dir}: left to {err.holder} for now; zero-shot scores come on a later run", file=sys.stderr)
