"""The tables the notebooks show, computed here (tested) so a notebook only displays them.

Each function returns a pandas DataFrame with display names (`names`) and cells already written
for readers (`analysis.fmt`: fixed decimals that tell the values apart, never NaN or -0.0000),
with the unit of every column in its header.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..results import analysis as an
from ..results.analysis import fmt, fmt_signed
from ..results.artifacts import finished_seed_runs
from ..results.reader import Artifacts
from .names import head_name, model_name, teacher_name
from ..results.scores import ScoreTable

CORRELATIONS = ("pearson", "spearman", "kendall")
MEASURE_NAMES = {"pearson": "Pearson r", "spearman": "Spearman ρ", "kendall": "Kendall τ",
                 "top1": "top-1 agreement (share of questions)"}


def decimals(values: Sequence[float] | np.ndarray, least: int = 3, most: int = 6) -> int:
    """The fewest decimals (between `least` and `most`) at which the distinct values print distinctly."""
    values = np.asarray(values, dtype=float).ravel()
    values = np.unique(np.round(values[np.isfinite(values)], 12))
    for d in range(least, most + 1):
        if len({fmt(float(v), d) for v in values}) == len(values):
            return d
    return most


def _formatted(frame: pd.DataFrame, columns: Sequence[str], least: int = 3) -> pd.DataFrame:
    """Number columns as text, each at the decimals that tell its values apart."""
    out = frame.copy()
    for column in columns:
        digits = decimals(out[column].to_numpy(dtype=float), least=least)
        out[column] = [fmt(float(v), digits) for v in out[column]]
    return out


def display_statement(text: str) -> str:
    """A statement of the claims command with teacher keys written as display names."""
    return re.sub(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)+", lambda m: teacher_name(m[0]), text)


# --------------------------------------------------------------------------- heads against heads (notebook 05)
def head_pairs(art: Artifacts, students: Sequence[str] | None = None,
               correlations: Sequence[str] = CORRELATIONS, split: str = "test") -> pd.DataFrame:
    """One row per pair of heads of each student (CERBERUS and the replicated control by default):
    the correlations of their logit margins over every (question, candidate) pair of `split`, and the
    share of questions whose top candidate differs. 1 and 0 mean the two heads are the same ranker."""
    students = list(students) if students is not None else ["cerberus", *art.names("students", "replicated-*")]
    rows = []
    for name in students:
        run = art.run("students", name)
        table = art.table(run, split)
        heads, margins = an.score_matrix(table)
        labels = _head_labels(art, run, heads)
        corr = {m: an.pairwise_correlation(margins, m) for m in correlations}
        top1 = an.top1_disagreement(table.qids, margins, table.cand_idx)
        for i in range(len(heads)):
            for j in range(i + 1, len(heads)):
                rows.append({"student": model_name(name), "heads": f"{labels[i]} · {labels[j]}",
                             **{MEASURE_NAMES[m]: corr[m][i, j] for m in correlations},
                             "top-1 disagreement (share of questions)": top1[i, j]})
    frame = pd.DataFrame(rows)
    return _formatted(frame, [c for c in frame.columns if c not in ("student", "heads")])


def _taught_by(art: Artifacts, run: Mapping[str, Any], heads: Sequence[str]) -> list[str | None]:
    """The teacher each head learned from (None for a student whose heads have none)."""
    names, cfg = art.teacher_names(run), run["config"]
    if cfg["strategy"] == "cerberus" and len(names) == len(heads):
        return list(names)
    if cfg["strategy"] == "replicated" and cfg.get("teacher_index") is not None:
        return [names[cfg["teacher_index"]]] * len(heads)
    return [None] * len(heads)


def _head_labels(art: Artifacts, run: Mapping[str, Any], heads: Sequence[str]) -> list[str]:
    return [head_name(h, t) for h, t in zip(heads, _taught_by(art, run, heads))]


# --------------------------------------------------------------------------- heads against teachers (notebook 06)
def agreement(art: Artifacts, student: str = "cerberus", measures: Sequence[str] = (*CORRELATIONS, "top1"),
              split: str = "test") -> tuple[pd.DataFrame, pd.DataFrame]:
    """How far each head of `student` agrees with each teacher, under every measure.

    Returns (per head, summary). Per head: the measure (its name is its unit), the head (and the
    teacher it learned from), its agreement with every teacher ("vs <teacher>"), its closest teacher (ties joined by "="), and whether that is
    the teacher it learned from. Summary, per measure: how many heads are closest to their own
    teacher (the row reading, `analysis.own_teacher_is_closest`: ties count) and, for a CERBERUS
    student, how many teachers have their own head as the head closest to them (the column reading,
    `analysis.own_head_is_closest`: strict)."""
    run = art.run("students", student)
    table = art.table(run, split)
    heads, head_margins = an.score_matrix(table)
    taught = _taught_by(art, run, heads)
    teacher_tables = art.teacher_tables(split)
    cerberus = run["config"]["strategy"] == "cerberus"
    order = list(dict.fromkeys([*(t for t in taught if t), *teacher_tables])) if cerberus else list(teacher_tables)
    teachers, teacher_margins = an.score_matrix({t: teacher_tables[t] for t in order}, reference=table)
    shown = [teacher_name(t) for t in teachers]
    rows, summary = [], []
    for measure in measures:
        matrix = an.agreement_matrix(head_margins, teacher_margins, table.qids, measure, table.cand_idx)
        hits = 0
        for head, own, values in zip(heads, taught, matrix):
            closest = [t for t, v in zip(teachers, values) if v == values.max()]
            is_own = own in closest if own else None
            hits += bool(is_own)
            rows.append({"measure": MEASURE_NAMES[measure], "head": head_name(head, own),
                         **{f"vs {s}": v for s, v in zip(shown, values)},
                         "closest teacher": " = ".join(teacher_name(t) for t in closest),
                         "closest is its own teacher": "–" if own is None else ("yes" if is_own else "no")})
        line = {"measure": MEASURE_NAMES[measure], "heads closest to their own teacher": f"{hits}/{len(heads)}"}
        if cerberus and teachers[:len(heads)] == taught:
            column = an.own_head_is_closest(matrix[:, :len(heads)])
            line["teachers whose own head is the closest head"] = f"{sum(column)}/{len(column)}"
        summary.append(line)
    frame = pd.DataFrame(rows)
    numbers = [c for c in frame.columns if c.startswith("vs ")]
    per_measure = [_formatted(part, numbers) for _, part in frame.groupby("measure", sort=False)]
    return pd.concat(per_measure, ignore_index=True), pd.DataFrame(summary)


def closest_teacher_by_seed(root: Any, student: str = "cerberus", measure: str = "pearson",
                            split: str = "test") -> pd.DataFrame:
    """Rows: the heads of `student`; columns: every seed of the results folder; cell: the teacher
    that head agrees with most at that seed (`measure`). One glance says whether a reading holds at
    every seed."""
    seeds = sorted({s for name, s, _ in finished_seed_runs(root, "students") if name == student}) or [0]
    columns = {}
    for seed in seeds:
        per_head, _ = agreement(Artifacts(root, seed), student, (measure,), split)
        columns[f"seed {seed}"] = list(per_head["closest teacher"])
        index = list(per_head["head"])
    return pd.DataFrame(columns, index=pd.Index(index, name="head"))


# --------------------------------------------------------------------------- one question at a time (notebook 06)
def question_disagreement(student: ScoreTable, teachers: Mapping[str, ScoreTable],
                          taught: Sequence[str] | None = None) -> pd.DataFrame:
    """Per question of the student's table: how many heads put a different candidate first than
    their own teacher does ("heads off their teacher's top-1", when `taught` names each head's
    teacher), how many distinct candidates the heads put first ("distinct head top-1"), and the
    spread of the heads' margins (mean over candidates of their standard deviation, in logits).
    Sorted with the most disagreement first: a way to find the questions where the heads split."""
    heads, margins = an.score_matrix(student)
    qids = np.asarray(student.qids)
    order = list(dict.fromkeys(student.qids))
    tops = np.stack([student.cand_idx[an.top1(qids, margins[:, i], student.cand_idx)] for i in range(len(heads))])
    frame = pd.DataFrame({"qid": order, "distinct head top-1": [len(set(col)) for col in tops.T]})
    spread = pd.Series(margins.std(axis=1), index=qids).groupby(level=0, sort=False).mean()
    frame["head spread (logits)"] = spread.reindex(order).to_numpy()
    if taught:
        names, t_margins = an.score_matrix({t: teachers[t] for t in dict.fromkeys(taught)}, reference=student)
        t_tops = {t: student.cand_idx[an.top1(qids, t_margins[:, i], student.cand_idx)] for i, t in enumerate(names)}
        off = sum((tops[i] != t_tops[t]).astype(int) for i, t in enumerate(taught))
        frame.insert(1, "heads off their teacher's top-1", off)
    keys = [c for c in ("heads off their teacher's top-1", "distinct head top-1", "head spread (logits)") if c in frame]
    return frame.sort_values(keys, ascending=False, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- the claims (notebook 07)
def _difference(row: Mapping[str, Any]) -> str:
    what = "S" if row.get("test") == "specialization" else "MAP"
    delta = row.get("delta_map", row.get("delta_specialization"))
    ci = row.get("ci95")
    if delta is None:
        return "–"
    return f"{what} {fmt_signed(delta, 3)}" + (f" [{fmt_signed(ci[0], 3)}, {fmt_signed(ci[1], 3)}]" if ci else "")


def claims_frame(result: Mapping[str, Any]) -> pd.DataFrame:
    """claims.json or ablation_tests.json (the `claims` command's outputs) as one table: the claim,
    the dataset, the statement (teachers by display name), the seeds, the difference with its 95%
    interval, the Holm-corrected p and the verdict. Where the file carries seed-aware tests (each seed
    one observation: a row's `seed_aware`), their difference, per-seed differences, p and verdict are
    shown, with the verdict of the test that pools questions across seeds beside them; a row without
    one says why ("one seed: ...")."""
    aware_file = any("seed_aware" in r for r in result["claims"])
    rows = []
    for r in result["claims"]:
        row = {"claim": r.get("id", ""), "dataset": r.get("dataset", ""),
               "statement": display_statement(r.get("statement", "")), "seeds": r.get("n_seeds", "–")}
        reason = r.get("reason")
        if aware_file:
            aware = r.get("seed_aware") or {}
            diff = {**r, "delta_map": aware.get("delta_map", aware.get("delta_specialization")),
                    "ci95": aware.get("ci95")} if aware else {}
            row["difference [95% CI], over seeds and questions"] = _difference(diff) if aware else "–"
            per_seed = aware.get("per_seed_delta")
            row["difference at each seed"] = ", ".join(fmt_signed(v, 3) for v in per_seed) if per_seed else "–"
            row["p (Holm)"] = aware.get("p_holm_display", "–") if aware else "–"
            row["verdict"] = r.get("verdict", "")
            row["verdict, questions pooled over seeds"] = r.get("verdict_pooled") or "–"
            reason = reason or (r.get("seed_aware_reason") if not aware else None)
        else:
            row["difference [95% CI]"] = _difference(r)
            row["p (Holm)"] = r.get("p_holm_display", "–") if "p" in r else "–"
            row["verdict"] = r.get("verdict", "")
        if reason:
            row["verdict"] = f"{row['verdict']} ({reason})"
        rows.append(row)
    return pd.DataFrame(rows).fillna("–")


def ablation_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The rows of figures.ablation's data as a table, panel by panel: what each run is, the run, its
    x (number of heads, or layers per head), its seeds and its test MAP (mean ± sd over the seeds where
    the runs have seeds, else the one value)."""
    out = []
    for r in rows:
        line = {"panel": r.get("panel", ""), "run": r.get("legend", ""), "name": str(r.get("name", "")),
                "x": r.get("x", "")}
        values = [float(v) for v in r.get("values") or []]
        if len(values) > 1:
            line["seeds"] = len(values)
            line["test MAP, mean ± sd over seeds"] = an.format_mean_sd(values, 4)
        else:
            line["test MAP"] = fmt(r.get("map"))
        out.append(line)
    frame = pd.DataFrame(out)
    panels = {p: i for i, p in enumerate(dict.fromkeys(frame["panel"]))}  # the figure's order
    return frame.sort_values(["panel", "x"], key=lambda c: c.map(panels) if c.name == "panel" else c,
                             kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- the data (notebook 02)
def dataset_table(stats: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """`data.dataset_stats` of several splits as one table: questions, pairs, positives, candidates
    per question, the share of positive pairs, and the questions with no or only positives."""
    return pd.DataFrame([{"split": s["split"], "questions": s["questions"], "pairs": s["pairs"],
                          "positives": s["positives"], "candidates per question": fmt(s["mean_candidates"], 2),
                          "positive pairs (share)": fmt(s["positive_rate"], 3),
                          "questions with no positive": s["no_positive"],
                          "questions with only positives": s["all_positive"]} for s in stats]).set_index("split")


def policy_table(datasets: Sequence[str] = ("wikiqa", "trecqa")) -> pd.DataFrame:
    """Per dataset and split: the questions with no positive, with only positives, and how many
    questions each filter policy (`data.FILTERS`) keeps."""
    from ..data import FILTERS, SPLITS, dataset_stats, load_as2

    rows = []
    for name in datasets:
        for split in SPLITS:
            s = dataset_stats(load_as2(name, split=split, filter="none"))
            rows.append({"dataset": name, "split": split, "no positive": s["no_positive"],
                         "only positives": s["all_positive"],
                         **{f"kept by {p} (questions)": s["by_filter"][p]["questions"] for p in FILTERS}})
    return pd.DataFrame(rows).set_index(["dataset", "split"])


def truncation_table(lengths: Sequence[int] | np.ndarray, cuts: Sequence[int] = (32, 64, 128)) -> pd.DataFrame:
    """The share of (question, candidate) pairs longer than each max_length (tokens), i.e. truncated."""
    lengths = np.asarray(lengths)
    return pd.DataFrame({"max_length (tokens)": list(cuts),
                         "pairs truncated (share)": [fmt(float((lengths > n).mean()), 3) for n in cuts]}
                        ).set_index("max_length (tokens)")


def random_ranker_by_policy(dataset: Any, seed: int = 0) -> pd.DataFrame:
    """One random ranker (uniform scores, `seed`) on `dataset` (loaded with filter="none"), evaluated
    under each filter policy: the same scores, a different P@1/MAP/MRR per policy."""
    from ..data import FILTERS
    from ..results.metrics import ranking_metrics

    qids, cand_idx, labels = dataset.pair_arrays()
    scores = np.random.default_rng(seed).random(len(labels))
    rows = []
    for policy in FILTERS:
        m = ranking_metrics(qids, labels, scores, policy=policy, cand_idx=cand_idx)
        rows.append({"policy": policy, "questions": int(m["n_questions"]),
                     **{k.upper() if k != "p@1" else "P@1": fmt(m[k], 3) for k in ("p@1", "map", "mrr")}})
    return pd.DataFrame(rows).set_index("policy")


# --------------------------------------------------------------------------- the teachers (notebook 03)
def teacher_quality(art: Artifacts, splits: Sequence[str] = ("dev", "test")) -> pd.DataFrame:
    """Every finished teacher on each split: backbone, learning rate, epochs, parameters (millions),
    questions, and P@1, MAP, MRR with their 95% bootstrap intervals over questions."""
    from ..results.metrics import with_interval

    rows = []
    for name in art.names("teachers"):
        run = art.run("teachers", name)
        cfg = run["config"]
        for split in splits:
            m = run["metrics"][split]["pooled"]
            rows.append({"teacher": teacher_name(name), "split": split, "backbone": teacher_name(cfg["backbone"]),
                         "learning rate": f"{cfg['lr']:g}", "epochs": cfg["epochs"],
                         "parameters (M)": fmt(run["metrics"]["parameters"] / 1e6, 1), "questions": m["n_questions"],
                         **{k.upper() if k != "p@1" else "P@1": with_interval(m, k) for k in ("p@1", "map", "mrr")}})
    return pd.DataFrame(rows).set_index(["teacher", "split"])


def teacher_diversity(art: Artifacts, split: str = "test") -> pd.DataFrame:
    """The teachers' own diversity on `split` (`analysis.diversity`): ambiguity, mean Pearson r of the
    margins and mean top-1 disagreement, with their units."""
    tables = art.teacher_tables(split)
    _, margins = an.score_matrix(tables)
    ref = next(iter(tables.values()))
    d = an.diversity(ref.qids, margins, ref.cand_idx)
    units = {"ambiguity": "ambiguity (variance of probabilities)", "mean_pearson": "mean Pearson r of the margins",
             "top1_disagreement": "top-1 disagreement (share of questions)"}
    return pd.DataFrame({"measure": [units.get(k, k) for k in d], f"teachers on {split}": [fmt(v, 4) for v in d.values()]}
                        ).set_index("measure")


def ensemble_gain(art: Artifacts, split: str = "test") -> pd.DataFrame:
    """Each teacher, their mean-probability ensemble and its gain over the best member, on `split`."""
    tables = art.teacher_tables(split)
    names, margins = an.score_matrix(tables)
    ref = next(iter(tables.values()))
    gain = an.ensemble_gain(ref.qids, ref.labels, margins, names)
    rows = {**{teacher_name(k): v for k, v in gain["members"].items()},
            "ensemble (mean probability)": gain["ensemble"], "gain of the ensemble over the best teacher": gain["gain_over_best"]}
    out = pd.DataFrame(rows).T[list(an.METRICS)].astype(float)
    out.columns = [c.upper() if c != "p@1" else "P@1" for c in out.columns]
    return out.map(lambda v: fmt(v, 3))


# --------------------------------------------------------------------------- a run (notebook 04)
def run_summary(run: Mapping[str, Any]) -> pd.DataFrame:
    """A student run's recipe in one small table: strategy, backbone, body/head split, the loss
    weights (alpha: the KD share of each head's loss; T: the temperature), epochs, batch, learning
    rate and parameters."""
    cfg, metrics = run["config"], run["metrics"]
    rows = {"strategy": cfg["strategy"], "backbone": teacher_name(cfg["backbone"]), "architecture": metrics["model"],
            "alpha (KD share of each head's loss)": f"{cfg['alpha']:g}", "temperature T": f"{cfg['temperature']:g}",
            "epochs": cfg["epochs"], "batch size": cfg["batch_size"], "learning rate": f"{cfg['lr']:g}",
            "parameters (M)": fmt(metrics["parameters"] / 1e6, 1)}
    return pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=pd.Index(list(rows), name="setting"))


def ranked_candidates(student: Any, question: Any, head_labels: Sequence[str], max_length: int = 128) -> pd.DataFrame:
    """A question's candidates ranked by a trained student (`CerberusForRanking.rank`): the label, the
    pooled probability, every head's margin (units in the headers) and the text."""
    ranked = student.rank(question.text, list(question.candidates), max_length=max_length)
    return pd.DataFrame([{"label": question.labels[r["corpus_id"]], "pooled (probability)": fmt(r["score"], 3),
                          **{f"{label} (margin)": fmt(s, 3) for label, s in zip(head_labels, r["head_scores"])},
                          "candidate": r["text"]} for r in ranked])


# --------------------------------------------------------------------------- diversity while training (notebook 05)
def training_diversity(data: Mapping[str, Any]) -> pd.DataFrame:
    """figures.diversity's data as a table: per run, its first and last evaluation (step, ambiguity,
    mean Pearson r and top-1 disagreement between heads), and the last ambiguity as a share of the
    teachers'. Checks what copy initialisation promises: at step 0 the heads rank alike (top-1
    disagreement exactly 0) and score alike up to float rounding (ambiguity < 1e-12, r > 1 - 1e-9);
    a run that breaks it raises ValueError."""
    teachers = data["teacher_level"]
    rows = []
    for name, steps in data["runs"].items():
        first, last = steps[0], steps[-1]
        if first["step"] != 0 or first["top1_disagreement"] != 0.0 or first["ambiguity"] >= 1e-12 \
                or first["mean_pearson"] <= 1 - 1e-9:
            raise ValueError(f"{name}: the heads differ at its first evaluation ({first}); copies should not")
        for when, row in (("start", first), ("end", last)):
            rows.append({"student": model_name(name), "evaluation": f"{when} (step {row['step']})",
                         "ambiguity": fmt(row["ambiguity"], 5), "mean Pearson r between heads": fmt(row["mean_pearson"], 4),
                         "top-1 disagreement (share of questions)": fmt(row["top1_disagreement"], 3),
                         "ambiguity as a share of the teachers'": (f"{row['ambiguity'] / teachers['ambiguity']:.1%}"
                                                                    if teachers.get("ambiguity") else "–")})
    rows.append({"student": "the teachers themselves", "evaluation": "–", "ambiguity": fmt(teachers["ambiguity"], 5),
                 "mean Pearson r between heads": fmt(teachers["mean_pearson"], 4),
                 "top-1 disagreement (share of questions)": fmt(teachers["top1_disagreement"], 3),
                 "ambiguity as a share of the teachers'": "100.0%"})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- cost (notebook 08)
def cost_against_cerberus(art: Artifacts, latency: Mapping[str, float], parameters: Mapping[str, int]) -> pd.DataFrame:
    """Claim 6 in numbers: each teacher and the teachers' ensemble against CERBERUS, by parameters
    (millions, and as a multiple of CERBERUS's), latency per question (ms, and as a multiple) and test
    MAP at the reader's seed. `latency` and `parameters`: model name -> value, as a bench gives them
    (`notebook.committed_bench`); models missing from them are left out."""
    if "cerberus" not in latency or "cerberus" not in parameters:
        return pd.DataFrame()
    rows = []
    for name in ["cerberus", *art.names("teachers"), an.TEACHER_ENSEMBLE]:
        if name not in latency or name not in parameters:
            continue
        rows.append({"model": "teacher ensemble" if name == an.TEACHER_ENSEMBLE else model_name(name),
                     "parameters (M)": fmt(parameters[name] / 1e6, 1),
                     "× CERBERUS's parameters": fmt(parameters[name] / parameters["cerberus"], 2),
                     "latency (ms per question)": fmt(latency[name], 1),
                     "× CERBERUS's latency": fmt(latency[name] / latency["cerberus"], 2),
                     "test MAP": fmt(art.quality(name), 3)})
    return pd.DataFrame(rows).set_index("model")


def pair_lengths(dataset: Any, tokenizer: Any) -> tuple[np.ndarray, str]:
    """Tokens per (question, candidate) pair of `dataset` as a cross-encoder reads them (`tokenizer`:
    a Hugging Face tokenizer), and one line that sums them up (median, 95th percentile, longest)."""
    questions, candidates = zip(*dataset.pairs())
    lengths = np.array([len(ids) for ids in tokenizer(list(questions), list(candidates))["input_ids"]])
    return lengths, (f"{len(lengths)} {dataset.split} pairs; tokens per pair: median {np.median(lengths):.0f}, "
                     f"95th percentile {np.percentile(lengths, 95):.0f}, longest {lengths.max()}")
