"""Checks of a saved model folder made before any weight is loaded, so that a folder that
does not hold a usable CERBERUS model is refused with one line naming the file and what is
wrong, instead of a traceback or, worse, a model with randomly initialised parts.

Only safetensors weights are read (no pickle): a folder holding only `pytorch_model.bin`
is refused with a hint to convert it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import InputError, one_line

WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
PICKLED = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# buffers a module recomputes itself: never an error when absent from a file
RECOMPUTED = ("position_ids", "token_type_ids")


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from `path`, or an InputError naming the file (and line)."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(path, f"not valid JSON ({err.msg}); expected {what}", line=err.lineno) from None
    except UnicodeDecodeError:
        raise InputError(path, f"not UTF-8 text; expected {what}") from None
    except OSError as err:
        raise InputError(path, f"cannot be read ({err.strerror or err}); expected {what}") from None
    if not isinstance(values, dict):
        raise InputError(path, f"expected {what} (a JSON object), got {type(values).__name__}")
    return values


def saved_model_config(folder: str | Path) -> dict[str, Any]:
    """config.json of a folder written by `CerberusForRanking.save_pretrained`, checked."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError(folder, "no such model folder")
    if not folder.is_dir():
        raise InputError(folder, "is a file; expected a saved model folder (config.json + model.safetensors)")
    path = folder / "config.json"
    if not path.is_file():
        raise InputError(folder, "has no config.json; expected a model saved by save_pretrained "
                                 "(config.json + model.safetensors)")
    values = read_json(path, "a CERBERUS model config")
    if values.get("model_type") != "cerberus":
        raise InputError(path, f"model_type is {values.get('model_type')!r}, not 'cerberus': this is not a model "
                               "saved by CerberusForRanking.save_pretrained (use it as a backbone instead)")
    backbone = values.get("backbone")
    if not isinstance(backbone, dict) or not isinstance(backbone.get("model_type"), str):
        raise InputError(path, "has no 'backbone' object with a model_type; expected a CERBERUS model config")
    return values


def weight_shapes(folder: str | Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in the folder's safetensors weights (one file or shards),
    read from the headers only; a truncated, empty or foreign file is refused."""
    from safetensors import SafetensorError, safe_open

    folder = Path(folder)
    if (folder / WEIGHTS).is_file():
        files = [folder / WEIGHTS]
    elif (folder / WEIGHTS_INDEX).is_file():
        index = read_json(folder / WEIGHTS_INDEX, "a safetensors shard index")
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise InputError(folder / WEIGHTS_INDEX, "has no weight_map; expected a safetensors shard index")
        files = [folder / name for name in sorted(set(map(str, weight_map.values())))]
    else:
        pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLED)
        if pickled:
            raise InputError(folder, f"holds only {', '.join(pickled)} (pickled weights, which are never loaded); "
                                     f"expected {WEIGHTS}: convert the weights to safetensors")
        raise InputError(folder, f"has no {WEIGHTS}; expected the weights saved by save_pretrained")
    shapes: dict[str, tuple[int, ...]] = {}
    for path in files:
        if not path.is_file():
            raise InputError(path, f"missing: {WEIGHTS_INDEX} lists it as a shard")
        if path.stat().st_size == 0:
            raise InputError(path, "is empty; expected safetensors weights (save the model again)")
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    shapes[key] = tuple(f.get_slice(key).get_shape())
        except (SafetensorError, OSError) as err:
            raise InputError(path, f"is truncated or not a safetensors file ({one_line(err)}); "
                                   "save the model again") from None
    return shapes


def check_weights_fit(folder: str | Path, expected: dict[str, tuple[int, ...]],
                      found: dict[str, tuple[int, ...]]) -> None:
    """The weights must be exactly the tensors config.json describes: no part of the model may
    stay randomly initialised and no tensor of the file may go unused."""
    missing = sorted(k for k in expected.keys() - found.keys() if not k.endswith(RECOMPUTED))
    unexpected = sorted(found.keys() - expected.keys())
    resized = sorted(k for k in expected.keys() & found.keys() if tuple(expected[k]) != tuple(found[k]))
    if not (missing or unexpected or resized):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (first: {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:3])})")
    if resized:
        k = resized[0]
        parts.append(f"{len(resized)} of another shape (first: {k} is {list(found[k])}, config.json needs "
                     f"{list(expected[k])})")
    raise InputError(folder, "the weights do not fit config.json: " + "; ".join(parts)
                             + "; config.json and the weights are not of one model (save the model again)")
