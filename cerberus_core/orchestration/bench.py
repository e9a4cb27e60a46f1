"""Cost benchmarks: parameters, latency, throughput and FLOPs of rankers and ensembles.

A timing means nothing without its conditions (threads, batch size, sequence length,
repeats, warm-up, device), so every number leaves here beside them, and comparisons are
ratios to a reference measured in the same run. Inputs are real tokenized pairs padded
to a fixed length, so the sequence length is a stated condition rather than an accident
of the data; only the forward pass is timed (tokenization is done beforehand).

An "ensemble" is a list of models that each score every pair; their scores are averaged.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..results import artifacts
from ..results.analysis import TEACHER_ENSEMBLE
from ..atomic import output_file, write_text_atomic
from ..errors import InputError
from ..model.batched_heads import can_batch
from ..model.batching import encode_pairs
from ..model.building import Ranker, load_model, members
from ..model.modeling import CerberusForRanking
from .bench_checks import check_sizes, check_threads

PEAK_SIZE = 1024  # side of the fp32 matmul that sets the peak: big enough to run at full speed
@contextmanager
def _threads(n: int) -> Iterator[None]:
    """Run with n intra-op threads, then restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sync(device: torch.device) -> None:
    """GPU kernels are asynchronous: wait for them, or we time the launch only."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _interleaved(
    jobs: Mapping[Hashable, Callable[[], Any]], repeats: int, warmup: int, device: torch.device
) -> dict[Hashable, list[float]]:
    """Wall seconds of each job, `repeats` times after `warmup` untimed rounds (caches,
    allocator). Jobs take turns round after round, so a burst of load from another
    process slows all of them alike and the ratios between them stay fair."""
    for _ in range(warmup):
        for fn in jobs.values():
            fn()
            _sync(device)
    times: dict[Hashable, list[float]] = {key: [] for key in jobs}
    for _ in range(repeats):
        for key, fn in jobs.items():
            start = time.perf_counter()
            fn()
            _sync(device)
            times[key].append(time.perf_counter() - start)
    return times


# --------------------------------------------------------------------------- hardware peak
# A matmul's GFLOP/s is the yardstick for "share of peak": measured beside the models rather than
# taken from a spec sheet that ignores clocks and neighbours, once per precision, since a bf16 or
# int8 row runs other kernels (a bf16 row against the fp32 peak reads above 100%).
def _matmul(size: int, device: torch.device, precision: str = "fp32") -> Callable[[], Any]:
    """A size x size matmul in `precision`: fp32 or bf16 torch.mm, or for int8 the kernel the
    int8 rows run (a dynamically quantized linear, activations quantized per call)."""
    if precision == "int8":
        from ..model.precision import quantize_linears

        linear = quantize_linears(torch.nn.Sequential(torch.nn.Linear(size, size)), parts=())
        x = torch.randn(size, size)

        def run() -> torch.Tensor:
            with torch.inference_mode():
                return linear(x)
        return run
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    out = torch.empty(size, size, device=device, dtype=dtype)
    return lambda: torch.mm(a, b, out=out)


def _gflops(size: int, times: list[float]) -> float:
    return 2 * size**3 / statistics.median(times) / 1e9


# --------------------------------------------------------------------------- analytic FLOPs
def layer_flops(hidden: int, intermediate: int, seq_len: int, queries: int | None = None) -> float:
    """Forward FLOPs of one transformer layer over one sequence (see `flops_per_pair`);
    `queries` < seq_len: only that many positions go past the keys and values."""
    queries = seq_len if queries is None else queries
    keys_values = 2 * 2 * hidden * hidden * seq_len
    per_query = 2 * (2 * hidden * hidden + 2 * hidden * intermediate) * queries
    attention = 2 * 2 * queries * seq_len * hidden
    return keys_values + per_query + attention


def flops_per_pair(model_or_models: Ranker, seq_len: int) -> float:
    """Estimated forward FLOPs to score one (question, candidate) pair padded to seq_len.

    Counted from the config, one multiply-add = 2 FLOPs, with H = hidden size,
    I = FFN size, s = seq_len, q = positions whose output is used:

        layer(q) = 2*2*H*H*s              K and V projections, every position
                 + 2*(2*H*H + 2*H*I)*q    Q, output projection and the two FFN matrices
                 + 2*2*q*s*H              attention scores Q.K^T and the weighted sum over V
        scorer   = 2*(H*H + 2*H)          dense + 2-logit output on the first token
        model    = b*layer(s) + k*((h-1)*layer(s) + layer(q_last) + scorer)  [+ 2*k*H*2 learned pooler]

    The body's b layers run once per pair; each of the k heads runs its own h layers, the
    last of them for the first token only (q_last = 1) when the batched path runs it
    (`batched_heads.py`), else in full (q_last = s). Embeddings, layer norms, softmax and
    activations are left out (a few percent at most). Padding positions are counted: they
    are computed. An ensemble is the sum of its members.
    """
    total = 0.0
    for model in members(model_or_models):
        cfg = model.config
        hidden, intermediate = cfg.backbone["hidden_size"], cfg.backbone["intermediate_size"]
        layer = layer_flops(hidden, intermediate, seq_len)
        last_queries = 1 if model.batched_heads and can_batch(model.heads) else seq_len
        head = (cfg.head_layers - 1) * layer + layer_flops(hidden, intermediate, seq_len, last_queries)
        scorer = 2 * (hidden * hidden + 2 * hidden)
        total += cfg.body_layers * layer + cfg.num_heads * (head + scorer)
        if cfg.pooler == "learned":
            total += 2 * cfg.num_heads * hidden * cfg.num_labels
    return total


def parameter_count(model_or_models: Ranker) -> int:
    """Total parameters; an ensemble stores every member, so it is the sum."""
    return sum(m.parameter_counts()["total"] for m in members(model_or_models))


# --------------------------------------------------------------------------- timing
def _encode(model: CerberusForRanking, pairs: Sequence[tuple[str, str]], max_length: int) -> dict:
    if model.tokenizer is None:
        raise InputError(None, "a benchmarked model needs a tokenizer (set model.tokenizer)")
    enc = encode_pairs(model.tokenizer, pairs, max_length, padding="max_length", return_tensors="pt")
    return dict(enc.to(model.device))


def _scorer(models: list[CerberusForRanking], pairs: Sequence[tuple[str, str]], max_length: int) -> Callable[[], torch.Tensor]:
    """A no-argument forward over pre-tokenized pairs: the averaged score of every member."""
    inputs = [_encode(m, pairs, max_length) for m in models]

    def score() -> torch.Tensor:
        with torch.inference_mode():
            return torch.stack([m(**enc).scores for m, enc in zip(models, inputs)]).mean(0)

    return score


def _jobs(
    models: list[CerberusForRanking], pairs: Sequence[tuple[str, str]], batch_sizes: Sequence[int], max_length: int
) -> dict[str | int, Callable[[], torch.Tensor]]:
    """"latency": one question's candidates in one batch; each batch size: a batch of
    that size filled by cycling through the same candidates."""
    if not pairs:
        raise InputError(None, "need at least one (question, candidate) pair")
    for m in models:
        m.eval()
    jobs: dict[str | int, Callable[[], torch.Tensor]] = {"latency": _scorer(models, pairs, max_length)}
    for size in batch_sizes:
        jobs[size] = _scorer(models, [pairs[i % len(pairs)] for i in range(size)], max_length)
    return jobs


def _summary(times: Mapping[Hashable, list[float]], batch_sizes: Sequence[int]) -> dict[str, float]:
    latency = np.array(times["latency"]) * 1e3
    result = {"latency_ms": float(np.median(latency)), "latency_p90_ms": float(np.percentile(latency, 90))}
    for size in batch_sizes:
        result[f"throughput_b{size}"] = size / statistics.median(times[size])
    return result


# --------------------------------------------------------------------------- benchmark table
def benchmark(
    models: Mapping[str, Ranker],
    pairs_per_question: Sequence[tuple[str, str]],
    reference: str | None = None,
    batch_sizes: Sequence[int] = (32, 128),
    repeats: int = 10,
    warmup: int = 2,
    threads: int = 2,
    max_length: int = 64,
    peak_gflops: float | Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """One row per model: size, latency, throughput, FLOPs, share of the matmul peak, and
    ratios to the `reference` row (default: the first).

    Latency: scoring one question's candidates (`pairs_per_question`) in one batch, what a QA
    system pays per question, median and p90 over repeats; throughput: pairs/s at each batch
    size (median time per batch). All models and the peak matmuls take turns in the same timing
    rounds, so they meet the same machine load. Achieved GFLOP/s uses the throughput at the
    largest batch size (the most efficient), and is a share of the peak of the model's own
    precision (`precision.precision_of`: fp32, bf16 or int8 matmuls). Pass `peak_gflops` (one
    number for every precision, or one per precision) to use peaks measured elsewhere.
    """
    from ..model.precision import precision_of

    if not models:
        raise InputError(None, "no models to benchmark")
    reference = reference or next(iter(models))
    if reference not in models:
        raise InputError(None, f"reference {reference!r} is not one of {list(models)}")
    check_threads(threads)
    by_name = {name: members(model) for name, model in models.items()}
    precision = {name: precision_of(ms[0]) for name, ms in by_name.items()}
    jobs: dict[Hashable, Callable[[], Any]] = {
        (name, key): fn for name, ms in by_name.items() for key, fn in _jobs(ms, pairs_per_question, batch_sizes, max_length).items()
    }
    device = next(iter(by_name.values()))[0].device
    given = peak_gflops if isinstance(peak_gflops, Mapping) else {p: peak_gflops for p in precision.values()}
    for p in dict.fromkeys(precision.values()):
        if not given.get(p):
            jobs[("peak", p)] = _matmul(PEAK_SIZE, device, p)
    with _threads(threads):
        times = _interleaved(jobs, repeats, warmup, device)
    peaks = {p: given.get(p) or _gflops(PEAK_SIZE, times[("peak", p)]) for p in precision.values()}
    top = f"throughput_b{max(batch_sizes)}"
    rows = []
    for name, ms in by_name.items():
        timing = _summary({key: t for (owner, key), t in times.items() if owner == name}, batch_sizes)
        flops = flops_per_pair(ms, max_length)
        achieved = flops * timing[top] / 1e9
        peak = peaks[precision[name]]
        rows.append({"name": name, "parameters": parameter_count(ms), **timing, "gflops_per_pair": flops / 1e9,
                     "gflops_s": achieved, "peak_gflops": peak, "peak_share": achieved / peak})
    ref = next(r for r in rows if r["name"] == reference)
    for row in rows:
        row["reference"] = reference
        row["params_vs_ref"] = row["parameters"] / ref["parameters"]
        row["flops_vs_ref"] = row["gflops_per_pair"] / ref["gflops_per_pair"]
        row["latency_vs_ref"] = row["latency_ms"] / ref["latency_ms"]
        row["throughput_vs_ref"] = row[top] / ref[top]
    return rows


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else whatever the platform says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _load_average() -> str:
    """Other processes competing for the cores slow every row; say so rather than hide it."""
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return "{:.1f}/{:.1f}/{:.1f} (1/5/15 min, at report time)".format(*os.getloadavg())


def conditions(
    threads: int,
    batch_sizes: Sequence[int],
    max_length: int,
    repeats: int,
    warmup: int,
    n_candidates: int,
    peak_gflops: float | Mapping[str, float],
    device: str = "cpu",
    precisions: Sequence[str] = ("fp32",),
) -> dict[str, Any]:
    """Everything a reader needs to reproduce or discount the numbers in the table; `peak_gflops`
    is one number (fp32) or one per precision."""
    from ..model.precision import RECIPES

    if isinstance(peak_gflops, Mapping):
        peak = ", ".join(f"{p} {g:.1f}" for p, g in peak_gflops.items()) + f" GFLOP/s ({PEAK_SIZE}x{PEAK_SIZE}, " \
               "median; each row's % peak is against its own precision's)"
    else:
        peak = f"{peak_gflops:.1f} GFLOP/s (fp32 {PEAK_SIZE}x{PEAK_SIZE}, median)"
    return {
        "threads": threads,
        "batch sizes": ", ".join(map(str, batch_sizes)),
        "seq len": f"{max_length} (padded)",
        "candidates/question": n_candidates,
        "repeats": repeats,
        "warm-up": warmup,
        "precisions": ", ".join(precisions) + f" (bf16: {RECIPES['bf16']}; int8: {RECIPES['int8']})",
        "timed": "forward only (pre-tokenized), torch.inference_mode, models and peak matmul interleaved round by round",
        "torch": torch.__version__,
        "device": device,
        "cpu": f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()})",
        **({"gpu": torch.cuda.get_device_name(device)} if str(device).startswith("cuda") else {}),
        "load avg": _load_average(),
        "matmul peak": peak,
    }


COLUMNS = (  # (header, row key, format)
    ("model", "name", "{}"),
    ("params M", "parameters", "{:.1f}"),
    ("lat ms", "latency_ms", "{:.1f}"),
    ("p90 ms", "latency_p90_ms", "{:.1f}"),
    ("GFLOP/pair", "gflops_per_pair", "{:.2f}"),
    ("GFLOP/s", "gflops_s", "{:.1f}"),
    ("% peak", "peak_share", "{:.0%}"),
    ("params x", "params_vs_ref", "{:.2f}"),
    ("FLOPs x", "flops_vs_ref", "{:.2f}"),
    ("lat x", "latency_vs_ref", "{:.2f}"),
    ("thru x", "throughput_vs_ref", "{:.2f}"),
)


def format_table(rows: Sequence[dict[str, Any]], conditions: Mapping[str, Any]) -> str:
    """A plain-text table under one header line of conditions; throughput columns are
    taken from whatever batch sizes the rows carry."""
    if not rows:
        return "# no rows"
    sizes = sorted(int(k.removeprefix("throughput_b")) for k in rows[0] if k.startswith("throughput_b"))
    columns = [*COLUMNS[:4], *((f"pairs/s b{s}", f"throughput_b{s}", "{:.0f}") for s in sizes), *COLUMNS[4:]]
    if "test_map" in rows[0]:  # measured with quality=True
        columns += [("test MAP", "test_map", "{:.4f}"), ("MAP vs fp32", "map_vs_fp32", "{:+.4f}")]
    scale = {"parameters": 1e-6}
    cells = [[fmt.format(row[key] * scale.get(key, 1)) for _, key, fmt in columns] for row in rows]
    headers = [header for header, _, _ in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = lambda values: "  ".join(  # noqa: E731 - names first, numbers right-aligned
        v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths))
    )
    header = "# " + "; ".join(f"{k}: {v}" for k, v in conditions.items())
    ref = f"# ratios (x) are relative to {rows[0]['reference']!r}, measured in the same run; thru x at the largest batch"
    return "\n".join([header, ref, line(headers), line(["-" * w for w in widths]), *map(line, cells)])


# --------------------------------------------------------------------------- CLI entry


def student_architectures(root: str | Path) -> dict[str, list[str]]:
    """The finished students under ROOT/students grouped by architecture (backbone and B_b kH_h):
    label -> students. CERBERUS's group comes first, labelled "cerberus"; the others "<model> student".

    Students of one architecture cost the same, so one of each is timed and stands for the rest.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for name in sorted(artifacts.finished_runs(root, "students"), key=lambda n: (n != "cerberus", n)):
        run = artifacts.seed_run(root, "students", name)
        backbone = artifacts.read_json(artifacts.config_path(run))["backbone"]
        groups.setdefault((backbone, artifacts.read_metrics(run)["model"]), []).append(name)
    labels: dict[str, list[str]] = {}
    for (backbone, model), students in groups.items():
        label = "cerberus" if "cerberus" in students else f"{model} student"
        labels[f"{label} on {Path(backbone).name}" if label in labels else label] = students
    return labels


