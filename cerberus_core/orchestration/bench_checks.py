"""What a benchmark may ask of this machine, checked before anything is allocated: threads, heads,
and the memory one forward pass needs."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError


MAX_THREADS_PER_CPU = 4  # more would only measure contention (and torch crashes on absurd counts)


def thread_limit() -> int:
    """The most intra-op threads a benchmark may ask for: 4 per CPU this process may run on."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return MAX_THREADS_PER_CPU * max(1, cpus)


def check_threads(threads: int) -> None:
    limit = thread_limit()
    if not 1 <= threads <= limit:
        raise InputError(None, f"--threads {threads}: expected 1 to {limit} ({MAX_THREADS_PER_CPU} per CPU this "
                               f"process may run on, {limit // MAX_THREADS_PER_CPU} here)")


def forward_bytes(backbone: Mapping[str, Any], num_heads: int, batch_size: int, seq_len: int) -> int:
    """A generous estimate of the memory one forward pass of a batch takes at its widest layer:
    the FFN and attention activations of every position (fp32), once per head past the body."""
    hidden = int(backbone.get("hidden_size") or 768)
    intermediate = int(backbone.get("intermediate_size") or 4 * hidden)
    attention_heads = int(backbone.get("num_attention_heads") or 12)
    per_position = intermediate + 4 * hidden + 2 * attention_heads * seq_len
    return 4 * batch_size * seq_len * per_position * max(1, num_heads)


def available_memory(device: str = "cpu") -> int | None:
    """Bytes free for a new allocation (MemAvailable, or the GPU's free memory); None: unknown."""
    if str(device).startswith("cuda"):
        return torch.cuda.mem_get_info()[0] if torch.cuda.is_available() else None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_batch_memory(backbone: Mapping[str, Any], num_heads: int, batch_size: int, seq_len: int,
                       flag: str = "--batch-sizes", device: str = "cpu") -> None:
    """Refuse, before any weight is loaded, a batch whose forward pass cannot fit the memory free now."""
    from ..training.config import MAX_BATCH_SIZE

    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InputError(None, f"{flag} {batch_size}: expected 1 to {MAX_BATCH_SIZE} pairs per batch")
    need, free = forward_bytes(backbone, num_heads, batch_size, seq_len), available_memory(device)
    if free is not None and need > free:
        raise InputError(None, f"{flag} {batch_size} at {seq_len} tokens needs about {need / 2**30:.1f} GiB for one "
                               f"forward pass, and {free / 2**30:.1f} GiB is free; use a smaller batch")


def check_heads(num_heads: Any, where: str | Path | None) -> None:
    """A model's head count within bounds (a saved config.json's, or a spec's), before it is built."""
    from ..model.choices import MAX_HEADS

    if not isinstance(num_heads, int) or isinstance(num_heads, bool) or not 1 <= num_heads <= MAX_HEADS:
        raise InputError(where, f"num_heads is {num_heads!r}; expected 1 to {MAX_HEADS} heads")


def _spec_architecture(spec: str) -> tuple[dict[str, Any], int] | None:
    """(backbone config, heads) of a local model spec, read from config.json; None when unknown."""
    from ..model.building import SPEC
    from ..model.modelfiles import read_json
    from ..model.zoo import is_embedded, resolve_model

    match = SPEC.match(spec)
    if match is None:
        return None
    source = match["source"]
    folder = Path(resolve_model(source)) if is_embedded(source) else Path(source)
    if not (folder / "config.json").is_file():
        return None
    values = read_json(folder / "config.json", "a model config")
    saved = values.get("model_type") == "cerberus"
    backbone = values.get("backbone") if saved else values
    heads = int(match["k"]) if match["k"] else values.get("num_heads", 1) if saved else 1
    check_heads(heads, f"model spec {spec!r}" if match["k"] else folder / "config.json")
    return (backbone, heads) if isinstance(backbone, dict) else None


def check_sizes(specs: Sequence[str], threads: int, seq_len: int, batch_sizes: Sequence[int],
                device: str = "cpu") -> None:
    """Threads and batch sizes within bounds, checked before any model is loaded."""
    check_threads(threads)
    for spec in specs:
        for part in spec.split("+"):
            found = _spec_architecture(part)
            for size in batch_sizes:
                check_batch_memory(*(found or ({}, 1)), size, seq_len, device=device)
