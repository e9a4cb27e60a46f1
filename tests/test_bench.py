"""Benchmark plumbing on tiny random models. No assertion on wall time: that is what the
benchmark reports, not what a test can promise."""
from __future__ import annotations

import json

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from cerberus_core.orchestration.bench import (
    benchmark,
    conditions,
    flops_per_pair,
    format_table,
    models_from_artifacts,
    parameter_count,
    question_pairs,
    student_architectures,
)
from cerberus_core.results.analysis import TEACHER_ENSEMBLE
from cerberus_core.model.building import load_model
from cerberus_core.model.modeling import CerberusForRanking

from conftest import tiny_backbone

SEQ = 16
PAIRS = [("what is the capital of france", "paris is the capital city of france"),
         ("what is the capital of france", "the nile is a long river"),
         ("what is the capital of france", "who was born in paris")]


def cerberus(tokenizer, num_heads: int = 1, pooler: str = "mean_prob") -> CerberusForRanking:
    return CerberusForRanking.from_backbone(
        tiny_backbone("bert", layers=4), body_layers=2, num_heads=num_heads, head_layers=2,
        pooler=pooler, tokenizer=tokenizer,
    )


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("num_heads, pooler", [(1, "mean_prob"), (3, "mean_prob"), (3, "learned")])
def test_flops_formula_matches_flop_counter(tiny_tokenizer, num_heads, pooler, batched):
    model = cerberus(tiny_tokenizer, num_heads, pooler)
    model.batched_heads = batched  # the loop computes every position of the heads' last layer
    batch = 3
    ids = torch.randint(5, 20, (batch, SEQ))
    mask = torch.ones_like(ids)
    mask[:, 12:] = 0  # padding is still computed, and counted
    # the math SDPA backend runs attention as visible matmuls, so the counter sees them
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(input_ids=ids, attention_mask=mask)
    measured = counter.get_total_flops() / batch
    assert flops_per_pair(model, SEQ) == pytest.approx(measured, rel=0.02)


def test_ensemble_of_two_identical_models_costs_twice_one(tiny_tokenizer):
    model = cerberus(tiny_tokenizer)
    assert flops_per_pair([model, model], SEQ) == 2 * flops_per_pair(model, SEQ)
    assert parameter_count([model, model]) == 2 * parameter_count(model)
    assert parameter_count(model) == sum(p.numel() for p in model.parameters())


def test_two_extra_heads_cost_exactly_two_heads(tiny_tokenizer):
    one, three = cerberus(tiny_tokenizer, 1), cerberus(tiny_tokenizer, 3)
    hidden, inter, h = 32, 64, 2  # tiny_backbone's sizes; head_layers=2
    layer = 2 * (4 * hidden * hidden + 2 * hidden * inter) * SEQ + 2 * 2 * SEQ * SEQ * hidden
    # the last head layer: K and V for every position, the rest for the first token only
    last = 2 * 2 * hidden * hidden * SEQ + 2 * (2 * hidden * hidden + 2 * hidden * inter) + 2 * 2 * SEQ * hidden
    head = (h - 1) * layer + last + 2 * (hidden * hidden + 2 * hidden)
    assert flops_per_pair(three, SEQ) - flops_per_pair(one, SEQ) == 2 * head


def test_benchmark_reports_latency_and_each_batch_size(tiny_tokenizer):
    model = cerberus(tiny_tokenizer)
    before = torch.get_num_threads()
    (row,) = benchmark({"ensemble": [model, model]}, PAIRS, batch_sizes=(2, 5), repeats=3, warmup=1, threads=1,
                       max_length=SEQ, peak_gflops=1.0)
    timing = {k for k in row if k.startswith(("latency", "throughput")) and not k.endswith("_vs_ref")}
    assert timing == {"latency_ms", "latency_p90_ms", "throughput_b2", "throughput_b5"}
    assert 0 < row["latency_ms"] <= row["latency_p90_ms"]
    assert torch.get_num_threads() == before  # the caller's thread setting is restored


