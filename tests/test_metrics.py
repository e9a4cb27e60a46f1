"""Ranking metrics: agreement with trec_eval (pytrec_eval), hand-computed goldens, validation, uncertainty."""
from __future__ import annotations

import time

import numpy as np
import pytest
import pytrec_eval

from cerberus_core.results.metrics import (
    PER_QUESTION_KEY,
    bootstrap_ci,
    metrics_with_ci,
    paired_test,
    ranking_metrics,
)

TREC_MEASURES = {"map": "ap", "recip_rank": "rr", "P_1": "p@1"}


def random_pairs(seed: int, tied: bool):
    """Random AS2 data: no-positive, all-positive and mixed questions, pairs shuffled across questions."""
    rng = np.random.default_rng(seed)
    qids, labels, scores, cand_idx = [], [], [], []
    for q in range(rng.integers(1, 40)):
        n = int(rng.integers(1, 31))
        p_pos = rng.choice([0.0, 1.0, rng.random()])
        labels += list((rng.random(n) < p_pos).astype(int))
        raw = rng.normal(size=n)
        scores += list(np.round(raw) / 2 if tied else raw)  # rounding gives a handful of values
        qids += [f"q{q}"] * n
        cand_idx += list(range(n))
    perm = rng.permutation(len(qids)) if seed % 2 else np.arange(len(qids))
    return [np.asarray(a)[perm] for a in (qids, labels, scores, cand_idx)]


def trec_eval(qids, labels, scores, docnos):
    qrels, run = {}, {}
    for q, y, s, d in zip(qids, labels, scores, docnos):
        qrels.setdefault(q, {})[d] = int(y)
        run.setdefault(q, {})[d] = float(s)
    return pytrec_eval.RelevanceEvaluator(qrels, set(TREC_MEASURES)).evaluate(run)


def assert_agrees(ours, theirs):
    pq = ours["per_question"]
    assert sorted(pq["qid"]) == sorted(theirs)  # trec_eval kept every question, no-positive ones too
    for measure, key in TREC_MEASURES.items():
        expected = np.array([theirs[q][measure] for q in pq["qid"]])
        np.testing.assert_allclose(pq[key], expected, rtol=0, atol=1e-9, err_msg=measure)
    assert ours["map"] == pytest.approx(np.mean([v["map"] for v in theirs.values()]), abs=1e-9)
    assert ours["mrr"] == pytest.approx(np.mean([v["recip_rank"] for v in theirs.values()]), abs=1e-9)
    assert ours["p@1"] == pytest.approx(np.mean([v["P_1"] for v in theirs.values()]), abs=1e-9)


def test_pytrec_eval_conventions_we_rely_on():
    qrels = {"none_rel": {"a": 0, "b": 0}, "unjudged": {}, "tie": {"d1": 0, "d2": 1, "d3": 0}}
    run = {"none_rel": {"a": 1.0, "b": 0.5}, "unjudged": {"a": 1.0}, "tie": {"d1": 1.0, "d2": 1.0, "d3": 1.0}}
    out = pytrec_eval.RelevanceEvaluator(qrels, set(TREC_MEASURES)).evaluate(run)
    assert out["none_rel"] == {"map": 0.0, "recip_rank": 0.0, "P_1": 0.0}  # judged, no positive: zeros
    assert "unjudged" not in out  # no qrels entries: silently skipped
    assert out["tie"]["recip_rank"] == 0.5  # ties by descending docno: d3, d2, d1


@pytest.mark.parametrize("seed", range(60))
def test_agrees_with_trec_eval_continuous_scores(seed):
    qids, labels, scores, cand = random_pairs(seed, tied=False)
    ours = ranking_metrics(qids, labels, scores, cand_idx=cand)
    assert_agrees(ours, trec_eval(qids, labels, scores, [f"d{i}" for i in cand]))


# docnos whose descending strcmp order (trec_eval's tie-break) realises each of our tie rules
TIE_DOCNOS = {
    "index": lambda y, i: f"d{9999 - i:04d}",
    "pessimistic": lambda y, i: f"{'a' if y else 'b'}{9999 - i:04d}",
    "optimistic": lambda y, i: f"{'b' if y else 'a'}{9999 - i:04d}",
}


