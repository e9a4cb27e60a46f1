"""Train a CERBERUS student (or a teacher: one head, gold labels) with resumable checkpoints.

One experiment = one `TrainConfig`, saved as config.json next to its outputs:

    out_dir/config.json        the experiment
    out_dir/checkpoint/        latest state (weights, optimizer, RNG: all safetensors) for resuming
    out_dir/best/              the model with the best dev MAP (save_pretrained)
    out_dir/curve.tsv          loss per head per step
    out_dir/trace/             per-head dev scores at every evaluation (step 0 included)
    out_dir/scores/{dev,test}.tsv  pooled and per-head scores of the best model
    out_dir/metrics.json       P@1 / MAP / MRR with 95% intervals, pooled and per head

The loop runs under Hugging Face Accelerate, so `accelerate launch` or `torchrun`
spreads it over processes with no code change: every process takes its slice of
the same global batch, and DDP averages the gradients.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .atomic import atomic_path, write_text_atomic
from .curves import read_curve, write_curve
from .data import AS2Dataset, load_as2
from .errors import InputError
from .losses import DistillationLoss
from .metrics import metrics_with_ci, ranking_metrics
from .model import CerberusForRanking
from .provenance import code_version
from .scores import ScoreTable


@dataclass
class TrainConfig:
    """Everything that defines a training run; defaults train a gold-label teacher."""

    name: str = "run"
    # model: an embedded name, a folder or a hub id; or continue from a saved model
    backbone: str = "minilm-l6"
    init_from: str | None = None
    body_layers: int | None = None  # default: depth - head_layers
    num_heads: int = 1
    head_layers: int = 1
    pooler: str = "mean_prob"
    head_init: str = "copy"
    # distillation
    strategy: str = "gold"
    # folders holding <train_split>.tsv score tables; relative paths are relative to the run
    # folder (where config.json lives), so a results folder can move as a whole
    teachers: list[str] = field(default_factory=list)
    teacher_index: int | None = None
    kd: str = "kl"
    temperature: float = 2.0
    alpha: float = 0.5
    # data
    dataset: str = "wikiqa"
    data_root: str | None = None
    train_split: str = "train"
    dev_split: str = "dev"
    test_split: str | None = "test"
    train_filter: str = "none"
    eval_filter: str = "clean"
    train_questions: int | None = None  # a random subset, for quick presets
    eval_questions: int | None = None
    # optimisation
    epochs: int = 1
    batch_size: int = 32
    lr: float = 5e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_length: int = 128
    eval_batch_size: int = 64
    evals_per_epoch: int = 1
    checkpoint_every: int = 50
    seed: int = 0  # initialisation, data order, dropout
    data_seed: int = 0  # which questions a subset keeps: shared by teachers and students across seeds
    mixed_precision: str = "auto"  # auto: bf16 on a GPU that has it, else fp32

    def __post_init__(self) -> None:
        """Refuse a bad experiment before anything is trained or written."""
        from .data import FILTERS
        from .losses import KD_LOSSES, STRATEGIES
        from .model import HEAD_INITS, POOLERS

        for name, value in dataclasses.asdict(self).items():
            kind = TYPES.get(name)
            if kind and not (isinstance(value, kind) and not isinstance(value, bool)) and value is not None:
                names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
                raise InputError(None, f"config field {name!r} expects {names}, got {value!r}")
        for name, valid in (("strategy", STRATEGIES), ("kd", KD_LOSSES), ("pooler", POOLERS),
                            ("head_init", HEAD_INITS), ("train_filter", FILTERS), ("eval_filter", FILTERS)):
            if getattr(self, name) not in valid:
                raise InputError(None, f"config field {name!r} must be one of {sorted(valid)}, got {getattr(self, name)!r}")
        if min(self.epochs, self.batch_size, self.num_heads, self.evals_per_epoch, self.max_length) < 1 or self.lr <= 0:
            raise InputError(None, "epochs, batch_size, num_heads, evals_per_epoch, max_length and lr must be positive")
        if self.strategy == "cerberus" and self.teachers and len(self.teachers) != self.num_heads:
            raise InputError(None, f"cerberus needs one head per teacher: num_heads={self.num_heads}, "
                                   f"{len(self.teachers)} teachers")

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(path, f"expected a JSON experiment config ({err})") from None
        if not isinstance(values, dict):
            raise InputError(path, "expected a JSON object of TrainConfig fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(path, f"unknown config field {unknown[0]!r}; known: {', '.join(sorted(known))}")
        try:
            return cls(**values)
        except InputError as err:
            raise InputError(path, err.message) from None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1) + "\n"


TYPES = {"epochs": int, "batch_size": int, "num_heads": int, "head_layers": int, "body_layers": int,
         "max_length": int, "eval_batch_size": int, "evals_per_epoch": int, "checkpoint_every": int,
         "seed": int, "data_seed": int, "train_questions": int, "eval_questions": int, "teacher_index": int,
         "lr": (int, float), "warmup": (int, float), "weight_decay": (int, float), "temperature": (int, float),
         "alpha": (int, float), "teachers": list, "backbone": str, "strategy": str, "dataset": str}


# ------------------------------------------------------------------ helpers
def load_splits(cfg: TrainConfig) -> dict[str, AS2Dataset]:
    """Train (unfiltered by default), dev and test (clean by default), subset if asked."""
    splits = {"train": (cfg.train_split, cfg.train_filter, cfg.train_questions),
              "dev": (cfg.dev_split, cfg.eval_filter, cfg.eval_questions)}
    if cfg.test_split:
        splits["test"] = (cfg.test_split, cfg.eval_filter, cfg.eval_questions)
    out = {}
    for role, (split, filt, n) in splits.items():
        ds = load_as2(cfg.dataset, split=split, filter=filt, data_root=cfg.data_root)
        out[role] = ds.subset(n, seed=cfg.data_seed) if n and n < len(ds) else ds
    return out


def teacher_folder(run_dir: str | Path, folder: str) -> Path:
    """A `teachers` entry resolved against the run folder, lexically (the run folder may not exist yet)."""
    return Path(os.path.normpath(Path(run_dir) / folder))


def load_teacher_margins(cfg: TrainConfig, ds: AS2Dataset, run_dir: str | Path = ".") -> torch.Tensor | None:
    """(n_pairs, n_teachers) teacher margins aligned to `ds`; the data must match the tables'."""
    if cfg.strategy == "gold":
        return None
    if not cfg.teachers:
        raise InputError(None, f"strategy {cfg.strategy!r} needs teacher score tables (config field 'teachers')")
    columns, full_split = [], {}
    for folder in cfg.teachers:
        path = teacher_folder(run_dir, folder) / f"{cfg.train_split}.tsv"
        table = ScoreTable.load(path, data_root=cfg.data_root)
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


