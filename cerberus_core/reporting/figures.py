"""Every paper figure, regenerated from committed artifacts only (no training, no model loading).

    python -m cerberus_core.reporting.figures [--artifacts artifacts/full] [--out figures]

Reads a results folder through `reader.Artifacts` (teachers/, teacher_scores/, students/, the
optional ablation/, and bench.json: rows with name, latency_ms, parameters; a row's name is its
model spec, matched to a run by `reader.run_of`). A figure whose
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

from ..results import analysis as an
from . import paper_tables as pt
from . import plotting as pl
from ..results.artifacts import BENCH, SPLIT, config_path, finished_seed_runs, read_json, read_metrics
from ..results.reader import Artifacts, Missing, run_of
from .figures_seeds import (STUDENT_ORDER, agreement_cerberus, agreement_replicated, caption_params, diversity,  # noqa: F401
                            head_correlation_cerberus, head_correlation_replicated, head_diversity, head_metrics,
                            is_flat, loss_curves, seeds_text, student_names, where)
from .names import (CERBERUS_COLOR, TEACHER_ENSEMBLE_COLOR, TEACHER_ENSEMBLE_NAME, model_color, model_name,
                    teacher_color, teacher_name)
from ..provenance import REPO

CORRELATION = "pearson"


FigureAndData = tuple[Any, dict[str, Any], dict[str, Any]]  # (Figure, data shown, parameters incl. "caption")


# --------------------------------------------------------------------------- figures
def teacher_correlation(art: Artifacts) -> FigureAndData:
    tables = art.teacher_tables()
    if len(tables) < 2:
        raise Missing("fewer than two teachers scored")
    names, margins = an.score_matrix(tables)
    ref = next(iter(tables.values()))
    corr = an.pairwise_correlation(margins, CORRELATION)
    gain = an.ensemble_gain(ref.qids, ref.labels, margins, names)
    fig = pl.plot_correlation_heatmap(corr, [teacher_name(n) for n in names], triangle=True,
                                      label=f"{CORRELATION.capitalize()} r")
    data = {"names": names, "correlation": corr,
            "top1_disagreement": an.top1_disagreement(ref.qids, margins, ref.cand_idx),
            "ambiguity": an.ambiguity(an.to_probability(margins)), "ensemble_gain": gain}
    caption = (f"Pearson correlation between the teachers' logit margins on {where(art)}, each pair once. Teachers "
               f"are trained once: the figure does not depend on a student seed.")
    return fig, data, caption_params(caption, split=SPLIT, method=CORRELATION, scores="teacher logit margins")


RECIPE_KEYS = {"alpha": "α {:g}", "temperature": "T {:g}", "kd": "{}", "head_loss": "{} over heads",
               "head_init": "heads {}"}


def recipe_name(config: dict[str, Any], default: dict[str, Any]) -> str:
    """A sweep run in words, by what it changes from the default recipe: "α 0.5, T 4", "B4 3H2", "MSE"."""
    parts = []
    for key, fmt in RECIPE_KEYS.items():
        if config.get(key) != default.get(key):
            value = config.get(key)
            parts.append(fmt.format(value.upper() if key == "kd" else value))
    split = ("body_layers", "head_layers")
    if [config.get(k) for k in split] != [default.get(k) for k in split]:
        parts.append(f"B{config.get('body_layers')} {config.get('num_heads')}H{config.get('head_layers')}")
    return ", ".join(parts) or "default"


def diversity_tradeoff(art: Artifacts) -> FigureAndData:
    """The recipe sweep: head diversity against pooled dev MAP, the teachers' own diversity marked, and
    the single-teacher students' (a body each, at the reader's seed) where they have all run."""
    found = art.sweep_points("dev")
    level = 1 - found["teachers"]["teacher_teacher_r"]
    try:  # the same student with a body per teacher, at the reader's seed
        separate = art.separate_students("dev")
    except Missing:
        separate = None
    default = art.run("sweep", "default")["config"] if "default" in art.names("sweep") else {}
    for p in found["points"]:
        run = art.run("sweep", p["name"])
        p["label"] = recipe_name(run["config"], default) if default else p["name"]
        p["ci"] = run["metrics"]["dev"]["pooled"]["map_ci"]
    fig = pl.plot_diversity_tradeoff(found["points"], level, "map", "", separate)
    said = [fmt.format(str(default[k]).upper() if k == "kd" else default[k]) for k, fmt in RECIPE_KEYS.items()
            if k in default and k not in ("head_loss", "head_init")]
    if "body_layers" in default:
        said.append(f"B{default['body_layers']} {default.get('num_heads')}H{default.get('head_layers')}")
    default_text = f"the default ({', '.join(said)})" if said else "the default"
    caption = (f"The recipe sweep on {where(art, 'dev')}, one CERBERUS run per recipe at one training seed "
               f"(seed {art.seed}): each point's pooled dev MAP (whisker: 95% bootstrap interval over questions) "
               f"against how different its heads are (left: 1 - mean Pearson r between heads, log scale; right: "
               f"specialization S). The key under the plot names each numbered recipe by what it changes from "
               f"{default_text}. Dashed line or arrow: "
               f"the teachers' own 1 - r ({level:.3f})"
               + (f"; dotted line: the single-teacher students, a body each, read as heads (seed {art.seed})."
                  if separate else "."))
    data = {**found, "teacher_level": level, **({"separate_students": separate} if separate else {})}
    return fig, data, caption_params(caption, split="dev", correlation=CORRELATION, scores="logit margins")


def _teacher_ensemble(art: Artifacts) -> list[dict[str, Any]]:
    """The mean-probability ensemble of the teachers' cached margins, as the results table scores it."""
    try:
        ref, probs = art.teacher_ensemble()
    except Missing:
        return []
    return [{**r, "role": "teacher ensemble", "label": TEACHER_ENSEMBLE_NAME, "color": TEACHER_ENSEMBLE_COLOR,
             "gid": TEACHER_ENSEMBLE_NAME}
            for r in an.metrics_frame({an.TEACHER_ENSEMBLE: probs}, ref.qids, ref.labels)]


