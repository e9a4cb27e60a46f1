"""Training step time under each recipe: fp32 or bf16 autocast, random or length-grouped batches.

    python -m cerberus_core.orchestration.bench_training --steps 12 --threads 2

Every variant runs the real `training.train_step` (tokenize, forward, loss, backward,
clip, AdamW) on real WikiQA train batches with the committed teacher tables, from the same
starting weights. Variants take turns step by step, so load from other processes slows
them alike; each one sees its own first `steps` batches of epoch 0 (after `warmup` untimed
steps), and the mean over them is reported, since an epoch's time is the sum of its steps.
The padding share is computed exactly over the whole epoch. Prints the table with its
conditions; `--out` also writes it as JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext

import torch

from ..atomic import write_text_atomic
from ..results import artifacts
from ..results.artifacts import teacher_scores_ref
from ..model.batching import epoch_batches, padding_share, pair_lengths
from .bench import _threads, conditions
from .bench_checks import check_threads
from ..training.losses import DistillationLoss
from ..training.config import TrainConfig
from ..training.teacher_targets import load_teacher_margins
from ..training.loop import _optimizer, build_model, train_step
from ..training.preflight import load_splits

TEACHERS = [teacher_scores_ref(t, seed_folders=False) for t in ("minilm-l3", "minilm-l6", "mpnet-base")]
VARIANTS = {  # name -> (strategy, mixed precision, batches per length-sorted pool)
    "cerberus fp32 random": ("cerberus", "no", 0),
    "cerberus fp32 grouped": ("cerberus", "no", 50),
    "cerberus bf16 random": ("cerberus", "bf16", 0),
    "cerberus bf16 grouped": ("cerberus", "bf16", 50),
    "gold bf16 grouped": ("gold", "bf16", 50),
}


class _OneProcess:
    """What train_step asks of an Accelerator, for one process, with autocast chosen per variant
    (accelerate keeps one global precision per process, and the variants need two)."""

    process_index, num_processes, device = 0, 1, torch.device("cpu")

    def __init__(self, precision: str):
        self.precision = precision

    def autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16" else nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_grad_norm_(self, parameters, max_norm: float):
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)


def measure(root: str, steps: int, warmup: int, threads: int, batch_size: int = 32, max_length: int = 128) -> dict:
    base = TrainConfig(name="bench", backbone="minilm-l6", body_layers=5, head_layers=1, num_heads=3,
                       batch_size=batch_size, max_length=max_length, mixed_precision="no")
    train_ds = load_splits(base)["train"]
    pairs = train_ds.pairs()
    labels = torch.tensor(train_ds.pair_arrays()[2], dtype=torch.long)
    run_dir = artifacts.run_dir(root, "students", "bench")  # teacher paths are relative to a run folder
    teacher = load_teacher_margins(TrainConfig(**{**base.__dict__, "strategy": "cerberus", "teachers": TEACHERS}),
                                   train_ds, run_dir)
    runs = {}
    for name, (strategy, precision, pools) in VARIANTS.items():
        cfg = TrainConfig(**{**base.__dict__, "strategy": strategy, "mixed_precision": precision,
                             "length_grouping": pools, "teachers": TEACHERS if strategy != "gold" else []})
        torch.manual_seed(0)  # building does not seed: every variant starts from the same weights
        model = build_model(cfg).train()
        lengths = pair_lengths(model.tokenizer, pairs, max_length)
        batches = epoch_batches(lengths, batch_size, cfg.seed, 0, pools)
        runs[name] = dict(cfg=cfg, model=model, optimizer=_optimizer(model, cfg), acc=_OneProcess(precision),
                          loss=DistillationLoss(strategy, teacher_index=None), batches=batches, times=[],
                          padding=padding_share(lengths, batches))
    with _threads(threads):
        for step in range(warmup + steps):
            for run in runs.values():
                start = time.perf_counter()
                train_step(run["model"], run["optimizer"], run["loss"], run["acc"], run["model"].tokenizer, pairs,
                           labels, teacher if run["cfg"].strategy != "gold" else None, run["batches"][step], run["cfg"])
                if step >= warmup:
                    run["times"].append(time.perf_counter() - start)
    reference = statistics.mean(runs["cerberus fp32 random"]["times"])
    rows = [{"variant": name, "mean_step_s": statistics.mean(r["times"]), "median_step_s": statistics.median(r["times"]),
             "padding_share": r["padding"], "speedup_vs_fp32_random": reference / statistics.mean(r["times"])}
            for name, r in runs.items()]
    conds = conditions(threads, [batch_size], max_length, steps, warmup, 0, float("nan"))
    conds = {k: v for k, v in conds.items() if k not in ("candidates/question", "matmul peak", "precisions", "seq len")}
    conds.update({"model": "CERBERUS B5 3H1 on MiniLM-L6 (gold: the same architecture, no teacher)",
                  "data": f"WikiQA train, {len(pairs)} pairs, max length {max_length}, padded per batch",
                  "timed": "training.train_step (tokenize, forward, loss, backward, clip, AdamW), variants interleaved step by step"})
    return {"conditions": conds, "rows": rows}


def format_result(result: dict) -> str:
    lines = ["# " + "; ".join(f"{k}: {v}" for k, v in result["conditions"].items()),
             f"{'variant':24} {'mean s/step':>11} {'median':>8} {'padding':>8} {'speed-up':>9}"]
    for r in result["rows"]:
        lines.append(f"{r['variant']:24} {r['mean_step_s']:11.3f} {r['median_step_s']:8.3f} "
                     f"{r['padding_share']:8.1%} {r['speedup_vs_fp32_random']:8.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="artifacts/full", help="results folder holding teacher_scores/")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="also write the result as JSON")
    args = parser.parse_args(argv)
    check_threads(args.threads)  # before anything is loaded
    result = measure(args.root, args.steps, args.warmup, args.threads)
    if args.out:
        write_text_atomic(args.out, json.dumps(result, indent=1) + "\n")
    print(format_result(result))


if __name__ == "__main__":
    main()