def build_model(cfg: TrainConfig) -> CerberusForRanking:
    """A new student from `backbone`, or (transfer, then adapt) a saved model from `init_from`,
    whose architecture must then be the one the config names."""
    if cfg.init_from:
        model = CerberusForRanking.from_pretrained(cfg.init_from)
        wanted = {"num_heads": cfg.num_heads, "head_layers": cfg.head_layers, "pooler": cfg.pooler,
                  "body_layers": cfg.body_layers if cfg.body_layers is not None else model.config.body_layers}
        differ = [f"{k} {getattr(model.config, k)!r} (config: {v!r})" for k, v in wanted.items()
                  if getattr(model.config, k) != v]
        if differ:
            raise InputError(Path(cfg.init_from) / "config.json", "init_from model does not match the config: "
                             + ", ".join(differ) + "; set those config fields to the saved model's values")
        return model
    return CerberusForRanking.from_backbone(
        cfg.backbone, body_layers=cfg.body_layers, num_heads=cfg.num_heads,
        head_layers=cfg.head_layers, pooler=cfg.pooler, head_init=cfg.head_init, seed=cfg.seed,
    )


def score_dataset(
    model: CerberusForRanking, ds: AS2Dataset, batch_size: int = 64, max_length: int = 128,
    meta: dict[str, Any] | None = None, progress: bool = False,
) -> ScoreTable:
    """Pooled probability and every head's margin for every pair of `ds`."""
    pooled, heads = model.predict(ds.pairs(), batch_size=batch_size, max_length=max_length,
                                  return_heads=True, show_progress_bar=progress)
    columns = {"pooled": pooled.astype(np.float64)}
    columns.update({f"head{i}": heads[:, i].astype(np.float64) for i in range(heads.shape[1])})
    return ScoreTable.for_dataset(ds, columns, {"max_length": max_length, **(meta or {})})


def teacher_table(
    model: CerberusForRanking, ds: AS2Dataset, batch_size: int = 64, max_length: int = 128,
    meta: dict[str, Any] | None = None, progress: bool = False,
) -> ScoreTable:
    """A teacher's KD targets for `ds`: one "score" column holding a logit margin, the head's
    own for a one-head model, else log p/(1-p) of the pooled probability p."""
    table = score_dataset(model, ds, batch_size, max_length, meta, progress)
    if model.config.num_heads == 1:
        margin = table.columns["head0"]
    else:
        p = np.clip(table.columns["pooled"], 1e-12, 1 - 1e-12)
        margin = np.log(p) - np.log1p(-p)
    return ScoreTable(table.qids, table.cand_idx, table.labels, {"score": margin}, table.meta)


