"""Train a CERBERUS student (or a teacher: one head, gold labels) with resumable checkpoints.

`train(cfg, out_dir)` writes one run folder (its layout: artifacts.py): the config, checkpoints,
the best model on dev MAP, the loss curve, dev score traces, then dev/test score tables and
metrics. The config and its checks live in config.py, the checkpoint format in checkpoint.py,
the teacher targets in teacher_targets.py, the loss in losses.py.

The loop runs under Hugging Face Accelerate, so `accelerate launch` or `torchrun`
spreads it over processes with no code change: every process takes its slice of
the same global batch, and DDP averages the gradients.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..results import artifacts
from ..model import building
from ..atomic import atomic_path, write_text_atomic
from ..results.artifacts import read_curve, write_curve
from ..model.batching import encode_pairs, epoch_batches
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig, init_from_folder
from .preflight import preflight, resolved_precision
from ..data import AS2Dataset
from ..errors import InputError
from .losses import DistillationLoss
from ..results.metrics import ranking_metrics
from ..model.modeling import CerberusForRanking
from ..provenance import code_version, device_name
from ..results.runlock import locks_run_folder
from ..results.scores import ScoreTable, evaluate_table, score_dataset


# ------------------------------------------------------------------ helpers
def build_model(cfg: TrainConfig, run_dir: str | Path | None = None) -> CerberusForRanking:
    """The run's model, through building.py: the saved model of `init_from` (transfer, then
    adapt; a relative path is read from `run_dir`), whose architecture must be the config's,
    else a new one on `backbone`."""
    architecture = dict(body_layers=cfg.body_layers, num_heads=cfg.num_heads, head_layers=cfg.head_layers,
                        pooler=cfg.pooler)
    if cfg.init_from:
        return building.load_saved(init_from_folder(cfg, run_dir), **architecture)
    return building.build_on_backbone(cfg.backbone, head_init=cfg.head_init, **architecture)


class FusedAdamW(torch.optim.AdamW):
    """AdamW in one pass over each tensor (`fused=True`), where the default on a CPU makes about
    ten (on one CPU thread 8-13% of a MiniLM-L6 step, fused 2-3%). The fused CPU kernel leaves the
    parameters' version counters as they were, so this bumps them: the model's cache of stacked
    head weights for inference (batched_heads.py) keys on them, and dev would be scored with the
    weights of an older step."""

    def __init__(self, params, **kwargs: Any):
        super().__init__(params, fused=True, **kwargs)

    def step(self, closure=None):
        loss = super().step(closure)
        torch.autograd.graph.increment_version([p for group in self.param_groups for p in group["params"]])
        return loss


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, fused: it rounds differently from the default loop over tensors (by about 4e-8 on
    a parameter per step), so runs differ from runs made before it in the last digits."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 else decay).append(p)  # no decay on biases and LayerNorms
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return FusedAdamW(groups, lr=cfg.lr)


def _linear_schedule(total: int, warmup: float):
    warm = max(1, int(total * warmup))
    return lambda step: min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm)))


# ------------------------------------------------------------------ training
@locks_run_folder  # one run at a time per folder: a second one is refused at once
def train(cfg: TrainConfig, out_dir: str | Path, progress: bool = True) -> dict[str, Any]:
    """Train, select on dev MAP, then score dev/test with the best model; resumes if interrupted."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    out_dir = Path(out_dir)
    ready = preflight(cfg, out_dir)  # nothing is written before the run is known to fit
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()  # accelerate keeps one precision per process; runs in turn may differ
    acc = Accelerator(mixed_precision=resolved_precision(cfg), cpu=not torch.cuda.is_available())
    set_seed(cfg.seed)
    main = acc.is_main_process
    data, teacher = ready.data, ready.teacher
    train_ds, dev_ds = data["train"], data["dev"]
    pairs = train_ds.pairs()
    labels = torch.tensor(train_ds.pair_arrays()[2], dtype=torch.long)

    model = build_model(cfg, out_dir)
    tokenizer = model.tokenizer
    loss_fn = DistillationLoss(cfg.strategy, kd=cfg.kd, temperature=cfg.temperature,
                               alpha=cfg.alpha, teacher_index=cfg.teacher_index, head_loss=cfg.head_loss)
    steps_per_epoch = _steps_per_epoch(len(pairs), cfg.batch_size, acc.num_processes)
    total = steps_per_epoch * cfg.epochs
    eval_steps = {epoch * steps_per_epoch + math.ceil((j + 1) * steps_per_epoch / cfg.evals_per_epoch)
                  for epoch in range(cfg.epochs) for j in range(cfg.evals_per_epoch)}  # the last is each epoch's end
    optimizer = _optimizer(model, cfg)
    schedule = _linear_schedule(total, cfg.warmup)
    if main:  # written only once the experiment is known to be valid
        write_text_atomic(artifacts.config_path(out_dir), cfg.to_json())

    checkpoint = artifacts.checkpoint_dir(out_dir)
    step, best = 0, -1.0
    if (checkpoint / "state.json").is_file():
        step, best = load_checkpoint(checkpoint, model, optimizer, acc.process_index)
    curve = read_curve(out_dir, upto=step)
    clock = _Clock(out_dir, resumed=step > 0)
    wrapped, optimizer = acc.prepare(model, optimizer)
    _autocast_in_steps_only(model)
    for group in optimizer.param_groups:
        group["lr"] = cfg.lr * schedule(step)

    if step == 0 and main:
        _evaluate_dev(model, dev_ds, cfg, out_dir, 0)
    acc.wait_for_everyone()
    inputs = TrainInputs(tokenizer, pairs, cfg.max_length)
    bar = tqdm(total=total, initial=step, desc=f"train {cfg.name}", unit="step", disable=not (progress and main))
    wrapped.train()
    batches: dict[int, list[torch.Tensor]] = {}
    while step < total:
        epoch, i = divmod(step, steps_per_epoch)
        if epoch not in batches:
            batches = {epoch: epoch_batches(inputs.lengths, cfg.batch_size, cfg.seed, epoch, cfg.length_grouping)}
        batch = batches[epoch][i]
        parts = train_step(wrapped, optimizer, loss_fn, acc, inputs, labels, teacher, batch, cfg)
        step += 1
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * schedule(step)
        # one reduction and one device-to-host copy for the whole breakdown
        values = acc.reduce(torch.stack([v.detach().float() for v in parts.values()]), "mean").tolist()
        reduced = dict(zip(parts, values))
        curve.append({"step": step, "epoch": epoch, **reduced})
        bar.update(1)
        bar.set_postfix(loss=f"{reduced['loss']:.3f}")
        if step in eval_steps:
            if main:
                dev_map = _evaluate_dev(model, dev_ds, cfg, out_dir, step)
                if dev_map > best:
                    best = dev_map
                    with atomic_path(artifacts.best_dir(out_dir)) as tmp:
                        model.save_pretrained(tmp)
            wrapped.train()
        if step % cfg.checkpoint_every == 0 or step in eval_steps:
            best = _broadcast(acc, best)
            if main:  # before the checkpoint commits: a resume keeps the rows up to its step
                write_curve(out_dir, curve)
            save_checkpoint(checkpoint, model, optimizer, step, best, acc)
            if main:  # after it commits: a resumed session never counts again the time of steps it redoes
                clock.write(step)
            acc.wait_for_everyone()
    bar.close()
    acc.wait_for_everyone()
    if main:
        clock.write(step)
    return finish(cfg, out_dir, data, progress=progress) if main else {}


