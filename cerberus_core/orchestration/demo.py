"""`make demo`: CERBERUS trained here, in minutes, from the strongest committed teachers, beside
the committed multi-seed programme.

The demo trains one student: CERBERUS B5 3H1 on MiniLM-L6, one head per teacher of the v2
programme (MiniLM-L3, MiniLM-L6, MPNet-base; `artifacts/v2/teacher_scores`), with the v2 recipe
(`presets.PRESETS["v2"]`: alpha 1, T 2, length-grouped batches, the best of 2 dev evaluations per
epoch kept) at seed 0. It differs from the committed runs only in what a CPU budget forces, and it
prints those differences (`recipe_differences`): bf16 autocast where the CPU has it (the committed
runs are fp32), and 1 epoch instead of 2 where it does not (fp32 is about twice as slow). Then it
prints its test metrics beside every committed v2 student's mean ± sd over seeds, its heads'
diversity beside the committed CERBERUS's and the separate students', which teacher each head is
closest to, saves one figure (`demo.png`) and points to the claims. Outputs go to .cache/demo (not
tracked); a second run reuses them (load-or-train).
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..results import analysis as an
from ..results import artifacts
from ..training.config import TrainConfig
from ..errors import InputError
from ..results.metrics import with_interval
from .presets import PRESETS
from ..provenance import REPO
from .pipeline import ensure_trained
from .reports import separate_students
from ..model.precision import supports

V2 = REPO / "artifacts" / "v2"
OUT = REPO / ".cache" / "demo"
MINUTES_PER_EPOCH = {"bf16": 3.5, "no": 7.0}  # B5 3H1 on WikiQA train, 2 idle CPU cores, length-grouped
COMPARED = ("gold", "single-minilm-l3", "single-minilm-l6", "single-mpnet-base", "ensemble", "replicated-mpnet-base",
            "cerberus")


def demo_precision() -> str:
    """bf16 autocast where the CPU (or GPU) has it, else "auto" (fp32 on a CPU)."""
    return "bf16" if supports("bf16") else "auto"


def demo_epochs(precision: str) -> int:
    """2 epochs (the committed recipe) with bf16; 1 without, to stay within the demo's budget."""
    return 2 if precision == "bf16" else 1


def demo_config(out: Path, preset: str = "v2", root: Path = V2, epochs: int | None = None,
                precision: str | None = None, seed: int = 0) -> TrainConfig:
    """The preset's CERBERUS student (its common and student settings, one head per teacher), with
    the demo's precision and epochs; teacher tables relative to the run folder, like every run's."""
    spec = PRESETS[preset]
    precision = precision or demo_precision()
    values = {**spec.common, **spec.student, "mixed_precision": precision,
              "epochs": epochs or demo_epochs(precision)}
    tables = [os.path.relpath(artifacts.teacher_scores_dir(root, t), out / "cerberus") for t in spec.teachers]
    return TrainConfig(name="demo-cerberus", strategy="cerberus", num_heads=len(tables), teachers=tables, seed=seed,
                       **values)


def committed_config(root: Path, name: str = "cerberus", seed: int = 0) -> TrainConfig | None:
    path = artifacts.config_path(artifacts.seed_run(root, "students", name, seed))
    return TrainConfig.from_file(path) if path.is_file() else None


def recipe_differences(demo: TrainConfig, committed: TrainConfig | None) -> list[str]:
    """The fields in which the demo's config differs from the committed run's (name and teacher
    paths aside: they differ by place only), as "field: demo X, committed Y"."""
    if committed is None:
        return ["(no committed run to compare with)"]
    ours, theirs = dataclasses.asdict(demo), dataclasses.asdict(committed)
    said = {"auto": "'auto' (fp32 on a CPU, bf16 autocast on a GPU)", "bf16": "'bf16' (bf16 autocast)"}
    show = lambda k, v: said.get(v, repr(v)) if k == "mixed_precision" else repr(v)  # noqa: E731
    return [f"{k}: demo {show(k, ours[k])}, committed {show(k, theirs[k])}" for k in ours
            if k not in ("name", "teachers") and ours[k] != theirs[k]]


