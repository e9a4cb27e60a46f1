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
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import analysis as an
from . import plotting as pl
from .metrics import ranking_metrics
from .scores import ScoreTable

REPO = Path(__file__).resolve().parents[1]
SPLIT = "test"  # figures describe the held-out split; dev is used only for the training traces
CORRELATION = "pearson"


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


Drawn = tuple[Any, dict[str, Any], dict[str, Any]]  # (matplotlib Figure, data shown, parameters)


# --------------------------------------------------------------------------- figures
def teacher_correlation(art: Artifacts) -> Drawn:
    tables = art.teacher_tables()
    if len(tables) < 2:
        raise Missing("fewer than two teachers scored")
    names, margins = an.score_matrix(tables)
    ref = next(iter(tables.values()))
    corr = an.pairwise_correlation(margins, CORRELATION)
    gain = an.ensemble_gain(ref.qids, ref.labels, margins, names)
    fig = pl.plot_correlation_heatmap(corr, names, f"Teacher score correlation ({SPLIT}, {CORRELATION})")
    data = {"names": names, "correlation": corr,
            "top1_disagreement": an.top1_disagreement(ref.qids, margins, ref.cand_idx),
            "ambiguity": an.ambiguity(an.to_probability(margins)), "ensemble_gain": gain}
    return fig, data, {"split": SPLIT, "method": CORRELATION, "scores": "teacher logit margins"}


def loss_curves(art: Artifacts) -> Drawn:
    run = art.run("students", "cerberus")
    if not run["curve"]:
        raise Missing("students/cerberus has no curve.tsv")
    fig = pl.plot_loss_curves(run["curve"])
    return fig, {"curve": run["curve"]}, {"run": "students/cerberus", "smoothing": "running mean, ~1/40 of the steps"}


def head_metrics(art: Artifacts) -> Drawn:
    run = art.run("students", "cerberus")
    metrics = run["metrics"][SPLIT]
    teacher_metrics = {t: art.run("teachers", t)["metrics"][SPLIT]["pooled"] for t in art.names("teachers")}
    labels = art.head_labels(run, sorted((k for k in metrics if k.startswith("head")), key=lambda k: int(k[4:])))
    title = f"CERBERUS {run['metrics']['model']}: pooled vs heads vs teachers ({SPLIT})"
    fig = pl.plot_head_metrics(metrics, teacher_metrics, labels, title=title)
    data = {"student": metrics, "teachers": teacher_metrics, "head_labels": labels}
    return fig, data, {"split": SPLIT, "ci": "95% bootstrap over questions"}


def _head_correlation(art: Artifacts, name: str) -> Drawn:
    run = art.run("students", name)
    heads, margins = an.score_matrix(art.table(run))
    corr = an.pairwise_correlation(margins, CORRELATION)
    fig = pl.plot_correlation_heatmap(corr, heads, f"{name}: head correlation ({SPLIT}, {CORRELATION})", vmin=0.0)
    params = {"run": f"students/{name}", "split": SPLIT, "method": CORRELATION}
    return fig, {"names": heads, "correlation": corr}, params


def head_correlation_cerberus(art: Artifacts) -> Drawn:
    return _head_correlation(art, "cerberus")


def head_correlation_replicated(art: Artifacts) -> Drawn:
    return _head_correlation(art, art.replicated())


def diversity(art: Artifacts) -> Drawn:
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
    fig = pl.plot_diversity_over_steps(runs, teacher_level=level)
    return fig, {"runs": runs, "teachers": names, "teacher_level": level}, {
        "split": "dev", "probabilities": "sigmoid(head margin), T=1", "correlation": CORRELATION}


def _agreement(art: Artifacts, name: str) -> Drawn:
    run = art.run("students", name)
    table = art.table(run)
    heads, head_margins = an.score_matrix(table)
    teachers, teacher_margins = an.score_matrix(art.teacher_tables(), reference=table)
    matrix = an.agreement_matrix(head_margins, teacher_margins, table.qids, CORRELATION, table.cand_idx)
    head_labels = art.head_labels(run, heads)
    data = {"heads": head_labels, "teachers": teachers, "agreement": matrix}
    if run["config"]["strategy"] == "cerberus" and teachers == art.teacher_names(run):
        data["own_teacher_is_closest"] = an.own_teacher_is_closest(matrix)
    fig = pl.plot_agreement_matrix(matrix, head_labels, teachers, name, measure=f"{CORRELATION} r")
    return fig, data, {"run": f"students/{name}", "split": SPLIT, "method": CORRELATION}


