"""The in-memory form of AS2 data: a question with its candidates, a dataset of questions, and the
filter policies (which questions count) as predicates on a question."""
from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .filters import RULES

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Question:
    """One question with its candidates; labels[i] is 1 when candidates[i] answers it."""

    qid: str
    text: str
    candidates: tuple[str, ...]
    labels: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.candidates) != len(self.labels):
            raise ValueError(f"question {self.qid!r}: {len(self.candidates)} candidates "
                             f"but {len(self.labels)} labels")

    @property
    def n_positive(self) -> int:
        return sum(self.labels)

    @property
    def has_positive(self) -> bool:
        return self.n_positive > 0

    @property
    def has_negative(self) -> bool:
        return self.n_positive < len(self.labels)


# Which questions count: the rules of filters.RULES as predicates on one question, loosest first
# (the order of the stats columns), so a policy is a name.
FILTERS: dict[str, Callable[[Question], bool]] = {
    name: (lambda q, keeps=keeps: bool(keeps(q.n_positive, len(q.labels))))
    for name, keeps in reversed(RULES.items())
}


def check_filter(name: str) -> str:
    """Return `name` if it is a known filter policy, else raise naming the valid ones."""
    if name not in FILTERS:
        raise InputError(None, f"unknown filter {name!r}; valid filters: {', '.join(FILTERS)}")
    return name


@dataclass
class AS2Dataset:
    """Questions in source order; pair-level views are flattened in the same order."""

    name: str
    split: str | None
    questions: list[Question]
    source: str
    filter: str = "none"

    def __len__(self) -> int:
        return len(self.questions)

    def __iter__(self) -> Iterator[Question]:
        return iter(self.questions)

    def __getitem__(self, i: int) -> Question:
        return self.questions[i]

    @property
    def n_pairs(self) -> int:
        return sum(len(q.candidates) for q in self.questions)

    @property
    def n_positives(self) -> int:
        return sum(q.n_positive for q in self.questions)

    def pairs(self) -> list[tuple[str, str]]:
        """(question, candidate) texts, the model's input order."""
        return [(q.text, c) for q in self.questions for c in q.candidates]

    def keys(self) -> list[tuple[str, int]]:
        """(qid, candidate index) per pair: the stable address of each candidate."""
        return [(q.qid, i) for q in self.questions for i in range(len(q.candidates))]

    def pair_arrays(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(qids, candidate indices, labels) per pair, ready for metrics."""
        qids = [q.qid for q in self.questions for _ in q.candidates]
        idx = np.array([i for _, i in self.keys()], dtype=np.int64)
        labels = np.array([y for q in self.questions for y in q.labels], dtype=np.int64)
        return qids, idx, labels

    def fingerprint(self) -> str:
        """sha256 of the content (qids, texts, labels, in order), to detect stale caches."""
        h = hashlib.sha256()
        for q in self.questions:
            h.update(json.dumps([q.qid, q.text, q.candidates, q.labels]).encode("utf-8"))
            h.update(b"\n")
        return h.hexdigest()

    def subset(self, n_questions: int, seed: int) -> AS2Dataset:
        """A deterministic random subset of questions (kept in source order), for quick runs."""
        if n_questions < 1:
            raise ValueError(f"n_questions must be >= 1, got {n_questions}")
        n = min(n_questions, len(self.questions))
        keep = sorted(random.Random(seed).sample(range(len(self.questions)), n))
        return AS2Dataset(self.name, self.split, [self.questions[i] for i in keep],
                          self.source, self.filter)