class _Clock:
    """RUN/timing.json: training wall time (steps and dev evaluations, up to the last checkpoint each
    session kept) summed over the sessions of a resumed run, their number, and the machines. Kept out of metrics.json and the
    curve, which are byte-equal between identical runs."""

    def __init__(self, out_dir: Path, resumed: bool):
        self.path = artifacts.timing_path(out_dir)
        before = (artifacts.read_json(self.path) or {}) if resumed else {}
        self.seconds, self.sessions = before.get("train_seconds", 0.0), before.get("sessions", 0) + 1
        self.devices = sorted(set(before.get("devices", [])) | {device_name()})
        self.started = time.perf_counter()

    def write(self, step: int) -> None:
        write_text_atomic(self.path, json.dumps({
            "train_seconds": round(self.seconds + time.perf_counter() - self.started, 1), "step": step,
            "sessions": self.sessions, "devices": self.devices}, indent=1) + "\n")


class TrainInputs:
    """Every training pair tokenized once per run (clipped and truncated by `encode_pairs`), kept
    as one padded matrix per model input: a step slices its batch out, the very tensors that
    tokenizing the batch with padding=True gives, at no tokenizer cost per step."""

    def __init__(self, tokenizer, pairs: list[tuple[str, str]], max_length: int):
        enc = encode_pairs(tokenizer, pairs, max_length)
        lengths = np.fromiter(map(len, enc["input_ids"]), dtype=np.int64, count=len(pairs))
        self.lengths = torch.from_numpy(lengths)  # tokens per pair, as length grouping sorts them
        width = int(lengths.max(initial=0))
        self.left = tokenizer.padding_side == "left"
        real = np.arange(width) < lengths[:, None]  # (n, width): True on tokens
        if self.left:
            real = real[:, ::-1]
        pads = {"input_ids": tokenizer.pad_token_id, "token_type_ids": tokenizer.pad_token_type_id,
                "attention_mask": 0}
        self.arrays: dict[str, np.ndarray] = {}
        for name in enc.keys():
            matrix = np.full(real.shape, pads.get(name, 0), dtype=np.int32)
            matrix[real] = np.fromiter((t for ids in enc[name] for t in ids), dtype=np.int32, count=int(lengths.sum()))
            self.arrays[name] = matrix

    def batch(self, index: torch.Tensor, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """The inputs of pairs `index`, padded to their longest, as int64 tensors on `device`."""
        rows = index.numpy()
        width = int(self.lengths[index].max())
        cols = slice(-width, None) if self.left else slice(0, width)
        return {name: torch.from_numpy(a[rows, cols]).long().to(device) for name, a in self.arrays.items()}


def _untimed(name: str) -> AbstractContextManager:
    return nullcontext()


def train_step(wrapped, optimizer, loss_fn: DistillationLoss, acc, inputs: TrainInputs, labels: torch.Tensor,
               teacher: torch.Tensor | None, batch: torch.Tensor, cfg: TrainConfig,
               phase: Callable[[str], AbstractContextManager] = _untimed) -> dict[str, torch.Tensor]:
    """One optimisation step on this process's slice of `batch`; returns the loss breakdown.
    `phase(name)` wraps each part of the step (bench_training --profile times them)."""
    local = batch[acc.process_index :: acc.num_processes]
    # DDP averages the processes' gradients: weighting each process's mean loss by its share
    # of the batch keeps that the mean over the whole batch when it does not split evenly
    share = len(local) * acc.num_processes / len(batch)
    with phase("batch inputs"):
        enc = inputs.batch(local, acc.device)
        gold = labels[local].to(acc.device)
    with phase("teacher lookup"):
        targets = None if teacher is None else teacher[local].to(acc.device)
    with phase("forward"):
        with acc.autocast():
            out = wrapped(**enc)
    with phase("loss"):
        pooled = out.pooled_logits.float() if cfg.pooler == "learned" else None
        parts = loss_fn(out.head_logits.float(), gold, targets, pooled)
        parts = {k: v * share for k, v in parts.items()}
    with phase("backward"):
        acc.backward(parts["loss"])
    with phase("clip"):
        acc.clip_grad_norm_(wrapped.parameters(), 1.0)
    with phase("optimizer"):
        optimizer.step()
        optimizer.zero_grad()
    return parts


def _autocast_in_steps_only(model: torch.nn.Module) -> None:
    """Undo accelerate's autocast patch of `model.forward`: train_step autocasts its own forward,
    and the dev evaluations, which choose the kept checkpoint, must score in fp32 as `finish` does
    (under bf16 a third of WikiQA dev candidates tie with another of their question)."""
    original = model.__dict__.pop("_original_forward", None)
    if original is None:
        return
    if getattr(original, "__func__", None) is type(model).forward:
        model.__dict__.pop("forward", None)  # back to the class's own method
    else:
        model.forward = original


def _steps_per_epoch(n_pairs: int, batch_size: int, processes: int) -> int:
    """Batches per epoch; a last batch too small to give every process a pair is dropped."""
    if n_pairs < processes:
        raise InputError(None, f"{n_pairs} training pairs cannot give each of {processes} processes one pair")
    full, rest = divmod(n_pairs, batch_size)
    return full + (rest >= processes)


def _broadcast(acc, value: float) -> float:
    from accelerate.utils import broadcast

    # float64: a float32 round trip would make an equal later dev MAP look strictly better
    return broadcast(torch.tensor([value], dtype=torch.float64, device=acc.device), from_process=0).item()


def _evaluate_dev(model: CerberusForRanking, dev: AS2Dataset, cfg: TrainConfig, out_dir: Path, step: int) -> float:
    """Score dev with every head in fp32 (even inside an autocast region), keep the table as a
    trace of training, return pooled MAP."""
    with torch.autocast(model.device.type, enabled=False):
        table = score_dataset(model, dev, cfg.eval_batch_size, cfg.max_length, meta={"step": step})
    table.save(artifacts.trace_path(out_dir, step))
    return ranking_metrics(table.qids, table.labels, table.columns["pooled"], policy="none")["map"]


def _head_diversity(cfg: TrainConfig, out_dir: Path, table: ScoreTable) -> dict[str, float]:
    """Head-head r, top-1 disagreement and, when there is one teacher per head (cerberus, and
    replicated as its control), the specialization S on test, from the teachers' test tables."""
    from ..results.analysis import run_head_diversity

    paths = [artifacts.from_run(out_dir, f) / f"{cfg.test_split}.tsv" for f in cfg.teachers]
    one_per_head = len(paths) == cfg.num_heads and all(p.is_file() for p in paths)
    teachers = [ScoreTable.load_teacher(p, data_root=cfg.data_root) for p in paths] if one_per_head else []
    return run_head_diversity(table, teachers)


def finish(cfg: TrainConfig, out_dir: Path, data: dict[str, AS2Dataset], progress: bool = True) -> dict[str, Any]:
    """Score dev and test with the best model; write the score tables and the metrics."""
    best = CerberusForRanking.from_pretrained(artifacts.best_dir(out_dir))
    metrics: dict[str, Any] = {"name": cfg.name, "model": best.config.name,
                               "parameters": best.parameter_counts()["total"], "code_version": code_version(),
                               "mixed_precision": resolved_precision(cfg)}
    for role in ("dev", "test"):
        if role in data:
            table = score_dataset(best, data[role], cfg.eval_batch_size, cfg.max_length,
                                  meta={"run": cfg.name}, progress=progress)
            table.save(artifacts.scores_path(out_dir, role))
            metrics[role] = evaluate_table(table, seed=cfg.seed)
            if role == "test" and best.config.num_heads > 1:
                metrics["head_diversity"] = _head_diversity(cfg, out_dir, table)
    artifacts.write_metrics(out_dir, metrics)
    return metrics
