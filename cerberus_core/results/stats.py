"""A difference between two systems measured at several training seeds on one test set, tested
with both sources of variance: the seeds (training) and the questions (the test set).

The design is crossed, not nested: every seed is scored on the same questions. Per seed s and
question q, the difference d[s, q] = mu + a_s + b_q + e_sq, with a_s the seed's training effect, b_q
the question's and e_sq their interaction, all random. The reported difference is the grand mean;
its variance is

    var(mean) = var_a / S + var_b / Q + var_e / (S Q),

estimated without bias from the two-way mean squares (Clark 1973's "language-as-fixed-effect"
problem, with the seed as the subject and the question as the item):

    V = (MS_seed + MS_question - MS_residual) / (S Q)
      = var(per-seed differences) / S  +  [the questions' part, truncated at 0].

The question part comes either from the per-question differences (MAP: `crossed_from_matrix`) or,
for a statistic that is not a mean over questions (the specialization S), from bootstrap resamples
of the questions shared by all seeds (`crossed_from_bootstrap`): the variance of the seed-averaged
resampled difference is MS_question / (S Q), and the mean over seeds of each seed's resampled
variance is (MS_question + (S - 1) MS_residual) / (S Q).

The t statistic mean / sqrt(V) is referred to a t distribution with S - 1 degrees of freedom, and
the 95% interval is mean +- t(0.975, S - 1) sqrt(V). When the seeds carry the variance this is the
paired t test over the per-seed differences, which is exact for normal seed effects; when the
questions carry it, it is conservative. Since V >= var(per-seed differences) / S, its p is never
below that paired t test's (`p_seeds_only`). The Welch-Satterthwaite df of V is larger and would be
the textbook choice, but with 3 seeds the seed variance has 2 df, and when it comes out small by
chance the Satterthwaite df grows with it: in simulations of this design under the null it rejected
too often, and most in the tail, where a Holm correction over 7-14 tests works
(`tests/test_analysis.py` shows it). It is reported as `df_satterthwaite`, never used.

Why not a resampling test over seeds: with 3 seeds a sign-flip test has a two-sided floor of 2/8
and with 5 of 2/32, so it can never reject at 0.05; a bootstrap over 3 seeds has 10 distinct
resamples, underestimates the variance by (S - 1) / S, and calls any three same-signed per-seed
differences significant however far apart they are. A bootstrap over seeds then over questions
within each seed treats the questions as nested in seeds; here they are the same questions, and
resampling them apart per seed shrinks the question variance S-fold. The t test's price is its
assumption: per-seed differences roughly normal, which 3-5 seeds cannot check. Its p is not a
resampling p, so it has no floor.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

METHOD = ("crossed seeds x questions t test: variance of the mean from the per-seed differences plus the "
          "questions' part (two-way mean squares), t on n_seeds - 1 df")


def crossed_from_matrix(diffs: np.ndarray, confidence: float = 0.95) -> dict[str, Any]:
    """The test on per-question differences d[seed, question] (a mean over questions per seed: MAP)."""
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 2 or d.shape[0] < 2 or d.shape[1] < 2:
        raise ValueError(f"need a (seeds, questions) matrix with at least 2 of each, got shape {d.shape}")
    n_seeds, n_questions = d.shape
    per_question = d.mean(axis=0)
    question = per_question.var(ddof=1) / n_questions  # MS_question / (S Q)
    each = d.var(axis=1, ddof=1).mean() / n_questions  # (MS_question + (S - 1) MS_residual) / (S Q)
    return _crossed(d.mean(axis=1), question, each, n_questions, confidence)


def crossed_from_bootstrap(per_seed: np.ndarray, resampled: np.ndarray, n_questions: int,
                           confidence: float = 0.95) -> dict[str, Any]:
    """The test on a per-seed statistic (`per_seed`, one per seed, on all questions) and its values on
    bootstrap resamples of the questions (`resampled`, seeds x resamples; resample j draws the same
    questions at every seed)."""
    per_seed, resampled = np.asarray(per_seed, dtype=float), np.asarray(resampled, dtype=float)
    if per_seed.ndim != 1 or len(per_seed) < 2 or resampled.shape[0] != len(per_seed) or resampled.shape[1] < 2:
        raise ValueError(f"need >= 2 seeds and >= 2 resamples each, got {per_seed.shape} and {resampled.shape}")
    question = resampled.mean(axis=0).var(ddof=1)
    each = resampled.var(axis=1, ddof=1).mean()
    return _crossed(per_seed, question, each, n_questions, confidence)


def _crossed(per_seed: np.ndarray, question: float, each: float, n_questions: int,
             confidence: float) -> dict[str, Any]:
    """t test of the mean of `per_seed` with V = var(per_seed) / S + max(0, question - residual),
    residual = (each - question) / (S - 1) = MS_residual / (S Q), on S - 1 degrees of freedom. The
    Welch-Satterthwaite df over the three mean squares is reported (`df_satterthwaite`) but not used:
    see the module docstring."""
    n_seeds = len(per_seed)
    delta = float(per_seed.mean())
    seeds = float(per_seed.var(ddof=1) / n_seeds)  # MS_seed / (S Q)
    residual = max(0.0, (each - question) / (n_seeds - 1))
    question_part = max(0.0, question - residual)
    variance = seeds + question_part
    denominator = seeds ** 2 / (n_seeds - 1) + (question ** 2 / (n_questions - 1)
                                                + residual ** 2 / ((n_seeds - 1) * (n_questions - 1))
                                                if question_part > 0 else 0.0)
    satterthwaite = variance ** 2 / denominator if denominator > 0 else float("inf")
    df = n_seeds - 1
    se = float(np.sqrt(variance))
    if se == 0:  # every seed and question agrees exactly: no variance to test against
        p, half = (1.0 if delta == 0 else 0.0), 0.0
    else:
        p = float(2 * stats.t.sf(abs(delta) / se, df))
        half = float(stats.t.ppf(0.5 + confidence / 2, df) * se)
    return {"method": METHOD, "delta": delta, "ci95": [delta - half, delta + half], "p": p, "df": df,
            "df_satterthwaite": float(satterthwaite), "se": se, "var_seeds": seeds,
            "var_questions": float(question_part), "p_seeds_only": seeds_only_p(per_seed),
            "per_seed_delta": [float(x) for x in per_seed], "n_seeds": n_seeds}


def seeds_only_p(per_seed: np.ndarray) -> float:
    """The paired t test over the per-seed differences alone (df = S - 1): training variance only,
    the questions taken as fixed. Reported beside the crossed test, never used for a verdict."""
    per_seed = np.asarray(per_seed, dtype=float)
    sd = per_seed.std(ddof=1)
    if sd == 0:
        return 1.0 if per_seed.mean() == 0 else 0.0
    return float(2 * stats.t.sf(abs(per_seed.mean()) / (sd / np.sqrt(len(per_seed))), len(per_seed) - 1))