def results(art: Artifacts) -> FigureAndData:
    """Every teacher, the teacher ensemble and every student at the reader's seed, with CIs; paired
    tests vs CERBERUS in the sidecar."""
    rows, tables = [], {}
    for kind, role in (("teachers", "teacher"), ("students", "student (one model)")):
        names = art.names(kind) if kind == "teachers" else student_names(art, art.names(kind))
        for name in names:
            run = art.run(kind, name)
            label = teacher_name(name) if kind == "teachers" else model_name(name)
            rows.append({"name": name, "role": role, "label": label, "color": model_color(name), "gid": label,
                         "emphasis": name == "cerberus", **run["metrics"][SPLIT]["pooled"]})
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
    fig = pl.plot_metric_bars(rows, reference="cerberus" if "cerberus" in tables else None)
    flat = is_flat(art)
    caption = (f"Test quality of every teacher, the teacher ensemble (mean probability) and every student on "
               f"{where(art)}; the students at {seeds_text([art.seed], flat)}"
               + ("" if flat else " of the multi-seed programme (all seeds: results_over_seeds)")
               + ". Whiskers: 95% bootstrap intervals over questions; dotted line: CERBERUS. Students are "
                 "distilled from the teachers on top (gold: labels only).")
    params = {"split": SPLIT, "ci": "95% bootstrap over questions", "paired_test": "permutation on per-question AP"}
    return fig, data, caption_params(caption, **params)


