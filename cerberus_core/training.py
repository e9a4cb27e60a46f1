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
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .atomic import atomic_path, write_text_atomic
from .batching import epoch_batches, pair_lengths
from .curves import read_curve, write_curve
from .data import AS2Dataset, load_as2
from .errors import InputError, one_line
from .losses import DistillationLoss
from .metrics import metrics_with_ci, ranking_metrics
from .model import CerberusForRanking
from .provenance import code_version
from .runlock import locks_run_folder
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
    head_loss: str = "sum"  # sum or mean of the per-head losses (losses.py)
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
    mixed_precision: str = "auto"  # auto: bf16 autocast on a GPU that has it, else fp32; "bf16" also on a CPU
    length_grouping: int = 0  # batches per pool sorted by length (batching.py); 0: plain random batches

    def __post_init__(self) -> None:
        """Refuse a bad value at once: every field against its type, range or choices. The
        rules between fields (`check_consistent`) wait for the finished config (a config may be
        built in steps, e.g. a file completed by --set overrides); `train` checks them, and those
        that need the backbone or teachers (`validate_against_model`), before writing anything."""
        for name, value in dataclasses.asdict(self).items():
            _check_field(name, value)
        if self.strategy == "cerberus" and self.teachers and len(self.teachers) != self.num_heads:
            raise InputError(None, f"cerberus needs one head per teacher: num_heads={self.num_heads}, "
                                   f"{len(self.teachers)} teachers")

    def check_consistent(self) -> None:
        """The rules between fields that need no files: heads, strategy, teachers."""
        n, strategy = len(self.teachers), self.strategy
        if strategy in ("single", "ensemble") and self.num_heads != 1:
            raise InputError(None, f"strategy {strategy!r} distils into one head, but num_heads={self.num_heads}; "
                                   "set num_heads=1 (or use strategy 'replicated' or 'cerberus' for several heads)")
        if strategy != "gold" and n == 0:
            raise InputError(None, f"strategy {strategy!r} needs teacher score tables (config field 'teachers', "
                                   "a list of folders holding <train_split>.tsv)")
        if strategy == "cerberus" and n != self.num_heads:
            raise InputError(None, f"cerberus needs one head per teacher: num_heads={self.num_heads}, {n} teachers")
        if strategy in ("single", "replicated"):
            if self.teacher_index is None and n > 1:
                raise InputError(None, f"strategy {strategy!r} with {n} teachers needs teacher_index "
                                       f"(0 to {n - 1}): which teacher to distil")
            if self.teacher_index is not None and self.teacher_index >= n:
                raise InputError(None, f"config field 'teacher_index' is {self.teacher_index}, but there "
                                       f"{'is' if n == 1 else 'are'} {n} teacher{'' if n == 1 else 's'} "
                                       f"(valid: 0 to {n - 1})")

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """A config from JSON; a field's error names the file and the line the field is on."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(path, f"expected a JSON experiment config ({err.msg})", line=err.lineno) from None
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(path, f"expected a readable JSON experiment config ({err})") from None
        if not isinstance(values, dict):
            raise InputError(path, "expected a JSON object of TrainConfig fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(path, f"unknown config field {unknown[0]!r}; known: {', '.join(sorted(known))}",
                             line=_line_of(text, unknown[0]))
        try:
            return cls(**values)
        except InputError as err:
            raise InputError(path, err.message, line=_line_of(text, getattr(err, "field", None))) from None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1) + "\n"


# Every field's type; None is allowed only for the fields in NULLABLE. An int is a valid
# float, a bool is never a number.
TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str, "backbone": str, "init_from": str, "body_layers": int, "num_heads": int, "head_layers": int,
    "pooler": str, "head_init": str, "strategy": str, "teachers": list, "teacher_index": int, "kd": str,
    "temperature": (int, float), "alpha": (int, float), "dataset": str, "data_root": str,
    "train_split": str, "dev_split": str, "test_split": str, "train_filter": str, "eval_filter": str,
    "train_questions": int, "eval_questions": int, "epochs": int, "batch_size": int, "lr": (int, float),
    "warmup": (int, float), "weight_decay": (int, float), "max_length": int, "eval_batch_size": int,
    "evals_per_epoch": int, "checkpoint_every": int, "seed": int, "data_seed": int, "mixed_precision": str,
    "length_grouping": int, "head_loss": str,
}
NULLABLE = {"init_from", "body_layers", "teacher_index", "data_root", "test_split", "train_questions", "eval_questions"}
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
SEED_MAX = 2**32 - 1  # numpy's seed range
# name -> (lowest, highest, lowest included): numeric ranges (None: unbounded)
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    **{k: (1, None, True) for k in ("epochs", "batch_size", "num_heads", "max_length", "eval_batch_size",
                                    "evals_per_epoch", "checkpoint_every", "train_questions", "eval_questions")},
    "body_layers": (0, None, True), "head_layers": (0, None, True), "teacher_index": (0, None, True),
    "length_grouping": (0, None, True),
    "seed": (0, SEED_MAX, True), "data_seed": (0, SEED_MAX, True),
    "lr": (0, None, False), "temperature": (0, None, False), "alpha": (0, 1, True), "warmup": (0, 1, True),
    "weight_decay": (0, None, True),
}


def _field_error(name: str, message: str) -> InputError:
    err = InputError(None, f"config field {name!r} {message}")
    err.field = name  # type: ignore[attr-defined]  # from_file finds its line
    return err


def _check_field(name: str, value: Any) -> None:
    """One field against its type, range or choices."""
    from .data import FILTERS, SPLITS
    from .losses import HEAD_LOSSES, KD_LOSSES, STRATEGIES
    from .model import HEAD_INITS, POOLERS

    kind = TYPES.get(name)
    if value is None:
        if name in NULLABLE:
            return
        raise _field_error(name, f"must not be null (expects {_type_names(kind)})")
    if kind and (not isinstance(value, kind) or isinstance(value, bool)):
        raise _field_error(name, f"expects {_type_names(kind)}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _field_error(name, f"must be a finite number, got {value!r}")
    if name in RANGES:
        low, high, closed = RANGES[name]
        if (value < low if closed else value <= low) or (high is not None and value > high):
            bound = f">= {low}" if closed else f"> {low}"
            wanted = f"between {low} and {high}" if high is not None else bound
            raise _field_error(name, f"must be {wanted}, got {value!r}")
    choices = {"strategy": STRATEGIES, "kd": KD_LOSSES, "pooler": POOLERS, "head_init": HEAD_INITS,
               "train_filter": FILTERS, "eval_filter": FILTERS, "mixed_precision": MIXED_PRECISION,
               "train_split": SPLITS, "dev_split": SPLITS, "test_split": SPLITS, "head_loss": HEAD_LOSSES}
    if name in choices and value not in choices[name]:
        raise _field_error(name, f"must be one of {sorted(choices[name])}, got {value!r}")
    if isinstance(value, str) and not value.strip() and name not in ("data_root", "init_from"):
        raise _field_error(name, "must not be empty")
    if name == "teachers":
        bad = [t for t in value if not isinstance(t, str) or not t.strip()]
        if bad:
            raise _field_error(name, f"expects a list of folder paths (strings), got {bad[0]!r} in {value!r}")


def _type_names(kind: type | tuple[type, ...] | None) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds if k is not None)


def _line_of(text: str, key: str | None) -> int | None:
    """The line of a JSON text where `"key":` first appears (for error messages)."""
    if not key:
        return None
    match = re.search(rf'"{re.escape(key)}"\s*:', text)
    return text.count("\n", 0, match.start()) + 1 if match else None


POSITION_OFFSET_TYPES = ("roberta", "xlm-roberta", "camembert", "mpnet", "longformer")  # positions start after padding


def max_positions(backbone_config: dict[str, Any]) -> int | None:
    """How many tokens a backbone's position embeddings can take (None: no limit known)."""
    n = backbone_config.get("max_position_embeddings")
    if not isinstance(n, int):
        return None
    if backbone_config.get("model_type") in POSITION_OFFSET_TYPES:
        n -= (backbone_config.get("pad_token_id") or 0) + 1
    return n


