"""Which questions count: each question filter as one rule, and the default filter of a split.

The data loader applies a rule to one question, the metrics to arrays of questions. Nothing
here imports numpy, so the CLI can offer the names without loading it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

# name -> keep, from a question's number of positives and number of candidates (ints, or numpy
# arrays elementwise); strictest first
RULES: dict[str, Callable[[Any, Any], Any]] = {
    "clean": lambda n_pos, n_cand: (n_pos > 0) & (n_pos < n_cand),  # a positive and a negative
    "answerable": lambda n_pos, n_cand: n_pos > 0,
    "none": lambda n_pos, n_cand: n_pos >= 0,  # every question
}


def default_filter(split: str | None) -> str:
    """'clean' for dev/test (the CERBERUS authors' convention), 'none' for train and plain files."""
    return "clean" if split in ("dev", "test") else "none"
