"""bf16 and int8 inference against fp32: same rankings on real questions, never timed here
(speed is measured by `bench --precision`, with its conditions)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from cerberus_core.results.analysis import top1
from cerberus_core.orchestration.bench import run_benchmark
from cerberus_core.data import load_as2
from cerberus_core.errors import InputError
from cerberus_core.model.modeling import CerberusForRanking
from cerberus_core.model.precision import supports, with_precision

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_and_data():
    torch.manual_seed(0)
    model = CerberusForRanking.from_backbone("minilm-l3", body_layers=2, num_heads=3, head_layers=1)
    ds = load_as2("wikiqa", split="dev").subset(12, seed=0)
    return model, ds


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_lower_precision_ranks_like_fp32(model_and_data, precision):
    model, ds = model_and_data
    if not supports(precision):
        pytest.skip(f"{precision} is not supported on this CPU")
    qids, cand_idx, _ = ds.pair_arrays()
    reference, reference_heads = model.predict(ds.pairs(), return_heads=True)
    converted = with_precision(model, precision)
    scores, heads = converted.predict(ds.pairs(), return_heads=True)
    assert next(model.parameters()).dtype == torch.float32, "the caller's model must stay fp32"
    assert scores.dtype == np.float32 and heads.shape == reference_heads.shape
    assert not np.array_equal(scores, reference), "a real conversion changes the numbers a little"
    assert spearmanr(scores, reference).statistic > 0.95  # an untrained scorer: small score range
    agree = np.mean(top1(qids, scores, cand_idx) == top1(qids, reference, cand_idx))
    assert agree >= 10 / 12, f"top-1 candidate agrees on {agree:.0%} of questions"


def test_unknown_or_unsupported_precision_is_one_clear_error(model_and_data):
    model, _ = model_and_data
    with pytest.raises(InputError, match="precision must be one of fp32, bf16, int8"):
        with_precision(model, "fp16")
    assert with_precision(model, "fp32") is model


def test_bench_rows_carry_precision_and_map_change(model_and_data, tmp_path):
    precisions = [p for p in ("fp32", "bf16", "int8") if supports(p)]
    table = run_benchmark(["minilm-l3:B2-2H1"], threads=1, seq_len=32, batch_sizes=[4], repeats=1, warmup=0,
                          precisions=precisions, quality=True, data="wikiqa", split="dev",
                          out=tmp_path / "bench.json")
    import json

    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert [r["precision"] for r in rows] == precisions
    assert rows[0]["map_vs_fp32"] == 0 and all(0 < r["test_map"] <= 1 for r in rows)
    assert all(abs(r["map_vs_fp32"]) < 0.05 for r in rows)
    assert "MAP vs fp32" in table


def test_int8_recipe_scores_closer_to_fp32_than_torchs_defaults(model_and_data):
    """Per-channel weight scales (and 8-bit activations where the CPU has VNNI) against torch's
    quantize_dynamic defaults (one scale per matrix, 7-bit activations) on the same model."""
    import copy

    from cerberus_core.model.precision import quantize_linears

    model, ds = model_and_data
    if not supports("int8"):
        pytest.skip("int8 is not supported on this CPU")
    _, reference = model.predict(ds.pairs(), return_heads=True)
    defaults = copy.deepcopy(model)
    quantize_linears(defaults.body, parts=(), per_channel=False, full_range=False)
    error = {name: np.abs(m.predict(ds.pairs(), return_heads=True)[1] - reference).mean()
             for name, m in (("ours", with_precision(model, "int8")), ("defaults", defaults))}
    assert error["ours"] < error["defaults"], error


def test_bench_says_what_auto_chose_and_each_precisions_peak(tmp_path):
    import json

    from cerberus_core.model.precision import resolve

    run_benchmark(["minilm-l3:B2-2H1"], threads=1, seq_len=16, batch_sizes=[2], repeats=1, warmup=0, split="dev",
                  precisions=["fp32", "auto"], out=tmp_path / "bench.json")
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert [r["precision"] for r in saved["rows"]] == list(dict.fromkeys(["fp32", resolve("auto")]))
    assert saved["conditions"]["precision auto"].startswith(resolve("auto"))
    peaks = {r["precision"]: r["peak_gflops"] for r in saved["rows"]}
    assert all(f"{p} {g:.1f}" in saved["conditions"]["matmul peak"] for p, g in peaks.items())
