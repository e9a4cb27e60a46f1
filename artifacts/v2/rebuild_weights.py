"""Retrain committed runs in place, in a run worktree (never in the main checkout), to get their
weights back after a machine renewal: weights are never committed, and the TREC-QA transfer starts
from them. Each run's committed metrics.json is removed so that ensure_trained trains it anew with its
committed config; `git diff` in the worktree then shows whether the rebuild is bit for bit. A teacher
then scores into its score tables (ROOT/teacher_scores/<name>), which are only rewritten where the
rebuilt model's fingerprint differs from theirs: a clean `git diff` there means equal weights. Run it
at the thread count the run's timing.json records (OMP_NUM_THREADS), on the CPU model it records, or it
cannot be bit for bit: it refuses another device (on an AMD EPYC the Intel Xeon records' step-0 dev
scores already differ by 4e-7). The WikiQA teachers have no timing.json; they trained on the Intel
Xeon too (every committed timing.json names it). Stop a rebuild by deleting its best/ and checkpoint/
too: a restored metrics.json beside them would make the half-trained weights look finished.

    OMP_NUM_THREADS=1 python artifacts/v2/rebuild_weights.py artifacts/v2/students/cerberus/seed1 ...
"""
import sys
from pathlib import Path

from cerberus_core import artifacts, pipeline
from cerberus_core.config import TrainConfig
from cerberus_core.provenance import device_name

RECORDED = "cpu: Intel(R) Xeon(R) Processor"  # where every committed v2 run trained (their timing.json)

for run in map(Path, sys.argv[1:]):
    run = run.resolve()
    checkout = next((d for d in run.parents if (d / ".git").exists()), None)
    if checkout is None or (checkout / ".git").is_dir():  # a worktree's .git is a file
        sys.exit(f"{run}: rebuild in a run worktree (git worktree add), not in {checkout or 'no checkout'}")
    timing = run / "timing.json"
    recorded = artifacts.read_json(timing)["devices"] if timing.is_file() else [f"{RECORDED}, 2 threads"]
    if device_name() not in recorded:
        sys.exit(f"{run}: trained on {', '.join(recorded)}; this is {device_name()}: a rebuild here cannot be "
                 "bit for bit (set OMP_NUM_THREADS to the recorded count, or use a machine with that CPU)")
    cfg = TrainConfig.from_file(artifacts.config_path(run))
    if not artifacts.has_model(run):
        artifacts.metrics_path(run).unlink(missing_ok=True)  # the committed record: train it anew
    if not artifacts.is_finished(run):
        pipeline.ensure_trained(cfg, run)  # (an interrupted rebuild resumes from its checkpoint)
    if run.parent.name == "teachers":
        pipeline.ensure_teacher_scores(cfg, run, artifacts.teacher_scores_dir(run.parents[1], run.name))
    print("has its weights:", run, flush=True)
