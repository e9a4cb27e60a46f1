"""Analysis of saved scores: head diversity, head-teacher agreement, ensemble gain, cost-quality front.

Everything here is a pure function of arrays or `ScoreTable`s (artifacts.py reads them from a
results folder), so the paper figures and the notebooks compute the same numbers from the same
artifacts. Nothing imports torch: a run's outputs are read as data, never by loading a model.

A score matrix has one row per (question, candidate) pair and one column per scorer (a head, a
teacher). Margins (logit differences) become probabilities with `to_probability`.
"""
from __future__ import annotations

import math

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special, stats

from .metrics import PER_QUESTION_KEY, _group, _lookup, metrics_with_ci, paired_test, ranking_metrics
from .scores import ScoreTable

METRICS = tuple(PER_QUESTION_KEY)  # ("p@1", "map", "mrr")
MAIN_SCORES = ("score", "pooled")  # the column that ranks: a teacher's margin, a student's pooled probability


# --------------------------------------------------------------------------- score matrices
def _rows_in(table: ScoreTable, reference: ScoreTable) -> np.ndarray:
    """Row numbers of `table` in `reference`'s pair order; both must hold the same pairs."""
    index = table.key_index()
    if len(index) != len(reference.qids):
        raise ValueError(f"tables hold different pairs: {len(index)} vs {len(reference.qids)}")
    try:
        return np.array([index[(q, int(c))] for q, c in zip(reference.qids, reference.cand_idx)], dtype=int)
    except KeyError as err:
        raise ValueError(f"table lacks pair {err.args[0]} of the reference table") from None


def score_matrix(
    tables_or_table: ScoreTable | Mapping[str, ScoreTable],
    columns: str | Sequence[str] | None = None,
    reference: ScoreTable | None = None,
) -> tuple[list[str], np.ndarray]:
    """Names and an (n_pairs, m) matrix, rows in `reference`'s (qid, cand_idx) order.

    One table: `columns` lists the columns to take (default: its heads, else all columns).
    A mapping name -> table: one column per table, named after it, taken from column `columns`
    (default: the table's main score, "score" for a teacher, "pooled" for a student).
    `reference` defaults to the (first) table, so its qids/labels describe the rows.
    """
    if isinstance(tables_or_table, ScoreTable):
        table = tables_or_table
        names = list(columns) if columns is not None else (table.head_columns() or list(table.columns))
        rows = _rows_in(table, reference) if reference is not None else slice(None)
        return names, np.column_stack([table.columns[n][rows] for n in names])
    if not tables_or_table:
        raise ValueError("no score tables given")
    reference = reference if reference is not None else next(iter(tables_or_table.values()))
    names, cols = [], []
    for name, table in tables_or_table.items():
        column = columns or next((c for c in MAIN_SCORES if c in table.columns), None)
        if column is None:
            raise ValueError(f"table {name!r} has columns {list(table.columns)}; say which to use")
        cols.append(table.columns[column][_rows_in(table, reference)])
        names.append(name)
    return names, np.column_stack(cols)


# --------------------------------------------------------------------------- correlation, top-1
CORRELATIONS: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
    "pearson": stats.pearsonr,
    "spearman": stats.spearmanr,
    "kendall": stats.kendalltau,
}


def _correlate(a: np.ndarray, b: np.ndarray, method: str) -> float:
    return float(_lookup(CORRELATIONS, method, "correlation")(a, b)[0])


def pairwise_correlation(matrix: np.ndarray, method: str = "pearson") -> np.ndarray:
    """(m, m) correlation between the columns; 1 on the diagonal."""
    matrix = np.asarray(matrix, dtype=float)
    m = matrix.shape[1]
    out = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            out[i, j] = out[j, i] = _correlate(matrix[:, i], matrix[:, j], method)
    return out


def top1(qids: Sequence | np.ndarray, scores: np.ndarray, cand_idx: Sequence | np.ndarray | None = None) -> np.ndarray:
    """Row number of each question's top-scored pair (questions in order of first appearance).

    Ties go to the lower candidate index (order of appearance when `cand_idx` is None), as
    `metrics.ranking_metrics` ranks them under ties="index".
    """
    group, _ = _group(np.asarray(qids))
    cand = np.arange(len(group)) if cand_idx is None else np.asarray(cand_idx)
    order = np.lexsort((cand, -np.asarray(scores, dtype=float), group))
    first = np.r_[True, np.diff(group[order]) != 0]
    return order[first]


