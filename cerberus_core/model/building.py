"""The one path from a name to a model, used by training, the CLI, the benchmark and the widgets.

A spec is an embedded name (`minilm-l6`), a model folder or a hub id (a backbone: built as a
one-head ranker), `NAME:B5-3H1` (a CERBERUS body and heads built on that backbone), a folder
saved by `save_pretrained` (loaded as saved, strictly), or `A+B+C` (an ensemble of those).
Building never seeds: whoever needs a reproducible initialisation seeds first (`train` does).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

from ..errors import InputError
from .modeling import CerberusForRanking

Ranker = Union[CerberusForRanking, Sequence[CerberusForRanking]]
SPEC = re.compile(r"^(?P<source>.+?)(?::B(?P<b>\d+)[-_ ]?(?P<k>\d+)H(?P<h>\d+))?$")


def members(model_or_models: Ranker) -> list[CerberusForRanking]:
    """The models of a ranker: itself, or an ensemble's members."""
    return [model_or_models] if isinstance(model_or_models, CerberusForRanking) else list(model_or_models)


def is_saved_cerberus(path: str | Path) -> bool:
    """A folder whose config.json says model_type cerberus (a garbage config.json is an InputError)."""
    from .modelfiles import read_json

    config = Path(path, "config.json")
    return config.is_file() and read_json(config, "a model config").get("model_type") == "cerberus"


def load_saved(folder: str | Path, **expected: Any) -> CerberusForRanking:
    """A folder saved by `save_pretrained`, loaded strictly; every architecture field given
    (body_layers, num_heads, head_layers, pooler; None: not checked) must be the saved one."""
    model = CerberusForRanking.from_pretrained(folder)  # strict: the weights must fit config.json
    differ = [f"{k} {getattr(model.config, k)!r} (config: {v!r})" for k, v in expected.items()
              if v is not None and getattr(model.config, k) != v]
    if differ:
        raise InputError(Path(folder) / "config.json", "init_from model does not match the config: "
                         + ", ".join(differ) + "; set those config fields to the saved model's values")
    return model


def build_on_backbone(backbone: str, **architecture: Any) -> CerberusForRanking:
    """A new B_b kH_h model on a pretrained encoder (fields given as None take from_backbone's defaults)."""
    return CerberusForRanking.from_backbone(backbone, **{k: v for k, v in architecture.items() if v is not None})


def load_model(spec: str) -> Ranker:
    """A model from a command-line spec (see the module docstring)."""
    if "+" in spec:
        return [m for part in spec.split("+") for m in members(load_model(part))]
    match = SPEC.match(spec)
    if match is None:
        raise InputError(None, f"bad model spec {spec!r}; expected NAME, NAME:B5-3H1, FOLDER or A+B")
    source = match["source"]
    if match["b"] is None and is_saved_cerberus(source):
        return load_saved(source)
    if Path(source).is_dir():  # a backbone folder: safetensors weights that load, never pickle
        from .modelfiles import refuse_custom_code, weight_headers

        if not Path(source, "config.json").is_file():
            raise InputError(source, "has no config.json; expected a saved model or a Hugging Face model folder")
        refuse_custom_code(source)  # nothing in a model folder is ever run
        weight_headers(source)
    split = {"num_heads": 1, "head_layers": 1} if match["b"] is None else {
        "body_layers": int(match["b"]), "num_heads": int(match["k"]), "head_layers": int(match["h"])}
    if match["b"] is not None:  # the split must fit the backbone: checked from its config, before loading weights
        _check_split(spec, source, split)
    try:
        return build_on_backbone(source, **split)
    except (ValueError, OSError) as err:  # InputError is a ValueError: keep its own message
        if isinstance(err, InputError):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(source, f"cannot build {spec!r}: {first}") from None


def _check_split(spec: str, source: str, split: dict[str, int]) -> None:
    from .modelfiles import read_json
    from .zoo import is_embedded, resolve_model

    folder = Path(resolve_model(source)) if is_embedded(source) else Path(source)
    depth = (read_json(folder / "config.json", "a model config").get("num_hidden_layers")
             if (folder / "config.json").is_file() else None)
    if split["num_heads"] < 1 or (isinstance(depth, int) and split["body_layers"] + split["head_layers"] > depth):
        raise InputError(None, f"bad model spec {spec!r}: B{split['body_layers']} {split['num_heads']}H"
                               f"{split['head_layers']} needs at least one head and at most the backbone's "
                               f"{depth} layers in body + head")