def seed_summary(root: Path, names: Sequence[str] = COMPARED) -> dict[str, dict[str, Any]]:
    """Per student: test P@1/MAP/MRR and head diversity over its finished seeds (mean, sd, n), from
    each seed's committed metrics.json; a one-seed results folder's flat run counts as one seed."""
    runs = artifacts.finished_seed_runs(root, "students")
    found = {}
    for name in names:
        folders = [p for n, _, p in runs if n == name]
        if not folders and artifacts.is_finished(artifacts.run_dir(root, "students", name)):
            folders = [artifacts.run_dir(root, "students", name)]
        metrics = [artifacts.read_metrics(p) for p in folders]
        if not metrics:
            continue
        entry = {k: an.mean_sd([m["test"]["pooled"][k] for m in metrics]) for k in an.METRICS}
        diversity = [m.get("head_diversity", {}) for m in metrics]
        for key in ("specialization", "head_head_r", "head_top1_disagreement"):
            values = [d[key] for d in diversity if key in d]
            if values:
                entry[key] = an.mean_sd(values)
        found[name] = entry
    return found


def head_report(run_dir: Path, root: Path, teachers: Sequence[str], split: str = "test") -> dict[str, Any]:
    """The demo student's heads on `split`: `analysis.run_head_diversity` against its own teachers
    (in head order), the (head x teacher) Pearson r of the margins and each head's closest teacher."""
    student = artifacts.load_run(run_dir)[split]
    tables = [artifacts.load_teacher_tables(root, split)[t] for t in teachers]
    found = an.run_head_diversity(student, tables)
    heads = student.head_columns()
    _, head_matrix = an.score_matrix(student, heads)
    _, teacher_matrix = an.score_matrix({t: tab for t, tab in zip(teachers, tables)}, "score", reference=student)
    agreement = an.agreement_matrix(head_matrix, teacher_matrix, student.qids)
    return {**found, "agreement": agreement, "heads": heads, "teachers": list(teachers),
            "closest": [teachers[int(np.argmax(row))] for row in agreement],
            "own_teacher_closest": an.own_teacher_is_closest(agreement)}


def _cell(summary: Mapping[str, Any], digits: int = 3) -> str:
    return f"{summary['mean']:.{digits}f}" + (f" ± {summary['sd']:.{digits}f}" if summary["n"] > 1 else "")


def results_table(trained: Mapping[str, Any], summary: Mapping[str, Mapping[str, Any]], root: Path,
                  teachers: Sequence[str], epochs: int) -> str:
    """Markdown: the committed teachers (one run each), every committed student over its seeds, then the demo."""
    from ..reporting.names import model_name, teacher_name

    lines = ["| model | seeds | test P@1 | test MAP | test MRR |", "|---|---|---|---|---|"]
    for t in teachers:
        m = artifacts.read_metrics(artifacts.run_dir(root, "teachers", t))
        if m:
            lines.append(f"| teacher {teacher_name(t)} (committed) | 1 | "
                         + " | ".join(f"{m['test']['pooled'][k]:.3f}" for k in an.METRICS) + " |")
    for name, entry in summary.items():
        lines.append(f"| {model_name(name)} (committed) | {entry['map']['n']} | "
                     + " | ".join(_cell(entry[k]) for k in an.METRICS) + " |")
    pooled = trained["test"]["pooled"]
    lines.append(f"| **this demo: CERBERUS, {epochs} epoch{'s' if epochs > 1 else ''}** | 1 | "
                 + " | ".join(with_interval(pooled, k) for k in an.METRICS) + " |")
    return "\n".join(lines)