@pytest.mark.parametrize("ties", TIE_DOCNOS)
def test_tie_break_is_exactly_trec_eval_with_matching_docnos(ties):
    differs_from_other_rules = False
    for seed in range(60):
        qids, labels, scores, cand = random_pairs(seed, tied=True)
        docnos = [TIE_DOCNOS[ties](y, i) for y, i in zip(labels, cand)]
        theirs = trec_eval(qids, labels, scores, docnos)
        assert_agrees(ranking_metrics(qids, labels, scores, ties=ties, cand_idx=cand), theirs)
        others = [ranking_metrics(qids, labels, scores, ties=t, cand_idx=cand)["map"] for t in TIE_DOCNOS]
        differs_from_other_rules |= len(set(others)) == 3
    assert differs_from_other_rules  # the tied data is decisive: the three rules disagree somewhere


def test_default_cand_idx_is_order_of_appearance_within_question():
    qids, labels, scores, cand = random_pairs(4, tied=True)  # even seed: contiguous, cand = 0..n-1
    default = ranking_metrics(qids, labels, scores)["per_question"]
    explicit = ranking_metrics(qids, labels, scores, cand_idx=cand)["per_question"]
    reversed_ = ranking_metrics(qids, labels, scores, cand_idx=-cand)["per_question"]
    for key in ("p@1", "ap", "rr"):
        np.testing.assert_array_equal(default[key], explicit[key])
    assert not np.array_equal(default["ap"], reversed_["ap"])  # the ties in this data matter


# Hand-computed. q1: scores (.5, .5, .9, .5), labels (1, 0, 0, 1); candidate 2 is first (negative),
# then the tie {0+, 1-, 3+}. q2: scores (.7, .7), labels (0, 1), a tie at the top.
GOLDEN_TIES = (["q1"] * 4 + ["q2"] * 2, [1, 0, 0, 1, 0, 1], [0.5, 0.5, 0.9, 0.5, 0.7, 0.7])
GOLDEN_TIES_EXPECTED = {
    # order q1: - + - +  -> AP (1/2 + 2/4)/2 = 1/2, RR 1/2; q2: - +  -> AP 1/2, RR 1/2, P@1 0
    "index": {"p@1": 0.0, "map": 1 / 2, "mrr": 1 / 2, "ap": [1 / 2, 1 / 2], "rr": [1 / 2, 1 / 2]},
    # order q1: - - + +  -> AP (1/3 + 2/4)/2 = 5/12, RR 1/3; q2: - +
    "pessimistic": {"p@1": 0.0, "map": 11 / 24, "mrr": 5 / 12, "ap": [5 / 12, 1 / 2], "rr": [1 / 3, 1 / 2]},
    # order q1: - + + -  -> AP (1/2 + 2/3)/2 = 7/12, RR 1/2; q2: + -  -> 1, 1, P@1 1
    "optimistic": {"p@1": 1 / 2, "map": 19 / 24, "mrr": 3 / 4, "ap": [7 / 12, 1.0], "rr": [1 / 2, 1.0]},
}


@pytest.mark.parametrize("ties", GOLDEN_TIES_EXPECTED)
def test_golden_ties(ties):
    expected = GOLDEN_TIES_EXPECTED[ties]
    result = ranking_metrics(*GOLDEN_TIES, ties=ties)
    assert result["ties"] == ties
    for key in ("p@1", "map", "mrr"):
        assert result[key] == pytest.approx(expected[key], abs=1e-12), key
    np.testing.assert_allclose(result["per_question"]["ap"], expected["ap"], atol=1e-12)
    np.testing.assert_allclose(result["per_question"]["rr"], expected["rr"], atol=1e-12)


def test_explicit_cand_idx_drives_the_tie_break():
    # q2 listed with cand_idx (1, 0): the positive is candidate 0, so it wins the tie under "index"
    result = ranking_metrics(*GOLDEN_TIES, cand_idx=[0, 1, 2, 3, 1, 0])
    assert result["per_question"]["p@1"].tolist() == [0.0, 1.0]
    assert result["per_question"]["rr"].tolist() == [0.5, 1.0]


