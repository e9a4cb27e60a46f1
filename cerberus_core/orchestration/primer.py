"""The distillation primer (notebook 01): a toy where soft targets meet hard labels, the KD loss as a
function of the margin, a question the teachers disagree on, and why CERBERUS has k heads.

The toy. A student too small to be a cross-encoder: one linear layer on frozen sentence features
(question and candidate embedded separately by the pretrained MiniLM-L3, features u*v, |u-v| and
their cosine), trained on the first n questions of a random order of WikiQA train, either on the
gold labels (alpha = 0: cross-entropy) or on a committed teacher's soft targets (alpha = 1: the
project's KD loss, `losses.kd_kl`, at temperature T), with the same optimiser, steps and seed. The
test MAP of both, at every n and seed, is the result; a paired comparison over seeds says how
reliably the soft targets win (or do not).

`toy_result()` is load-or-train: the committed `artifacts/primer/toy.json` when its key (the config,
the teacher table's and the data's fingerprints) matches, else a cached copy under
`.cache/primer/`, else it trains (about a minute on 2 idle CPU cores, most of it embedding the
sentences once). `python -m cerberus_core.orchestration.primer --write` retrains and rewrites the committed file.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..results import analysis as an
from ..results import artifacts
from ..atomic import write_text_atomic
from ..results.metrics import ranking_metrics
from ..results.scores import ScoreTable, file_fingerprint
from ..provenance import REPO

COMMITTED = REPO / "artifacts" / "primer" / "toy.json"
CACHE = REPO / ".cache" / "primer"
TARGETS = ("hard", "soft")  # gold labels (alpha 0) and the teacher's soft targets (alpha 1)

TOY = {
    "encoder": "minilm-l3",  # frozen: embeds questions and candidates, never trained
    "teacher_root": "artifacts/v2",  # the committed teacher tables (relative to the repository)
    "teacher": "mpnet-base",  # whose soft targets the student learns from
    "dataset": "wikiqa",
    "train_questions": [25, 50, 100, 200],  # the first n of a random order of train, per seed
    "seeds": [0, 1, 2, 3, 4],  # the question order and the student's initialisation
    "eval_split": "test",  # scored on its clean questions (one correct and one wrong candidate at least)
    "temperature": 2.0,
    "steps": 300,  # full-batch AdamW steps, the same for both targets
    "lr": 0.01,
    "weight_decay": 1e-4,
    "max_length": 64,  # tokens per sentence for the frozen encoder
}


# --------------------------------------------------------------------------- the toy
def toy_config(**changes: Any) -> dict[str, Any]:
    """TOY with `changes` (unknown keys refused)."""
    unknown = sorted(set(changes) - set(TOY))
    if unknown:
        raise ValueError(f"unknown toy settings {unknown}; known: {sorted(TOY)}")
    return {**TOY, **changes}


def teacher_table_path(config: Mapping[str, Any], split: str) -> Path:
    return artifacts.teacher_scores_dir(REPO / config["teacher_root"], config["teacher"]) / f"{split}.tsv"


def toy_key(config: Mapping[str, Any]) -> str:
    """What the toy's result depends on: its config, the teacher's train table and the data (train
    and the evaluation split). A change to any of them means training again."""
    from ..data import load_as2

    digest = hashlib.sha256(json.dumps(dict(config), sort_keys=True).encode())
    digest.update(file_fingerprint(teacher_table_path(config, "train")).encode())
    for split in ("train", config["eval_split"]):
        digest.update(load_as2(config["dataset"], split=split, filter="none").fingerprint().encode())
    return digest.hexdigest()[:16]


def _embed(texts: Sequence[str], encoder: str, max_length: int, batch_size: int = 128) -> dict[str, np.ndarray]:
    """Unit-length mean-pooled embeddings of distinct texts (sorted by length, so batches pad little)."""
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from ..model.zoo import resolve_model

    hf_logging.disable_progress_bar()
    folder = resolve_model(encoder)
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    unique = sorted(set(texts), key=len)
    out: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for i in range(0, len(unique), batch_size):
            chunk = unique[i:i + batch_size]
            batch = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            states = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)
            out.update(zip(chunk, pooled.numpy()))
    return out


def pair_features(questions: Sequence[Any], vectors: Mapping[str, np.ndarray]) -> np.ndarray:
    """(n_pairs, 2d + 1) features of each (question, candidate) pair, in question order: u*v, |u-v|, cosine."""
    u = np.stack([vectors[q.text] for q in questions for _ in q.candidates])
    v = np.stack([vectors[c] for q in questions for c in q.candidates])
    return np.hstack([u * v, np.abs(u - v), (u * v).sum(1, keepdims=True)]).astype(np.float32)


def question_order(n_questions: int, seed: int) -> np.ndarray:
    """The order in which seed `seed` takes the train questions: its first n are the training set at size n."""
    return np.random.default_rng(seed).permutation(n_questions)


def fit_linear(features: np.ndarray, target: np.ndarray, kind: str, temperature: float, seed: int,
               steps: int, lr: float, weight_decay: float) -> np.ndarray:
    """A linear scorer (weights, bias last) trained full-batch: `kind` "hard" fits gold labels
    (`target` 0/1) with cross-entropy, "soft" fits teacher margins (`target`) with `losses.kd_kl`
    at `temperature` (T² included), the student's logits being (0, margin) as in notebook 01."""
    import torch

    from ..training.losses import kd_kl

    if kind not in TARGETS:
        raise ValueError(f"kind must be one of {TARGETS}, got {kind!r}")
    torch.manual_seed(seed)
    x = torch.as_tensor(features, dtype=torch.float32)
    layer = torch.nn.Linear(x.shape[1], 1)
    optimiser = torch.optim.AdamW(layer.parameters(), lr=lr, weight_decay=weight_decay)
    y = torch.as_tensor(target)
    for _ in range(steps):
        margin = layer(x).squeeze(-1)
        logits = torch.stack([torch.zeros_like(margin), margin], dim=-1)
        loss = (kd_kl(logits, y.float(), temperature).mean() if kind == "soft"
                else torch.nn.functional.cross_entropy(logits, y.long()))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return np.append(layer.weight.detach().numpy()[0], layer.bias.detach().numpy())