def diversity_table(heads: Mapping[str, Any], summary: Mapping[str, Mapping[str, Any]],
                    separate: Mapping[int, Mapping[str, float]]) -> str:
    """The demo's head diversity on test beside the committed CERBERUS, the replicated control and
    the separate students (one single-teacher student per teacher, as heads), over seeds."""
    from ..reporting.names import model_name

    keys = ("specialization", "head_head_r", "head_top1_disagreement")
    lines = ["| heads of | seeds | S | head-head r | top-1 disagreement |", "|---|---|---|---|---|",
             "| **this demo** | 1 | " + " | ".join(f"{heads[k]:.3f}" for k in keys) + " |"]
    for name in ("cerberus", "replicated-mpnet-base"):
        entry = summary.get(name, {})
        if all(k in entry for k in keys):
            lines.append(f"| {model_name(name)} (committed) | {entry['specialization']['n']} | "
                         + " | ".join(_cell(entry[k]) for k in keys) + " |")
    if separate:
        lines.append(f"| separate students (committed) | {len(separate)} | "
                     + " | ".join(_cell(an.mean_sd([v[k] for v in separate.values()])) for k in keys) + " |")
    return "\n".join(lines)


def closest_lines(heads: Mapping[str, Any]) -> list[str]:
    from ..reporting.names import head_name, teacher_name

    out = []
    for i, (row, closest) in enumerate(zip(heads["agreement"], heads["closest"])):
        rs = ", ".join(f"{teacher_name(t)} {r:.3f}" for t, r in zip(heads["teachers"], row))
        out.append(f"- {head_name(i, heads['teachers'][i])}: closest to {teacher_name(closest)} (r with each teacher: {rs})")
    own = sum(heads["own_teacher_closest"])
    out.append(f"{own} of {len(out)} heads are closest to their own teacher"
               + ("" if own == len(out) else " (a head can sit nearest a teacher other than its own, such as one "
                                             "that shares the student's pretrained encoder; notebook 06 reads this "
                                             "per teacher and over seeds)"))
    return out


def plot_demo(trained: Mapping[str, Any], heads: Mapping[str, Any], root: Path, names: Sequence[str] = COMPARED) -> Any:
    """Two panels: test MAP of every committed student at every seed (dots, mean bar) with the demo's
    point, and the demo's (head x teacher) Pearson r of the margins on test."""
    import matplotlib.pyplot as plt

    from ..reporting.names import CERBERUS_COLOR, head_name, model_color, model_name, teacher_name

    runs = artifacts.finished_seed_runs(root, "students")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.2), gridspec_kw={"width_ratios": [1.5, 1]})
    shown = [n for n in names if any(r[0] == n for r in runs)]
    for i, name in enumerate(shown):
        values = [artifacts.read_metrics(p)["test"]["pooled"]["map"] for n, _, p in runs if n == name]
        left.scatter(np.full(len(values), i), values, s=16, color=model_color(name), alpha=0.8)
        left.hlines(np.mean(values), i - 0.3, i + 0.3, color=model_color(name), lw=2)
    left.scatter([len(shown)], [trained["test"]["pooled"]["map"]], marker="*", s=140, color=CERBERUS_COLOR,
                 edgecolor="k", zorder=3)
    left.set_xticks(range(len(shown) + 1), [model_name(n) for n in shown] + ["this demo\n(CERBERUS)"], rotation=30,
                    ha="right", fontsize=8)
    left.set_ylabel(f"test MAP ({trained['test']['pooled']['n_questions']} questions)")
    left.set_title("committed v2 students: one dot per seed, bar = mean", fontsize=10)
    matrix = np.asarray(heads["agreement"])
    image = right.imshow(matrix, cmap="viridis", vmin=float(matrix.min()), vmax=float(matrix.max()))
    for (i, j), value in np.ndenumerate(matrix):
        right.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=8,
                   color="white" if value < (matrix.min() + matrix.max()) / 2 else "black")
    right.set_xticks(range(matrix.shape[1]), [teacher_name(t) for t in heads["teachers"]], fontsize=8)
    right.set_yticks(range(matrix.shape[0]), [head_name(i, t) for i, t in enumerate(heads["teachers"])], fontsize=8)
    right.set_xlabel("teacher")
    right.set_title("this demo: Pearson r, head vs teacher margins (test)", fontsize=10)
    fig.colorbar(image, ax=right, fraction=0.046, label="Pearson r")
    fig.tight_layout()
    return fig