def top1_disagreement(qids: Sequence | np.ndarray, matrix: np.ndarray,
                      cand_idx: Sequence | np.ndarray | None = None) -> np.ndarray:
    """(m, m) fraction of questions whose top-1 candidate differs between columns i and j."""
    matrix = np.asarray(matrix, dtype=float)
    tops = np.stack([top1(qids, matrix[:, j], cand_idx) for j in range(matrix.shape[1])])
    return (tops[:, None, :] != tops[None, :, :]).mean(axis=-1)


# --------------------------------------------------------------------------- probabilities, diversity
def to_probability(margins: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Positive-class probability sigmoid(m / T) of a logit margin m = z1 - z0 (softmax over 2 classes)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return special.expit(np.asarray(margins, dtype=float) / temperature)


def teacher_ensemble(tables: Mapping[str, ScoreTable]) -> tuple[ScoreTable, np.ndarray]:
    """The teachers' mean positive probability per pair (their margins joined by key), with the
    table whose qids, candidates and labels its rows follow (the first)."""
    _, margins = score_matrix(tables, "score")
    return next(iter(tables.values())), to_probability(margins).mean(axis=1)


def candidate_distribution(margins: np.ndarray, temperature: float = 1.0,
                           qids: Sequence | np.ndarray | None = None) -> np.ndarray:
    """Softmax of m / T over each question's candidates (all margins one question if `qids` is None).

    The listwise view of the same scores: how a teacher spreads its belief over the candidates.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(margins, dtype=float) / temperature
    if qids is None:
        return special.softmax(z)
    group, _ = _group(np.asarray(qids))
    out = np.empty_like(z)
    for g in np.unique(group):
        out[group == g] = special.softmax(z[group == g])
    return out


def ambiguity(probabilities: np.ndarray) -> float:
    """Krogh & Vedelsby ensemble ambiguity: mean over pairs of the members' variance around their mean.

    It is what averaging gains over the average member (squared error of the mean prediction =
    mean member error - ambiguity). Computed on deviations from the first column, which leaves the
    value unchanged but makes it exactly 0.0 when all columns are identical (heads at step 0 are, up to
    the rounding of the batched heads at 2 threads: notebook 05).
    """
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"expected an (n_pairs, members) matrix, got shape {p.shape}")
    d = p - p[:, :1]
    return float(np.mean((d - d.mean(axis=1, keepdims=True)) ** 2))


def _mean_off_diagonal(matrix: np.ndarray) -> float:
    m = len(matrix)
    return float(matrix[~np.eye(m, dtype=bool)].mean()) if m > 1 else float("nan")


def diversity(qids: Sequence | np.ndarray, margins: np.ndarray, cand_idx: Sequence | np.ndarray | None = None,
              correlation: str = "pearson", temperature: float = 1.0) -> dict[str, float]:
    """Three views of how different the columns are: ambiguity, mean pairwise correlation, top-1 disagreement."""
    return {
        "ambiguity": ambiguity(to_probability(margins, temperature)),
        f"mean_{correlation}": _mean_off_diagonal(pairwise_correlation(margins, correlation)),
        "top1_disagreement": _mean_off_diagonal(top1_disagreement(qids, margins, cand_idx)),
    }


def diversity_over_steps(traces: Sequence[tuple[int, ScoreTable]], correlation: str = "pearson",
                         temperature: float = 1.0) -> list[dict[str, float]]:
    """`diversity` of the heads' dev margins at every evaluation: `traces` is (step, dev table)
    as `artifacts.read_traces` gives them (step 0 included)."""
    rows = []
    for step, table in traces:
        _, margins = score_matrix(table, table.head_columns())
        rows.append({"step": step, **diversity(table.qids, margins, table.cand_idx, correlation, temperature)})
    return rows


# --------------------------------------------------------------------------- heads vs teachers
def agreement_matrix(head_matrix: np.ndarray, teacher_matrix: np.ndarray, qids: Sequence | np.ndarray,
                     method: str = "pearson", cand_idx: Sequence | np.ndarray | None = None) -> np.ndarray:
    """(k, t) agreement of head i with teacher j: a correlation (see CORRELATIONS) or "top1",
    the fraction of questions where both put the same candidate first."""
    heads, teachers = np.asarray(head_matrix, dtype=float), np.asarray(teacher_matrix, dtype=float)
    if method == "top1":
        h = np.stack([top1(qids, c, cand_idx) for c in heads.T])
        t = np.stack([top1(qids, c, cand_idx) for c in teachers.T])
        return (h[:, None, :] == t[None, :, :]).mean(axis=-1)
    return np.array([[_correlate(hc, tc, method) for tc in teachers.T] for hc in heads.T])


def own_teacher_is_closest(matrix: np.ndarray) -> list[bool]:
    """For an agreement matrix (head i taught by teacher i): does head i agree most with teacher i?
    A tie for the maximum counts as closest."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape[0] > matrix.shape[1]:
        raise ValueError(f"{matrix.shape[0]} heads but only {matrix.shape[1]} teachers")
    return [bool(matrix[i, i] >= row.max()) for i, row in enumerate(matrix)]


def own_head_is_closest(matrix: np.ndarray) -> list[bool]:
    """For an agreement matrix (head i taught by teacher i): is teacher j's own head strictly the
    head that agrees most with teacher j? The column reading of `own_teacher_is_closest`: it is blind
    to a teacher every head sits near (the one that shares the student's pretrained encoder). Strict,
    unlike the row reading, because heads that learned the same thing tie on every column."""
    m = np.asarray(matrix, dtype=float)
    if m.shape[0] > m.shape[1]:
        raise ValueError(f"{m.shape[0]} heads but only {m.shape[1]} teachers")
    return [bool(m[j, j] > np.delete(m[:, j], j).max(initial=-np.inf)) for j in range(m.shape[0])]


def relabeling_p(matrices: Sequence[np.ndarray]) -> float:
    """The chance that every teacher's own head is the head closest to it (`own_head_is_closest`),
    in every agreement matrix (one per seed; k heads, at least k teachers), when the heads' labels
    are shuffled independently per seed: exact, all k! relabelings of each matrix enumerated; 1.0
    for no matrix. Heads that start as copies differ only through their teachers, so under the null
    that the teacher does not steer its head their labels are exchangeable."""
    p = 1.0
    for matrix in matrices:
        m = np.asarray(matrix, dtype=float)
        perms = list(itertools.permutations(range(m.shape[0])))
        p *= sum(all(own_head_is_closest(m[list(perm)])) for perm in perms) / len(perms)
    return p


def specialization(agreement: np.ndarray) -> float:
    """S = mean over heads i of [r(head i, teacher i) - mean over j != i of r(head i, teacher j)],
    from a (k, k) agreement matrix, head i taught by teacher i. S > 0: heads follow their own
    teachers more than the others; about 0 for heads that learned the same thing."""
    a = np.asarray(agreement, dtype=float)
    k = a.shape[0]
    if a.shape != (k, k) or k < 2:
        raise ValueError(f"specialization needs a square agreement matrix of 2 or more heads, got {a.shape}")
    others = (a.sum(axis=1) - np.diag(a)) / (k - 1)
    return float(np.mean(np.diag(a) - others))


def head_diversity(qids: Sequence | np.ndarray, cand_idx: Sequence | np.ndarray, head_matrix: np.ndarray,
                   teacher_matrix: np.ndarray | None = None) -> dict[str, float]:
    """The numbers a run reports about its heads (Pearson on logit margins): mean head-head r,
    mean top-1 disagreement between heads and, given the teachers in head order, the
    specialization S and the teachers' own head-head r and top-1 disagreement."""
    heads = np.asarray(head_matrix, dtype=float)
    out = {"head_head_r": _mean_off_diagonal(pairwise_correlation(heads)),
           "head_top1_disagreement": _mean_off_diagonal(top1_disagreement(qids, heads, cand_idx))}
    if teacher_matrix is not None:
        teachers = np.asarray(teacher_matrix, dtype=float)
        out["specialization"] = specialization(agreement_matrix(heads, teachers, qids))
        out["teacher_teacher_r"] = _mean_off_diagonal(pairwise_correlation(teachers))
        out["teacher_top1_disagreement"] = _mean_off_diagonal(top1_disagreement(qids, teachers, cand_idx))
    return out


def run_head_diversity(table: ScoreTable, teacher_tables: Sequence[ScoreTable] = ()) -> dict[str, float]:
    """`head_diversity` of a student's score table; with one teacher table per head (head i's
    teacher first, in head order), S too. The teachers are aligned to the student's pairs."""
    _, heads = score_matrix(table, table.head_columns())
    teachers = None
    if teacher_tables:
        named = {f"teacher{j}": t for j, t in enumerate(teacher_tables)}
        teachers = score_matrix(named, "score", reference=table)[1]
    return head_diversity(table.qids, table.cand_idx, heads, teachers)


# --------------------------------------------------------------------------- quality
def mean_sd(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample sd (ddof 1; nan for one value) over seeds, and how many there were."""
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
            "n": len(values)}


def fmt(value: Any, digits: int = 4) -> str:
    """A number as a table shows it: fixed decimals, never "-0.0000" (a value that rounds to zero is
    "0.0000"), "–" for a missing or undefined value (never NaN)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def fmt_signed(value: Any, digits: int = 4) -> str:
    """fmt with a sign (+0.0123, -0.0045); zero is "0.0000"."""
    text = fmt(value, digits)
    return text if text in ("–",) or text.startswith("-") or float(text) == 0 else f"+{text}"


def format_mean_sd(values: Sequence[float], digits: int) -> str:
    """"mean ± sd" over seeds; the mean alone for one seed, which has no sd."""
    found = mean_sd(values)
    return f"{found['mean']:.{digits}f}" + (f" ± {found['sd']:.{digits}f}" if found["n"] > 1 else "")


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in m.items() if k != "per_question"}


def ensemble_gain(qids: Sequence | np.ndarray, labels: Sequence | np.ndarray, teacher_matrix: np.ndarray,
                  names: Sequence[str] | None = None, policy: str = "none") -> dict[str, Any]:
    """Metrics of the mean-probability ensemble of the columns (margins) vs each member, and the
    gain of the ensemble over the best member per metric (positive: averaging helps)."""
    matrix = np.asarray(teacher_matrix, dtype=float)
    names = list(names) if names is not None else [f"member{j}" for j in range(matrix.shape[1])]
    members = {n: _summary(ranking_metrics(qids, labels, matrix[:, j], policy=policy)) for j, n in enumerate(names)}
    ensemble = _summary(ranking_metrics(qids, labels, to_probability(matrix).mean(axis=1), policy=policy))
    gain = {k: ensemble[k] - max(m[k] for m in members.values()) for k in METRICS}
    return {"members": members, "ensemble": ensemble, "gain_over_best": gain}


def metrics_frame(columns: Mapping[str, np.ndarray], qids: Sequence | np.ndarray, labels: Sequence | np.ndarray,
                  policy: str = "none", n_resamples: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """One row per named score column: name, p@1, map, mrr and their 95% bootstrap intervals."""
    rows = []
    for name, scores in columns.items():
        m = metrics_with_ci(qids, labels, scores, policy=policy, n_resamples=n_resamples, seed=seed)
        rows.append({"name": name, **{k: m[k] for k in METRICS}, **{f"{k}_ci": m[f"{k}_ci"] for k in METRICS},
                     "n_questions": m["n_questions"]})
    return rows


def paired_against(columns: Mapping[str, np.ndarray], qids: Sequence | np.ndarray, labels: Sequence | np.ndarray,
                   reference: str, metric: str = "map", method: str = "permutation", policy: str = "none",
                   n_resamples: int = 10000, seed: int = 0) -> dict[str, dict[str, float]]:
    """Paired test of every other column against `reference` on a per-question metric:
    name -> {"diff": mean(name - reference), "p_value"}."""
    key = _lookup(PER_QUESTION_KEY, metric, "metric")
    if reference not in columns:
        raise ValueError(f"reference {reference!r} is not one of {list(columns)}")
    per_q = {n: ranking_metrics(qids, labels, s, policy=policy)["per_question"][key] for n, s in columns.items()}
    return {n: paired_test(v, per_q[reference], method, n_resamples, seed)
            for n, v in per_q.items() if n != reference}


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, quality) points no other point beats (cost <=, quality >=, one strictly),
    in order of increasing cost."""
    pts = [(float(c), float(q)) for c, q in points]
    front = [i for i, (c, q) in enumerate(pts)
             if not any(c2 <= c and q2 >= q and (c2 < c or q2 > q) for c2, q2 in pts)]
    return sorted(front, key=lambda i: pts[i])


# --------------------------------------------------------------------------- paired tests in words
def describe_paired(test: Mapping[str, float], alpha: float, reference: str = "CERBERUS") -> str:
    """A `paired_against` result (diff = other - reference) in words, from the reference's side.

    Notebooks print this, so the sign convention is stated once rather than in every cell.
    """
    diff, p = test["diff"], test["p_value"]
    side = "tie" if diff == 0 else f"{reference} better" if diff < 0 else f"{reference} worse"
    return f"{side}, {'significant' if p < alpha else 'not significant'} (diff {diff:+.3f}, p = {p:.3f})"


# --------------------------------------------------------------------------- benchmark rows
TEACHER_ENSEMBLE = "teacher ensemble"


def latency_by_model(rows: Sequence[Mapping[str, Any]], stands_for: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Median latency (ms) of every model that `stands_for` lists (row name -> the models its timing covers).

    A model takes its own row's latency, else its group's row, else a row of any model in its group:
    models of one architecture cost the same, so a bench.json that timed one of them covers all.
    """
    by_name = {r["name"]: r["latency_ms"] for r in rows}
    latency = {}
    for label, members in stands_for.items():
        for model in members:
            source = next((n for n in (model, label, *members) if n in by_name), None)
            if source is not None:
                latency[model] = by_name[source]
    return latency
