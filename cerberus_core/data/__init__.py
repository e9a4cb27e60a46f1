"""AS2 data: one in-memory form, readers for WikiQA / TREC-QA / users' own files, filters, stats.

Every candidate keeps a stable address (question id, candidate index): the index is its position
within its question in the source file. Filters drop whole questions only, so addresses survive
filtering and can key caches (teacher scores) across runs. Files may be gzipped.

The modules, in the order they build on each other: `filters` (which questions count),
`dataset` (Question, AS2Dataset), `readers` (one per file format), `download` (the official
WikiQA archive), `registry` (registered names and where data is found; `load_as2`), `stats`.
"""
from .dataset import FILTERS, SPLITS, AS2Dataset, Question, check_filter
from .download import WIKIQA_SHA256, WIKIQA_URL, download_root, download_wikiqa
from .readers import (READERS, detect_format, read_generic_tsv, read_jsonl, read_trecqa, read_wikiqa_official,
                      read_wikiqa_toks, read_wikiqa_tsv, text_qid, write_as2)
from .registry import DATASETS, data_roots, find_data, is_registered_source, load_as2
from .stats import dataset_stats, format_stats, inspect

__all__ = [
    "AS2Dataset", "DATASETS", "FILTERS", "READERS", "SPLITS", "WIKIQA_SHA256", "WIKIQA_URL", "Question",
    "check_filter", "data_roots", "dataset_stats", "detect_format", "download_root", "download_wikiqa", "find_data",
    "format_stats", "inspect", "is_registered_source", "load_as2", "read_generic_tsv", "read_jsonl", "read_trecqa",
    "read_wikiqa_official", "read_wikiqa_toks", "read_wikiqa_tsv", "text_qid", "write_as2",
]
