"""Training step time under each recipe: fp32 or bf16 autocast, random or length-grouped batches;
with --profile, where a step's time goes.

    python -m cerberus_core.orchestration.bench_training --steps 12 --threads 2
    python -m cerberus_core.orchestration.bench_training --profile --before --steps 12 --threads 2
    python -m cerberus_core.orchestration.bench_training --profile --before --threads 1 --clock cpu

Every variant runs the real `training.train_step` (batch inputs sliced from the run's
pre-tokenized pairs, forward, loss, backward, clip, AdamW) on real WikiQA train batches with
the committed teacher tables, from the same starting weights. Variants take turns step by step,
so load from other processes slows them alike; each one sees its own first `steps` batches of
epoch 0 (after `warmup` untimed steps), and the mean over them is reported, since an epoch's
time is the sum of its steps. The padding share is computed exactly over the whole epoch.
Prints the table with its conditions; `--out` also writes it as JSON.

`--profile` times each phase of the step (`train_step(phase=...)`) for the gold student (B5 1H1)
and CERBERUS (B5 3H1) on MiniLM-L6, fp32 and bf16, length-grouped; beside them, what the step
no longer does (tokenizing its batch, done once per run) and the share of a run's time that dev
evaluations take at the students' recipe (2 per epoch). `--before` adds each variant as the step
was before it tokenized once per run and fused AdamW. `--clock cpu` counts the process's CPU
seconds instead of wall seconds: on a machine shared with other work, with `--threads 1`, that
is the step's own compute.
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext

import torch

from ..atomic import write_text_atomic
from ..results import artifacts
from ..results.artifacts import teacher_scores_ref
from ..model.batching import encode_pairs, epoch_batches, padding_share
from ..results.scores import score_dataset
from .bench import _threads, conditions, flops_per_pair
from .bench_checks import check_threads
from ..training.losses import DistillationLoss
from ..training.config import TrainConfig
from ..training.teacher_targets import load_teacher_margins
from ..training.loop import TrainInputs, _optimizer, build_model, train_step
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


def _training_data(root: str, batch_size: int, max_length: int) -> tuple[TrainConfig, dict, torch.Tensor, torch.Tensor]:
    """The base config, the WikiQA splits, the gold labels and the three teachers' margins."""
    base = TrainConfig(name="bench", backbone="minilm-l6", body_layers=5, head_layers=1, num_heads=3,
                       batch_size=batch_size, max_length=max_length, mixed_precision="no")
    splits = load_splits(base)
    labels = torch.tensor(splits["train"].pair_arrays()[2], dtype=torch.long)
    run_dir = artifacts.run_dir(root, "students", "bench")  # teacher paths are relative to a run folder
    teacher = load_teacher_margins(TrainConfig(**{**base.__dict__, "strategy": "cerberus", "teachers": TEACHERS}),
                                   splits["train"], run_dir)
    return base, splits, labels, teacher


def measure(root: str, steps: int, warmup: int, threads: int, batch_size: int = 32, max_length: int = 128) -> dict:
    base, splits, labels, teacher = _training_data(root, batch_size, max_length)
    pairs = splits["train"].pairs()
    runs = {}
    for name, (strategy, precision, pools) in VARIANTS.items():
        cfg = TrainConfig(**{**base.__dict__, "strategy": strategy, "mixed_precision": precision,
                             "length_grouping": pools, "teachers": TEACHERS if strategy != "gold" else []})
        torch.manual_seed(0)  # building does not seed: every variant starts from the same weights
        model = build_model(cfg).train()
        inputs = TrainInputs(model.tokenizer, pairs, max_length)
        batches = epoch_batches(inputs.lengths, batch_size, cfg.seed, 0, pools)
        runs[name] = dict(cfg=cfg, model=model, optimizer=_optimizer(model, cfg), acc=_OneProcess(precision),
                          loss=DistillationLoss(strategy, teacher_index=None), batches=batches, times=[],
                          inputs=inputs, padding=padding_share(inputs.lengths, batches))
    with _threads(threads):
        for step in range(warmup + steps):
            for run in runs.values():
                start = time.perf_counter()
                train_step(run["model"], run["optimizer"], run["loss"], run["acc"], run["inputs"], labels,
                           teacher if run["cfg"].strategy != "gold" else None, run["batches"][step], run["cfg"])
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
                  "timed": "training.train_step (batch inputs from pairs tokenized once, forward, loss, backward, clip, "
                             "AdamW), variants interleaved step by step"})
    return {"conditions": conds, "rows": rows}


def format_result(result: dict) -> str:
    lines = ["# " + "; ".join(f"{k}: {v}" for k, v in result["conditions"].items()),
             f"{'variant':24} {'mean s/step':>11} {'median':>8} {'padding':>8} {'speed-up':>9}"]
    for r in result["rows"]:
        lines.append(f"{r['variant']:24} {r['mean_step_s']:11.3f} {r['median_step_s']:8.3f} "
                     f"{r['padding_share']:8.1%} {r['speedup_vs_fp32_random']:8.2f}x")
    return "\n".join(lines)


