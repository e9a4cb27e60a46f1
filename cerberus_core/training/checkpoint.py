"""Resumable training state: weights, optimizer moments and RNG, all safetensors (never pickle).

A checkpoint is committed by writing its state.json last, so a process killed half-way leaves
the previous one whole; a damaged one is set aside (never deleted) and an older one is used.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path, write_text_atomic
from ..errors import CerberusWarning, one_line

# what save_checkpoint writes, and the temporaries atomic_path leaves of them when killed (.NAME.xxxx/):
# rotation removes these and nothing else, whatever else the folder holds
_WRITTEN = re.compile(r"(?:(?:model|optimizer|rng\d+)-(?P<tag>\d{8})\.safetensors|state-(?P<state>\d{8})\.json)")
_TEMPORARY = re.compile(r"\.(?:(?:model|optimizer|rng\d+)-\d{8}\.safetensors|state(?:-\d{8})?\.json)\..+")


def save_checkpoint(folder: Path, model, optimizer, step: int, best: float, acc) -> None:
    """Weights and optimizer moments as safetensors (no pickle); one RNG file per process.

    Every file is named after its step, state-<step>.json is written after the tensors and
    state.json, written last, commits them: a process killed half-way leaves the previous
    checkpoint whole (never weights of one step with the optimizer of another). Older files
    go only after the commit, and only files of those names (never a link, nor anything else).
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
        if old.is_symlink():
            continue
        written = _WRITTEN.fullmatch(old.name)
        if written and tag not in (written["tag"], written["state"]) and old.is_file():
            old.unlink()
        elif _TEMPORARY.fullmatch(old.name) and old.is_dir():
            shutil.rmtree(old)


class _Damaged(Exception):
    """A checkpoint file that cannot be used as it is."""


DAMAGE = (_Damaged, OSError, ValueError, KeyError, TypeError, IndexError)  # JSON errors are ValueErrors


def load_checkpoint(folder: Path, model, optimizer, rank: int) -> tuple[int, float]:
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
        if value.dtype != expected[key].dtype:
            raise _Damaged(f"weight {key} is {value.dtype}, the model {expected[key].dtype}")
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