def models_from_artifacts(root: str | Path) -> tuple[dict[str, Ranker], dict[str, list[str]]]:
    """What notebook 08 times: one student per architecture (CERBERUS first, the reference of the
    ratios), every finished teacher and, with two or more, the teacher ensemble (analysis.TEACHER_ENSEMBLE).

    Also returns `stands_for`: model name -> the models its timing covers (a student group, or the
    teacher or ensemble itself), the names `reader.run_of` gives bench.json rows.
    """
    stands_for = student_architectures(root)
    models: dict[str, Ranker] = {label: load_model(str(artifacts.best_dir(artifacts.seed_run(root, "students", group[0]))))
                                 for label, group in stands_for.items()}
    teachers = artifacts.finished_runs(root, "teachers")
    for t in teachers:
        models[t], stands_for[t] = load_model(str(artifacts.best_dir(artifacts.run_dir(root, "teachers", t)))), [t]
    if len(teachers) > 1:
        models[TEACHER_ENSEMBLE], stands_for[TEACHER_ENSEMBLE] = [models[t] for t in teachers], [TEACHER_ENSEMBLE]
    return models, stands_for


def question_pairs(data: str = "wikiqa", split: str = "test") -> list[tuple[str, str]]:
    """One real question's candidates: the first question whose candidate count is closest
    to the median, so latency is measured at a typical question size."""
    from ..data import load_as2

    questions = load_as2(data, split=split).questions
    if not questions:
        raise InputError(data, f"split {split!r} has no questions")
    median = np.median([len(q.candidates) for q in questions])
    question = min(questions, key=lambda q: abs(len(q.candidates) - median))  # min keeps the first
    return [(question.text, c) for c in question.candidates]


