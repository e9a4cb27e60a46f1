"""The figures of the students' heads, drawn over every training seed a results folder has.

A multi-seed programme keeps each student at students/<name>/seed<s>; these builders read every
seed of CERBERUS (an `Artifacts` reader per seed) and draw the mean with the per-seed spread. A
results folder of one run (flat folders) gives the same figures at that run, and each caption says
how many seeds it shows. Each builder returns (figure, data shown, parameters with the caption).
Teachers are trained once, whatever the student seed: their numbers are never "per seed".
"""
from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from ..results import analysis as an
from . import plotting as pl
from ..results.artifacts import SPLIT, finished_seed_runs, read_traces
from ..results.reader import Artifacts, Missing
from .names import (CERBERUS_COLOR, CERBERUS_VARIANT_COLOR, REPLICATED_COLOR, SINGLE_KD_COLOR, head_color, head_name,
                    model_color, model_name, teacher_color, teacher_name)
from ..results.scores import head_names

CORRELATION = "pearson"
FigureAndData = tuple[Any, dict[str, Any], dict[str, Any]]


# --------------------------------------------------------------------------- seeds and names
STUDENT_ORDER = ("gold", "single", "ensemble", "replicated", "cerberus")  # the README table's order


def student_names(art: Artifacts, names: list[str]) -> list[str]:
    order = {s: i for i, s in enumerate(STUDENT_ORDER)}
    return sorted(names, key=lambda n: (order.get(art.run("students", n)["config"]["strategy"], len(order)), n))


def seeds_of(art: Artifacts, name: str = "cerberus", kind: str = "students") -> list[int]:
    """The seeds at which a run finished (students/<name>/seed<s>); a flat run is the reader's seed."""
    found = sorted(s for n, s, _ in finished_seed_runs(art.root, kind) if n == name)
    return found or [art.seed]


def reader(art: Artifacts, seed: int) -> Artifacts:
    return art if seed == art.seed else Artifacts(art.root, seed)


def seeds_text(seeds: list[int], flat: bool = False) -> str:
    """How a caption names the seeds: "5 training seeds (0-4)", "one training seed (seed 0)"."""
    if flat:
        return f"one training run (seed {seeds[0]})"
    if len(seeds) == 1:
        return f"one training seed (seed {seeds[0]})"
    run = seeds == list(range(seeds[0], seeds[-1] + 1))
    return f"{len(seeds)} training seeds ({f'{seeds[0]}-{seeds[-1]}' if run else ', '.join(map(str, seeds))})"


def is_flat(art: Artifacts, name: str = "cerberus", kind: str = "students") -> bool:
    return not any(n == name for n, _, _ in finished_seed_runs(art.root, kind))


def where(art: Artifacts, split: str = SPLIT) -> str:
    """The data a caption names: "WikiQA test (237 questions)"."""
    dataset, _, count = art.where(split, with_seed=False).partition(", ")
    return f"{dataset} ({count})" if count else dataset


def display_heads(art: Artifacts, run: dict[str, Any], heads: list[str]) -> list[str]:
    """"head 1 <- MiniLM-L3" for the strategies that give each head a teacher, else "head 1"."""
    taught, cfg = art.teacher_names(run), run["config"]
    if cfg["strategy"] == "cerberus" and len(taught) == len(heads):
        return [head_name(h, t) for h, t in zip(heads, taught)]
    if cfg["strategy"] == "replicated" and cfg.get("teacher_index") is not None:
        return [head_name(h, taught[cfg["teacher_index"]]) for h in heads]
    return [head_name(h) for h in heads]


def caption_params(caption: str, **params: Any) -> dict[str, Any]:
    return {"caption": " ".join(caption.split()), **params}


