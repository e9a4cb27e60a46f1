"""Every paper figure, regenerated from committed artifacts only (no training, no model loading).

    python -m cerberus_core.figures [--artifacts artifacts/full] [--out figures]

Reads a results folder through `artifacts.Artifacts` (teachers/, teacher_scores/, students/, the
optional ablation/, and bench.json: rows with name, latency_ms, parameters; a row's name is its
model spec, matched to a run by `artifacts.run_of`). A figure whose
inputs are missing is skipped with a note, so a partial run still gives the figures it can. Each
figure is saved as PDF + PNG + JSON sidecar (`plotting.save_figure`).
"""
from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import analysis as an
from . import plotting as pl
from .artifacts import (BENCH, DATASET_NAMES, SPLIT, Artifacts, Missing, config_path, finished_seed_runs, read_json,
                        read_metrics, read_traces, run_of)
from .scores import head_names

REPO = Path(__file__).resolve().parents[1]
CORRELATION = "pearson"


FigureAndData = tuple[Any, dict[str, Any], dict[str, Any]]  # (matplotlib Figure, data shown, parameters)


# --------------------------------------------------------------------------- figures
def teacher_correlation(art: Artifacts) -> FigureAndData:
    tables = art.teacher_tables()
    if len(tables) < 2:
        raise Missing("fewer than two teachers scored")
    names, margins = an.score_matrix(tables)
    ref = next(iter(tables.values()))
    corr = an.pairwise_correlation(margins, CORRELATION)
    gain = an.ensemble_gain(ref.qids, ref.labels, margins, names)
    fig = pl.plot_correlation_heatmap(corr, names, f"Teacher score correlation ({art.where()})",
                                      label=f"{CORRELATION.capitalize()} r of the logit margins")
    data = {"names": names, "correlation": corr,
            "top1_disagreement": an.top1_disagreement(ref.qids, margins, ref.cand_idx),
            "ambiguity": an.ambiguity(an.to_probability(margins)), "ensemble_gain": gain}
    return fig, data, {"split": SPLIT, "method": CORRELATION, "scores": "teacher logit margins"}


def loss_curves(art: Artifacts) -> FigureAndData:
    run = art.run("students", "cerberus")
    if not run["curve"]:
        raise Missing("students/cerberus has no curve.tsv")
    heads = head_names({c.split("/")[1] for c in run["curve"][0] if "/" in c})
    cfg = run["config"]
    dataset = DATASET_NAMES.get(cfg.get("dataset"), cfg.get("dataset"))
    title = (f"CERBERUS {run['metrics']['model']}: training loss per head ({dataset} {cfg.get('train_split', 'train')}"
             + (f", batch {cfg['batch_size']})" if "batch_size" in cfg else ")"))
    fig = pl.plot_loss_curves(run["curve"], head_labels=art.head_labels(run, heads), title=title)
    return fig, {"curve": run["curve"]}, {"run": "students/cerberus", "smoothing": "running mean, ~1/40 of the steps"}


def head_metrics(art: Artifacts) -> FigureAndData:
    run = art.run("students", "cerberus")
    metrics = run["metrics"][SPLIT]
    teacher_metrics = {t: art.run("teachers", t)["metrics"][SPLIT]["pooled"] for t in art.names("teachers")}
    labels = art.head_labels(run, head_names(metrics))
    title = f"CERBERUS {run['metrics']['model']}: pooled vs its heads vs the teachers ({art.where()})"
    fig = pl.plot_head_metrics(metrics, teacher_metrics, [f"student {h}" for h in labels], title=title)
    data = {"student": metrics, "teachers": teacher_metrics, "head_labels": labels}
    return fig, data, {"split": SPLIT, "ci": "95% bootstrap over questions"}


def _head_correlations(art: Artifacts) -> dict[str, tuple[list[str], np.ndarray]]:
    """Head correlation of CERBERUS and of the replicated control (those that exist)."""
    found = {}
    for name in ("cerberus", *art.names("students", "replicated-*")):
        with contextlib.suppress(Missing):
            heads, margins = an.score_matrix(art.table(art.run("students", name)))
            found[name] = (heads, an.pairwise_correlation(margins, CORRELATION))
    return found


