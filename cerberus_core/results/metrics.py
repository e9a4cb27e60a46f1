"""AS2 ranking metrics (P@1, MAP, MRR) with explicit conventions, plus uncertainty helpers.

Every (question, candidate) pair is one entry of flat arrays; candidates are ranked per question by
descending score. Two conventions change the numbers and are therefore parameters, echoed in the
result:

* ``policy`` -- which questions count (see ``filters.RULES``): "clean" drops questions with no positive
  and questions with only positives, "answerable" drops only no-positive questions, "none" keeps
  all, a no-positive question scoring 0 on P@1, AP and RR.
* ``ties`` -- how equal scores are ordered (see ``TIES``): "index" (default) ranks tied candidates
  by ascending candidate index (original file order): deterministic and independent of the model;
  "pessimistic" puts negatives before positives among ties, "optimistic" the reverse. The spread
  between the two bounds how much ties can move a score.

Relation to trec_eval (checked against pytrec_eval in tests/test_metrics.py):

* trec_eval orders equal scores by docno in *descending* lexicographic (strcmp) order. Our "index"
  order is reproduced exactly by giving candidate ``i`` a docno whose descending order is ascending
  ``i``, e.g. ``f"d{9999 - i:04d}"``. Naive docnos such as ``f"d{i}"`` would put later candidates
  first (and "d10" < "d9").
* A query whose qrels judge its documents but mark none relevant is evaluated and scores 0 on
  map, recip_rank and P_1, and counts in the mean: that is policy "none". A query absent from the
  qrels (or with no judgments at all) is silently skipped by trec_eval, so reproducing "none"
  needs a qrels entry for every candidate, which AS2 data provides.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from ..data.filters import RULES

# ties name -> sort key applied after descending score and before candidate index (lower first)
TIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "index": lambda labels: np.zeros_like(labels),
    "pessimistic": lambda labels: labels,
    "optimistic": lambda labels: -labels,
}

# resamples evaluated per batch: bounds memory to about BATCH x n_questions floats
BATCH = 1000

# summary metric -> per-question array it averages
PER_QUESTION_KEY = {"p@1": "p@1", "map": "ap", "mrr": "rr"}


def _lookup(registry: dict[str, Any], name: str, what: str) -> Any:
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(registry)}")
    return registry[name]


def _validate(qids, labels, scores, cand_idx) -> tuple[np.ndarray, ...]:
    q, y, s = np.asarray(qids), np.asarray(labels), np.asarray(scores, dtype=float)
    arrays = {"qids": q, "labels": y, "scores": s}
    if cand_idx is not None:
        arrays["cand_idx"] = np.asarray(cand_idx)
    for name, a in arrays.items():
        if a.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"inputs must have equal lengths, got {lengths}")
    if len(q) == 0:
        raise ValueError("no (question, candidate) pairs given")
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"labels must be 0 or 1; pair {i} has label {y.tolist()[i]!r}")
    if not np.isfinite(s).all():
        i = int(np.argmax(~np.isfinite(s)))
        raise ValueError(f"scores must be finite; pair {i} has score {s[i]}")
    c = arrays.get("cand_idx")
    if c is not None and not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"cand_idx must be integers, got dtype {c.dtype}")
    return q, y.astype(np.int64), s, c


def _group(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Question number of each pair, numbered in order of first appearance, and the unique qids."""
    _, first, inverse = np.unique(q, return_index=True, return_inverse=True)
    appearance = np.argsort(first)
    number = np.empty_like(appearance)
    number[appearance] = np.arange(len(appearance))
    return number[inverse], q[first[appearance]]


def ranking_metrics(
    qids: Sequence | np.ndarray,
    labels: Sequence | np.ndarray,
    scores: Sequence | np.ndarray,
    *,
    policy: str = "none",
    ties: str = "index",
    cand_idx: Sequence | np.ndarray | None = None,
) -> dict[str, Any]:
    """P@1, MAP and MRR over questions, with the question policy and tie rule made explicit.

    ``cand_idx`` is each pair's candidate index within its question (default: order of appearance
    within the question); only the tie-break uses it. ``per_question`` holds the kept questions in
    order of first appearance, so two systems scored on the same data give aligned arrays for
    ``paired_test``.
    """
    keep_rule = _lookup(RULES, policy, "policy")
    tie_key = _lookup(TIES, ties, "ties")
    q, y, s, cand = _validate(qids, labels, scores, cand_idx)
    group, unique_qids = _group(q)
    counts = np.bincount(group)
    starts = np.cumsum(counts) - counts
    position = np.arange(len(y)) - np.repeat(starts, counts)  # 0-based offset within the group

    if cand is None:
        cand = np.empty_like(position)
        cand[np.argsort(group, kind="stable")] = position
    else:
        by_cand = np.lexsort((cand, group))
        dup = (np.diff(group[by_cand]) == 0) & (np.diff(cand[by_cand]) == 0)
        if dup.any():
            i = by_cand[int(np.argmax(dup))]
            raise ValueError(f"cand_idx {cand[i]} repeats within question {q.tolist()[i]!r}")

    rel = y[np.lexsort((cand, tie_key(y), -s, group))]  # labels in ranked order, grouped
    rank = position + 1
    hits = np.cumsum(rel)
    hits_in_group = hits - np.repeat(hits[starts] - rel[starts], counts)
    n_pos = np.add.reduceat(rel, starts)
    ap = np.add.reduceat(rel * hits_in_group / rank, starts) / np.maximum(n_pos, 1)
    rr = np.maximum.reduceat(rel / rank, starts)
    p1 = rel[starts].astype(float)

    keep = keep_rule(n_pos, counts)
    if not keep.any():
        raise ValueError(f"policy {policy!r} dropped all {len(counts)} questions")
    per_question = {"qid": unique_qids[keep], "p@1": p1[keep], "ap": ap[keep], "rr": rr[keep]}
    return {
        **{name: float(per_question[key].mean()) for name, key in PER_QUESTION_KEY.items()},
        "n_questions": int(keep.sum()),
        "n_dropped": int((~keep).sum()),
        "policy": policy,
        "ties": ties,
        "per_question": per_question,
    }


