"""Retrain committed runs in place, in a run worktree (never in the main checkout), to get their
weights back after a machine renewal: weights are never committed, and the TREC-QA transfer starts
from them. Each run's committed metrics.json is removed so that ensure_trained trains it anew with its
committed config; `git diff` in the worktree then shows whether the rebuild is bit for bit. Run it at
the thread count the run's timing.json records (OMP_NUM_THREADS), or it cannot be.

    OMP_NUM_THREADS=1 python artifacts/v2/rebuild_weights.py artifacts/v2/students/cerberus/seed1 ...
"""
import sys
from pathlib import Path

from cerberus_core import artifacts, pipeline
from cerberus_core.config import TrainConfig

for run in map(Path, sys.argv[1:]):
    run = run.resolve()
    if artifacts.has_model(run) and artifacts.is_finished(run):
        print("has weights already:", run, flush=True)
        continue
    if artifacts.is_finished(run):
        artifacts.metrics_path(run).unlink()
    pipeline.ensure_trained(TrainConfig.from_file(artifacts.config_path(run)), run)
    print("rebuilt:", run, flush=True)