def _head_correlation(art: Artifacts, name: str) -> FigureAndData:
    """One student's head correlation on the colour scale and decimals shared with the other
    student's, so CERBERUS (r ~0.99) and the replicated control (r ~0.9999) can be told apart."""
    found = _head_correlations(art)
    if name not in found:
        art.table(art.run("students", name))  # raises Missing with the reason
    heads, corr = found[name]
    off = np.concatenate([pl._off_diagonal(c) for _, c in found.values()])
    low, high = pl.data_range(off)
    digits = pl.decimals(off)
    others = " & ".join(n for n in found if n != name)
    label = f"{CORRELATION.capitalize()} r between heads" + (f"\n(one scale with {others})" if others else "")
    fig = pl.plot_correlation_heatmap(corr, heads, f"{name}: head correlation ({art.where()})", vmin=low, vmax=high,
                                      label=label, digits=digits)
    params = {"run": f"students/{name}", "split": SPLIT, "method": CORRELATION,
              "colour_scale": [low, min(high, 1.0)], "shared_with": [n for n in found if n != name]}
    return fig, {"names": heads, "correlation": corr}, params


def head_correlation_cerberus(art: Artifacts) -> FigureAndData:
    return _head_correlation(art, "cerberus")


def head_correlation_replicated(art: Artifacts) -> FigureAndData:
    return _head_correlation(art, art.replicated())


def diversity(art: Artifacts) -> FigureAndData:
    runs = {}
    for name in ("cerberus", art.replicated()):
        rows = an.diversity_over_steps(read_traces(art.run("students", name)["dir"]), CORRELATION)
        if not rows:
            raise Missing(f"students/{name} has no dev score traces")
        runs[name] = rows
    tables = art.teacher_tables("dev")
    names, margins = an.score_matrix(tables)
    ref = next(iter(tables.values()))
    level = an.diversity(ref.qids, margins, ref.cand_idx, CORRELATION)
    title = f"Head diversity during training ({art.where('dev')})"
    fig = pl.plot_diversity_over_steps(runs, teacher_level=level, title=title)
    return fig, {"runs": runs, "teachers": names, "teacher_level": level}, {
        "split": "dev", "probabilities": "sigmoid(head margin), T=1", "correlation": CORRELATION}


def diversity_tradeoff(art: Artifacts) -> FigureAndData:
    """The recipe sweep: head diversity against pooled dev MAP, the teachers' own diversity marked, and
    the single-teacher students' (a body each, at the reader's seed) where they have all run."""
    found = art.sweep_points("dev")
    level = 1 - found["teachers"]["teacher_teacher_r"]
    try:  # the same student with a body per teacher, at the reader's seed
        separate = art.separate_students("dev")
    except Missing:
        separate = None
    title = f"Head diversity vs quality, one CERBERUS recipe per point ({art.where('dev')})"
    fig = pl.plot_diversity_tradeoff(found["points"], level, "map", title, separate)
    data = {**found, "teacher_level": level, **({"separate_students": separate} if separate else {})}
    return fig, data, {"split": "dev", "correlation": CORRELATION, "scores": "logit margins"}


def _agreement(art: Artifacts, name: str) -> FigureAndData:
    run = art.run("students", name)
    table = art.table(run)
    heads, head_margins = an.score_matrix(table)
    teachers, teacher_margins = an.score_matrix(art.teacher_tables(), reference=table)
    matrix = an.agreement_matrix(head_margins, teacher_margins, table.qids, CORRELATION, table.cand_idx)
    head_labels = art.head_labels(run, heads)
    data = {"heads": head_labels, "teachers": teachers, "agreement": matrix}
    if run["config"]["strategy"] == "cerberus" and teachers == art.teacher_names(run):
        data["own_teacher_is_closest"] = an.own_teacher_is_closest(matrix)
        data["own_head_is_closest"] = an.own_head_is_closest(matrix)
    title = f"{name}: head-teacher agreement ({art.where()})"
    fig = pl.plot_agreement_matrix(matrix, head_labels, teachers, title, measure=f"{CORRELATION.capitalize()} r")
    return fig, data, {"run": f"students/{name}", "split": SPLIT, "method": CORRELATION}