# --------------------------------------------------------------------------- figures
def loss_curves(art: Artifacts) -> FigureAndData:
    seeds = seeds_of(art)
    runs = [reader(art, s).run("students", "cerberus") for s in seeds]
    curves = [r["curve"] for r in runs if r["curve"]]
    if not curves:
        raise Missing("students/cerberus has no curve.tsv")
    heads = head_names({c.split("/")[1] for c in curves[0][0] if "/" in c})
    cfg = runs[0]["config"]
    labels = display_heads(art, runs[0], heads)
    window = max(1, len(curves[0]) // 40)
    fig = pl.plot_loss_curves(curves, head_labels=labels)
    kd_only = len(fig.axes) == 1
    caption = (f"Training loss of each CERBERUS head ({runs[0]['metrics']['model']}) over the steps of "
               f"{seeds_text(seeds, is_flat(art))}, as a running mean of {window} "
               f"steps{'; line: mean over seeds, band: their range' if len(curves) > 1 else ''}. "
               + (f"With alpha = {cfg.get('alpha')} each head's loss is its KD term alone (KL at T = "
                  f"{cfg.get('temperature')}); the CE term has weight 0 and is not drawn." if kd_only else
                  f"Panels: each head's total loss and its KD and CE terms (alpha = {cfg.get('alpha')})."))
    data = {"curve": runs[0]["curve"], "seeds": seeds, "kd_only": kd_only}
    return fig, data, caption_params(caption, run="students/cerberus", smoothing=f"running mean, {window} steps",
                                     spread="range over seeds")


def head_metrics(art: Artifacts) -> FigureAndData:
    seeds = seeds_of(art)
    runs = [reader(art, s).run("students", "cerberus") for s in seeds]
    metrics = runs[0]["metrics"][SPLIT]
    heads = head_names(metrics)
    labels = display_heads(art, runs[0], heads)
    teachers = {t: art.run("teachers", t)["metrics"][SPLIT]["pooled"] for t in art.names("teachers")}
    model = runs[0]["metrics"]["model"]
    if len(runs) == 1:
        fig = pl.plot_head_metrics(metrics, {teacher_name(t): m for t, m in teachers.items()}, labels,
                                   pooled_label=f"CERBERUS {model}, pooled", pooled_gid="CERBERUS",
                                   teacher_colors={teacher_name(t): teacher_color(t) for t in teachers})
        caption = (f"Test quality of CERBERUS ({model}) on {where(art)}, pooled and head by head, beside its "
                   f"teachers; {seeds_text(seeds, is_flat(art))}. Whiskers: 95% bootstrap intervals over "
                   f"questions; dotted line: the pooled student.")
        return fig, {"student": metrics, "teachers": teachers, "head_labels": labels}, caption_params(
            caption, split=SPLIT, ci="95% bootstrap over questions")
    rows = [{"label": f"CERBERUS {model}, pooled", "color": CERBERUS_COLOR, "emphasis": True, "gid": "CERBERUS",
             "values": [r["metrics"][SPLIT]["pooled"]["map"] for r in runs]}]
    rows += [{"label": lab, "color": head_color(i), "gid": lab, "values": [r["metrics"][SPLIT][h]["map"] for r in runs]}
             for i, (h, lab) in enumerate(zip(heads, labels))]
    refs = {teacher_name(t): (m["map"], teacher_color(t)) for t, m in teachers.items()}
    fig = pl.plot_seed_spread(rows, refs, width="text", xlabel="test MAP (mean ± sd over seeds; grey: each seed)")
    caption = (f"Test MAP of CERBERUS ({model}) on {where(art)}, pooled and head by head, over {seeds_text(seeds)}: "
               f"dot and whisker, mean ± sample sd; grey dots, each seed. Dashed lines: the teachers, trained "
               f"once (they do not depend on the student seed).")
    data = {"rows": rows, "teachers": {t: m["map"] for t, m in teachers.items()}, "seeds": seeds,
            "student": metrics, "head_labels": labels}
    return fig, data, caption_params(caption, split=SPLIT, spread="sample sd over seeds")


def _head_corr(art: Artifacts, name: str, seeds: list[int]) -> tuple[list[str], list[np.ndarray]]:
    found = []
    for s in seeds:
        with contextlib.suppress(Missing):
            heads, margins = an.score_matrix(art.table(reader(art, s).run("students", name)))
            found.append(an.pairwise_correlation(margins, CORRELATION))
    if not found:
        art.table(art.run("students", name))  # raises Missing with the reason
    return heads, found


def _head_correlation(art: Artifacts, name: str) -> FigureAndData:
    """A student's head-head correlation (mean over seeds, each pair once) on a scale from the
    teachers' lowest correlation to 1, with the teachers' mean marked: heads at r ~0.98 are read
    against teachers at r ~0.7, not against each other."""
    seeds = seeds_of(art, name)
    heads, mats = _head_corr(art, name, seeds)
    mean = np.mean(mats, axis=0)
    run = art.run("students", name)
    labels = display_heads(art, run, heads)
    tnames, tmargins = an.score_matrix(art.teacher_tables())
    tcorr = an.pairwise_correlation(tmargins, CORRELATION)
    toff = pl._off_diagonal(tcorr)
    low = float(min(toff.min(), pl._off_diagonal(mean).min()))
    fig = pl.plot_correlation_heatmap(mean, labels, vmin=low - 0.02, vmax=1.0, triangle=True,
                                      label="Pearson r",
                                      marks={"teachers": float(toff.mean())},
                                      digits=pl.decimals(pl._off_diagonal(mean), 3))
    caption = (f"Pearson correlation between the heads of {model_name(name)} on the logit margins of {where(art)}, "
               f"{'mean over ' if len(mats) > 1 else ''}{seeds_text(seeds, is_flat(art, name))}; each pair once. "
               f"The colour scale runs from the teachers' lowest pairwise r ({toff.min():.3f}) to 1; the line on the "
               f"colour bar is the teachers' mean pairwise r ({toff.mean():.3f}), the diversity the heads could reach.")
    data = {"names": heads, "labels": labels, "correlation": mean, "per_seed": mats, "seeds": seeds,
            "teachers": tnames, "teacher_correlation": tcorr}
    return fig, data, caption_params(caption, run=f"students/{name}", split=SPLIT, method=CORRELATION,
                                     colour_scale=[low - 0.02, 1.0])


def head_correlation_cerberus(art: Artifacts) -> FigureAndData:
    return _head_correlation(art, "cerberus")


def head_correlation_replicated(art: Artifacts) -> FigureAndData:
    return _head_correlation(art, art.replicated())


def _agreement_over_seeds(art: Artifacts, name: str) -> dict[str, Any]:
    mats, heads, teachers, run0 = [], None, None, None
    for s in seeds_of(art, name):
        a = reader(art, s)
        run = a.run("students", name)
        table = a.table(run)
        heads, head_margins = an.score_matrix(table)
        teachers, teacher_margins = an.score_matrix(a.teacher_tables(), reference=table)
        mats.append(an.agreement_matrix(head_margins, teacher_margins, table.qids, CORRELATION, table.cand_idx))
        run0 = run0 or run
    closest = np.zeros_like(mats[0], dtype=int)
    for m in mats:
        for j, column in enumerate(m.T):
            order = np.argsort(column)[::-1]
            if len(column) < 2 or column[order[0]] > column[order[1]]:
                closest[order[0], j] += 1
    return {"run": run0, "heads": heads, "teachers": teachers, "per_seed": mats, "mean": np.mean(mats, axis=0),
            "closest": closest, "seeds": seeds_of(art, name)}


def _agreement(art: Artifacts, name: str) -> FigureAndData:
    found = _agreement_over_seeds(art, name)
    others = {}
    for other in ("cerberus", *art.names("students", "replicated-*")):
        if other != name:
            with contextlib.suppress(Missing):
                others[other] = _agreement_over_seeds(art, other)["mean"]
    bound = max(float(np.abs((m - m.mean(axis=0)) * 1e3).max()) for m in [found["mean"], *others.values()])
    run, matrix = found["run"], found["mean"]
    labels = display_heads(art, run, found["heads"])
    fig = pl.plot_agreement_matrix(matrix, labels, [teacher_name(t) for t in found["teachers"]],
                                   measure="Pearson r", bound=bound, closest=found["closest"])
    n = len(found["seeds"])
    data = {"heads": labels, "teachers": found["teachers"], "agreement": matrix, "per_seed": found["per_seed"],
            "closest_count": found["closest"], "seeds": found["seeds"]}
    if run["config"]["strategy"] == "cerberus" and found["teachers"] == art.teacher_names(run):
        data["own_teacher_is_closest"] = an.own_teacher_is_closest(matrix)
        data["own_head_is_closest"] = an.own_head_is_closest(matrix)
    caption = (f"Agreement (Pearson r of logit margins on {where(art)}) between each head of {model_name(name)} and "
               f"each teacher, {'mean over ' if n > 1 else ''}{seeds_text(found['seeds'], is_flat(art, name))}. "
               f"Left: the values, each head's closest teacher boxed. Right: each teacher's column minus its mean "
               f"over the heads (x 10^-3), on one colour scale (±{bound:.1f}) shared with "
               f"{', '.join(model_name(o) for o in others) or 'no other student'}; the small k/n in a cell counts the "
               f"seeds at which that head was strictly the closest to that teacher (of the n seeds with one closest "
               f"head), and ★ marks a head that was at every one of them.")
    return fig, data, caption_params(caption, run=f"students/{name}", split=SPLIT, method=CORRELATION,
                                     colour_bound=bound)


def agreement_cerberus(art: Artifacts) -> FigureAndData:
    return _agreement(art, "cerberus")


def agreement_replicated(art: Artifacts) -> FigureAndData:
    return _agreement(art, art.replicated())


def diversity(art: Artifacts) -> FigureAndData:
    """Head diversity on dev during training, CERBERUS against the replicated control, over seeds."""
    runs, by_seed = {}, {}
    for name in ("cerberus", art.replicated()):
        by_seed[name] = {}
        for s in seeds_of(art, name):
            rows = an.diversity_over_steps(read_traces(reader(art, s).run("students", name)["dir"]), CORRELATION)
            if rows:
                by_seed[name][s] = rows
        if not by_seed[name]:
            raise Missing(f"students/{name} has no dev score traces")
        runs[name] = by_seed[name].get(art.seed) or next(iter(by_seed[name].values()))
    tables = art.teacher_tables("dev")
    names, margins = an.score_matrix(tables)
    ref = next(iter(tables.values()))
    level = an.diversity(ref.qids, margins, ref.cand_idx, CORRELATION)
    shown = {model_name(n): list(s.values()) for n, s in by_seed.items()}
    fig = pl.plot_diversity_over_steps(shown, teacher_level=level,
                                       run_colors={model_name(n): model_color(n) for n in by_seed})
    seeds = sorted(by_seed["cerberus"])
    caption = (f"Head diversity on {where(art, 'dev')} during training: CERBERUS against the replicated control "
               f"(every head taught by {teacher_name(art.replicated().removeprefix('replicated-'))}), "
               f"{'mean (line) and range (band) over ' if len(seeds) > 1 else ''}{seeds_text(seeds, is_flat(art))}. "
               f"Ambiguity: variance of the heads' probabilities (sigmoid of the margin) around their mean; "
               f"mean Pearson r between the heads' margins; top-1 disagreement: share of questions on which two "
               f"heads rank different candidates first, mean over head pairs. The teachers' own level is a "
               f"dashed line, or an arrow with its value when it is off the scale.")
    data = {"runs": runs, "runs_by_seed": by_seed, "teachers": names, "teacher_level": level}
    return fig, data, caption_params(caption, split="dev", probabilities="sigmoid(head margin), T=1",
                                     correlation=CORRELATION)


def _one_minus_r(art: Artifacts, kind: str, name: str) -> list[float]:
    values = []
    for s in seeds_of(art, name, kind):
        with contextlib.suppress(Missing):
            at = reader(art, s)
            values.append(1 - an.run_head_diversity(at.table(at.run(kind, name)))["head_head_r"])
    return values


def head_diversity(art: Artifacts) -> FigureAndData:
    """1 - mean head-head r (log scale) of CERBERUS, its body/head splits, the replicated control and
    the separate single-teacher students (taken as one student's heads), against the teachers'."""
    model = art.run("students", "cerberus")["metrics"]["model"]
    rows = [{"label": f"CERBERUS {model}", "color": CERBERUS_COLOR, "emphasis": True, "gid": "CERBERUS",
             "values": _one_minus_r(art, "students", "cerberus")}]
    for name in art.names("ablation", "cerberus-B*"):
        run = art.run("ablation", name)
        values = _one_minus_r(art, "ablation", name)
        if values and run["config"]["num_heads"] > 1:
            label = f"CERBERUS {run['metrics']['model']}"
            rows.append({"label": label, "color": CERBERUS_VARIANT_COLOR, "gid": label, "values": values})
    rows.sort(key=lambda r: np.mean(r["values"]))
    with contextlib.suppress(Missing):
        replicated = model_name(art.replicated())
        rows.insert(0, {"label": replicated, "color": REPLICATED_COLOR, "gid": replicated,
                        "values": _one_minus_r(art, "students", art.replicated())})
    separate = []
    for s in seeds_of(art):
        with contextlib.suppress(Missing):
            separate.append(1 - reader(art, s).separate_students()["head_head_r"])
    if separate:
        rows.append({"label": "separate KD students", "color": SINGLE_KD_COLOR, "values": separate})
    _, tmargins = an.score_matrix(art.teacher_tables())
    teacher_level = 1 - float(pl._off_diagonal(an.pairwise_correlation(tmargins, CORRELATION)).mean())
    fig = pl.plot_seed_spread(rows, {"the teachers": teacher_level}, log=True,
                              xlabel="1 − mean head-head r (log scale)", digits=2)
    seeds = seeds_of(art)
    caption = (f"How different a student's heads are: 1 minus the mean Pearson r between its heads' logit margins on "
               f"{where(art)} (log scale; 0 would be identical heads), over {seeds_text(seeds, is_flat(art))}; "
               f"the body/head splits over the seeds they were run at. Grey dots: each seed; coloured dot: their "
               f"geometric mean. 'Separate KD students': the three single-teacher students, one body each, read as "
               f"the heads of one student. Dashed line: the teachers' 1 - mean pairwise r ({teacher_level:.2f}), the "
               f"diversity heads that each matched their teacher would have.")
    return fig, {"rows": rows, "teacher_level": teacher_level, "seeds": seeds}, caption_params(
        caption, split=SPLIT, correlation=CORRELATION, centre="geometric mean over seeds")
