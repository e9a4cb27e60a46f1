"""Side by side with the peer: our `predict` against sentence-transformers' `CrossEncoder.predict`.

    python -m cerberus_core.orchestration.bench_peer --out artifacts/full/bench_peer.json

Both score the same WikiQA test pairs end to end, as a user calls them (tokenization, batching,
forward, scores back in input order), on the same encoder: the peer is `CrossEncoder` loaded on
the embedded MiniLM-L6 folder with one label; ours are B5 1H1 (the same six layers) and CERBERUS
B5 3H1 built on it. Our heads get the peer's classifier (its pooler dense as their scorer's dense,
its one logit as their positive logit), so every model computes the same function and the scores
must agree: the `max |d|` column checks that the same pairs, truncation and weights went in.
Models take turns round by round (so load from other processes slows them alike); medians are
reported. Needs the `bench` extra (`pip install -e '.[bench]'`).
"""
from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import output_file, write_text_atomic
from ..errors import InputError
from ..model.batching import encode_pairs, padding_share, sorted_batches
from ..model.modeling import CerberusForRanking
from ..model.precision import AUTO, CHOICES, describe, resolve, supports, with_precision
from .bench import _interleaved, _load_average, _threads, cpu_model
from .bench_checks import check_threads

HEADS = (1, 3)  # our models: one head and CERBERUS's three, each of one layer on a body of the others
PEER = "peer CrossEncoder"


def _peer_class():
    try:
        from sentence_transformers import CrossEncoder
    except ImportError:
        raise InputError(None, "the peer benchmark needs sentence-transformers: pip install -e '.[bench]'") from None
    return CrossEncoder


def load_peer(folder: str | Path, max_length: int, precision: str, device: str = "cpu"):
    """`CrossEncoder` on the encoder folder with one label (a fresh classifier), in `precision`."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the new classifier's load report is expected
    try:
        torch.manual_seed(0)
        peer = _peer_class()(str(folder), num_labels=1, max_length=max_length, device=device)
    finally:
        transformers.logging.set_verbosity(verbosity)
    peer.eval()
    if precision == "bf16":
        return peer.to(torch.bfloat16)
    if precision == "int8":  # torch.ao's quantize_dynamic of every linear with its defaults, the usual recipe
        from ..model.precision import quantize_linears

        quantize_linears(peer, parts=(), per_channel=False, full_range=False)
    return peer


def _peer_classifier(peer) -> tuple[torch.nn.Linear, torch.nn.Linear]:
    """The peer's pooler dense (on the first token, tanh) and its one-logit classifier."""
    hf = next((m for m in peer.modules() if hasattr(m, "classifier") and hasattr(m, "bert")), None)
    if hf is None or getattr(hf.bert, "pooler", None) is None:
        raise InputError(None, "the peer benchmark needs a BERT-style encoder (the peer scores with BERT's pooler "
                               "and one linear, which our heads copy)")
    return hf.bert.pooler.dense, hf.classifier


def load_ours(folder: str | Path, heads: int, peer) -> CerberusForRanking:
    """B(d-1) kH1 on the encoder folder, every head scoring as the peer does: scorer dense = the
    peer's pooler dense, logits (0, peer logit), so the pooled probability is the peer's sigmoid."""
    model = CerberusForRanking.from_backbone(str(folder), num_heads=heads, head_layers=1)
    dense, classifier = _peer_classifier(peer)
    with torch.no_grad():
        for head in model.heads:
            head.scorer.dense.load_state_dict(dense.state_dict())
            head.scorer.out_proj.weight.zero_()
            head.scorer.out_proj.bias.zero_()
            head.scorer.out_proj.weight[1] = classifier.weight[0]
            head.scorer.out_proj.bias[1] = classifier.bias[0]
    return model.eval()


def split_pairs(data: str = "wikiqa", split: str = "test", n: int = 1024) -> list[tuple[str, str]]:
    """The first n (question, candidate) pairs of a split in file order (no question filter)."""
    from ..data import load_as2

    pairs = load_as2(data, split=split, filter="none").pairs()[:n]
    if not pairs:
        raise InputError(data, f"split {split!r} has no pairs")
    return pairs


