"""How to combine the heads at inference, chosen on dev and fixed before the test is read.

The model's built-in pooler (mean of the heads' probabilities) is one choice among several a user
could make after training, from the per-head margins a score table already holds: the mean of the
margins, one head alone (say, the head taught by the strongest teacher), or a weighted mean of the
probabilities. `choose_pooler` scores each candidate on dev and keeps the best, preferring the
simpler rule on ties (candidates are tried in order of simplicity); `apply_pooler` then scores the
test split with that rule alone, so test never takes part in the choice.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .analysis import to_probability
from .metrics import ranking_metrics
from .scores import ScoreTable

WEIGHT_STEP = 0.25  # coarse on purpose: a fine grid would fit dev's 100-odd questions, not the heads


@dataclass(frozen=True)
class Pooler:
    """A rule from a question's head margins (n_pairs x k) to one score per pair."""

    kind: str  # "mean_prob", "mean_logit", "head" or "weighted"
    head: int | None = None  # for "head"
    weights: tuple[float, ...] | None = None  # for "weighted": one per head, summing to 1

    @property
    def name(self) -> str:
        if self.kind == "head":
            return f"head{self.head}"
        if self.kind == "weighted":
            return "weighted(" + ", ".join(f"{w:g}" for w in self.weights) + ")"
        return self.kind

    def __call__(self, margins: np.ndarray) -> np.ndarray:
        if self.kind == "mean_prob":
            return to_probability(margins).mean(axis=1)
        if self.kind == "mean_logit":
            return margins.mean(axis=1)
        if self.kind == "head":
            return margins[:, self.head]
        return to_probability(margins) @ np.asarray(self.weights)


def candidates(k: int, step: float = WEIGHT_STEP) -> list[Pooler]:
    """Every rule tried, simplest first: the two means, each head, then the weight grid (means excluded)."""
    found = [Pooler("mean_prob"), Pooler("mean_logit"), *(Pooler("head", head=i) for i in range(k))]
    ticks = round(1 / step)
    for combo in itertools.product(range(ticks + 1), repeat=k):
        if sum(combo) == ticks and max(combo) < ticks and len(set(combo)) > 1:  # not one head, not the mean
            found.append(Pooler("weighted", weights=tuple(c / ticks for c in combo)))
    return found


def head_margins(table: ScoreTable) -> np.ndarray:
    heads = table.head_columns()
    if not heads:
        raise ValueError(f"{table.path or 'score table'}: no head columns (head0, head1, ...) to pool")
    return np.column_stack([table.columns[h] for h in heads])


def choose_pooler(dev: ScoreTable, metric: str = "map", policy: str = "clean") -> tuple[Pooler, dict[str, float]]:
    """The candidate with the highest dev `metric` (first in simplicity order on ties), and every candidate's value."""
    margins = head_margins(dev)
    values = {}
    best, best_value = None, -np.inf
    for pooler in candidates(margins.shape[1]):
        value = ranking_metrics(dev.qids, dev.labels, pooler(margins), policy=policy)[metric]
        values[pooler.name] = value
        if value > best_value + 1e-12:
            best, best_value = pooler, value
    return best, values


def apply_pooler(pooler: Pooler, table: ScoreTable, policy: str = "clean") -> dict[str, float]:
    """P@1, MAP and MRR of `table` (a split the choice did not see) pooled by `pooler`."""
    m = ranking_metrics(table.qids, table.labels, pooler(head_margins(table)), policy=policy)
    return {key: m[key] for key in ("p@1", "map", "mrr")}
