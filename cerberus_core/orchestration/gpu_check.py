"""`make gpu-check`: what a machine with a GPU measures in a few minutes, in one JSON to commit.

    python -m cerberus_core.orchestration.gpu_check --out artifacts/gpu_check.json
    python -m cerberus_core.orchestration.gpu_check --dry-run   # the same steps on the CPU, tiny sizes

1. `bench --device cuda`: B5 1H1 and CERBERUS B5 3H1 on MiniLM-L6 and the MPNet-base teacher, in
   fp32 and bf16, latency on one question and batches of 1, 8 and 128 (`bench.measure_benchmark`);
2. our `predict` beside the peer's `CrossEncoder.predict` on the GPU (`bench_peer.compare`), when
   sentence-transformers is installed (the `bench` extra);
3. one CERBERUS student, the demo's (v2 recipe and teachers), trained for one epoch with bf16
   autocast on WikiQA: its training time and dev/test MAP.

The dry run takes the same code path on the CPU (one thread) with tiny random encoders that use
the real tokenizers, one timing round and a few WikiQA questions (no test split), so the test suite exercises every step
that the GPU run takes; it writes nothing unless --out is given.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..atomic import output_file, write_text_atomic
from ..errors import InputError

# threads: torch's CPU threads (the host side of a GPU run); the dry run's tiny matmuls gain nothing
# from a second one, and lose much on a busy machine
FULL = {"specs": ("minilm-l6", "minilm-l6:B5-3H1", "mpnet-base"), "batch_sizes": (1, 8, 128), "seq_len": 64,
        "repeats": 20, "warmup": 3, "peer_pairs": 1024, "peer_repeats": 5, "train_questions": None, "threads": 4}
DRY = {"batch_sizes": (1, 2), "seq_len": 16, "repeats": 1, "warmup": 0, "peer_pairs": 8, "peer_repeats": 1,
       "train_questions": 6, "threads": 1}
TINY = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}


def tiny_encoder(name: str, out: Path) -> str:
    """A randomly initialised 2-layer, 32-wide copy of embedded encoder `name` with its real
    tokenizer, saved to `out` (the dry run's stand-in: seconds to build and to run)."""
    from transformers import AutoConfig, AutoModel

    from ..model.modeling import load_tokenizer
    from ..model.zoo import resolve_model

    folder = resolve_model(name)
    config = AutoConfig.from_pretrained(folder, **TINY)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(out)
    load_tokenizer(folder).save_pretrained(out)
    return str(out)


def _environment(device: str) -> dict[str, Any]:
    from ..provenance import code_version
    from .bench import cpu_model

    found = {"device": device, "threads": torch.get_num_threads(), "torch": torch.__version__, "cpu": cpu_model(),
             "python": platform.python_version(), "code_version": code_version()}
    if device == "cuda":
        found.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda,
                     bf16=torch.cuda.is_bf16_supported(), gpu_memory_gib=round(
                         torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    return found


def bench_step(specs: Sequence[str], device: str, sizes: dict[str, Any]) -> dict[str, Any]:
    from .bench import measure_benchmark

    rows, conds = measure_benchmark(list(specs), threads=sizes["threads"], seq_len=sizes["seq_len"],
                                    batch_sizes=sizes["batch_sizes"], repeats=sizes["repeats"], warmup=sizes["warmup"],
                                    precisions=("fp32", "bf16"), device=device)
    return {"conditions": conds, "rows": rows}


def peer_step(encoder: str, device: str, sizes: dict[str, Any]) -> dict[str, Any]:
    from .bench_peer import compare, split_pairs

    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        return {"skipped": "sentence-transformers is not installed (pip install -e '.[bench]')"}
    return compare(encoder, split_pairs(n=sizes["peer_pairs"]), ("fp32", "bf16"), threads=sizes["threads"],
                   repeats=sizes["peer_repeats"], warmup=1 if sizes["peer_repeats"] > 1 else 0, device=device)


def training_step(work: Path, backbone: str | None, sizes: dict[str, Any]) -> dict[str, Any]:
    """The demo's CERBERUS student, one epoch, bf16 autocast (on a CPU without native bf16, fp32)."""
    from ..model.precision import supports
    from ..results import artifacts
    from .demo import demo_config
    from .pipeline import ensure_trained

    precision = "bf16" if torch.cuda.is_available() or supports("bf16") else "no"
    cfg = demo_config(work, epochs=1, precision=precision)
    cfg = dataclasses.replace(cfg, name="gpu-check-cerberus")
    if backbone is not None:  # the dry run's tiny encoder (one body layer, one per head) on a few questions, and
        # no test split: the heads' diversity on test is measured against the teachers' whole test tables
        cfg = dataclasses.replace(cfg, backbone=backbone, body_layers=1, train_questions=sizes["train_questions"],
                                  eval_questions=sizes["train_questions"], test_split=None)
    run = work / "cerberus"
    start = time.perf_counter()
    metrics = ensure_trained(cfg, run)
    seconds = time.perf_counter() - start
    timing = artifacts.read_json(run / "timing.json") if (run / "timing.json").is_file() else {}
    steps = timing.get("step")
    config = dataclasses.asdict(cfg)  # teachers and backbone by name: the run folder was a temporary one
    config.update(teachers=[Path(t).name for t in cfg.teachers], backbone=Path(cfg.backbone).name)
    return {"config": config, "mixed_precision": precision, "wall_seconds": seconds,
            "train_seconds": timing.get("train_seconds"), "steps": steps, "devices": timing.get("devices"),
            "steps_per_s": steps / timing["train_seconds"] if steps and timing.get("train_seconds") else None,
            **{role: {k: metrics[role]["pooled"][k] for k in ("p@1", "map", "mrr")} for role in ("dev", "test")
               if role in metrics}}


def gpu_check(dry_run: bool = False, work: Path | None = None) -> dict[str, Any]:
    """Every step, timed; dry_run: on the CPU with tiny sizes, one thread. `work` holds the
    trained student (default: a temporary folder)."""
    device = "cpu" if dry_run else "cuda"
    if not dry_run and not torch.cuda.is_available():
        raise InputError(None, "no CUDA device is visible to torch here; run with --dry-run to check the steps "
                               "on the CPU")
    from .bench import _threads

    sizes = DRY if dry_run else FULL
    with _threads(sizes["threads"]):  # training's too
        return _steps(sizes, device, dry_run, work)


def _steps(sizes: dict[str, Any], device: str, dry_run: bool, work: Path | None) -> dict[str, Any]:
    from tqdm.auto import tqdm

    started = time.perf_counter()
    result: dict[str, Any] = {"dry_run": dry_run, "environment": _environment(device), "seconds": {}}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(work) if work is not None else Path(tmp)
        if dry_run:
            minilm = tiny_encoder("minilm-l6", work / "tiny-minilm")
            specs = (minilm, f"{minilm}:B1-3H1", tiny_encoder("mpnet-base", work / "tiny-mpnet"))
            backbone, encoder = minilm, minilm
        else:
            from ..model.zoo import resolve_model

            specs, backbone, encoder = sizes["specs"], None, resolve_model("minilm-l6")
        steps = {"bench": lambda: bench_step(specs, device, sizes), "peer": lambda: peer_step(encoder, device, sizes),
                 "training": lambda: training_step(work, backbone, sizes)}
        for name, step in tqdm(steps.items(), desc="gpu check", unit="step"):
            start = time.perf_counter()
            result[name] = step()
            result["seconds"][name] = time.perf_counter() - start
    result["seconds"]["total"] = time.perf_counter() - started
    return result


def summary(result: dict[str, Any]) -> str:
    """A few lines to read at once: throughput per model and precision, and the training run."""
    lines = [f"# gpu check{' (dry run, CPU, tiny sizes)' if result['dry_run'] else ''}: "
             + "; ".join(f"{k}: {v}" for k, v in result["environment"].items())]
    for row in result["bench"]["rows"]:
        sizes = ", ".join(f"b{k.removeprefix('throughput_b')} {v:.0f}" for k, v in row.items()
                          if k.startswith("throughput_b"))
        lines.append(f"bench {row['name']:28} latency {row['latency_ms']:.2f} ms, pairs/s {sizes}")
    for row in result["peer"].get("rows", []):
        lines.append(f"peer  {row['name']:28} {row['pairs_per_s']:.0f} pairs/s, {row['vs_peer']:.2f}x the peer")
    train = result["training"]
    role = "test" if "test" in train else "dev"
    lines.append(f"train {train['config']['name']}: {train['steps']} steps in {train['train_seconds']:.1f} s "
                 f"({train['mixed_precision']}), {role} MAP {train[role]['map']:.4f}")
    lines.append("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in result["seconds"].items()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    from .cli import _OneLineParser

    parser = _OneLineParser(prog="python -m cerberus_core.orchestration.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU with tiny sizes")
    parser.add_argument("--out", help="write the result as JSON (a file, or a folder: gpu_check.json)")
    args = parser.parse_args(argv)
    try:
        out = output_file(args.out, "gpu_check.json") if args.out else None
        result = gpu_check(dry_run=args.dry_run)
    except InputError as err:
        parser.exit(2, f"error: {err}\n")
    if out:
        write_text_atomic(out, json.dumps(result, indent=1, default=str) + "\n")
    print(summary(result))


if __name__ == "__main__":
    main()
