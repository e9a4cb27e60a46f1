"""The command line's checks of its inputs and outputs, made before any work starts."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError


EVALUATE_OUT = "scores.tsv"  # what `evaluate --out FOLDER` writes into FOLDER


def check_max_length(folder: Path, max_length: int) -> None:
    """--max-length must fit the model's position embeddings (checked before loading it)."""
    from ..model.modelfiles import saved_model_config
    from ..training.preflight import max_positions

    limit = max_positions(saved_model_config(folder)["backbone"])
    if limit is not None and max_length > limit:
        raise InputError(folder / "config.json", f"--max-length {max_length} is more than the {limit} tokens "
                                                 "this model's position embeddings take")


def check_resources(folder: Path, batch_size: int, max_length: int, out: Path | None, n_pairs: int) -> None:
    """Before scoring: one batch fits the memory available, and the table (and its sidecar) the
    free space where --out writes."""
    from ..atomic import check_free_space
    from .bench_checks import check_batch_memory, check_heads
    from ..model.modelfiles import saved_model_config

    config = saved_model_config(folder)
    check_heads(config.get("num_heads", 1), folder / "config.json")
    check_batch_memory(config["backbone"], config.get("num_heads", 1), batch_size, max_length, "--batch-size")
    if out is not None:
        check_free_space(out, n_pairs * (40 + 25 * (config.get("num_heads", 1) + 1)) + 8192)


def check_seq_len(specs: Sequence[str], seq_len: int) -> None:
    """bench --seq-len must fit every local model's position embeddings (checked before loading)."""
    from ..model.building import SPEC
    from ..model.modelfiles import read_json
    from ..training.preflight import max_positions
    from ..model.zoo import is_embedded, resolve_model

    for spec in specs:
        for part in spec.split("+"):
            match = SPEC.match(part)
            source = match["source"] if match else part
            folder = Path(resolve_model(source)) if is_embedded(source) else Path(source)
            if not (folder / "config.json").is_file():
                continue  # a hub id, or a path that load_model refuses with its own message
            values = read_json(folder / "config.json", "a model config")
            backbone = values.get("backbone") if values.get("model_type") == "cerberus" else values
            limit = max_positions(backbone) if isinstance(backbone, dict) else None
            if limit is not None and seq_len > limit:
                raise InputError(folder / "config.json", f"--seq-len {seq_len} is more than the {limit} tokens "
                                                         "this model's position embeddings take")


def check_not_an_input(outputs: Sequence[Path], inputs: Sequence[str | Path]) -> None:
    """An output never replaces an input: a file to write that is an input file (the data, a
    teacher table) or lies inside an input folder (the model, a toks data folder) is refused
    before anything is read or written."""
    import os

    sources = [Path(os.path.realpath(i)) for i in inputs if i and Path(i).exists()]
    for out in outputs:
        real = Path(os.path.realpath(out))
        for source in sources:
            if real == source or source in real.parents:
                raise InputError(out, f"is {'' if real == source else 'inside '}the input {source}; an output never "
                                      "replaces an input: choose another --out")


def check_nonempty(ds, data: str):
    """A dataset that still has questions after its filter (checked before any scoring)."""
    if len(ds) == 0:
        raise InputError(data, f"no question is left under filter {ds.filter!r}"
                               + (f" in split {ds.split}" if ds.split else "")
                               + "; try --filter answerable or --filter none")
    return ds
