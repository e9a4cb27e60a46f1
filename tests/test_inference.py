"""Inference on tiny random models: `predict` sorts pairs by length and gives scores back in the
order given, exactly; "auto" precision; int8's choice of layers; each bench row against the peak of
its own precision. Nothing here is timed."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cerberus_core.model.batching import encode_pairs, inference_batches, sorted_batches
from cerberus_core.model.modeling import CerberusForRanking
from cerberus_core.model.precision import (AUTO, describe, linear_role, precision_of, quantize_linears, resolve,
                                           supports, with_precision)

from conftest import WORDS, tiny_backbone

# every pair a different token count, so one length order exists whatever order the pairs come in
PAIRS = [("what is the capital", " ".join(WORDS[:n])) for n in (7, 2, 11, 1, 15, 4, 9, 13, 6, 3, 16, 8, 10, 14, 5, 12)]


def model(tokenizer, family: str = "bert", heads: int = 3) -> CerberusForRanking:
    return CerberusForRanking.from_backbone(tiny_backbone(family, layers=3), body_layers=2, num_heads=heads,
                                            head_init="independent", tokenizer=tokenizer)


def lengths(tokenizer, pairs, max_length=64) -> np.ndarray:
    return np.array([len(ids) for ids in encode_pairs(tokenizer, pairs, max_length)["input_ids"]])


def test_batches_are_longest_first_padded_to_their_own_longest(tiny_tokenizer):
    n = lengths(tiny_tokenizer, PAIRS)
    seen = []
    for index, inputs in inference_batches(tiny_tokenizer, PAIRS, 64, batch_size=5):
        width = inputs["input_ids"].shape[1]
        assert width == n[index].max() and list(n[index]) == sorted(n[index], reverse=True)
        assert torch.equal(inputs["attention_mask"].sum(1), torch.from_numpy(n[index]))
        alone = encode_pairs(tiny_tokenizer, [PAIRS[i] for i in index], 64, padding=True, return_tensors="pt")
        for name, tensor in alone.items():  # what the tokenizer pads, token for token
            assert torch.equal(inputs[name], tensor[:, :width]), name
        seen += list(index)
    assert sorted(seen) == list(range(len(PAIRS))) and list(n[seen]) == sorted(n, reverse=True)
    assert [len(b) for b in sorted_batches(np.array([3, 1, 3, 2]), 3)] == [3, 1]
    assert list(sorted_batches(np.array([3, 1, 3, 2]), 3)[0]) == [0, 2, 3]  # ties keep the order given


def test_chunks_are_sorted_within_themselves_and_cover_every_pair(tiny_tokenizer):
    batches = list(inference_batches(tiny_tokenizer, PAIRS, 64, batch_size=3, chunk_pairs=7))  # 9: whole batches
    assert sorted(i for index, _ in batches for i in index) == list(range(len(PAIRS)))
    assert all(index.max() < 9 for index, _ in batches[:3]) and all(index.min() >= 9 for index, _ in batches[3:])


@pytest.mark.parametrize("family", ["bert", "mpnet"])
def test_scores_come_back_in_the_order_given_exactly(tiny_tokenizer, family):
    """Every order of the same pairs sorts into the same batches, so a pair's score is the same
    number wherever it stands; a pair alone in its batch is scored as when it is scored alone."""
    ranker = model(tiny_tokenizer, family)
    scores, heads = ranker.predict(PAIRS, batch_size=4, return_heads=True)
    perm = np.random.default_rng(0).permutation(len(PAIRS))
    shuffled, shuffled_heads = ranker.predict([PAIRS[i] for i in perm], batch_size=4, return_heads=True)
    assert np.array_equal(shuffled, scores[perm]) and np.array_equal(shuffled_heads, heads[perm])
    one = ranker.predict(PAIRS, batch_size=1)
    assert all(one[i] == ranker.predict([PAIRS[i]])[0] for i in (0, 5, len(PAIRS) - 1))
    assert np.abs(one - scores).max() < 1e-5  # padding in a batch changes nothing
    assert len({tuple(h) for h in heads.tolist()}) == len(PAIRS)  # distinct pairs, distinct scores: it can fail


def test_rank_and_an_empty_list(tiny_tokenizer):
    ranker = model(tiny_tokenizer, heads=2)
    candidates = [c for _, c in PAIRS[:6]]
    scores = ranker.predict([("who", c) for c in candidates])
    ranked = ranker.rank("who", candidates)
    assert [r["corpus_id"] for r in ranked] == list(np.argsort(-scores, kind="stable"))
    assert [r["score"] for r in ranked] == sorted(scores.tolist(), reverse=True)
    empty, empty_heads = ranker.predict([], return_heads=True)
    assert empty.shape == (0,) and empty_heads.shape == (0, 2)


def test_auto_is_bf16_only_where_it_runs_natively(tiny_tokenizer):
    expected = "bf16" if supports("bf16") else "fp32"
    assert resolve(AUTO) == expected and resolve("int8") == "int8"
    assert describe(AUTO).startswith(f"{expected} (auto: this CPU ") and describe("fp32") == "fp32"
    ranker = model(tiny_tokenizer)
    converted = with_precision(ranker, AUTO)
    assert precision_of(converted) == expected and precision_of(ranker) == "fp32"
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, int8 or auto, got 'fp16'"):
        resolve("fp16")


def test_int8_converts_the_body_linears_with_per_channel_scales(tiny_tokenizer):
    ranker = model(tiny_tokenizer)
    converted = with_precision(ranker, "int8")
    quantized = {n: m for n, m in converted.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)}
    assert quantized and all(n.startswith("body.encoder.layer.") for n in quantized)
    assert len(quantized) == 2 * 6  # two body layers: Q, K, V, attention output, FFN in and out
    assert all(m.weight().qscheme() == torch.per_channel_affine for m in quantized.values())
    assert precision_of(converted) == "int8" and converted.heads[0].scorer.dense.weight.dtype == torch.float32
    fp32 = ranker.predict(PAIRS)
    assert np.abs(converted.predict(PAIRS) - fp32).max() < 0.05


def test_linear_roles_and_a_chosen_subset(tiny_tokenizer):
    bert = {n: linear_role(n) for n, m in tiny_backbone("bert", layers=1).named_modules()
            if type(m) is torch.nn.Linear}
    assert bert == {"encoder.layer.0.attention.self.query": "attention", "encoder.layer.0.attention.self.key": "attention",
                    "encoder.layer.0.attention.self.value": "attention",
                    "encoder.layer.0.attention.output.dense": "attention",
                    "encoder.layer.0.intermediate.dense": "ffn_in", "encoder.layer.0.output.dense": "ffn_out",
                    "pooler.dense": "other"}
    mpnet = {linear_role(n) for n, m in tiny_backbone("mpnet", layers=1).named_modules() if type(m) is torch.nn.Linear}
    assert mpnet == {"attention", "ffn_in", "ffn_out", "other"}
    body = model(tiny_tokenizer).body
    quantize_linears(body, parts=("ffn_in",), skip_layers=(0,))
    assert [n for n, m in body.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)] == \
        ["encoder.layer.1.intermediate.dense"]


def test_each_bench_row_is_a_share_of_its_own_precisions_peak(tiny_tokenizer):
    from cerberus_core.orchestration.bench import benchmark, conditions

    ranker = model(tiny_tokenizer)
    models = {"fp32": ranker, "int8": with_precision(ranker, "int8")}
    if supports("bf16"):
        models["bf16"] = with_precision(ranker, "bf16")
    peaks = {"fp32": 2.0, "int8": 8.0, "bf16": 4.0}
    rows = benchmark(models, PAIRS[:3], batch_sizes=(2,), repeats=1, warmup=0, threads=1, max_length=16,
                     peak_gflops=peaks)
    for row in rows:
        assert row["peak_gflops"] == peaks[row["name"]]
        assert row["peak_share"] == pytest.approx(row["gflops_s"] / peaks[row["name"]])
    measured = benchmark({"int8": models["int8"]}, PAIRS[:3], batch_sizes=(2,), repeats=1, warmup=0, threads=1,
                         max_length=16)  # the int8 peak: the quantized kernel the rows run
    assert measured[0]["peak_gflops"] > 0
    header = conditions(1, (2,), 16, 1, 0, 3, {"fp32": 2.0, "int8": 8.0})["matmul peak"]
    assert header.startswith("fp32 2.0, int8 8.0 GFLOP/s") and "own precision" in header