# qa: no positive; qb: only positives; qc: ranked - + - (P@1 0, AP 1/2, RR 1/2)
GOLDEN_POLICY = (
    ["qa", "qa", "qb", "qb", "qc", "qc", "qc"],
    [0, 0, 1, 1, 0, 1, 0],
    [0.2, 0.1, 0.3, 0.4, 0.9, 0.8, 0.1],
)
GOLDEN_POLICY_EXPECTED = {
    "none": {"qids": ["qa", "qb", "qc"], "p@1": 1 / 3, "map": 1 / 2, "mrr": 1 / 2, "n_dropped": 0},
    "answerable": {"qids": ["qb", "qc"], "p@1": 1 / 2, "map": 3 / 4, "mrr": 3 / 4, "n_dropped": 1},
    "clean": {"qids": ["qc"], "p@1": 0.0, "map": 1 / 2, "mrr": 1 / 2, "n_dropped": 2},
}


@pytest.mark.parametrize("policy", GOLDEN_POLICY_EXPECTED)
def test_golden_policies(policy):
    expected = GOLDEN_POLICY_EXPECTED[policy]
    result = ranking_metrics(*GOLDEN_POLICY, policy=policy)
    assert result["policy"] == policy
    assert result["per_question"]["qid"].tolist() == expected["qids"]
    assert result["n_questions"] == len(expected["qids"])
    assert result["n_dropped"] == expected["n_dropped"]
    for key in ("p@1", "map", "mrr"):
        assert result[key] == pytest.approx(expected[key], abs=1e-12), key


def test_no_positive_question_scores_zero_under_none():
    pq = ranking_metrics(*GOLDEN_POLICY)["per_question"]
    assert (pq["p@1"][0], pq["ap"][0], pq["rr"][0]) == (0.0, 0.0, 0.0)


