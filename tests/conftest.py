"""Shared fixtures: tiny random encoders of every supported family, with a real tokenizer class."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModel, BertTokenizerFast

REPO = Path(__file__).resolve().parents[1]
# The real datasets: $CERBERUS_DATA, else (as .ci/run does) shared/data beside the clone; set here
# for the whole session, so the library and every subprocess find them by the library's own rule.
if not os.environ.get("CERBERUS_DATA") and (REPO.parent / "shared" / "data").is_dir():
    os.environ["CERBERUS_DATA"] = str(REPO.parent / "shared" / "data")
DATA = Path(os.environ["CERBERUS_DATA"]) if os.environ.get("CERBERUS_DATA") else None
HAS_WIKIQA = DATA is not None and ((DATA / "wikiqa").is_dir() or (DATA / "wikiqa_tsv").is_dir())
needs_wikiqa = pytest.mark.skipif(not HAS_WIKIQA, reason="WikiQA not found: set CERBERUS_DATA to the folder "
                                                         "holding wikiqa/ (or wikiqa_tsv/)")

WORDS = "what who when where is the a of in capital city france paris river long nile km born".split()


def tiny_backbone(model_type: str, layers: int = 4, seed: int = 0):
    """A randomly initialised encoder small enough for unit tests (no hub needed)."""
    kw = dict(hidden_size=32, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=64,
              vocab_size=len(WORDS) + 5, max_position_embeddings=64, hidden_dropout_prob=0.0,
              attention_probs_dropout_prob=0.0)
    if model_type == "electra":
        kw["embedding_size"] = 16  # exercises ELECTRA's embedding projection
    torch.manual_seed(seed)
    return AutoModel.from_config(AutoConfig.for_model(model_type, **kw)).eval()


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory) -> BertTokenizerFast:
    vocab = tmp_path_factory.mktemp("tok") / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return BertTokenizerFast(vocab=str(vocab), do_lower_case=True)  # `vocab`: transformers 5 ignores vocab_file


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Tests share one model cache per session unless the caller pins CERBERUS_CACHE."""
    # no test may reach the real WikiQA archive: a missing dataset must fail fast, not download
    os.environ.setdefault("CERBERUS_WIKIQA_URL", "http://127.0.0.1:9/WikiQACorpus.zip")
    if "CERBERUS_CACHE" not in os.environ:
        os.environ["CERBERUS_CACHE"] = str(REPO / ".cache" / "cerberus")
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def synthetic_dataset_meta(folder: Path, qids, cand_idx, labels) -> dict:
    """Meta for a synthetic score table: saved tables hold no labels, so load() re-joins them from
    the dataset the meta names; this writes one (a generic TSV, folder/data.tsv) with exactly
    these pairs and labels and returns its ScoreTable meta (dataset, split, filter, fingerprint)."""
    from cerberus_core.data import AS2Dataset, Question, load_as2, write_as2
    from cerberus_core.results.scores import dataset_meta

    by_qid: dict[str, dict[int, int]] = {}
    for q, c, y in zip(qids, cand_idx, labels):
        by_qid.setdefault(str(q), {})[int(c)] = int(y)
    questions = [Question(q, f"question {q}", tuple(f"candidate {c}" for c in sorted(ys)),
                          tuple(ys[c] for c in sorted(ys))) for q, ys in by_qid.items()]
    path = write_as2(AS2Dataset("synthetic", None, questions, "memory"), Path(folder) / "data.tsv")
    return dataset_meta(load_as2(str(path)))


def numbers(tree, prefix=""):
    """Flatten a metrics.json into {path: value}, so two runs compare key by key."""
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in numbers(value, f"{prefix}/{key}").items()}
    if isinstance(tree, list):
        return {k: v for i, value in enumerate(tree) for k, v in numbers(value, f"{prefix}[{i}]").items()}
    return {prefix: tree}