def test_benchmark_measures_the_peak_in_the_same_rounds(tiny_tokenizer):
    rows = benchmark({"a": cerberus(tiny_tokenizer)}, PAIRS, batch_sizes=(2,), repeats=1, warmup=0,
                     threads=1, max_length=SEQ)
    assert rows[0]["peak_gflops"] > 0
    assert rows[0]["peak_share"] == pytest.approx(rows[0]["gflops_s"] / rows[0]["peak_gflops"])


@pytest.fixture
def rows(tiny_tokenizer):
    one, three = cerberus(tiny_tokenizer, 1), cerberus(tiny_tokenizer, 3)
    models = {"single": one, "ensemble": [one, one], "B2 3H2": three}
    return benchmark(models, PAIRS, reference="ensemble", batch_sizes=(2, 4), repeats=2, warmup=1,
                     threads=1, max_length=SEQ, peak_gflops=10.0)


def test_benchmark_rows_have_every_field(rows):
    fields = {"name", "parameters", "latency_ms", "latency_p90_ms", "throughput_b2", "throughput_b4",
              "gflops_per_pair", "gflops_s", "peak_gflops", "peak_share", "reference", "params_vs_ref", "flops_vs_ref",
              "latency_vs_ref", "throughput_vs_ref"}
    assert [r["name"] for r in rows] == ["single", "ensemble", "B2 3H2"]
    for row in rows:
        assert set(row) == fields
    ensemble, single = rows[1], rows[0]
    assert ensemble["params_vs_ref"] == ensemble["flops_vs_ref"] == ensemble["latency_vs_ref"] == 1
    assert single["params_vs_ref"] == single["flops_vs_ref"] == 0.5
    assert single["peak_share"] == pytest.approx(single["gflops_s"] / 10.0)


def test_unknown_reference_is_refused(tiny_tokenizer):
    with pytest.raises(ValueError, match="reference"):
        benchmark({"a": cerberus(tiny_tokenizer)}, PAIRS, reference="b", peak_gflops=1.0)


def test_absurd_threads_and_batches_are_refused_before_timing(tiny_tokenizer):
    """torch.set_num_threads(100000) crashes the process: the library refuses it first; a batch
    whose forward pass cannot fit the free memory is refused before a tensor is made."""
    from cerberus_core.orchestration.bench_checks import (MAX_THREADS_PER_CPU, available_memory, check_batch_memory,
                                                          forward_bytes, thread_limit)
    from cerberus_core.errors import InputError

    model = cerberus(tiny_tokenizer)
    with pytest.raises(InputError, match=rf"--threads 100000: expected 1 to {thread_limit()} "
                                         rf"\({MAX_THREADS_PER_CPU} per CPU"):
        benchmark({"a": model}, PAIRS, threads=100_000, peak_gflops=1.0)
    backbone = {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12}
    assert forward_bytes(backbone, 3, 64, 128) == 3 * forward_bytes(backbone, 1, 64, 128)
    with pytest.raises(InputError, match="--batch-sizes 5000: expected 1 to 4096 pairs per batch"):
        check_batch_memory(backbone, 1, 5000, 64)
    free = available_memory()
    if free is not None:
        with pytest.raises(InputError, match=r"--batch-sizes 4096 at 512 tokens needs about [\d.]+ GiB"):
            check_batch_memory(backbone, 64, 4096, 512)  # about 10 TB
    check_batch_memory(backbone, 3, 32, 64)  # the default sizes pass


def test_table_states_its_conditions(rows):
    conds = conditions(threads=1, batch_sizes=(2, 4), max_length=SEQ, repeats=2, warmup=1,
                       n_candidates=len(PAIRS), peak_gflops=10.0)
    table = format_table(rows, conds)
    header = table.splitlines()[0]
    for needle in ("threads: 1", "batch sizes: 2, 4", f"seq len: {SEQ}", "repeats: 2", "warm-up: 1",
                   f"torch: {torch.__version__}", "device: cpu", "cpu: ", "matmul peak: 10.0"):
        assert needle in header
    assert "'ensemble'" in table and "pairs/s b4" in table
    assert all(name in table for name in ("single", "B2 3H2"))


