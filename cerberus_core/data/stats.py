"""Counts of a dataset, for `inspect-data`: questions, pairs, positives and what each filter keeps."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .dataset import FILTERS, SPLITS, AS2Dataset
from .registry import DATASETS, _download_if_absent, _locate, _not_found, data_roots, load_as2


# --------------------------------------------------------------------------- stats
def dataset_stats(ds: AS2Dataset) -> dict:
    """Counts for inspect-data, including what each filter policy would keep."""
    n_pairs = ds.n_pairs
    return {
        "name": ds.name, "split": ds.split, "source": ds.source, "filter": ds.filter,
        "questions": len(ds), "pairs": n_pairs, "positives": ds.n_positives,
        "no_positive": sum(not q.has_positive for q in ds),
        "all_positive": sum(q.has_positive and not q.has_negative for q in ds),
        "mean_candidates": n_pairs / len(ds) if len(ds) else 0.0,
        "positive_rate": ds.n_positives / n_pairs if n_pairs else 0.0,
        "by_filter": {
            f: {"questions": sum(map(pred, ds)),
                "pairs": sum(len(q.candidates) for q in ds if pred(q))}
            for f, pred in FILTERS.items()
        },
    }


def format_stats(stats: dict | Sequence[dict]) -> str:
    """A plain-text table, one row per split."""
    rows = [stats] if isinstance(stats, dict) else list(stats)
    head = ["split", "questions", "pairs", "positives", "cand/q", "pos.rate",
            "no-pos q", "all-pos q", *(f"{f} q/pairs" for f in FILTERS)]
    table = [head] + [
        [s["split"] or "-", str(s["questions"]), str(s["pairs"]), str(s["positives"]),
         f"{s['mean_candidates']:.2f}", f"{s['positive_rate']:.3f}", str(s["no_positive"]),
         str(s["all_positive"]),
         *(f"{s['by_filter'][f]['questions']}/{s['by_filter'][f]['pairs']}" for f in FILTERS)]
        for s in rows
    ]
    widths = [max(len(r[j]) for r in table) for j in range(len(head))]
    lines = [f"{rows[0]['name']} (filter as loaded: {rows[0]['filter']})"]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in table]
    lines += [f"source {s['split'] or '-'}: {s['source']}" for s in rows]
    return "\n".join(lines)


def inspect(name_or_path: str, split: str | None = None,
            data_root: str | Path | None = None) -> str:
    """The inspect-data report: unfiltered counts (every split of a registered name by default)."""
    if name_or_path in DATASETS and split is None:
        _download_if_absent(name_or_path, data_root)  # once, not once per split
        stats, missing = [], []
        for s in SPLITS:
            if _locate(name_or_path, s, data_roots(data_root)) is None:
                missing.append(s)
            else:
                stats.append(dataset_stats(load_as2(name_or_path, s, "none", data_root)))
        if not stats:
            raise _not_found(name_or_path, SPLITS[0], data_roots(data_root))
        note = f"\nnot found: {', '.join(missing)}" if missing else ""
        return format_stats(stats) + note
    return format_stats(dataset_stats(load_as2(name_or_path, split, "none", data_root)))
