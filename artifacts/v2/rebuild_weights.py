"""Retrain committed runs in place, in a run worktree (never in the main checkout), to get their
weights back after a machine renewal: weights are never committed, and the TREC-QA transfer starts
from them. Each run's committed metrics.json is removed so that ensure_trained trains it anew with its
committed config; `git diff` in the worktree then shows whether the rebuild is bit for bit. A teacher
then scores into its score tables (ROOT/teacher_scores/<name>), which are only rewritten where the
rebuilt model's fingerprint differs from theirs: a clean `git diff` there means equal weights. Run it
at the thread count the run's timing.json records (OMP_NUM_THREADS), or it cannot be bit for bit.

    OMP_NUM_THREADS=1 python artifacts/v2/rebuild_weights.py artifacts/v2/students/cerberus/seed1 ...
"""
import sys
from pathlib import Path

from cerberus_core import artifacts, pipeline
from cerberus_core.config import TrainConfig

for run in map(Path, sys.argv[1:]):
    run = run.resolve()
    checkout = next((d for d in run.parents if (d / ".git").exists()), None)
    if checkout is None or (checkout / ".git").is_dir():  # a worktree's .git is a file
        sys.exit(f"{run}: rebuild in a run worktree (git worktree add), not in {checkout or 'no checkout'}")
    cfg = TrainConfig.from_file(artifacts.config_path(run))
    if not artifacts.has_model(run):
        artifacts.metrics_path(run).unlink(missing_ok=True)  # the committed record: train it anew
    if not artifacts.is_finished(run):
        pipeline.ensure_trained(cfg, run)  # (an interrupted rebuild resumes from its checkpoint)
    if run.parent.name == "teachers":
        pipeline.ensure_teacher_scores(cfg, run, artifacts.teacher_scores_dir(run.parents[1], run.name))
    print("has its weights:", run, flush=True)
