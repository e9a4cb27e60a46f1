"""Checks of a saved model folder made before any weight is loaded, so that a folder that
does not hold a usable CERBERUS model is refused with one line naming the file and what is
wrong, instead of a traceback or, worse, a model with randomly initialised parts.

Only safetensors weights are read (no pickle): a folder holding only `pytorch_model.bin`
is refused with a hint to convert it. Nothing in a model folder is ever executed: a folder
whose config names custom code (`auto_map`) is refused before transformers reads it, so
transformers never asks on stdin whether to run it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import InputError, loads_json, one_line

WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
PICKLED = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# buffers a module recomputes itself: never an error when absent from a file
RECOMPUTED = ("position_ids", "token_type_ids")
# the integer fields of a CERBERUS config.json and their lowest values
ARCHITECTURE = {"body_layers": 0, "num_heads": 1, "head_layers": 0}
# the files transformers reads when it builds a config, model or tokenizer from a folder, and
# the keys by which they name Python code to import from the folder (or a hub repository)
LOADED_CONFIGS = ("config.json", "tokenizer_config.json")
CODE_KEYS = ("auto_map", "custom_pipelines")
# a short text a tokenizer of an English encoder must read (check_tokenizer)
TOKENIZER_SAMPLE = "what is the capital of france"


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from `path`, or an InputError naming the file (and line)."""
    from ..atomic import read_text_bounded

    text = read_text_bounded(path, what)  # a FIFO, a device or a huge file is refused unread
    try:
        values = loads_json(text, path)  # a key given twice is refused, at its second line
    except json.JSONDecodeError as err:
        raise InputError(path, f"not valid JSON ({err.msg}); expected {what}", line=err.lineno) from None
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
    for field, low in ARCHITECTURE.items():
        value = values.get(field, low)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise InputError(path, f"field {field!r} must be an integer >= {low}, got {value!r}")
    return values


def refuse_custom_code(folder: str | Path) -> None:
    """Refuse a model folder whose config.json or tokenizer_config.json names code to import
    (`auto_map`, also inside a CERBERUS config's `backbone`): nothing in a model folder is ever
    executed, whatever stdin holds. Checked before any transformers call reads the folder."""
    folder = Path(folder)
    for name in LOADED_CONFIGS:
        path = folder / name
        if not path.is_file():
            continue
        values = read_json(path, f"a {name.split('.')[0].replace('_', ' ')}")
        backbone = values.get("backbone") if isinstance(values.get("backbone"), dict) else {}
        found = [k for k in CODE_KEYS if k in values] + [f"backbone.{k}" for k in CODE_KEYS if k in backbone]
        if found:
            raise InputError(path, f"names custom code to import ({found[0]}); code in a model folder is never run: "
                                   "use a model whose classes are built into transformers")


def require_tokenizer(folder: str | Path) -> None:
    """A saved model that is to score text must hold its tokenizer (checked before any weight loads)."""
    if not (Path(folder) / "tokenizer_config.json").is_file():
        raise InputError(folder, "has no tokenizer (tokenizer_config.json and its vocabulary); expected a model "
                                 "saved with its tokenizer")


def check_tokenizer(tokenizer: Any, folder: str | Path) -> None:
    """A tokenizer must read a plain English sample: one that lost a file (its vocabulary) reads
    every word as [UNK], and a model then scores every pair alike. A sample it reads whole must
    come back as it was. (A small vocabulary that lacks some of its words is no error.)"""
    ids = tokenizer(TOKENIZER_SAMPLE, add_special_tokens=False)["input_ids"]
    back = tokenizer.decode(ids)
    unk = tokenizer.unk_token_id
    if all(i == unk for i in ids) or (unk not in ids and back.lower().split() != TOKENIZER_SAMPLE.split()):
        raise InputError(folder, f"the tokenizer does not read text: {TOKENIZER_SAMPLE!r} comes back as {back[:80]!r}; "
                                 "a tokenizer file (vocab.txt or tokenizer.json) is missing or damaged")


def weight_headers(folder: str | Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name -> (shape, safetensors dtype such as F32) of every tensor in the folder's safetensors
    weights (one file or shards), read from the headers only; a truncated, empty or foreign file
    is refused."""
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
    headers: dict[str, tuple[tuple[int, ...], str]] = {}
    for path in files:
        if not path.is_file():
            raise InputError(path, f"missing: {WEIGHTS_INDEX} lists it as a shard")
        if path.stat().st_size == 0:
            raise InputError(path, "is empty; expected safetensors weights (save the model again)")
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    tensor = f.get_slice(key)
                    headers[key] = (tuple(tensor.get_shape()), tensor.get_dtype())
        except (SafetensorError, OSError) as err:
            raise InputError(path, f"is truncated or not a safetensors file ({one_line(err)}); "
                                   "save the model again") from None
    return headers


def safetensors_dtype(dtype: Any) -> str:
    """A torch dtype as safetensors names it in a header (torch.float32 -> F32)."""
    if str(dtype) == "torch.bool":
        return "BOOL"
    kind, bits = re.fullmatch(r"torch\.([a-z]+?)(\d+)", str(dtype)).groups()
    return {"float": "F", "bfloat": "BF", "int": "I", "uint": "U"}[kind] + bits


def check_weights_fit(folder: str | Path, expected: dict[str, tuple[tuple[int, ...], str]],
                      found: dict[str, tuple[tuple[int, ...], str]]) -> None:
    """The weights must be exactly the tensors config.json describes, each (shape, dtype): no part
    of the model may stay randomly initialised, no tensor of the file may go unused, and none may
    be silently converted from another dtype (integers read as weights score every pair alike)."""
    missing = sorted(k for k in expected.keys() - found.keys() if not k.endswith(RECOMPUTED))
    unexpected = sorted(found.keys() - expected.keys())
    common = sorted(expected.keys() & found.keys())
    resized = [k for k in common if tuple(expected[k][0]) != tuple(found[k][0])]
    retyped = [k for k in common if k not in resized and expected[k][1] != found[k][1]]
    if not (missing or unexpected or resized or retyped):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (first: {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:3])})")
    if resized:
        k = resized[0]
        parts.append(f"{len(resized)} of another shape (first: {k} is {list(found[k][0])}, config.json needs "
                     f"{list(expected[k][0])})")
    if retyped:
        k = retyped[0]
        parts.append(f"{len(retyped)} of another dtype (first: {k} is {found[k][1]}, the model needs {expected[k][1]})")
    raise InputError(folder, "the weights do not fit config.json: " + "; ".join(parts)
                             + "; config.json and the weights are not of one model (save the model again)")