def evaluate_table(table: ScoreTable, policy: str = "none", seed: int = 0) -> dict[str, dict[str, Any]]:
    """P@1 / MAP / MRR with 95% bootstrap intervals for the pooled score and each head."""
    results = {}
    for column in ["pooled", *table.head_columns()] if "pooled" in table.columns else list(table.columns):
        m = metrics_with_ci(table.qids, table.labels, table.columns[column], policy=policy, seed=seed)
        results[column] = {k: v for k, v in m.items() if k != "per_question"}
    return results


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 else decay).append(p)  # no decay on biases and LayerNorms
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _linear_schedule(total: int, warmup: float):
    warm = max(1, int(total * warmup))
    return lambda step: min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm)))


# ---------------------------------------------------------- checkpointing
def _save_checkpoint(folder: Path, model, optimizer, step: int, best: float, acc) -> None:
    """Weights and optimizer moments as safetensors (no pickle); one RNG file per process.

    Every file is named after its step and state.json, written last, commits them: a process
    killed half-way leaves the previous checkpoint whole (never weights of one step with the
    optimizer of another). Older files go only after the commit.
    """
    rank, tag = acc.process_index, f"{step:08d}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = {"rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda_rng"] = torch.cuda.get_rng_state()
    with atomic_path(folder / f"rng{rank}-{tag}.safetensors") as tmp:
        save_file(rng, str(tmp))
    acc.wait_for_everyone()  # every process's RNG is on disk before the commit
    if rank != 0:
        return
    tensors, scalars = {}, {}
    for i, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value) and value.ndim > 0:
                tensors[f"{i}.{key}"] = value.contiguous()
            else:
                scalars[f"{i}.{key}"] = float(value)
    with atomic_path(folder / f"model-{tag}.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    with atomic_path(folder / f"optimizer-{tag}.safetensors") as tmp:
        save_file(tensors, str(tmp))
    state = {"step": step, "best_dev_map": best, "world_size": acc.num_processes, "optimizer_scalars": scalars}
    write_text_atomic(folder / "state.json", json.dumps(state))
    for old in folder.iterdir():  # earlier checkpoints, and temporaries of a killed writer
        if not old.name.endswith(f"-{tag}.safetensors") and old.name != "state.json":
            shutil.rmtree(old) if old.is_dir() else old.unlink()


def _load_checkpoint(folder: Path, model, optimizer, rank: int) -> tuple[int, float]:
    state = json.loads((folder / "state.json").read_text())
    tag = f"{state['step']:08d}"
    model.load_state_dict(load_file(str(_tagged(folder, "model", tag))))
    tensors = load_file(str(_tagged(folder, "optimizer", tag)))
    opt_state = optimizer.state_dict()
    restored: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        i, name = key.split(".", 1)
        restored.setdefault(int(i), {})[name] = value
    for key, value in state["optimizer_scalars"].items():
        i, name = key.split(".", 1)
        restored.setdefault(int(i), {})[name] = torch.tensor(value)
    opt_state["state"] = restored
    optimizer.load_state_dict(opt_state)
    rng = _tagged(folder, f"rng{rank}", tag)
    if rng.is_file():
        rng_state = load_file(str(rng))
        torch.set_rng_state(rng_state["rng"])
        if "cuda_rng" in rng_state and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng_state["cuda_rng"])
    return state["step"], state["best_dev_map"]


def _tagged(folder: Path, stem: str, tag: str) -> Path:
    return folder / f"{stem}-{tag}.safetensors"