def agreement_cerberus(art: Artifacts) -> Drawn:
    return _agreement(art, "cerberus")


def agreement_replicated(art: Artifacts) -> Drawn:
    return _agreement(art, art.replicated())


def _teacher_ensemble(art: Artifacts) -> list[dict[str, Any]]:
    """The mean-probability ensemble of the teachers' cached margins, as the results table scores it."""
    try:
        ref, probs = art.teacher_ensemble()
    except Missing:
        return []
    return [{**r, "role": "ensemble"} for r in an.metrics_frame({an.TEACHER_ENSEMBLE: probs}, ref.qids, ref.labels)]


def results(art: Artifacts) -> Drawn:
    """Every teacher, the teacher ensemble and every student, with CIs; paired tests vs CERBERUS in the sidecar."""
    rows, tables = [], {}
    for kind, role in (("teachers", "teacher"), ("students", "student")):
        for name in art.names(kind):
            run = art.run(kind, name)
            rows.append({"name": name, "role": role, **run["metrics"][SPLIT]["pooled"]})
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
    fig = pl.plot_metric_bars(rows, title=f"All models ({SPLIT}, 95% CI)")
    params = {"split": SPLIT, "ci": "95% bootstrap over questions", "paired_test": "permutation on per-question AP"}
    return fig, data, params


def ablation(art: Artifacts) -> Drawn:
    """The runs of `reproduce --ablation` (ROOT/ablation/) beside the main ones: quality against the
    number of heads (single-<t> is 1 head, students/cerberus all k) and against the body/head split."""
    if not art.names("ablation"):
        raise Missing("no finished run under ablation/")
    main = art.run("students", "cerberus")
    heads, split = "number of heads (one teacher each)", "body/head split (same depth)"

    def row(run: dict[str, Any], panel: str, x: int, name: str) -> dict[str, Any]:
        return {"panel": panel, "x": x, "name": name, **run["metrics"][SPLIT]["pooled"]}

    rows = []
    for name in art.names("students", "single-*"):
        run = art.run("students", name)
        rows.append(row(run, heads, 1, art.teacher_names(run)[run["config"]["teacher_index"]]))
    for run in [art.run("ablation", n) for n in art.names("ablation")] + [main]:
        cfg = run["config"]
        if cfg["head_layers"] == main["config"]["head_layers"]:
            rows.append(row(run, heads, cfg["num_heads"], "+".join(art.teacher_names(run))))
        if cfg["num_heads"] == main["config"]["num_heads"]:
            rows.append(row(run, split, cfg["head_layers"], run["metrics"]["model"]))
    params = {"split": SPLIT, "metric": "map", "x": {heads: "num_heads", split: "head_layers"}}
    return pl.plot_ablation(rows), {"rows": rows}, params


def pareto(art: Artifacts) -> Drawn:
    """Test MAP against the latency in bench.json, for every row that names a run or the teacher ensemble."""
    path = art.root / "bench.json"
    if not path.is_file():
        raise Missing("no bench.json")
    bench = json.loads(path.read_text(encoding="utf-8"))
    rows = bench["rows"] if isinstance(bench, dict) else bench
    points, names, unmatched = [], [], []
    for row in rows:
        name = an.run_of(row["name"], art.root)
        if name is None:
            unmatched.append(row["name"])
            continue
        points.append((row["latency_ms"], art.quality(name)))
        names.append(name)
    if not points:
        raise Missing(f"no bench.json row names a finished run ({unmatched})")
    front = an.pareto_front(points)
    data = {"names": names, "latency_ms": [p[0] for p in points], "map": [p[1] for p in points],
            "front": [names[i] for i in front], "unmatched": unmatched}
    params = {"split": SPLIT, "cost": "median latency per question (bench.json)",
              "teacher ensemble": "mean probability of the teachers' cached scores"}
    return pl.plot_pareto(points, names, front), data, params


FIGURES: dict[str, Callable[[Artifacts], Drawn]] = {
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