def agreement_cerberus(art: Artifacts) -> FigureAndData:
    return _agreement(art, "cerberus")


def agreement_replicated(art: Artifacts) -> FigureAndData:
    return _agreement(art, art.replicated())


def _teacher_ensemble(art: Artifacts) -> list[dict[str, Any]]:
    """The mean-probability ensemble of the teachers' cached margins, as the results table scores it."""
    try:
        ref, probs = art.teacher_ensemble()
    except Missing:
        return []
    return [{**r, "role": "teacher ensemble", "label": art.label("teachers", an.TEACHER_ENSEMBLE)}
            for r in an.metrics_frame({an.TEACHER_ENSEMBLE: probs}, ref.qids, ref.labels)]


STUDENT_ORDER = ("gold", "single", "ensemble", "replicated", "cerberus")  # the README table's order


def results(art: Artifacts) -> FigureAndData:
    """Every teacher, the teacher ensemble and every student, with CIs; paired tests vs CERBERUS in the sidecar."""
    rows, tables = [], {}
    for kind, role in (("teachers", "teacher"), ("students", "student (one model)")):
        names = art.names(kind)
        if kind == "students":
            order = {s: i for i, s in enumerate(STUDENT_ORDER)}
            names = sorted(names, key=lambda n: (order.get(art.run(kind, n)["config"]["strategy"], len(order)), n))
        for name in names:
            run = art.run(kind, name)
            rows.append({"name": name, "role": role, "label": art.label(kind, name), **run["metrics"][SPLIT]["pooled"]})
            if run[SPLIT] is not None:
                tables[name] = run[SPLIT]
        if kind == "teachers":
            rows += _teacher_ensemble(art)
    if not rows:
        raise Missing("no finished teacher or student")
    data: dict[str, Any] = {"rows": rows}
    if "cerberus" in tables:
        ref = tables["cerberus"]
        names, scores = an.score_matrix(tables, reference=ref)
        data["paired_vs_cerberus_map"] = an.paired_against(dict(zip(names, scores.T)), ref.qids, ref.labels, "cerberus")
    fig = pl.plot_metric_bars(rows, title=f"Every model ({art.where()}; dotted: CERBERUS)",
                              reference="cerberus" if "cerberus" in tables else None)
    params = {"split": SPLIT, "ci": "95% bootstrap over questions", "paired_test": "permutation on per-question AP"}
    return fig, data, params


def ablation(art: Artifacts) -> FigureAndData:
    """The runs of `reproduce --ablation` (ROOT/ablation/) beside the main ones: quality against the
    number of heads (single-<t> is 1 head, students/cerberus all k) and against the body/head split.
    The main CERBERUS run is in both panels, marked "main". Where the ablations have seeds
    (ablation/<name>/seed<s>), every row is its mean ± sd over those seeds, its main and
    single-teacher runs read at the same seeds; otherwise one run each, with its 95% CI. Runs still
    training at some seeds are averaged over fewer: each point names its seeds."""
    seeds = sorted({seed for _, seed, _ in finished_seed_runs(art.root, "ablation")})
    if not seeds:
        rows = _ablation_rows(art)
        where = art.where()
    else:
        per_seed = []
        for s in seeds:
            with contextlib.suppress(Missing):  # a seed whose main CERBERUS has not finished yet
                per_seed += _ablation_rows(Artifacts(art.root, s), seed=s)
        if not per_seed:
            raise Missing(f"no ablation seed ({seeds}) has a finished main CERBERUS run")
        rows = _over_seeds(per_seed)
        seeds = sorted({r["seed"] for r in per_seed})
        art = Artifacts(art.root, seeds[0])
        where = f"{art.where(with_seed=False)}, seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    main = art.run("students", "cerberus")
    depth = (main["config"].get("body_layers") or 0) + main["config"]["head_layers"]
    xlabels = {ABLATION_HEADS: "teachers distilled, one head each",
               ABLATION_SPLIT: f"B_b kH_h with b + h = {depth} layers" if depth > main["config"]["head_layers"]
               else "B_b kH_h"}
    params = {"split": SPLIT, "metric": "map", "x": {ABLATION_HEADS: "num_heads", ABLATION_SPLIT: "head_layers"},
              "spread": "sample sd over seeds" if seeds else "95% bootstrap CI over questions"}
    fig = pl.plot_ablation(rows, xlabels=xlabels, title=f"Ablations of CERBERUS ({where}; dotted: main run)")
    return fig, {"rows": rows}, params