def tie_report(qids: Sequence | np.ndarray, labels: Sequence | np.ndarray, scores: Sequence | np.ndarray,
               **kw: Any) -> dict[str, Any]:
    """How much the tie rule decided: "all_tied", the counted questions (of "n_questions") whose
    candidates all have one score, and each metric as (pessimistic, optimistic), its value under the
    two extreme tie orders. The span is what the tie rule decided: nothing for scores that never tie,
    everything for a model that scores every pair alike (which the "index" rule ranks in file order,
    so a file whose positives come first makes it look perfect)."""
    low, high = (ranking_metrics(qids, labels, scores, ties=t, **kw) for t in ("pessimistic", "optimistic"))
    q, _, s, _ = _validate(qids, labels, scores, None)
    group, unique_qids = _group(q)
    order = np.argsort(group, kind="stable")
    counts = np.bincount(group)
    starts = np.cumsum(counts) - counts
    tied = (counts > 1) & (np.maximum.reduceat(s[order], starts) == np.minimum.reduceat(s[order], starts))
    counted = np.isin(unique_qids, low["per_question"]["qid"])
    return {"all_tied": int((tied & counted).sum()), "n_questions": low["n_questions"],
            **{name: (low[name], high[name]) for name in PER_QUESTION_KEY}}


def bootstrap_ci(
    per_question_values: Sequence[float] | np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean, resampling questions (the unit a test set samples)."""
    values = np.asarray(per_question_values, dtype=float)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"bootstrap_ci needs at least 2 per-question values, got shape {values.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    res = stats.bootstrap(
        (values,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
        method="percentile", batch=BATCH, rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _mean_diff(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a - b, axis=axis)


def _permutation_p(a: np.ndarray, b: np.ndarray, n_resamples: int, rng: np.random.Generator) -> float:
    """Sign-flip test: under H0 the two systems' values for a question are exchangeable."""
    res = stats.permutation_test(
        (a, b), _mean_diff, permutation_type="samples", vectorized=True,
        n_resamples=n_resamples, batch=BATCH, alternative="two-sided", rng=rng,
    )
    return float(res.pvalue)


def _bootstrap_p(a: np.ndarray, b: np.ndarray, n_resamples: int, rng: np.random.Generator) -> float:
    """Paired bootstrap: resample the mean-centred differences (H0: mean 0), count |mean| >= observed."""
    d = a - b
    res = stats.bootstrap(
        (d - d.mean(),), np.mean, n_resamples=n_resamples, method="percentile", batch=BATCH, rng=rng,
    )
    extreme = np.abs(res.bootstrap_distribution) >= abs(d.mean())
    return float((1 + extreme.sum()) / (1 + n_resamples))


PAIRED_TESTS: dict[str, Callable[[np.ndarray, np.ndarray, int, np.random.Generator], float]] = {
    "permutation": _permutation_p,
    "bootstrap": _bootstrap_p,
}


def paired_test(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    method: str = "permutation",
    n_resamples: int = 10000,
    seed: int = 0,
) -> dict[str, float]:
    """Two-sided paired test of mean(a - b) = 0 over the same questions (aligned per-question values)."""
    test = _lookup(PAIRED_TESTS, method, "method")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or len(a) < 2:
        raise ValueError(f"need two aligned 1-D arrays of >= 2 values, got shapes {a.shape}, {b.shape}")
    p = test(a, b, n_resamples, np.random.default_rng(seed))
    return {"diff": float(np.mean(a - b)), "p_value": p}


def metrics_with_ci(
    qids: Sequence | np.ndarray,
    labels: Sequence | np.ndarray,
    scores: Sequence | np.ndarray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    **kw: Any,
) -> dict[str, Any]:
    """``ranking_metrics`` plus percentile-bootstrap CIs "p@1_ci", "map_ci", "mrr_ci".

    Over fewer than 2 questions there is nothing to resample: the metrics are reported with
    each interval None (JSON null) instead of failing.
    """
    result = ranking_metrics(qids, labels, scores, **kw)
    for name, key in PER_QUESTION_KEY.items():
        values = result["per_question"][key]
        result[f"{name}_ci"] = bootstrap_ci(values, n_resamples, confidence, seed) if len(values) >= MIN_CI_QUESTIONS else None
    return result


MIN_CI_QUESTIONS = 2  # a bootstrap interval needs at least two per-question values


def with_interval(m: dict[str, Any], key: str) -> str:
    """"0.757 [0.719, 0.797]": a metric and its 95% interval (the value alone when there is none)."""
    ci = m.get(f"{key}_ci")
    return f"{m[key]:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