def train_toy(config: Mapping[str, Any] | None = None, progress: bool = False) -> dict[str, Any]:
    """Train every (n, seed, target) of the toy; the result `toy_result` stores (rows of test metrics)."""
    from ..data import load_as2

    config = dict(config or TOY)
    start = time.perf_counter()
    train = load_as2(config["dataset"], split="train", filter="none")
    test = load_as2(config["dataset"], split=config["eval_split"])  # its default filter: clean
    orders = {s: question_order(len(train), s) for s in config["seeds"]}
    largest = max(config["train_questions"])
    used = sorted({int(i) for order in orders.values() for i in order[:largest]})
    texts = [t for q in [train[i] for i in used] + list(test) for t in (q.text, *q.candidates)]
    vectors = _embed(texts, config["encoder"], config["max_length"])
    embedded = time.perf_counter() - start
    if progress:
        print(f"embedded {len(set(texts))} sentences in {embedded:.0f} s", flush=True)
    table = ScoreTable.load(teacher_table_path(config, "train"))
    index = table.key_index()
    test_x = pair_features(test, vectors)
    test_q, _, test_y = test.pair_arrays()
    teacher_test = ScoreTable.load(teacher_table_path(config, config["eval_split"]))
    test_index = teacher_test.key_index()
    teacher_margins = np.array([teacher_test.columns["score"][test_index[key]] for key in test.keys()])
    rows = []
    for seed, n in itertools.product(config["seeds"], config["train_questions"]):
        chosen = [train[int(i)] for i in sorted(orders[seed][:n])]
        x = pair_features(chosen, vectors)
        labels = np.array([y for q in chosen for y in q.labels])
        margins = np.array([table.columns["score"][index[(q.qid, c)]] for q in chosen for c in range(len(q.candidates))])
        for kind in TARGETS:
            w = fit_linear(x, margins if kind == "soft" else labels, kind, config["temperature"], seed,
                           config["steps"], config["lr"], config["weight_decay"])
            m = ranking_metrics(test_q, test_y, test_x @ w[:-1] + w[-1])
            rows.append({"train_questions": n, "seed": seed, "target": kind, "train_pairs": len(labels),
                         "train_positives": int(labels.sum()), **{k: m[k] for k in an.METRICS},
                         "ap": m["per_question"]["ap"].round(6).tolist()})
    teacher = ranking_metrics(test_q, test_y, teacher_margins)
    from ..provenance import code_version

    return {"config": config, "key": toy_key(config), "rows": rows, "n_test_questions": teacher["n_questions"],
            "teacher_test": {k: teacher[k] for k in an.METRICS}, "code_version": code_version(),
            "seconds": {"embedding": round(embedded, 1), "total": round(time.perf_counter() - start, 1)}}