# ------------------------------------------------------------------ --profile
PROFILED = {  # name -> (strategy, heads, mixed precision); every one length-grouped (50 batches per pool)
    "gold B5 1H1 fp32": ("gold", 1, "no"),
    "gold B5 1H1 bf16": ("gold", 1, "bf16"),
    "cerberus B5 3H1 fp32": ("cerberus", 3, "no"),
    "cerberus B5 3H1 bf16": ("cerberus", 3, "bf16"),
}
PHASES = ("batch inputs", "teacher lookup", "forward", "loss", "backward", "clip", "optimizer")
EVALS_PER_EPOCH = 2  # the students' recipe (v2)


CLOCKS = {  # --clock: what a second is
    "wall": (time.perf_counter, "wall seconds"),
    # every thread of the process; other processes' load barely moves it, but spinning OpenMP
    # threads count, so it is the compute itself only with --threads 1
    "cpu": (time.process_time, "CPU seconds of this process"),
}


class _PhaseTimer:
    """train_step's `phase`: seconds per named phase of one step (CPU ops are synchronous)."""

    def __init__(self, clock=time.perf_counter):
        self.clock, self.seconds = clock, {}

    @contextmanager
    def __call__(self, name: str):
        start = self.clock()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + self.clock() - start


class _TokenizeEachStep:
    """A step's inputs as the loop made them before it tokenized once per run: its batch's pairs
    tokenized in the step (what `--before` times)."""

    def __init__(self, tokenizer, pairs: list[tuple[str, str]], max_length: int):
        self.tokenizer, self.pairs, self.max_length = tokenizer, pairs, max_length

    def batch(self, index: torch.Tensor, device="cpu") -> dict[str, torch.Tensor]:
        enc = encode_pairs(self.tokenizer, [self.pairs[j] for j in index], self.max_length, padding=True,
                           return_tensors="pt")
        return dict(enc.to(device))