def _backbone_config(cfg: TrainConfig) -> tuple[Path | None, dict[str, Any]] | None:
    """The config.json a run's model will come from (init_from or the backbone), read without
    loading weights; None for a hub id that is not on this machine (its checks happen on load)."""
    from .modelfiles import read_json, weight_shapes

    if cfg.init_from:
        folder = Path(cfg.init_from)
        hint = f"; {folder} is a run folder: use {folder / 'best'}" if (folder / "best" / "config.json").is_file() else ""
        if not (folder / "config.json").is_file():
            raise InputError(folder, "init_from: expected a saved model folder (config.json + model.safetensors)")
        saved = read_json(folder / "config.json", "a saved model config")
        if saved.get("model_type") != "cerberus" or not isinstance(saved.get("backbone"), dict):
            raise InputError(folder / "config.json", "init_from: not a CERBERUS model saved by save_pretrained "
                                                     f"(model_type {saved.get('model_type')!r}){hint}")
        return folder / "config.json", saved
    from .zoo import resolve_model

    folder = Path(resolve_model(cfg.backbone))
    if not folder.is_dir():
        if folder.exists():
            raise InputError(folder, "backbone: expected an embedded model name, a model folder or a hub id, got a file")
        if folder.is_absolute() or cfg.backbone.startswith((".", "~")) or cfg.backbone.count("/") > 1:
            raise InputError(folder, "backbone: no such model folder; expected an embedded model name "
                                     "(minilm-l3, minilm-l6, mpnet-base), a model folder or a hub id")
        return None  # a hub id: transformers fetches and checks it
    if not (folder / "config.json").is_file():
        raise InputError(folder, "backbone: this folder has no config.json; expected a Hugging Face model folder")
    weight_shapes(folder)  # safetensors that can be read (never pickle), checked from their headers
    return folder / "config.json", read_json(folder / "config.json", "a model config")