def dataset_map(model_or_models: Ranker, data: str, split: str = "test", max_length: int = 128) -> float:
    """MAP on a dataset split (clean filter) of a model or an ensemble (mean probability): how
    much a precision costs in ranking quality."""
    from ..data import load_as2
    from ..results.metrics import ranking_metrics

    ds = load_as2(data, split=split)
    pairs = ds.pairs()
    scores = np.mean([m.predict(pairs, max_length=max_length) for m in members(model_or_models)], axis=0)
    qids, _, labels = ds.pair_arrays()
    return ranking_metrics(qids, labels, scores, policy="none")["map"]


def _on(model_or_models: Ranker, device: str, precision: str) -> Ranker:
    from ..model.precision import with_precision

    moved = [with_precision(m.to(device), precision) for m in members(model_or_models)]
    return moved[0] if isinstance(model_or_models, CerberusForRanking) else moved


def run_benchmark(specs: Sequence[str], **options: Any) -> str:
    """Load every spec, measure them at every precision in one run and return the table with
    its conditions; with `out`, also write {"conditions", "rows"} as JSON (read by the Pareto
    figure). "auto" is bf16 where the device runs it natively, else fp32 (`precision.resolve`).
    A row is named "SPEC" for fp32, "SPEC bf16" / "SPEC int8" otherwise. With `quality`, each
    row also gets the MAP of that model at that precision on `data`'s test split and its change
    against fp32 (`map_vs_fp32`). The options are `measure_benchmark`'s."""
    return format_table(*measure_benchmark(specs, **options))