ABLATION_HEADS, ABLATION_SPLIT = "number of heads (one teacher each)", "body/head split (same depth)"


def _ablation_rows(art: Artifacts, seed: int | None = None) -> list[dict[str, Any]]:
    """One row per run of the ablation figure at the reader's seed (`seed`, when given, is recorded)."""
    if not art.names("ablation"):
        raise Missing("no finished run under ablation/")
    main = art.run("students", "cerberus")
    main_model = main["metrics"]["model"]

    def row(run: dict[str, Any], panel: str, x: int, name: str, legend: str) -> dict[str, Any]:
        is_main = run is main
        return {"panel": panel, "x": x, "name": name, "main": is_main, **({} if seed is None else {"seed": seed}),
                "legend": f"main CERBERUS ({main_model})" if is_main else legend, **run["metrics"][SPLIT]["pooled"]}

    rows = []
    for name in art.names("students", "single-*"):
        run = art.run("students", name)
        rows.append(row(run, ABLATION_HEADS, 1, art.teacher_names(run)[run["config"]["teacher_index"]],
                        "1 head: single-teacher KD"))
    for run in [art.run("ablation", n) for n in art.names("ablation")] + [main]:
        cfg = run["config"]
        if cfg["head_layers"] == main["config"]["head_layers"]:
            k = cfg["num_heads"]
            rows.append(row(run, ABLATION_HEADS, k, "+".join(art.teacher_names(run)),
                            f"{k} heads: CERBERUS on {k} teachers"))
        if cfg["num_heads"] == main["config"]["num_heads"]:
            h = cfg["head_layers"]
            rows.append(row(run, ABLATION_SPLIT, h, run["metrics"]["model"], f"{h} layers per head"))
    return rows


def _over_seeds(rows: list[dict[str, Any]], metric: str = "map") -> list[dict[str, Any]]:
    """Rows of several seeds merged per (panel, run): the mean of `metric`, and every seed's value
    ("values", "seeds"), in order of first appearance."""
    merged: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (r["panel"], r["x"], r["name"], r["main"])
        into = merged.setdefault(key, {k: r[k] for k in ("panel", "x", "name", "main", "legend")}
                                 | {"seeds": [], "values": []})
        into["seeds"].append(r["seed"])
        into["values"].append(r[metric])
    return [{**r, metric: an.mean_sd(r["values"])["mean"]} for r in merged.values()]


def bench_latency(art: Artifacts, rows: list[dict[str, Any]],
                  stands_for: dict[str, list[str]] | None = None) -> tuple[dict[str, float], list[str]]:
    """Latency (ms) per model name from benchmark rows, and the rows that name no model. Rows of
    bench.json name model specs (`artifacts.run_of` resolves them); rows timed live by notebook 08
    name the labels of `stands_for` (label -> the models that timing covers)."""
    if stands_for is not None:
        return an.latency_by_model(rows, stands_for), []
    latency, unmatched = {}, []
    for row in rows:
        name = run_of(row["name"], art.root)
        if name is None:
            unmatched.append(row["name"])
        else:
            latency[name] = row["latency_ms"]
    return latency, unmatched


def draw_pareto(art: Artifacts, latency: dict[str, float], title: str = "") -> FigureAndData:
    """The quality-cost plot of `Artifacts.architecture_points` (one point per architecture)."""
    data = art.architecture_points(latency)
    points = data["points"]
    fig = pl.plot_pareto([(p["latency_ms"], p["map"]) for p in points], [p["name"] for p in points],
                         data["front_index"], spread=[p["range"] for p in points],
                         members=[[(art.label("students", m) if len(p["members"]) > 1 else m, q)
                                   for m, q in p["members"]] for p in points],
                         ylabel=f"MAP ({art.where()})", title=title)
    return fig, data, {}