def test_load_model_reads_saved_folders_and_ensembles(tiny_tokenizer, tmp_path):
    cerberus(tiny_tokenizer, 3).save_pretrained(tmp_path / "m")
    single = load_model(str(tmp_path / "m"))
    assert isinstance(single, CerberusForRanking) and single.config.num_heads == 3
    ensemble = load_model(f"{tmp_path / 'm'}+{tmp_path / 'm'}")
    assert len(ensemble) == 2 and all(m.tokenizer is not None for m in ensemble)


def test_question_pairs_picks_a_question_of_median_size(tmp_path):
    sizes = {"q1": 2, "q2": 5, "q3": 4, "q4": 9}  # median 4.5: q2 and q3 tie, the first wins
    lines = [json.dumps({"qid": q, "question": f"what is {q}", "candidate": f"answer {i}", "label": int(i == 0)})
             for q, n in sizes.items() for i in range(n)]
    path = tmp_path / "tiny.jsonl"
    path.write_text("\n".join(lines) + "\n")
    pairs = question_pairs(str(path))
    assert len(pairs) == 5 and pairs[0] == ("what is q2", "answer 0")


# ----------------------------------------------------------------- models from an artifacts tree
def write_run(root, kind: str, name: str, backbone: str, model: str, saved: CerberusForRanking | None = None) -> None:
    run = root / kind / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"backbone": backbone}))
    (run / "metrics.json").write_text(json.dumps({"model": model}))
    if saved is not None:
        saved.save_pretrained(run / "best")


def test_student_architectures_groups_students_of_one_architecture(tmp_path):
    for name, backbone, model in (("single-a", "minilm-l3", "B2 1H1"), ("cerberus", "minilm-l3", "B2 3H1"),
                                  ("replicated-a", "minilm-l3", "B2 3H1"), ("gold", "minilm-l3", "B2 1H1"),
                                  ("wide", "/x/minilm-l6", "B2 1H1")):
        write_run(tmp_path, "students", name, backbone, model)
    (tmp_path / "students" / "unfinished").mkdir()
    groups = student_architectures(tmp_path)
    assert groups == {"cerberus": ["cerberus", "replicated-a"], "B2 1H1 student": ["gold", "single-a"],
                      "B2 1H1 student on minilm-l6": ["wide"]}
    assert next(iter(groups)) == "cerberus"  # the reference of the ratios comes first


def test_models_from_artifacts_times_one_student_per_architecture(tiny_tokenizer, tmp_path):
    three, one = cerberus(tiny_tokenizer, 3), cerberus(tiny_tokenizer, 1)
    write_run(tmp_path, "students", "single-t1", "bb", "B2 1H2", one)
    write_run(tmp_path, "students", "single-t2", "bb", "B2 1H2", one)
    write_run(tmp_path, "students", "cerberus", "bb", "B2 3H2", three)
    for t in ("t2", "t1"):
        write_run(tmp_path, "teachers", t, "bb", "B2 1H2", one)
    models, stands_for = models_from_artifacts(tmp_path)
    assert list(models) == ["cerberus", "B2 1H2 student", "t1", "t2", TEACHER_ENSEMBLE]
    assert stands_for == {"cerberus": ["cerberus"], "B2 1H2 student": ["single-t1", "single-t2"],
                          "t1": ["t1"], "t2": ["t2"], TEACHER_ENSEMBLE: [TEACHER_ENSEMBLE]}
    assert models["cerberus"].config.num_heads == 3 and models["B2 1H2 student"].config.num_heads == 1
    assert models[TEACHER_ENSEMBLE] == [models["t1"], models["t2"]]
    assert parameter_count(models[TEACHER_ENSEMBLE]) == 2 * parameter_count(models["t1"])


def test_one_teacher_makes_no_ensemble(tiny_tokenizer, tmp_path):
    write_run(tmp_path, "students", "cerberus", "bb", "B2 1H2", cerberus(tiny_tokenizer))
    write_run(tmp_path, "teachers", "t1", "bb", "B2 1H2", cerberus(tiny_tokenizer))
    models, stands_for = models_from_artifacts(tmp_path)
    assert list(models) == list(stands_for) == ["cerberus", "t1"]
