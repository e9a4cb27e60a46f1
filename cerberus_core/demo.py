"""`make demo`: the method on real data in minutes, from the committed teacher score tables.

Trains two students on the full WikiQA train split (1 epoch each, the full run used 2): a
gold-label baseline and CERBERUS B5 3H1, one head per committed teacher, then prints their
test metrics beside the committed full-run numbers. Outputs go to .cache/demo (not tracked);
a second run reuses them (load-or-train).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from . import artifacts
from .config import TrainConfig
from .errors import InputError
from .metrics import with_interval
from .pipeline import REPO, ensure_trained
from .precision import supports

FULL = REPO / "artifacts" / "full"
TEACHERS = ("minilm-l3", "minilm-l6", "mpnet-base")
STUDENT = dict(backbone="minilm-l6", body_layers=5, head_layers=1, epochs=1, batch_size=32, lr=5e-5,
               max_length=128, evals_per_epoch=1, length_grouping=50,
               mixed_precision="bf16" if supports("bf16") else "auto")  # a demo takes the faster recipe
MINUTES = {"gold": 3.5, "cerberus": 3.5}  # measured on 2 idle cores with bf16 (README, "Two commands")


def demo_configs(out: Path) -> dict[str, TrainConfig]:
    """The two students; teacher paths are relative to each run folder, like every run's."""
    tables = [os.path.relpath(artifacts.teacher_scores_dir(FULL, t), out / "cerberus") for t in TEACHERS]
    return {"gold": TrainConfig(name="demo-gold", strategy="gold", num_heads=1, **STUDENT),
            "cerberus": TrainConfig(name="demo-cerberus", strategy="cerberus", num_heads=3, teachers=tables, **STUDENT)}


def results_table(trained: dict[str, dict[str, Any]]) -> str:
    """Markdown: the committed teachers and full-run students, then this demo's students."""
    rows = [(f"teacher {t} (committed)", artifacts.read_metrics(artifacts.run_dir(FULL, "teachers", t)))
            for t in TEACHERS]
    rows += [(f"full run: {n} (2 epochs, committed)", artifacts.read_metrics(artifacts.run_dir(FULL, "students", n)))
             for n in ("gold", "cerberus")]
    rows += [(f"this demo: {n} (1 epoch)", m) for n, m in trained.items()]
    lines = ["| model | test P@1 | test MAP | test MRR |", "|---|---|---|---|"]
    lines += [f"| {name} | {with_interval(m['test']['pooled'], 'p@1')} | {with_interval(m['test']['pooled'], 'map')} | "
              f"{with_interval(m['test']['pooled'], 'mrr')} |" for name, m in rows]
    n = trained["cerberus"]["test"]["pooled"]["n_questions"]
    return "\n".join([f"WikiQA clean test, {n} questions, 95% bootstrap intervals over questions.", "", *lines, "",
                      "One seed and one epoch: where the intervals overlap, the gap may be run-to-run noise "
                      "(a rerun of one config moved test MAP by 0.011); the claims command tests differences."])


def run_demo(out: str | Path = REPO / ".cache" / "demo") -> str:
    out = Path(out)
    if not (FULL / artifacts.TEACHER_SCORES).is_dir():
        raise InputError(FULL / artifacts.TEACHER_SCORES, "the committed teacher score tables are missing; the demo reads them")
    configs = demo_configs(out)
    print(f"CERBERUS demo: two students on WikiQA train (8,672 pairs, 1 epoch each), about "
          f"{sum(MINUTES.values()):.0f} min on 2 CPU cores with bf16 (much less on a GPU). Outputs: {out}", flush=True)
    trained = {}
    for name, cfg in configs.items():
        start = time.perf_counter()
        trained[name] = ensure_trained(cfg, out / name)
        print(f"{name}: {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    return results_table(trained) + (
        "\n\nNext: `make lab` opens the notebooks (head diversity, agreement with the teachers, ablations, speed); "
        "`python -m cerberus_core claims --root artifacts/full` tests the paper's claims on the committed runs.")