def compare(folder: str | Path, pairs: Sequence[tuple[str, str]], precisions: Sequence[str] = ("fp32", "bf16"),
            batch_size: int = 32, max_length: int = 128, threads: int = 2, repeats: int = 5,
            warmup: int = 1, device: str = "cpu") -> dict[str, Any]:
    """{"conditions", "rows"}: one row per (model, precision), the peer first at each precision.

    Timed: one whole `predict` over `pairs` per round, every model in turn; a model's first
    call (untimed) also gives the scores compared with the peer's at the same precision."""
    from tqdm.auto import tqdm

    check_threads(threads)
    if not pairs:
        raise InputError(None, "need at least one (question, candidate) pair")
    used = list(dict.fromkeys(resolve(p, device) for p in precisions))
    for precision in used:
        if not supports(precision, device):
            raise InputError(None, f"precision {precision} is not supported on {device} here")
    reference = load_peer(folder, max_length, "fp32", device)  # its classifier is every model's
    models: dict[tuple[str, str], Any] = {}
    for precision in used:
        models[PEER, precision] = reference if precision == "fp32" else load_peer(folder, max_length, precision,
                                                                                   device)
        for heads in HEADS:
            ours = load_ours(folder, heads, reference).to(device)
            models[ours.config.name, precision] = with_precision(ours, precision)

    def job(key):
        model = models[key]
        if key[0] == PEER:
            return lambda: model.predict(list(pairs), batch_size=batch_size, show_progress_bar=False)
        return lambda: model.predict(pairs, batch_size=batch_size, max_length=max_length)

    jobs = {key: job(key) for key in models}
    with _threads(threads):
        scores = {key: np.asarray(fn(), dtype=np.float64) for key, fn in tqdm(jobs.items(), desc="first calls")}
        times: dict = {key: [] for key in jobs}
        for _ in tqdm(range(repeats), desc="rounds", unit="round"):
            for key, got in _interleaved(jobs, 1, warmup, torch.device(device)).items():
                times[key] += got
            warmup = 0
    rows = []
    for (name, precision), t in times.items():
        median = statistics.median(t)
        rows.append({"name": name if precision == "fp32" else f"{name} {precision}", "model": name,
                     "system": "peer" if name == PEER else "ours",
                     "heads": 1 if name == PEER else models[name, precision].config.num_heads,
                     "precision": precision, "pairs": len(pairs), "pairs_per_s": len(pairs) / median,
                     "median_s": median, "times_s": t,
                     "max_abs_diff_vs_peer": float(np.abs(scores[name, precision] - scores[PEER, precision]).max())})
    by_key = {(r["model"], r["precision"]): r for r in rows}
    for row in rows:
        row["vs_peer"] = row["pairs_per_s"] / by_key[PEER, row["precision"]]["pairs_per_s"]
        if (PEER, "fp32") in by_key:
            row["vs_peer_fp32"] = row["pairs_per_s"] / by_key[PEER, "fp32"]["pairs_per_s"]
    conds = _conditions(folder, pairs, used, batch_size, max_length, threads, repeats, models, device)
    return {"conditions": conds, "rows": rows}


def _conditions(folder, pairs, precisions, batch_size, max_length, threads, repeats, models,
                device) -> dict[str, Any]:
    import sentence_transformers
    import transformers

    ours = next(m for (name, _), m in models.items() if name != PEER)
    enc = encode_pairs(ours.tokenizer, pairs, max_length)
    lengths = np.array([len(ids) for ids in enc["input_ids"]])
    given = [torch.arange(i, min(i + batch_size, len(pairs))) for i in range(0, len(pairs), batch_size)]
    ordered = [torch.from_numpy(b) for b in sorted_batches(lengths, batch_size)]
    return {
        "threads": threads, "pairs": len(pairs), "batch size": batch_size, "max length": max_length,
        "tokens/pair": f"{lengths.mean():.1f} mean, {lengths.max()} max",
        "padding": f"{padding_share(torch.from_numpy(lengths), given):.1%} in the given order, "
                   f"{padding_share(torch.from_numpy(lengths), ordered):.1%} sorted by length",
        "repeats": repeats, "precisions": ", ".join(precisions),
        "auto": describe(AUTO, device), "device": device,
        **({"gpu": torch.cuda.get_device_name(device)} if device.startswith("cuda") else {}),
        "encoder": Path(folder).name,
        "timed": "a whole predict() over the pairs (tokenize, batch, forward, scores in input order), "
                 "models interleaved round by round, median",
        "peer": f"sentence-transformers {sentence_transformers.__version__} CrossEncoder, 1 label "
                "(bf16: weights cast; int8: torch's quantize_dynamic of every linear, its defaults)",
        "torch": torch.__version__, "transformers": transformers.__version__,
        "cpu": f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()})", "load avg": _load_average(),
    }


def format_result(result: dict[str, Any]) -> str:
    header = "# " + "; ".join(f"{k}: {v}" for k, v in result["conditions"].items())
    lines = [header, f"{'model':28} {'pairs/s':>8} {'median s':>9} {'x peer':>7} {'x peer fp32':>11} "
                     f"{'max |d| vs peer':>15}"]
    for r in result["rows"]:
        lines.append(f"{r['name']:28} {r['pairs_per_s']:8.1f} {r['median_s']:9.3f} {r['vs_peer']:7.2f} "
                     f"{r.get('vs_peer_fp32', float('nan')):11.2f} {r['max_abs_diff_vs_peer']:15.2e}")
    lines.append("# x peer: pairs/s over the peer's at the same precision; max |d|: largest score difference "
                 "from the peer's at that precision (the same function, so ~1e-6 in fp32)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    from ..model.zoo import resolve_model
    from .cli import _batch_size, _OneLineParser, _positive

    parser = _OneLineParser(prog="python -m cerberus_core.orchestration.bench_peer",
                            description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="minilm-l6", help="the encoder both sides load (embedded name or folder)")
    parser.add_argument("--pairs", type=_positive, default=1024, help="the first N pairs of the split")
    parser.add_argument("--batch-size", type=_batch_size, default=32)
    parser.add_argument("--max-length", type=_positive, default=128)
    parser.add_argument("--threads", type=_positive, default=2)
    parser.add_argument("--repeats", type=_positive, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds before the timed ones")
    parser.add_argument("--precision", choices=CHOICES, nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--data", default="wikiqa")
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", help="also write {conditions, rows} as JSON (a file, or a folder: bench_peer.json)")
    args = parser.parse_args(argv)
    try:
        check_threads(args.threads)
        out = output_file(args.out, "bench_peer.json") if args.out else None
        _peer_class()
        if args.device == "cuda" and not torch.cuda.is_available():
            raise InputError(None, "--device cuda: no CUDA device is visible to torch here")
        result = compare(resolve_model(args.backbone), split_pairs(args.data, args.split, args.pairs), args.precision,
                         args.batch_size, args.max_length, args.threads, args.repeats, args.warmup, args.device)
    except InputError as err:
        parser.exit(2, f"error: {err}\n")
    if out:
        write_text_atomic(out, json.dumps(result, indent=1) + "\n")
    print(format_result(result))


if __name__ == "__main__":
    main()
