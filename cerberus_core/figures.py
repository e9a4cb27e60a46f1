"""Every paper figure, regenerated from committed artifacts only (no training, no model loading).

    python -m cerberus_core.figures [--artifacts artifacts/full] [--out figures]

Reads the layout `pipeline.reproduce` writes (teachers/, teacher_scores/, students/) plus the
optional ablation/ (one run folder per variant) and bench.json (rows with name, latency_ms,
parameters; a row's name is its model spec, matched to a run by `analysis.run_of`). A figure whose
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
from .metrics import ranking_metrics
from .scores import ScoreTable, head_names

REPO = Path(__file__).resolve().parents[1]
SPLIT = "test"  # figures describe the held-out split; dev is used only for the training traces
CORRELATION = "pearson"
DATASET_NAMES = {"wikiqa": "WikiQA", "wikiqa-tsv": "WikiQA", "trecqa": "TREC-QA"}


class Missing(Exception):
    """A figure's inputs are not (yet) in the artifacts."""


class Artifacts:
    """Lazy, cached access to one artifacts root; every getter raises Missing when its input is absent."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._runs: dict[Path, dict[str, Any]] = {}

    def run(self, kind: str, name: str) -> dict[str, Any]:
        path = self.root / kind / name
        if path not in self._runs:
            self._runs[path] = an.load_run(path)
        run = self._runs[path]
        if run["metrics"] is None:
            raise Missing(f"{kind}/{name} has no metrics.json (not trained yet)")
        return run

    def table(self, run: dict[str, Any], split: str = SPLIT) -> ScoreTable:
        if run[split] is None:
            raise Missing(f"{run['dir']} has no scores/{split}.tsv")
        return run[split]

    def teacher_tables(self, split: str = SPLIT) -> dict[str, ScoreTable]:
        tables = an.load_teacher_tables(self.root, split)
        if not tables:
            raise Missing(f"no teacher_scores/*/{split}.tsv")
        return tables

    def names(self, kind: str, pattern: str = "*") -> list[str]:
        """Run folders of a kind that finished (have metrics.json), sorted."""
        return sorted(p.parent.name for p in (self.root / kind).glob(f"{pattern}/metrics.json"))

    def teacher_names(self, run: dict[str, Any]) -> list[str]:
        """The teachers a student learned from, in head order (folder names of its config)."""
        return [Path(t).name for t in run["config"].get("teachers", [])]

    def head_labels(self, run: dict[str, Any], heads: list[str]) -> list[str]:
        """"head0 ← teacher" for the strategies that give each head a teacher, else the bare names."""
        taught, cfg = self.teacher_names(run), run["config"]
        if cfg["strategy"] == "cerberus" and len(taught) == len(heads):
            return [f"{h} ← {t}" for h, t in zip(heads, taught)]
        if cfg["strategy"] == "replicated" and cfg.get("teacher_index") is not None:
            return [f"{h} ← {taught[cfg['teacher_index']]}" for h in heads]
        return heads

    def taught_by(self, run: dict[str, Any]) -> str:
        """Who a student learned from, in words: one teacher (single, replicated), all of them joined by
        "+" (cerberus, ensemble), or the gold labels only."""
        names, cfg = self.teacher_names(run), run["config"]
        if cfg["strategy"] == "gold":
            return "gold labels only"
        return names[cfg["teacher_index"]] if cfg["strategy"] in ("single", "replicated") else "+".join(names)

    def teacher_ensemble(self, split: str = SPLIT) -> tuple[ScoreTable, np.ndarray]:
        """The finished teachers' mean positive probability per pair (`analysis.teacher_ensemble` of
        their cached scores), with the table whose qids and labels it follows."""
        tables, teachers = self.teacher_tables(split), self.names("teachers")
        if len(teachers) < 2 or not set(teachers) <= set(tables):
            raise Missing(f"the teacher ensemble needs at least two teachers with scores ({teachers})")
        return an.teacher_ensemble({t: tables[t] for t in teachers})

    def quality(self, name: str, metric: str = "map", split: str = SPLIT) -> float:
        """`metric` of a student run, a teacher run or `an.TEACHER_ENSEMBLE` (what `an.run_of` names)."""
        if name == an.TEACHER_ENSEMBLE:
            ref, probs = self.teacher_ensemble(split)
            return ranking_metrics(ref.qids, ref.labels, probs)[metric]
        kind = "students" if (self.root / "students" / name / "metrics.json").is_file() else "teachers"
        return self.run(kind, name)["metrics"][split]["pooled"][metric]

    def replicated(self) -> str:
        names = self.names("students", "replicated-*")
        if not names:
            raise Missing("no students/replicated-* run")
        return names[0]

    def correct_rank(self, table: ScoreTable, qid: str, column: str = "score") -> int:
        """Where a scorer puts a question's first correct candidate (1 = on top; ties by index, as
        the metrics break them), or 0 when the question has none."""
        rows = np.flatnonzero(np.asarray(table.qids) == qid)
        order = rows[np.lexsort((table.cand_idx[rows], -table.columns[column][rows]))]
        hits = np.flatnonzero(table.labels[order])
        return int(hits[0]) + 1 if len(hits) else 0

    def example_question(self, split: str = "dev", fewest: int = 4, most: int = 8) -> dict[str, Any]:
        """A question to teach with: one correct candidate among `fewest`..`most` that every teacher
        ranks first (else as many as possible), the fewest candidates first, then by qid; and the
        teacher to show (the best on dev). Returns {"qid", "teacher", "ranks": teacher -> rank of the
        correct candidate, "candidates"}."""
        tables = self.teacher_tables(split)
        ref = next(iter(tables.values()))
        qids = np.asarray(ref.qids)
        options = []
        for qid in dict.fromkeys(ref.qids):
            labels = ref.labels[qids == qid]
            if labels.sum() != 1:
                continue
            ranks = {t: self.correct_rank(table, qid) for t, table in tables.items()}
            fits = fewest <= len(labels) <= most
            options.append((-sum(r == 1 for r in ranks.values()), not fits, len(labels), qid, ranks))
        if not options:
            raise Missing(f"no {split} question with exactly one correct candidate")
        _, _, n, qid, ranks = min(options, key=lambda o: o[:4])
        dev = {t: self.run("teachers", t)["metrics"].get("dev", {}).get("pooled", {}).get("map") for t in tables
               if t in self.names("teachers")}
        dev = {t: v for t, v in dev.items() if v is not None}
        teacher = max(dev, key=dev.get) if dev else next(iter(tables))
        return {"qid": qid, "teacher": teacher, "ranks": ranks, "candidates": n}

    def where(self, split: str = SPLIT) -> str:
        """The dataset and split every figure title names: "WikiQA test, 237 questions" (the clean
        questions the metrics count), read from the first finished run."""
        for kind in ("students", "teachers"):
            for name in self.names(kind):
                run = self.run(kind, name)
                dataset = DATASET_NAMES.get(run["config"].get("dataset"), run["config"].get("dataset", "?"))
                n = (run["metrics"].get(split) or {}).get("pooled", {}).get("n_questions")
                return f"{dataset} {split}" + (f", {n} questions" if n else "")
        raise Missing("no finished run")

    def label(self, kind: str, name: str) -> str:
        """A run in words, so the student distilled from the averaged teachers ("ensemble") is never
        read as the teacher ensemble: "teacher minilm-l3", "KD from the teachers' mean (B5 1H1)"."""
        if name == an.TEACHER_ENSEMBLE:
            return "teacher ensemble (mean prob.)"
        if kind == "teachers":
            return f"teacher {name}"
        run = self.run(kind, name)
        cfg, model = run["config"], run["metrics"]["model"]
        taught = self.teacher_names(run)
        what = {"gold": "gold labels only",
                "single": f"KD from {self.taught_by(run)}",
                "ensemble": "KD from the teachers' mean",
                "replicated": f"replicated: every head ← {self.taught_by(run)}",
                "cerberus": f"CERBERUS: {len(taught)} heads ← {len(taught)} teachers"}.get(cfg["strategy"], name)
        return f"{what} ({model})"

    def architecture(self, kind: str, name: str) -> tuple[str, str]:
        """(backbone, "B_b kH_h") of a finished run: runs that share it cost the same to run."""
        run = self.run(kind, name)
        return Path(run["config"].get("backbone", "")).name, run["metrics"]["model"]

    def architectures(self) -> dict[str, list[str]]:
        """Finished students grouped by architecture (backbone and B_b kH_h): they cost the same, so
        their timings differ only by noise. Label -> student names; CERBERUS's group first; a group of
        one is labelled by its student."""
        groups: dict[tuple[str, str], list[str]] = {}
        for name in sorted(self.names("students"), key=lambda n: (n != "cerberus", n)):
            groups.setdefault(self.architecture("students", name), []).append(name)
        models = [m for _, m in groups]
        return {(members[0] if len(members) == 1 else
                 f"{model} students" + (f" on {backbone}" if models.count(model) > 1 else "")): members
                for (backbone, model), members in groups.items()}

    def architecture_points(self, latency: dict[str, float], metric: str = "map", split: str = SPLIT) -> dict[str, Any]:
        """One point per teacher, for the teacher ensemble and per student architecture, for the
        quality-cost plot. `latency` maps a model (a run_of name) to its measured latency. Models of
        one architecture (a teacher included: teacher minilm-l6 is the gold student's architecture)
        take the median latency of the timed ones, since their timings differ only by noise, which
        made the front zigzag; a student architecture's quality is the median over its students,
        with their range and every member kept. Models of an architecture nobody timed are left out."""
        kinds = {**{t: "teachers" for t in self.names("teachers")}, **{s: "students" for s in self.names("students")}}
        timed: dict[tuple[str, str], list[float]] = {}
        for model, ms in latency.items():
            if model in kinds:
                timed.setdefault(self.architecture(kinds[model], model), []).append(ms)
        cost = {arch: float(np.median(values)) for arch, values in timed.items()}

        def point(label: str, members: list[str], ms: float | None) -> dict[str, Any] | None:
            if ms is None:
                return None
            quality = {m: self.quality(m, metric, split) for m in members}
            return {"name": label, "latency_ms": ms, metric: float(np.median(list(quality.values()))),
                    "range": [min(quality.values()), max(quality.values())],
                    "members": [[m, q] for m, q in quality.items()]}

        points = [point(self.label("teachers", t), [t], cost.get(self.architecture("teachers", t)))
                  for t in self.names("teachers")]
        points.append(point(self.label("teachers", an.TEACHER_ENSEMBLE), [an.TEACHER_ENSEMBLE],
                            latency.get(an.TEACHER_ENSEMBLE)))
        for label, members in self.architectures().items():
            points.append(point(label if len(members) > 1 else self.label("students", members[0]), members,
                                cost.get(self.architecture("students", members[0]))))
        points = [p for p in points if p is not None]
        if not points:
            raise Missing("no model with both a latency and a quality")
        front = an.pareto_front([(p["latency_ms"], p[metric]) for p in points])
        return {"points": points, "front": [points[i]["name"] for i in front], "front_index": front}


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
        rows = an.diversity_over_steps(art.root / "students" / name, CORRELATION)
        if not rows:
            raise Missing(f"students/{name} has no trace/dev_step*.tsv")
        runs[name] = rows
    tables = art.teacher_tables("dev")
    names, margins = an.score_matrix(tables)
    ref = next(iter(tables.values()))
    level = an.diversity(ref.qids, margins, ref.cand_idx, CORRELATION)
    title = f"Head diversity during training ({art.where('dev')})"
    fig = pl.plot_diversity_over_steps(runs, teacher_level=level, title=title)
    return fig, {"runs": runs, "teachers": names, "teacher_level": level}, {
        "split": "dev", "probabilities": "sigmoid(head margin), T=1", "correlation": CORRELATION}


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
        data["own_head_is_closest"] = an.own_teacher_is_closest(matrix.T)
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
    The main CERBERUS run is in both panels, marked "main"."""
    if not art.names("ablation"):
        raise Missing("no finished run under ablation/")
    main = art.run("students", "cerberus")
    heads, split = "number of heads (one teacher each)", "body/head split (same depth)"
    main_model = main["metrics"]["model"]

    def row(run: dict[str, Any], panel: str, x: int, name: str, legend: str) -> dict[str, Any]:
        is_main = run is main
        return {"panel": panel, "x": x, "name": name, "main": is_main,
                "legend": f"main CERBERUS ({main_model})" if is_main else legend, **run["metrics"][SPLIT]["pooled"]}

    rows = []
    for name in art.names("students", "single-*"):
        run = art.run("students", name)
        rows.append(row(run, heads, 1, art.teacher_names(run)[run["config"]["teacher_index"]],
                        "1 head: single-teacher KD"))
    for run in [art.run("ablation", n) for n in art.names("ablation")] + [main]:
        cfg = run["config"]
        if cfg["head_layers"] == main["config"]["head_layers"]:
            k = cfg["num_heads"]
            rows.append(row(run, heads, k, "+".join(art.teacher_names(run)), f"{k} heads: CERBERUS on {k} teachers"))
        if cfg["num_heads"] == main["config"]["num_heads"]:
            h = cfg["head_layers"]
            rows.append(row(run, split, h, run["metrics"]["model"], f"{h} layers per head"))
    depth = (main["config"].get("body_layers") or 0) + main["config"]["head_layers"]
    xlabels = {heads: "teachers distilled, one head each",
               split: f"B_b kH_h with b + h = {depth} layers" if depth > main["config"]["head_layers"] else "B_b kH_h"}
    params = {"split": SPLIT, "metric": "map", "x": {heads: "num_heads", split: "head_layers"}}
    fig = pl.plot_ablation(rows, xlabels=xlabels, title=f"Ablations of CERBERUS ({art.where()}; dotted: main run)")
    return fig, {"rows": rows}, params


def bench_latency(art: Artifacts, rows: list[dict[str, Any]],
                  stands_for: dict[str, list[str]] | None = None) -> tuple[dict[str, float], list[str]]:
    """Latency (ms) per model name from benchmark rows, and the rows that name no model. Rows of
    bench.json name model specs (`analysis.run_of` resolves them); rows timed live by notebook 08
    name the labels of `stands_for` (label -> the models that timing covers)."""
    if stands_for is not None:
        return an.latency_by_model(rows, stands_for), []
    latency, unmatched = {}, []
    for row in rows:
        name = an.run_of(row["name"], art.root)
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
    path = art.root / "bench.json"
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


FIGURES: dict[str, Callable[[Artifacts], FigureAndData]] = {
    "teacher_correlation": teacher_correlation,
    "loss_curves": loss_curves,
    "head_metrics": head_metrics,
    "head_correlation_cerberus": head_correlation_cerberus,
    "head_correlation_replicated": head_correlation_replicated,
    "diversity_over_steps": diversity,
    "agreement_cerberus": agreement_cerberus,
    "agreement_replicated": agreement_replicated,
    "results": results,
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