def validate_against_model(cfg: TrainConfig, out_dir: str | Path | None = None) -> None:
    """The checks that need files, made before a run writes anything: the rules between fields,
    the layer split and max_length against the backbone (or init_from model), mixed precision
    against this machine, and (with `out_dir`) that the output folder can hold a run."""
    cfg.check_consistent()
    if cfg.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise InputError(None, "config field 'mixed_precision' is 'fp16', which needs a GPU; use 'no' or 'bf16' on a CPU")
    if cfg.mixed_precision == "bf16" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise InputError(None, "config field 'mixed_precision' is 'bf16', which this GPU does not support; use 'fp16' or 'no'")
    if out_dir is not None:
        check_run_folder(Path(out_dir))
    found = _backbone_config(cfg)
    if found is None:
        return
    path, values = found
    backbone = values["backbone"] if cfg.init_from else values
    depth = backbone.get("num_hidden_layers")
    if isinstance(depth, int) and not cfg.init_from:
        body = cfg.body_layers if cfg.body_layers is not None else depth - cfg.head_layers
        if body < 0 or body + cfg.head_layers > depth:
            raise InputError(None, f"config fields body_layers={body} + head_layers={cfg.head_layers} must fit the "
                                   f"backbone's {depth} layers ({cfg.backbone})")
    limit = max_positions(backbone)
    if limit is not None and cfg.max_length > limit:
        raise InputError(None, f"config field 'max_length' is {cfg.max_length}, but the model ({path.parent}) "
                               f"takes at most {limit} tokens")


def check_splits(cfg: TrainConfig, data: dict[str, AS2Dataset]) -> None:
    """Every split a run reads must keep at least one question under its filter."""
    for role, ds in data.items():
        if len(ds) == 0:
            policy = cfg.train_filter if role == "train" else cfg.eval_filter
            raise InputError(ds.source, f"the {role} split ({cfg.dataset}, split {ds.split}) has no question "
                                        f"under filter {policy!r}; choose another filter or dataset")


RUN_ENTRIES = ("checkpoint", "best", "trace", "scores", "curve.tsv", "metrics.json")  # what train() writes


