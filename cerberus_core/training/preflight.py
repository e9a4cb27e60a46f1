"""Every check of a run that touches files, models or data, made once by `preflight(cfg, out_dir)`
before the run writes anything: the rules between the config's fields, the output folder (it can
hold a run, and holds no other experiment), the backbone or init_from model, this machine's
precision, the data splits and the teachers' score tables."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data import AS2Dataset, load_as2
from ..errors import InputError
from ..results import artifacts
from .config import TrainConfig, init_from_folder
from .teacher_targets import load_teacher_margins


@dataclass
class Ready:
    """What preflight read and checked, for the run to use as it is."""

    data: dict[str, AS2Dataset]  # train, dev (and test) splits, filtered and subset as the config says
    teacher: torch.Tensor | None  # (n_train_pairs, n_teachers) teacher margins; None for gold


def preflight(cfg: TrainConfig, out_dir: str | Path) -> Ready:
    """Check everything a run needs before it writes anything; return the data it read."""
    out_dir = Path(out_dir)
    cfg.check_consistent()
    artifacts.check_run_folder(out_dir)
    check_same_experiment(cfg, out_dir)
    check_against_model(cfg, out_dir)
    data = load_splits(cfg)
    check_splits(cfg, data)
    return Ready(data, load_teacher_margins(cfg, data["train"], out_dir))


def check_same_experiment(cfg: TrainConfig, run_dir: Path) -> None:
    """A run folder holds one experiment: a saved config that differs from `cfg` is refused."""
    saved = artifacts.config_path(run_dir)
    if saved.is_file() and TrainConfig.from_file(saved) != cfg:
        raise InputError(saved, "a different experiment already lives in this run folder; choose another "
                                "output folder, or delete this one to retrain")


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


POSITION_OFFSET_TYPES = ("roberta", "xlm-roberta", "camembert", "mpnet", "longformer")  # positions start after padding


def max_positions(backbone_config: dict[str, Any]) -> int | None:
    """How many tokens a backbone's position embeddings can take (None: no limit known)."""
    n = backbone_config.get("max_position_embeddings")
    if not isinstance(n, int):
        return None
    if backbone_config.get("model_type") in POSITION_OFFSET_TYPES:
        n -= (backbone_config.get("pad_token_id") or 0) + 1
    return n


def _backbone_config(cfg: TrainConfig, run_dir: str | Path | None) -> tuple[Path | None, dict[str, Any]] | None:
    """The config.json a run's model will come from (init_from or the backbone), read without
    loading weights; None for a hub id that is not on this machine (its checks happen on load)."""
    from ..model.modelfiles import read_json, refuse_custom_code, weight_headers

    if cfg.init_from:
        folder = init_from_folder(cfg, run_dir)
        from ..results.artifacts import best_dir, has_model

        hint = f"; {folder} is a run folder: use {best_dir(folder)}" if has_model(folder) else ""
        if not (folder / "config.json").is_file():
            raise InputError(folder, "init_from: expected a saved model folder (config.json + model.safetensors)")
        refuse_custom_code(folder)  # nothing in a model folder is ever run
        saved = read_json(folder / "config.json", "a saved model config")
        if saved.get("model_type") != "cerberus" or not isinstance(saved.get("backbone"), dict):
            raise InputError(folder / "config.json", "init_from: not a CERBERUS model saved by save_pretrained "
                                                     f"(model_type {saved.get('model_type')!r}){hint}")
        return folder / "config.json", saved
    from ..model.zoo import resolve_model

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
    refuse_custom_code(folder)  # nothing in a model folder is ever run
    weight_headers(folder)  # safetensors that can be read (never pickle), checked from their headers
    values = read_json(folder / "config.json", "a model config")
    if values.get("model_type") == "cerberus":
        raise InputError(folder, "backbone: a saved CERBERUS model, not an encoder; to continue from it, "
                                 "set init_from to this folder")
    return folder / "config.json", values


def check_against_model(cfg: TrainConfig, out_dir: Path | None) -> None:
    """The layer split and max_length against the backbone (or init_from model), mixed precision
    against this machine."""

    if cfg.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise InputError(None, "config field 'mixed_precision' is 'fp16', which needs a GPU; use 'no' or 'bf16' on a CPU")
    if cfg.mixed_precision == "bf16" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise InputError(None, "config field 'mixed_precision' is 'bf16', which this GPU does not support; use 'fp16' or 'no'")
    found = _backbone_config(cfg, out_dir)
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


def resolved_precision(cfg: TrainConfig) -> str:
    """What `mixed_precision` means on this machine: "auto" is bf16 autocast on a GPU that has
    it, else fp32 ("no"). On a CPU, bf16 must be asked for ("bf16"): it trains a step about 1.5x
    faster on AVX512-BF16/AMX CPUs, but equal dev MAP is not yet shown over seeds (docs/experiment-log.md)."""

    if cfg.mixed_precision != "auto":
        return cfg.mixed_precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def check_splits(cfg: TrainConfig, data: dict[str, AS2Dataset]) -> None:
    """Every split a run reads must keep at least one question under its filter."""
    for role, ds in data.items():
        if len(ds) == 0:
            policy = cfg.train_filter if role == "train" else cfg.eval_filter
            raise InputError(ds.source, f"the {role} split ({cfg.dataset}, split {ds.split}) has no question "
                                        f"under filter {policy!r}; choose another filter or dataset")