def test_interleaved_questions_are_grouped():
    order = [4, 0, 2, 5, 1, 3, 6]
    shuffled = [np.asarray(a)[order] for a in GOLDEN_POLICY]
    cand = [0, 0, 0, 1, 1, 1, 2]  # within-question index of each shuffled pair in the original
    result = ranking_metrics(*shuffled, cand_idx=cand)
    assert result["per_question"]["qid"].tolist() == ["qc", "qa", "qb"]  # order of first appearance
    assert result["map"] == pytest.approx(1 / 2)


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((["q"] * 2, [0, 1], [0.1]), {}, "equal lengths"),
        ((["q"] * 2, [0, 2], [0.1, 0.2]), {}, "labels must be 0 or 1"),
        ((["q"] * 2, [0, 1], [0.1, np.nan]), {}, "scores must be finite"),
        ((["q"] * 2, [0, 1], [np.inf, 0.2]), {}, "scores must be finite"),
        (([], [], []), {}, "no .* pairs"),
        ((["q"] * 2, [0, 1], [0.1, 0.2]), {"policy": "all"}, "unknown policy 'all'; valid: clean, answerable, none"),
        ((["q"] * 2, [0, 1], [0.1, 0.2]), {"ties": "random"}, "unknown ties 'random'; valid: index, pessimistic"),
        ((["q"] * 2, [0, 1], [0.1, 0.2]), {"cand_idx": [3, 3]}, "cand_idx 3 repeats within question 'q'"),
        ((["q"] * 2, [0, 1], [0.1, 0.2]), {"cand_idx": [0.0, 1.0]}, "cand_idx must be integers"),
        ((["a", "a", "b"], [0, 0, 1], [0.1, 0.2, 0.3]), {"policy": "clean"}, "dropped all 2 questions"),
    ],
)
def test_validation_errors(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ranking_metrics(*args, **kwargs)


def test_fast_on_1e5_pairs():
    rng = np.random.default_rng(0)
    n = 100_000
    qids, labels, scores = np.repeat(np.arange(n // 20), 20), rng.integers(0, 2, n), rng.random(n)
    start = time.perf_counter()
    ranking_metrics(qids, labels, scores, policy="clean")
    assert time.perf_counter() - start < 0.5


def test_bootstrap_ci_contains_estimate_and_shrinks_with_more_questions():
    rng = np.random.default_rng(1)
    widths = []
    for n in (50, 2000):
        values = (rng.random(n) < 0.6).astype(float)
        low, high = bootstrap_ci(values, seed=3)
        assert low < values.mean() < high
        assert (low, high) == bootstrap_ci(values, seed=3)  # seeded
        widths.append(high - low)
    assert widths[1] < widths[0] / 3  # ~ 1/sqrt(n): sqrt(40) ~ 6.3
    normal_width = 2 * 1.96 * values.std() / np.sqrt(len(values))  # CLT: n = 2000 is plenty
    assert widths[1] == pytest.approx(normal_width, rel=0.1)
    low, high = bootstrap_ci(values, confidence=0.5, seed=3)
    assert high - low == pytest.approx(normal_width * 0.674 / 1.96, rel=0.1)  # confidence is honoured


def test_bootstrap_ci_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_ci([1.0])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([0.0, 1.0], confidence=1.5)


@pytest.mark.parametrize("method", ["permutation", "bootstrap"])
def test_paired_test(method):
    rng = np.random.default_rng(2)
    b = rng.random(100)
    better = np.clip(b + rng.normal(0.15, 0.1, 100), 0, 1)
    clear = paired_test(better, b, method=method, n_resamples=2000)
    assert clear["diff"] == pytest.approx(np.mean(better - b))
    assert clear["p_value"] < 0.01
    same = paired_test(b, b, method=method, n_resamples=2000)
    assert same == {"diff": 0.0, "p_value": 1.0}
    noise = rng.normal(0, 0.2, 100)
    equal_on_average = paired_test(b + noise - noise.mean(), b, method=method, n_resamples=2000)
    assert equal_on_average["p_value"] > 0.5


def test_paired_test_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown method 'ttest'; valid: permutation, bootstrap"):
        paired_test([0, 1], [1, 0], method="ttest")
    with pytest.raises(ValueError, match="aligned"):
        paired_test([0, 1, 1], [1, 0])


def test_metrics_with_ci():
    qids, labels, scores, cand = random_pairs(7, tied=False)
    result = metrics_with_ci(qids, labels, scores, policy="answerable", cand_idx=cand, n_resamples=500)
    assert result["policy"] == "answerable"
    for key, per_question_key in PER_QUESTION_KEY.items():
        low, high = result[f"{key}_ci"]
        assert low <= result[key] <= high
        assert (low, high) == bootstrap_ci(result["per_question"][per_question_key], 500)


def test_tie_report_says_how_much_the_tie_rule_decided():
    """A scorer that gives every pair one score looks perfect under the index rule when positives come
    first; the report counts those questions and spans each metric over the extreme tie orders."""
    from cerberus_core.results.metrics import tie_report

    qids, labels = ["a"] * 4 + ["b"] * 2 + ["c"] * 3, [1, 0, 0, 0, 1, 0, 0, 1, 0]
    flat = [0.5] * 9
    assert ranking_metrics(qids, labels, flat)["p@1"] == 2 / 3  # c's positive is second
    report = tie_report(qids, labels, flat)
    assert report["all_tied"] == 3 and report["n_questions"] == 3
    assert report["p@1"] == (0.0, 1.0) and report["map"] == pytest.approx(((1 / 4 + 1 / 2 + 1 / 3) / 3, 1.0))
    distinct = tie_report(qids, labels, [0.9, 0.1, 0.2, 0.3, 0.1, 0.8, 0.2, 0.7, 0.1])
    assert distinct["all_tied"] == 0 and distinct["p@1"] == (2 / 3, 2 / 3) and distinct["map"][0] == distinct["map"][1]
    # one tie inside a question counts in the span, not as a question scored alike
    partial = tie_report(["a"] * 3, [0, 1, 0], [0.7, 0.7, 0.1])
    assert partial["all_tied"] == 0 and partial["p@1"] == (0.0, 1.0)
    # questions a policy drops are not counted
    assert tie_report(["a", "a", "b", "b"], [0, 0, 1, 0], [0.5] * 4, policy="clean")["all_tied"] == 1