def check_run_folder(out_dir: Path) -> None:
    """A run writes into a new or empty folder, or into its own run folder (config.json there):
    never over a file, nor over files of the same names that are not a run's."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "is a file; expected a run folder (created if missing)")
    if out_dir.is_dir() and not (out_dir / "config.json").is_file():
        clash = [name for name in RUN_ENTRIES if (out_dir / name).exists()]
        if clash:
            raise InputError(out_dir, f"holds {clash[0]} but no config.json, so it is not a run folder of "
                                      "this tool and a run would overwrite it; choose a new or empty folder")


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

    Every file is named after its step, state-<step>.json is written after the tensors and
    state.json, written last, commits them: a process killed half-way leaves the previous
    checkpoint whole (never weights of one step with the optimizer of another). Older files
    go only after the commit.
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
    state = json.dumps({"step": step, "best_dev_map": best, "world_size": acc.num_processes,
                        "optimizer_scalars": scalars})
    write_text_atomic(folder / f"state-{tag}.json", state)  # lets a damaged state.json be recovered
    write_text_atomic(folder / "state.json", state)
    for old in folder.iterdir():  # earlier checkpoints, and temporaries of a killed writer
        if not old.name.endswith((f"-{tag}.safetensors", f"-{tag}.json")) and old.name != "state.json":
            shutil.rmtree(old) if old.is_dir() else old.unlink()


class _Damaged(Exception):
    """A checkpoint file that cannot be used as it is."""


DAMAGE = (_Damaged, OSError, ValueError, KeyError, TypeError, IndexError)  # JSON errors are ValueErrors


def _load_checkpoint(folder: Path, model, optimizer, rank: int) -> tuple[int, float]:
    """Restore the latest usable checkpoint; returns (step, best dev MAP), (0, -1.0) for none.

    Every file is read and checked (keys, shapes) before anything is restored. A damaged
    checkpoint (unreadable state, truncated or missing tensors, tensors of another model) is
    moved to RUN/checkpoint-damaged/ with a warning, and the next older complete checkpoint is
    tried; with none left the run restarts from step 0 (the model and optimizer untouched).
    """
    from safetensors import SafetensorError

    candidates = _checkpoints(folder)
    for i, (tag, state, error) in enumerate(candidates):
        try:
            if state is None:
                raise _Damaged(error)
            parts = _read_checkpoint(folder, tag, state, model, optimizer, rank)
        except (*DAMAGE, SafetensorError) as err:
            later = next((t for t, s, _ in candidates[i + 1 :] if s is not None), None)
            reason = str(err) if isinstance(err, _Damaged) else f"{type(err).__name__}: {err}"
            _set_aside(folder, tag, reason, rank, resume=later)
            continue
        _restore(parts, model, optimizer)
        if rank == 0 and _state_tag(folder / "state.json") != tag:  # recovered from state-<step>.json
            write_text_atomic(folder / "state.json", json.dumps(state))
        return state["step"], state["best_dev_map"]
    return 0, -1.0


def _checkpoints(folder: Path) -> list[tuple[str | None, dict | None, str | None]]:
    """(tag, state, why unreadable) of each checkpoint, the one state.json commits first, then
    the other state-<step>.json files, newest first; tag None: state.json itself is unreadable."""
    found: list[tuple[str | None, dict | None, str | None]] = []
    seen: set[str] = set()
    paths = [folder / "state.json", *sorted(folder.glob("state-*.json"), reverse=True)]
    for path in paths:
        tag = None if path.name == "state.json" else path.name[len("state-"):-len(".json")]
        if tag in seen or not path.is_file():
            continue
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            if not (isinstance(state, dict) and isinstance(state.get("step"), int) and state["step"] > 0
                    and isinstance(state.get("best_dev_map"), (int, float))
                    and isinstance(state.get("optimizer_scalars"), dict)):
                raise _Damaged("expected step, best_dev_map and optimizer_scalars")
        except (*DAMAGE, UnicodeDecodeError) as err:
            found.append((tag, None, f"{path.name} is unreadable ({err})"))
            continue
        tag = f"{state['step']:08d}"
        if tag not in seen:
            seen.add(tag)
            found.append((tag, state, None))
    return found


def _read_checkpoint(folder: Path, tag: str, state: dict, model, optimizer, rank: int) -> dict[str, Any]:
    """Every tensor of checkpoint `tag`, checked against the model and optimizer."""
    weights = load_file(str(_tagged(folder, "model", tag)))
    expected = model.state_dict()
    if weights.keys() != expected.keys():
        missing = sorted(expected.keys() - weights.keys())
        extra = sorted(weights.keys() - expected.keys())
        raise _Damaged(f"its weights do not fit the model (missing {missing[:3]}, unexpected {extra[:3]})")
    for key, value in weights.items():
        if value.shape != expected[key].shape:
            raise _Damaged(f"weight {key} has shape {tuple(value.shape)}, the model {tuple(expected[key].shape)}")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    restored: dict[int, dict[str, Any]] = {}
    for key, value in load_file(str(_tagged(folder, "optimizer", tag))).items():
        i, name = key.split(".", 1)
        if not 0 <= int(i) < len(params) or value.shape != params[int(i)].shape:
            raise _Damaged(f"optimizer state {key} does not fit the model's parameters")
        restored.setdefault(int(i), {})[name] = value
    for key, value in state["optimizer_scalars"].items():
        i, name = key.split(".", 1)
        if not 0 <= int(i) < len(params):
            raise _Damaged(f"optimizer scalar {key} does not fit the model's parameters")
        restored.setdefault(int(i), {})[name] = torch.tensor(float(value))
    rng_path = _tagged(folder, f"rng{rank}", tag)
    rng = load_file(str(rng_path)) if rng_path.is_file() else None
    if rng is not None and "rng" not in rng:
        raise _Damaged(f"{rng_path.name} holds no RNG state")
    return {"weights": weights, "optimizer": restored, "rng": rng}


def _restore(parts: dict[str, Any], model, optimizer) -> None:
    model.load_state_dict(parts["weights"])
    opt_state = optimizer.state_dict()
    opt_state["state"] = parts["optimizer"]
    optimizer.load_state_dict(opt_state)
    if parts["rng"] is not None:
        torch.set_rng_state(parts["rng"]["rng"])
        if "cuda_rng" in parts["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state(parts["rng"]["cuda_rng"])


def _set_aside(folder: Path, tag: str | None, reason: str, rank: int, resume: str | None) -> None:
    """Move a damaged checkpoint's files to RUN/checkpoint-damaged/<step>/ (never delete them)."""
    from .errors import CerberusWarning

    what = f"the checkpoint of step {int(tag)} is damaged" if tag else "state.json is damaged"
    dest = folder.parent / f"{folder.name}-damaged" / (f"step{int(tag)}" if tag else "state")
    if rank == 0:  # one process moves the files; every process reaches the same decision
        suffix = 1
        while dest.exists():
            suffix += 1
            dest = dest.with_name(f"{dest.name.split('.')[0]}.{suffix}")
        dest.mkdir(parents=True)
        names = [p for p in folder.iterdir() if (tag and p.name.endswith((f"-{tag}.safetensors", f"-{tag}.json")))
                 or p.name == "state.json" and (tag is None or _state_tag(p) in (tag, None))]
        for path in names:
            os.replace(path, dest / path.name)
    then = f"resuming from the checkpoint of step {int(resume)}" if resume else "restarting from step 0"
    warnings.warn(f"{folder}: {what} ({one_line(reason)[:300]}); "
                  f"set aside in {dest}; {then}", CerberusWarning, stacklevel=3)