def measure_benchmark(
    specs: Sequence[str],
    threads: int = 2,
    seq_len: int = 64,
    batch_sizes: Sequence[int] = (32, 128),
    repeats: int = 5,
    warmup: int = 2,
    reference: str | None = None,
    data: str = "wikiqa",
    split: str = "test",
    out: str | Path | None = None,
    precisions: Sequence[str] = ("fp32",),
    device: str = "cpu",
    quality: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """`run_benchmark`'s rows and conditions, unformatted."""
    from ..model.precision import AUTO, describe, resolve

    if device == "cuda" and not torch.cuda.is_available():
        raise InputError(None, "--device cuda: no CUDA device is visible to torch here")
    if out is not None:  # refused before measuring, never written over a folder
        out = output_file(out, artifacts.BENCH)
    used = list(dict.fromkeys(resolve(p, device) for p in precisions))
    check_sizes(specs, threads, seq_len, batch_sizes, device)
    loaded = {spec: load_model(spec) for spec in specs}
    models, precision_of = {}, {}
    for spec, model in loaded.items():
        for precision in used:
            name = spec if precision == "fp32" else f"{spec} {precision}"
            models[name], precision_of[name] = _on(model, device, precision), (spec, precision)
    if reference is not None and reference not in models:
        raise InputError(None, f"reference {reference!r} is not one of {list(models)}")
    pairs = question_pairs(data, split)
    rows = benchmark(models, pairs, reference, batch_sizes, repeats, warmup, threads, seq_len)
    maps: dict[str, float] = {}
    for row in rows:
        spec, precision = precision_of[row["name"]]
        row["precision"], row["model_spec"] = precision, spec
        if quality:
            if spec not in maps:
                maps[spec] = dataset_map(_on(loaded[spec], device, "fp32"), data, split)
            row["test_map"] = maps[spec] if precision == "fp32" else dataset_map(models[row["name"]], data, split)
            row["map_vs_fp32"] = row["test_map"] - maps[spec]
    peaks = {row["precision"]: row["peak_gflops"] for row in rows}
    conds = conditions(threads, batch_sizes, seq_len, repeats, warmup, len(pairs), peaks, device, used)
    if AUTO in precisions:
        conds["precision auto"] = describe(AUTO, device)
    if out is not None:
        write_text_atomic(out, json.dumps({"conditions": conds, "rows": rows}, indent=1, default=str) + "\n")
    return rows, conds