def toy_result(config: Mapping[str, Any] | None = None, retrain: bool = False, progress: bool = True,
               committed: Path = COMMITTED, cache: Path = CACHE) -> dict[str, Any]:
    """Load-or-train: the committed result when its key matches this config and these inputs, else
    the cached one, else (or with `retrain`) train and cache it. Never writes a tracked file."""
    config = dict(config or TOY)
    key = toy_key(config)
    if not retrain:
        for path in (committed, cache / f"toy-{key}.json"):
            if path.is_file():
                saved = json.loads(path.read_text())
                if saved.get("key") == key:
                    return saved
    if progress:
        print("Training the toy (about a minute on 2 idle CPU cores) ...", flush=True)
    result = train_toy(config, progress=progress)
    cache.mkdir(parents=True, exist_ok=True)
    write_text_atomic(cache / f"toy-{key}.json", json.dumps(result) + "\n")
    return result


def sign_flip_p(differences: Sequence[float]) -> float:
    """Exact two-sided sign-flip test of mean difference 0 over paired seeds (2^n sign patterns):
    with 5 seeds the smallest possible p is 2/32 = 0.0625."""
    d = np.asarray(differences, dtype=float)
    observed = abs(d.mean())
    flips = np.array(list(itertools.product((1, -1), repeat=len(d))))
    return float(np.mean(np.abs((flips * d).mean(axis=1)) >= observed - 1e-12))


def toy_summary(result: Mapping[str, Any], metric: str = "map") -> list[dict[str, Any]]:
    """Per training-set size: hard and soft `metric` (mean ± sd over seeds), the paired difference
    soft - hard per seed (mean ± sd, wins, exact sign-flip p), and the per-question paired test of
    the seeds' pooled questions (`metrics.paired_test`, permutation)."""
    from ..results.metrics import paired_test

    out = []
    for n in sorted({r["train_questions"] for r in result["rows"]}):
        by = {kind: {r["seed"]: r for r in result["rows"] if r["train_questions"] == n and r["target"] == kind}
              for kind in TARGETS}
        seeds = sorted(set(by["hard"]) & set(by["soft"]))
        hard = [by["hard"][s][metric] for s in seeds]
        soft = [by["soft"][s][metric] for s in seeds]
        diff = np.array(soft) - np.array(hard)
        pooled = paired_test(np.concatenate([by["soft"][s]["ap"] for s in seeds]),
                             np.concatenate([by["hard"][s]["ap"] for s in seeds])) if metric == "map" else None
        out.append({"train_questions": n, "seeds": len(seeds), "hard": an.mean_sd(hard), "soft": an.mean_sd(soft),
                    "difference": an.mean_sd(diff), "wins": int((diff > 0).sum()), "sign_flip_p": sign_flip_p(diff),
                    "per_question_p": None if pooled is None else pooled["p_value"]})
    return out


def toy_frame(result: Mapping[str, Any], metric: str = "map") -> Any:
    """`toy_summary` as a table for readers."""
    import pandas as pd

    rows = []
    for s in toy_summary(result, metric):
        rows.append({"train questions": s["train_questions"],
                     f"hard labels, test {metric.upper()}": an.format_mean_sd(_values(result, s, "hard", metric), 3),
                     f"soft targets, test {metric.upper()}": an.format_mean_sd(_values(result, s, "soft", metric), 3),
                     "soft - hard (mean ± sd over seeds)": f"{s['difference']['mean']:+.3f} ± {s['difference']['sd']:.3f}",
                     "seeds where soft wins": f"{s['wins']} of {s['seeds']}",
                     "sign-flip p (seeds)": f"{s['sign_flip_p']:.3f}",
                     "permutation p (questions x seeds)": "" if s["per_question_p"] is None else f"{s['per_question_p']:.4f}"})
    return pd.DataFrame(rows).set_index("train questions")