def _state_tag(path: Path) -> str | None:
    """The step tag state.json points to, None if it is unreadable."""
    try:
        return f"{json.loads(path.read_text(encoding='utf-8'))['step']:08d}"
    except (*DAMAGE, UnicodeDecodeError):
        return None


def _tagged(folder: Path, stem: str, tag: str) -> Path:
    return folder / f"{stem}-{tag}.safetensors"


# ------------------------------------------------------------------ training
@locks_run_folder  # one run at a time per folder: a second one is refused at once
def train(cfg: TrainConfig, out_dir: str | Path, progress: bool = True) -> dict[str, Any]:
    """Train, select on dev MAP, then score dev/test with the best model; resumes if interrupted."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    out_dir = Path(out_dir)
    validate_against_model(cfg, out_dir)  # nothing is written before the config is known to fit
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()  # accelerate keeps one precision per process; runs in turn may differ
    acc = Accelerator(mixed_precision=resolved_precision(cfg), cpu=not torch.cuda.is_available())
    set_seed(cfg.seed)
    main = acc.is_main_process
    saved_cfg = out_dir / "config.json"
    if saved_cfg.is_file() and TrainConfig.from_file(saved_cfg) != cfg:
        raise InputError(saved_cfg, "this run folder holds a different experiment; choose another output folder")
    data = load_splits(cfg)
    check_splits(cfg, data)
    train_ds, dev_ds = data["train"], data["dev"]
    teacher = load_teacher_margins(cfg, train_ds, out_dir)
    pairs = train_ds.pairs()
    labels = torch.tensor(train_ds.flat()[2], dtype=torch.long)

    model = build_model(cfg)
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
    lengths = pair_lengths(tokenizer, pairs, cfg.max_length) if cfg.length_grouping > 1 else torch.zeros(len(pairs))
    batches: dict[int, list[torch.Tensor]] = {}
    while step < total:
        epoch, i = divmod(step, steps_per_epoch)
        if epoch not in batches:
            batches = {epoch: epoch_batches(lengths, cfg.batch_size, cfg.seed, epoch, cfg.length_grouping)}
        batch = batches[epoch][i]
        parts = train_step(wrapped, optimizer, loss_fn, acc, tokenizer, pairs, labels, teacher, batch, cfg)
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


def train_step(wrapped, optimizer, loss_fn: DistillationLoss, acc, tokenizer, pairs: list[tuple[str, str]],
               labels: torch.Tensor, teacher: torch.Tensor | None, batch: torch.Tensor, cfg: TrainConfig,
               ) -> dict[str, torch.Tensor]:
    """One optimisation step on this process's slice of `batch`; returns the loss breakdown."""
    local = batch[acc.process_index :: acc.num_processes]
    # DDP averages the processes' gradients: weighting each process's mean loss by its share
    # of the batch keeps that the mean over the whole batch when it does not split evenly
    share = len(local) * acc.num_processes / len(batch)
    enc = tokenizer([pairs[j][0] for j in local], [pairs[j][1] for j in local], padding=True,
                    truncation="longest_first", max_length=cfg.max_length, return_tensors="pt").to(acc.device)
    gold = labels[local].to(acc.device)
    with acc.autocast():
        out = wrapped(**enc)
    parts = loss_fn(out.head_logits.float(), gold, None if teacher is None else teacher[local].to(acc.device))
    if cfg.pooler == "learned":  # gold labels train the pooler; it reads detached head states
        parts["ce/pooler"] = torch.nn.functional.cross_entropy(out.pooled_logits.float(), gold)
    parts = {k: v * share for k, v in parts.items()}
    acc.backward(parts["loss"] + parts["ce/pooler"] if "ce/pooler" in parts else parts["loss"])
    acc.clip_grad_norm_(wrapped.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad()
    return parts


def resolved_precision(cfg: TrainConfig) -> str:
    """What `mixed_precision` means on this machine: "auto" is bf16 autocast on a GPU that has
    it, else fp32 ("no"). On a CPU, bf16 must be asked for ("bf16"): it trains a step about 1.5x
    faster on AVX512-BF16/AMX CPUs, but equal dev MAP is not yet shown over seeds (artifacts/PLAN.md)."""
    if cfg.mixed_precision != "auto":
        return cfg.mixed_precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


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


def _head_diversity(cfg: TrainConfig, out_dir: Path, table: ScoreTable) -> dict[str, float]:
    """Head-head r, top-1 disagreement and, when there is one teacher per head (cerberus, and
    replicated as its control), the specialization S on test, from the teachers' test tables."""
    from .analysis import run_head_diversity

    paths = [teacher_folder(out_dir, f) / f"{cfg.test_split}.tsv" for f in cfg.teachers]
    one_per_head = len(paths) == cfg.num_heads and all(p.is_file() for p in paths)
    teachers = [ScoreTable.load(p, data_root=cfg.data_root) for p in paths] if one_per_head else []
    return run_head_diversity(table, teachers)


def finish(cfg: TrainConfig, out_dir: Path, data: dict[str, AS2Dataset], progress: bool = True) -> dict[str, Any]:
    """Score dev and test with the best model; write the score tables and metrics.json."""
    best = CerberusForRanking.from_pretrained(out_dir / "best")
    metrics: dict[str, Any] = {"name": cfg.name, "model": best.config.name,
                               "parameters": best.parameter_counts()["total"], "code_version": code_version(),
                               "mixed_precision": resolved_precision(cfg)}
    for role in ("dev", "test"):
        if role in data:
            table = score_dataset(best, data[role], cfg.eval_batch_size, cfg.max_length,
                                  meta={"run": cfg.name}, progress=progress)
            table.save(out_dir / "scores" / f"{role}.tsv")
            metrics[role] = evaluate_table(table, seed=cfg.seed)
            if role == "test" and best.config.num_heads > 1:
                metrics["head_diversity"] = _head_diversity(cfg, out_dir, table)
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    return metrics