# ------------------------------------------------------------------ training
def train(cfg: TrainConfig, out_dir: str | Path, progress: bool = True) -> dict[str, Any]:
    """Train, select on dev MAP, then score dev/test with the best model; resumes if interrupted."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    out_dir = Path(out_dir)
    precision = cfg.mixed_precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    acc = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
    set_seed(cfg.seed)
    main = acc.is_main_process
    saved_cfg = out_dir / "config.json"
    if saved_cfg.is_file() and TrainConfig.from_file(saved_cfg) != cfg:
        raise InputError(saved_cfg, "this run folder holds a different experiment; choose another output folder")
    data = load_splits(cfg)
    train_ds, dev_ds = data["train"], data["dev"]
    teacher = load_teacher_margins(cfg, train_ds, out_dir)
    pairs = train_ds.pairs()
    labels = torch.tensor(train_ds.flat()[2], dtype=torch.long)

    model = build_model(cfg)
    tokenizer = model.tokenizer
    loss_fn = DistillationLoss(cfg.strategy, kd=cfg.kd, temperature=cfg.temperature,
                               alpha=cfg.alpha, teacher_index=cfg.teacher_index)
    steps_per_epoch = _steps_per_epoch(len(pairs), cfg.batch_size, acc.num_processes)
    total = steps_per_epoch * cfg.epochs
    eval_steps = {epoch * steps_per_epoch + math.ceil((j + 1) * steps_per_epoch / cfg.evals_per_epoch)
                  for epoch in range(cfg.epochs) for j in range(cfg.evals_per_epoch)}  # the last is each epoch's end
    optimizer = _optimizer(model, cfg)
    schedule = _linear_schedule(total, cfg.warmup)
    if main:  # written only once the experiment is known to be valid
        write_text_atomic(saved_cfg, cfg.to_json())

    checkpoint = out_dir / "checkpoint"
    step, best = 0, -1.0
    if (checkpoint / "state.json").is_file():
        step, best = _load_checkpoint(checkpoint, model, optimizer, acc.process_index)
    curve = read_curve(out_dir, upto=step)
    wrapped, optimizer = acc.prepare(model, optimizer)
    for group in optimizer.param_groups:
        group["lr"] = cfg.lr * schedule(step)

    if step == 0 and main:
        _evaluate_dev(model, dev_ds, cfg, out_dir, 0)
    acc.wait_for_everyone()
    bar = tqdm(total=total, initial=step, desc=f"train {cfg.name}", unit="step", disable=not (progress and main))
    wrapped.train()
    while step < total:
        epoch, i = divmod(step, steps_per_epoch)
        order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
        batch = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
        local = batch[acc.process_index :: acc.num_processes]
        # DDP averages the processes' gradients: weighting each process's mean loss by its share
        # of the batch keeps that the mean over the whole batch when it does not split evenly
        share = len(local) * acc.num_processes / len(batch)
        enc = tokenizer([pairs[j][0] for j in local], [pairs[j][1] for j in local], padding=True,
                        truncation="longest_first", max_length=cfg.max_length, return_tensors="pt").to(acc.device)
        with acc.autocast():
            out = wrapped(**enc)
        parts = loss_fn(out.head_logits.float(), labels[local].to(acc.device),
                        None if teacher is None else teacher[local].to(acc.device))
        if cfg.pooler == "learned":  # gold labels train the pooler; it reads detached head states
            parts["ce/pooler"] = torch.nn.functional.cross_entropy(out.pooled_logits.float(), labels[local].to(acc.device))
        parts = {k: v * share for k, v in parts.items()}
        acc.backward(parts["loss"] + parts["ce/pooler"] if "ce/pooler" in parts else parts["loss"])
        acc.clip_grad_norm_(wrapped.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        step += 1
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * schedule(step)
        reduced = {k: acc.reduce(v.detach().float().reshape(1), "mean").item() for k, v in parts.items()}
        curve.append({"step": step, "epoch": epoch, **reduced})
        bar.update(1)
        bar.set_postfix(loss=f"{reduced['loss']:.3f}")
        if step in eval_steps:
            if main:
                dev_map = _evaluate_dev(model, dev_ds, cfg, out_dir, step)
                if dev_map > best:
                    best = dev_map
                    with atomic_path(out_dir / "best") as tmp:
                        model.save_pretrained(tmp)
            wrapped.train()
        if step % cfg.checkpoint_every == 0 or step in eval_steps:
            best = _broadcast(acc, best)
            if main:  # before the checkpoint commits: a resume keeps the rows up to its step
                write_curve(out_dir, curve)
            _save_checkpoint(checkpoint, model, optimizer, step, best, acc)
            acc.wait_for_everyone()
    bar.close()
    acc.wait_for_everyone()
    return finish(cfg, out_dir, data, progress=progress) if main else {}


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
    """Score dev with every head, keep the table as a trace of training, return pooled MAP."""
    table = score_dataset(model, dev, cfg.eval_batch_size, cfg.max_length, meta={"step": step})
    table.save(out_dir / "trace" / f"dev_step{step:06d}.tsv")
    return ranking_metrics(table.qids, table.labels, table.columns["pooled"], policy="none")["map"]


def finish(cfg: TrainConfig, out_dir: Path, data: dict[str, AS2Dataset], progress: bool = True) -> dict[str, Any]:
    """Score dev and test with the best model; write the score tables and metrics.json."""
    best = CerberusForRanking.from_pretrained(out_dir / "best")
    metrics: dict[str, Any] = {"name": cfg.name, "model": best.config.name,
                               "parameters": best.parameter_counts()["total"], "code_version": code_version()}
    for role in ("dev", "test"):
        if role in data:
            table = score_dataset(best, data[role], cfg.eval_batch_size, cfg.max_length,
                                  meta={"run": cfg.name}, progress=progress)
            table.save(out_dir / "scores" / f"{role}.tsv")
            metrics[role] = evaluate_table(table, seed=cfg.seed)
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    return metrics