def ablation(art: Artifacts) -> FigureAndData:
    """The runs of `reproduce --ablation` (ROOT/ablation/) beside the main ones: quality against the
    number of heads (single-<t> is 1 head, students/cerberus all k) and against the body/head split.
    The main CERBERUS run is in both panels, marked "main". Where the ablations have seeds
    (ablation/<name>/seed<s>), every row is its mean ± sd over those seeds, its main and
    single-teacher runs read at the same seeds; otherwise one run each, with its 95% CI."""
    seeds = sorted({seed for _, seed, _ in finished_seed_runs(art.root, "ablation")})
    if not seeds:
        rows = _ablation_rows(art)
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
    main = art.run("students", "cerberus")
    depth = (main["config"].get("body_layers") or 0) + main["config"]["head_layers"]
    k = main["config"]["num_heads"]
    xlabels = {ABLATION_HEADS: "teachers distilled, one head each",
               ABLATION_SPLIT: f"B$b$ {k}H$h$ with $b + h$ = {depth} layers"}
    params = {"split": SPLIT, "metric": "map", "x": {ABLATION_HEADS: "num_heads", ABLATION_SPLIT: "head_layers"},
              "spread": "sample sd over seeds" if seeds else "95% bootstrap CI over questions"}
    fig = pl.plot_ablation(rows, xlabels=xlabels)
    counts = sorted({len(r.get("seeds", [])) for r in rows})
    spread = (f"mean ± sample sd over the seeds each run has ({', '.join(map(str, seeds))}; "
              f"{'-'.join(map(str, [counts[0], counts[-1]])) if len(counts) > 1 else counts[0]} per run, listed in "
              f"the sidecar), grey dots each seed" if seeds else
              f"one run each (seed {art.seed}), whiskers 95% bootstrap intervals over questions")
    caption = (f"Ablations of CERBERUS on {where(art)}: test MAP against the number of teachers (one head each; "
               f"1 head is KD from that single teacher) and against the body/head split at the same depth. "
               f"Diamond and dotted line: the main CERBERUS ({main['metrics']['model']}); {spread}.")
    return fig, {"rows": rows}, caption_params(caption, **params)


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
                "legend": f"CERBERUS {main_model}" if is_main else legend, "gid": "CERBERUS" if is_main else None,
                **run["metrics"][SPLIT]["pooled"]}

    rows = []
    for name in art.names("students", "single-*"):
        run = art.run("students", name)
        rows.append(row(run, ABLATION_HEADS, 1, teacher_name(art.teacher_names(run)[run["config"]["teacher_index"]]),
                        "1 head: KD from one teacher"))
    for run in [art.run("ablation", n) for n in art.names("ablation")] + [main]:
        cfg = run["config"]
        if cfg["head_layers"] == main["config"]["head_layers"]:
            k = cfg["num_heads"]
            rows.append(row(run, ABLATION_HEADS, k, "+".join(teacher_name(t) for t in art.teacher_names(run)),
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
        into = merged.setdefault(key, {k: r[k] for k in ("panel", "x", "name", "main", "legend", "gid")}
                                 | {"seeds": [], "values": []})
        into["seeds"].append(r["seed"])
        into["values"].append(r[metric])
    return [{**r, metric: an.mean_sd(r["values"])["mean"]} for r in merged.values()]


def bench_latency(art: Artifacts, rows: list[dict[str, Any]],
                  stands_for: dict[str, list[str]] | None = None) -> tuple[dict[str, float], list[str]]:
    """Latency (ms) per model name from benchmark rows, and the rows that name no model. Rows of
    bench.json name model specs (`reader.run_of` resolves them); rows timed live by notebook 08
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
    """The quality-cost plot of `Artifacts.architecture_points` (one point per architecture), with the
    shared display names and colours."""
    data = art.architecture_points(latency)
    points = data["points"]
    label_of = {art.label("teachers", t): (teacher_name(t), teacher_color(t)) for t in art.names("teachers")}
    label_of[art.label("teachers", an.TEACHER_ENSEMBLE)] = (TEACHER_ENSEMBLE_NAME, TEACHER_ENSEMBLE_COLOR)
    for s in art.names("students"):
        label_of[art.label("students", s)] = (model_name(s), model_color(s))
    gid_ok = {n for n, _ in label_of.values()}  # a model's own name; an architecture's point is not one model
    shown = [label_of.get(p["name"], (p["name"], CERBERUS_COLOR if any(
        m == "cerberus" for m, _ in p["members"]) else "0.35")) for p in points]
    fig = pl.plot_pareto([(p["latency_ms"], p["map"]) for p in points], [n for n, _ in shown],
                         data["front_index"], spread=[p["range"] for p in points],
                         members=[[(model_name(m), q) for m, q in p["members"]] for p in points],
                         ylabel="test MAP", title=title, point_colors=[c for _, c in shown],
                         gids=[n if n in gid_ok else None for n, _ in shown])
    return fig, data, {}


def pareto(art: Artifacts) -> FigureAndData:
    """Test MAP against the latency in bench.json: one point per teacher, for the teacher ensemble
    and per student architecture (median over its students)."""
    path = art.root / BENCH
    if not path.is_file():
        raise Missing("no bench.json")
    bench = json.loads(path.read_text(encoding="utf-8"))
    rows = bench["rows"] if isinstance(bench, dict) else bench
    if any(":" in r["name"] for r in rows):
        raise Missing(f"{BENCH} times architectures (NAME:B_b-kH_h), not runs: drawn by the cost figure")
    latency, unmatched = bench_latency(art, rows)
    if not latency:
        raise Missing(f"no bench.json row names a finished run ({unmatched})")
    conditions = bench.get("conditions", {}) if isinstance(bench, dict) else {}
    fig, data, _ = draw_pareto(art, latency)
    data["unmatched"] = unmatched
    timed = ", ".join(f"{k} {conditions[k]}" for k in ("device", "cpu", "threads", "dtype") if k in conditions)
    caption = (f"Test MAP on {where(art)}, {seeds_text([art.seed], is_flat(art))}, against the median latency per "
               f"question (bench.json: {timed or 'conditions not recorded'}; log scale). One point per teacher, for "
               f"the teacher ensemble (the three teachers run one after another) and per student architecture: "
               f"students of one architecture cost the same, so they share the median latency of the timed ones and "
               f"their median MAP is drawn, the grey bar spanning their range (listed at the right). Ringed points "
               f"joined in black: the Pareto front.")
    params = {"split": SPLIT, "cost": "median latency per question (bench.json)", "conditions": conditions,
              "architecture point": "median latency over the timed models of one architecture (teachers "
                                    "included), median MAP over its students",
              "teacher ensemble": "mean probability of the teachers' cached scores"}
    return fig, data, caption_params(caption, **params)


def results_over_seeds(art: Artifacts) -> FigureAndData:
    """Test MAP of every student at every seed (students/<name>/seed<s>), mean ± sd, beside the
    teachers and the teacher ensemble; the paired tests across seeds are the claims table's."""
    runs = finished_seed_runs(art.root, "students")
    if not runs:
        raise Missing("no students/<name>/seed<s> runs (a multi-seed preset)")
    by_name: dict[str, list[tuple[int, float]]] = {}
    for name, seed, run in runs:
        by_name.setdefault(name, []).append((seed, read_metrics(run)[SPLIT]["pooled"]["map"]))
    strategy = {n: read_json(config_path(next(r for m, _, r in runs if m == n)))["strategy"] for n in by_name}
    order = {s: i for i, s in enumerate(STUDENT_ORDER)}
    names = sorted(by_name, key=lambda n: (order.get(strategy[n], len(order)), n))
    rows = [{"name": n, "label": model_name(n), "color": model_color(n), "gid": model_name(n),
             "emphasis": n == "cerberus",
             "seeds": [s for s, _ in by_name[n]], "values": [v for _, v in by_name[n]]} for n in names]
    teachers = {teacher_name(t): (art.quality(t), teacher_color(t)) for t in art.names("teachers")}
    with contextlib.suppress(Missing):
        teachers[TEACHER_ENSEMBLE_NAME] = (art.quality(an.TEACHER_ENSEMBLE), TEACHER_ENSEMBLE_COLOR)
    fig = pl.plot_seed_spread(rows, teachers, width="text")
    seeds = sorted({s for r in rows for s in r["seeds"]})
    counts = sorted({len(r["seeds"]) for r in rows})
    caption = (f"Test MAP of every student on {where(art)}, over {seeds_text(seeds)}"
               + (f" ({counts[0]}-{counts[-1]} per student)" if len(counts) > 1 else "")
               + ": dot and whisker, mean ± sample sd over seeds (printed at the right); grey dots, each seed. "
                 "Dashed lines: the teachers and the teacher ensemble (mean probability), trained once. The paired "
                 "tests between students are in the claims table and forest plot.")
    data = {"rows": rows, "teachers": {k: v for k, (v, _) in teachers.items()}}
    return fig, data, caption_params(caption, split=SPLIT, spread="sample sd over seeds")


FIGURES: dict[str, Callable[[Artifacts], FigureAndData]] = {
    "results": results,
    "results_over_seeds": results_over_seeds,
    "claims_forest": pt.claims_forest,
    "teacher_correlation": teacher_correlation,
    "head_metrics": head_metrics,
    "head_diversity": head_diversity,
    "head_correlation_cerberus": head_correlation_cerberus,
    "head_correlation_replicated": head_correlation_replicated,
    "agreement_cerberus": agreement_cerberus,
    "agreement_replicated": agreement_replicated,
    "diversity_over_steps": diversity,
    "diversity_tradeoff": diversity_tradeoff,
    "loss_curves": loss_curves,
    "ablation": ablation,
    "pareto": pareto,
    "cost": pt.cost,
}


def _shown(path: Path) -> str:
    """The artifacts path as recorded in sidecars: repo-relative when inside it, so sidecars do not
    change with the checkout's location."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def make_figures(artifacts_root: str | Path, out_dir: str | Path = "figures") -> list[Path]:
    """Draw every figure whose inputs exist under `artifacts_root` (a note for each skipped one), then
    the LaTeX tables and the gallery page (README.md: each figure with its caption)."""
    art = Artifacts(artifacts_root)
    written, captions = [], {}
    for name, build in FIGURES.items():
        try:
            fig, data, params = build(art)
        except Missing as why:
            print(f"skip {name}: {why}")
            continue
        params = dict(params)
        caption = params.pop("caption", None)
        written += pl.save_figure(fig, name, data, {"artifacts": _shown(art.root), **params}, out_dir, caption=caption)
        captions[name] = (caption, fig.get_size_inches())
    written += pt.write_tables(art, out_dir)
    if captions:
        written.append(pt.write_gallery(out_dir, captions, _shown(art.root)))
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cerberus_core.reporting.figures", description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default=str(REPO / "artifacts" / "full"),
                        help="artifacts root (default: %(default)s)")
    parser.add_argument("--out", default="figures", help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    for path in make_figures(args.artifacts, args.out):
        print(path)


if __name__ == "__main__":
    main()