def _previous_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW as the loop made it before it was fused: the default, on a CPU a loop over tensors."""
    groups = [{"params": g["params"], "weight_decay": g["weight_decay"]} for g in _optimizer(model, cfg).param_groups]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def profile(root: str, steps: int, warmup: int, threads: int, batch_size: int = 32, max_length: int = 128,
            clock: str = "wall", before: bool = False) -> dict:
    """Mean seconds per phase of a step for each PROFILED variant (with `before`, also each as
    the step was before tokenizing once per run and fusing AdamW), interleaved step by step; the
    tokenization a step no longer does, timed beside it; one fp32 dev evaluation per model."""
    now = CLOCKS[clock][0]
    base, splits, labels, teacher = _training_data(root, batch_size, max_length)
    pairs, dev = splits["train"].pairs(), splits["dev"]
    runs = {}
    with _threads(threads):
        for (name, (strategy, heads, precision)), previous in itertools.product(PROFILED.items(), (False, True)):
            if previous and not before:
                continue
            cfg = TrainConfig(**{**base.__dict__, "strategy": strategy, "num_heads": heads, "mixed_precision": precision,
                                 "length_grouping": 50, "teachers": TEACHERS if strategy != "gold" else []})
            torch.manual_seed(0)
            model = build_model(cfg).train()
            start = now()
            inputs = TrainInputs(model.tokenizer, pairs, max_length)
            once = now() - start
            runs[name + (" (before)" if previous else "")] = dict(
                cfg=cfg, model=model, acc=_OneProcess(precision), lengths=inputs.lengths,
                optimizer=(_previous_optimizer if previous else _optimizer)(model, cfg),
                inputs=_TokenizeEachStep(model.tokenizer, pairs, max_length) if previous else inputs,
                loss=DistillationLoss(strategy, teacher_index=None), tokenize_once_s=None if previous else once,
                batches=epoch_batches(inputs.lengths, batch_size, cfg.seed, 0, 50),
                phases=defaultdict(list), steps=[], tokenize=[], flops=[])
        for step in range(warmup + steps):
            for run in runs.values():
                batch, model = run["batches"][step], run["model"]
                start = now()
                encode_pairs(model.tokenizer, [pairs[j] for j in batch], max_length, padding=True, return_tensors="pt")
                tokenize = now() - start
                timer = _PhaseTimer(now)
                start = now()
                train_step(model, run["optimizer"], run["loss"], run["acc"], run["inputs"], labels,
                           teacher if run["cfg"].strategy != "gold" else None, batch, run["cfg"], phase=timer)
                seconds = now() - start
                if step >= warmup:
                    run["steps"].append(seconds)
                    run["tokenize"].append(tokenize)
                    for phase in PHASES:
                        run["phases"][phase].append(timer.seconds.get(phase, 0.0))
                    width = int(run["lengths"][batch].max())
                    run["flops"].append(3 * len(batch) * flops_per_pair(model, width))  # forward + backward (2x)
        evaluation: dict[tuple, float] = {}
        for run in runs.values():
            key = (run["cfg"].strategy, run["cfg"].num_heads)
            if key not in evaluation:  # dev is scored in fp32 whatever the training precision
                start = now()
                score_dataset(run["model"], dev, base.eval_batch_size, max_length)
                evaluation[key] = now() - start
                run["model"].train()
    steps_per_epoch = -(-len(pairs) // batch_size)
    rows = []
    for name, run in runs.items():
        step_s = statistics.mean(run["steps"])
        eval_s = evaluation[(run["cfg"].strategy, run["cfg"].num_heads)]
        phases = {phase: statistics.mean(v) for phase, v in run["phases"].items()}
        rows.append({"variant": name, "mean_step_s": step_s, "median_step_s": statistics.median(run["steps"]),
                     "phases_s": phases, "other_s": step_s - sum(phases.values()),
                     "gflops_per_s": statistics.mean(run["flops"]) / step_s / 1e9,
                     "tokenize_batch_s": statistics.mean(run["tokenize"]), "tokenize_once_s": run["tokenize_once_s"],
                     "dev_evaluation_s": eval_s,
                     "evaluation_share": EVALS_PER_EPOCH * eval_s / (steps_per_epoch * step_s + EVALS_PER_EPOCH * eval_s)})
    conds = conditions(threads, [batch_size], max_length, steps, warmup, 0, float("nan"))
    conds = {k: v for k, v in conds.items() if k not in ("candidates/question", "matmul peak", "precisions", "seq len")}
    conds.update({"model": "MiniLM-L6: gold student B5 1H1, CERBERUS B5 3H1 (3 teachers)",
                  "data": f"WikiQA train, {len(pairs)} pairs, max length {max_length}, length-grouped batches "
                          f"padded to their longest; dev {dev.n_pairs} pairs, eval batch {base.eval_batch_size}",
                  "timed": f"each phase of training.train_step in {CLOCKS[clock][1]}, variants interleaved step by step"
                           + ("; (before): tokenizing in the step, AdamW's default loop over tensors" if before else "")
                           + "; GFLOP/s: 3x the forward FLOPs of bench.flops_per_pair (padding counted) per step second"})
    return {"conditions": conds, "rows": rows, "evals_per_epoch": EVALS_PER_EPOCH, "steps_per_epoch": steps_per_epoch,
            "train_pairs": len(pairs)}


def format_profile(result: dict) -> str:
    """One row per variant: ms per phase (share of the step), the step, GFLOP/s, then what the
    step leaves out: tokenizing its batch, and the dev evaluations' share of a run."""
    rows = result["rows"]
    first = max(len(r["variant"]) for r in rows) + 2
    columns = [*PHASES, "other"]
    width = 16
    lines = ["# " + "; ".join(f"{k}: {v}" for k, v in result["conditions"].items()),
             "# ms per step (share of the step); 'tokenize': the batch's tokenization, outside the step unless (before);"
             f" 'eval share': {result['evals_per_epoch']} fp32 dev evaluations per epoch of {result['steps_per_epoch']} "
             "steps, as a share of the run's time",
             "variant".ljust(first) + "".join(c.rjust(width) for c in (*columns, "step", "GFLOP/s", "tokenize", "eval share"))]
    for r in rows:
        seconds = [*(r["phases_s"][p] for p in PHASES), r["other_s"]]
        cells = [f"{v * 1e3:.1f} ({v / r['mean_step_s']:.0%})" for v in seconds]
        cells += [f"{r['mean_step_s'] * 1e3:.1f}", f"{r['gflops_per_s']:.0f}", f"{r['tokenize_batch_s'] * 1e3:.1f}",
                  f"{r['evaluation_share']:.1%}"]
        lines.append(r["variant"].ljust(first) + "".join(c.rjust(width) for c in cells))
    once = [f"{r['variant']} {r['tokenize_once_s']:.1f} s" for r in rows if r["tokenize_once_s"] is not None]
    lines.append(f"# tokenizing all {result['train_pairs']} training pairs once per run: " + ", ".join(once))
    lines.append("# one dev evaluation (fp32): " + ", ".join(f"{r['variant']} {r['dev_evaluation_s']:.1f} s" for r in rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="artifacts/full", help="results folder holding teacher_scores/")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="time each phase of a step instead (gold and CERBERUS, "
                                                               "fp32 and bf16, length-grouped)")
    parser.add_argument("--before", action="store_true", help="--profile: also each variant as the step was before "
                                                              "tokenizing once per run and fusing AdamW")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="--profile: wall seconds, or the process's CPU seconds (with --threads 1, robust to other load)")
    parser.add_argument("--out", help="also write the result as JSON")
    args = parser.parse_args(argv)
    check_threads(args.threads)  # before anything is loaded
    if args.profile:
        result = profile(args.root, args.steps, args.warmup, args.threads, clock=args.clock, before=args.before)
        show = format_profile
    else:
        result, show = measure(args.root, args.steps, args.warmup, args.threads), format_result
    if args.out:
        write_text_atomic(args.out, json.dumps(result, indent=1) + "\n")
    print(show(result))


if __name__ == "__main__":
    main()