def run_demo(out: str | Path = OUT, preset: str = "v2", root: str | Path = V2, epochs: int | None = None,
             precision: str | None = None, progress: bool = True) -> str:
    """Train (or reuse) the demo student and return the report; the figure goes to OUT/demo.png."""
    out, root = Path(out), Path(root)
    teachers = list(PRESETS[preset].teachers)
    missing = [t for t in teachers if not (artifacts.teacher_scores_dir(root, t) / "train.tsv").is_file()]
    if missing:
        raise InputError(root / artifacts.TEACHER_SCORES, f"the committed teacher score tables of {missing} are "
                                                          "missing; the demo reads them")
    cfg = demo_config(out, preset, root, epochs, precision)
    committed = committed_config(root)
    minutes = MINUTES_PER_EPOCH.get("bf16" if cfg.mixed_precision == "bf16" else "no", 7.0) * cfg.epochs
    print(f"CERBERUS demo: B{cfg.body_layers} {cfg.num_heads}H{cfg.head_layers} on {cfg.backbone}, one head per teacher ({', '.join(teachers)}; tables in "
          f"{_shown(root)}), {cfg.epochs} epoch(s) on WikiQA train, about {minutes:.0f} min on 2 idle CPU cores "
          f"(much less on a GPU). Outputs: {_shown(out)}", flush=True)
    start = time.perf_counter()
    trained = ensure_trained(cfg, out / "cerberus", progress=progress)
    print(f"trained (or reused) in {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    return demo_report(out / "cerberus", trained, cfg, committed, root, teachers, out / "demo.png")


def demo_report(run_dir: Path, trained: Mapping[str, Any], cfg: TrainConfig, committed: TrainConfig | None,
                root: Path, teachers: Sequence[str], figure: Path) -> str:
    """The report of a trained demo student (its run folder and metrics) against the committed
    programme under `root`; saves the figure to `figure`."""
    import matplotlib.pyplot as plt

    summary = seed_summary(root)
    seeds = sorted({s for n, s, _ in artifacts.finished_seed_runs(root, "students") if n == "cerberus"})
    separate = separate_students(root, seeds) if seeds else {}
    heads = head_report(run_dir, root, teachers)
    fig = plot_demo(trained, heads, root)
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=120)
    plt.close(fig)
    n = trained["test"]["pooled"]["n_questions"]
    differences = recipe_differences(cfg, committed)
    one_epoch = committed is not None and cfg.epochs < committed.epochs
    cer = summary.get("cerberus")
    where = ""
    if cer and cer["map"]["n"] > 1:
        inside = abs(trained["test"]["pooled"]["map"] - cer["map"]["mean"]) <= 2 * cer["map"]["sd"]
        where = (f"This demo's test MAP {trained['test']['pooled']['map']:.3f} is {'inside' if inside else 'outside'} "
                 f"2 sd of the committed CERBERUS seeds' mean ({_cell(cer['map'])}).")
    parts = [
        f"## The demo beside the committed programme ({_shown(root)})", "",
        f"WikiQA clean test, {n} questions. Committed students: mean ± sd over their seeds (each seed's "
        "metrics.json); this demo: one seed, with its 95% bootstrap interval over questions.", "",
        results_table(trained, summary, root, teachers, cfg.epochs), "",
        where,
        "How the demo's recipe differs from the committed CERBERUS (seed 0): "
        + ("; ".join(differences) if differences else "it does not") + ".",
        *(["One epoch is half the committed recipe: expect a lower MAP and heads that have specialised less "
           "(specialization grows with training); the committed 2-epoch numbers are the reference."] if one_epoch else []),
        "", "## The heads (test)", "",
        "S: specialization (each head's r with its own teacher minus its mean r with the other teachers; about 0 "
        "for heads that learned the same thing); r: mean head-head Pearson r of the margins; top-1: share of "
        "questions where two heads put different candidates first (mean over head pairs).", "",
        diversity_table(heads, summary, separate), "",
        "Which teacher each head is closest to (Pearson r of the margins on test):", *closest_lines(heads), "",
        f"Figure: {_shown(figure)}", "",
        "Next: `python -m cerberus_core claims --root artifacts/v2` tests the paper's claims over the 5 committed "
        "seeds (paired tests, Holm-corrected); docs/results.md reads them; `make lab` opens the notebooks.",
    ]
    return "\n".join(p for p in parts if p is not None)


def _shown(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