def _values(result: Mapping[str, Any], summary: Mapping[str, Any], kind: str, metric: str) -> list[float]:
    return [r[metric] for r in result["rows"] if r["train_questions"] == summary["train_questions"] and r["target"] == kind]


def toy_reading(result: Mapping[str, Any]) -> str:
    """One paragraph that says what the toy shows, from its numbers (never written in advance)."""
    summary = toy_summary(result)
    won = [s for s in summary if s["wins"] == s["seeds"] and s["difference"]["mean"] > 0]
    lost = [s for s in summary if s["difference"]["mean"] < 0]
    parts = [f"Soft targets beat hard labels at every seed for n = {', '.join(str(s['train_questions']) for s in won)} "
             "training questions" if won else "Soft targets do not beat hard labels at every seed at any size"]
    if lost:
        parts.append(f"they lose on average at n = {', '.join(str(s['train_questions']) for s in lost)}")
    gains = ", ".join(f"{s['difference']['mean']:+.3f} at n = {s['train_questions']}" for s in summary)
    return (f"{'; '.join(parts)}. Mean gains in test MAP: {gains}. With {summary[0]['seeds']} seeds the exact "
            f"sign-flip test cannot go below p = {2 / 2 ** summary[0]['seeds']:.4f}, so the seeds alone never make "
            "a gain significant at 0.05; the per-question test pools every seed's questions (not independent: "
            f"the same {result['n_test_questions']} test questions recur at every seed). The teacher itself scores "
            f"test MAP {result['teacher_test']['map']:.3f}: the student is far weaker, and the soft targets move it only a little.")


def plot_toy(result: Mapping[str, Any], metric: str = "map") -> Any:
    """Test `metric` against the number of training questions: each seed a dot, the mean a line, hard vs soft."""
    from matplotlib.figure import Figure

    from ..reporting.names import GOLD_COLOR, SINGLE_KD_COLOR

    colors = {"hard": GOLD_COLOR, "soft": SINGLE_KD_COLOR}
    labels = {"hard": "hard labels (alpha = 0)", "soft": f"soft targets, T = {result['config']['temperature']:g} (alpha = 1)"}
    fig = Figure(figsize=(6.4, 3.8))  # not pyplot: nothing is left open in the caller's session
    ax = fig.subplots()
    sizes = sorted({r["train_questions"] for r in result["rows"]})
    for j, kind in enumerate(TARGETS):
        shift = (j - 0.5) * 0.04
        for i, n in enumerate(sizes):
            values = [r[metric] for r in result["rows"] if r["train_questions"] == n and r["target"] == kind]
            ax.scatter(np.full(len(values), i + shift), values, s=14, color=colors[kind], alpha=0.6)
        means = [an.mean_sd([r[metric] for r in result["rows"] if r["train_questions"] == n and r["target"] == kind])["mean"]
                 for n in sizes]
        ax.plot(np.arange(len(sizes)) + shift, means, color=colors[kind], marker="o", label=labels[kind])
    ax.set_xticks(range(len(sizes)), [str(n) for n in sizes])
    ax.set_xlabel("training questions (WikiQA train)")
    ax.set_ylabel(f"test {metric.upper()} ({result['n_test_questions']} questions)")
    ax.set_title(f"A linear student on frozen {result['config']['encoder']} features, "
                 f"{len(result['config']['seeds'])} seeds", fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cerberus_core.orchestration.primer",
                                     description="train the primer's toy (hard labels vs soft targets) and print its table")
    parser.add_argument("--write", action="store_true", help=f"retrain and rewrite the committed {COMMITTED.relative_to(REPO)}")
    args = parser.parse_args(argv)
    result = toy_result(retrain=args.write)
    if args.write:
        COMMITTED.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(COMMITTED, json.dumps(result) + "\n")
        print(f"wrote {COMMITTED.relative_to(REPO)} ({result['seconds']['total']:.0f} s)")
    print(toy_frame(result).to_string())
    print()
    print(toy_reading(result))


if __name__ == "__main__":
    main()