def pareto(art: Artifacts) -> FigureAndData:
    """Test MAP against the latency in bench.json: one point per teacher, for the teacher ensemble
    and per student architecture (median over its students)."""
    path = art.root / BENCH
    if not path.is_file():
        raise Missing("no bench.json")
    bench = json.loads(path.read_text(encoding="utf-8"))
    latency, unmatched = bench_latency(art, bench["rows"] if isinstance(bench, dict) else bench)
    if not latency:
        raise Missing(f"no bench.json row names a finished run ({unmatched})")
    conditions = bench.get("conditions", {}) if isinstance(bench, dict) else {}
    timed = ", ".join(f"{k}: {conditions[k]}" for k in ("threads",) if k in conditions)
    title = f"Quality against latency ({timed or 'bench.json'}; grey bar: range over an architecture's students)"
    fig, data, _ = draw_pareto(art, latency, title=title)
    data["unmatched"] = unmatched
    params = {"split": SPLIT, "cost": "median latency per question (bench.json)",
              "architecture point": "median latency over the timed models of one architecture (teachers "
                                    "included), median MAP over its students",
              "teacher ensemble": "mean probability of the teachers' cached scores"}
    return fig, data, params


def results_over_seeds(art: Artifacts) -> FigureAndData:
    """Test MAP of every student at every seed (students/<name>/seed<s>), mean ± sd, beside the
    teachers; the paired tests across seeds are the claims table's."""
    runs = finished_seed_runs(art.root, "students")
    if not runs:
        raise Missing("no students/<name>/seed<s> runs (a multi-seed preset)")
    by_name: dict[str, list[tuple[int, float]]] = {}
    strategy = {}
    for name, seed, run in runs:
        metrics, config = read_metrics(run), read_json(config_path(run))
        by_name.setdefault(name, []).append((seed, metrics[SPLIT]["pooled"]["map"]))
        strategy[name] = config["strategy"]
    order = {s: i for i, s in enumerate(STUDENT_ORDER)}
    names = sorted(by_name, key=lambda n: (order.get(strategy[n], len(order)), n))
    at_seed = set(art.names("students"))  # labels read a run's config; a name without the reader's seed keeps its name
    rows = [{"name": n, "label": art.label("students", n) if n in at_seed else n, "seeds": [s for s, _ in by_name[n]],
             "values": [v for _, v in by_name[n]]} for n in names]
    teachers = {f"teacher {t}": art.quality(t) for t in art.names("teachers")}
    fig = pl.plot_seed_spread(rows, teachers, title=f"Students over seeds ({art.where(with_seed=False)})")
    return fig, {"rows": rows, "teachers": teachers}, {"split": SPLIT, "spread": "sample sd over seeds",
                                                      "labels": f"models as at seed {art.seed}"}


FIGURES: dict[str, Callable[[Artifacts], FigureAndData]] = {
    "teacher_correlation": teacher_correlation,
    "loss_curves": loss_curves,
    "head_metrics": head_metrics,
    "head_correlation_cerberus": head_correlation_cerberus,
    "head_correlation_replicated": head_correlation_replicated,
    "diversity_over_steps": diversity,
    "diversity_tradeoff": diversity_tradeoff,
    "agreement_cerberus": agreement_cerberus,
    "agreement_replicated": agreement_replicated,
    "results": results,
    "results_over_seeds": results_over_seeds,
    "ablation": ablation,
    "pareto": pareto,
}


def _shown(path: Path) -> str:
    """The artifacts path as recorded in sidecars: repo-relative when inside it, so sidecars do not
    change with the checkout's location."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def make_figures(artifacts_root: str | Path, out_dir: str | Path = "figures") -> list[Path]:
    """Draw every figure whose inputs exist under `artifacts_root`; print a note for each skipped one."""
    art = Artifacts(artifacts_root)
    written = []
    for name, build in FIGURES.items():
        try:
            fig, data, params = build(art)
        except Missing as why:
            print(f"skip {name}: {why}")
            continue
        written += pl.save_figure(fig, name, data, {"artifacts": _shown(art.root), **params}, out_dir)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cerberus_core.figures", description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default=str(REPO / "artifacts" / "full"),
                        help="artifacts root (default: %(default)s)")
    parser.add_argument("--out", default="figures", help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    for path in make_figures(args.artifacts, args.out):
        print(path)


if __name__ == "__main__":
    main()
