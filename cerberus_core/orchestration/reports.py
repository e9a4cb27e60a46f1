"""The Markdown tables `reproduce` writes: the results of a preset (over seeds for a multi-seed
programme, with the heads' diversity), whether its teachers' ensemble beats its best member, and
the recipe sweep on dev."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..provenance import code_version
from ..results import artifacts, reader
from ..results.analysis import format_mean_sd, pairwise_correlation, score_matrix, teacher_ensemble, top1_disagreement
from ..results.metrics import PER_QUESTION_KEY, paired_test, ranking_metrics, with_interval
from ..results.scores import ScoreTable
from ..reporting.claims import format_p
from .presets import Preset, ablation_configs, student_configs


def seed_runs(preset: Preset, root: Path, best: str) -> list[tuple[str, str, int, dict[str, Any]]]:
    """(role, name, seed, metrics) of every finished student and ablation seed under `root`, in the
    order of the preset's comparison, then by seed."""
    order = [*student_configs(preset, root, best, 0), *ablation_configs(preset, root, 0)]
    found = [(role, name, seed, artifacts.read_metrics(run)) for kind, role in (("students", "student"), ("ablation", "ablation"))
             for name, seed, run in artifacts.finished_seed_runs(root, kind)]
    return sorted(found, key=lambda r: (r[0] != "student", order.index(r[1]) if r[1] in order else len(order), r[1], r[2]))


def separate_students(root: Path, seeds: list[int]) -> dict[int, dict[str, float]]:
    """Seed -> `Artifacts.separate_students` on test, for the seeds where CERBERUS and every one of
    its single-teacher students have finished."""
    found = {}
    for seed in seeds:
        try:
            found[seed] = reader.Artifacts(root, seed).separate_students("test")
        except reader.Missing:
            continue
    return found


def seeds_markdown(runs: list[tuple[str, str, int, dict[str, Any]]],
                   separate: dict[int, dict[str, float]] | None = None) -> str:
    """Every student over its seeds (mean ± sample sd; per-seed rows follow in results.md), and the
    head diversity on test of every multi-head student at every seed, with, as their reference, the
    single-teacher students of each seed taken together as heads (`separate`, by seed). The claims,
    with paired tests across seeds, come from the `claims` command."""
    groups: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for role, name, seed, metrics in runs:
        groups.setdefault((role, name), []).append((seed, metrics))
    lines = ["## Over seeds (mean ± sd)", "",
             "| role | model | seeds | dev MAP | test P@1 | test MAP | test MRR |", "|---|---|---|---|---|---|---|"]
    for (role, name), found in groups.items():
        test = [m["test"]["pooled"] for _, m in found]
        lines.append(f"| {role} | {name} | {len(found)} | {format_mean_sd([m['dev']['pooled']['map'] for _, m in found], 4)} | "
                     + " | ".join(format_mean_sd([t[k] for t in test], 4) for k in ("p@1", "map", "mrr")) + " |")
    lines += ["", "## Head diversity on test, every seed", "",
              "S: specialization (each head's r with its own teacher minus its mean r with the others); r: mean "
              "head-head Pearson r of the logit margins; top-1: mean head-head top-1 disagreement.", "",
              "| role | model | seed | S | head-head r | top-1 disagreement |", "|---|---|---|---|---|---|"]
    for (role, name), found in groups.items():
        for seed, metrics in found:
            if "head_diversity" in metrics:
                d = metrics["head_diversity"]
                s = f"{d['specialization']:.4f}" if d.get("specialization") is not None else "-"
                lines.append(f"| {role} | {name} | {seed} | {s} | {d['head_head_r']:.4f} | "
                             f"{d['head_top1_disagreement']:.3f} |")
    for seed, d in (separate or {}).items():
        lines.append(f"| reference | single-teacher students as heads (a body each) | {seed} | {d['specialization']:.4f} | "
                     f"{d['head_head_r']:.4f} | {d['head_top1_disagreement']:.3f} |")
    return "\n".join(lines) + "\n"


def result_row(role: str, name: str, metrics: dict[str, Any], column: str = "pooled") -> tuple:
    """(role, name, parameters, test metrics, dev MAP) of one scorer: a run's pooled score or a head."""
    params = metrics.get("parameters") if column == "pooled" else None
    return role, name, params, metrics["test"][column], metrics["dev"][column]["map"]


def results_markdown(rows: list[tuple], preset: Preset, best: str, summary: str = "") -> str:
    """The header, the summary over seeds of a multi-seed preset, then one row per run (and head)."""
    n = rows[0][3]["n_questions"]
    lines = [
        f"Preset `{preset.name}`: test, {n} questions (dev MAP: where models are chosen), metric policy `none` on the "
        f"`{preset.common.get('eval_filter', 'clean')}`-filtered split; "
        f"95% bootstrap intervals over questions. Replicated teacher (best on dev): {best}. "
        f"Code {code_version()}.",
        "",
        *([summary, "## Every run", ""] if summary else []),
        "| role | model | params (M) | dev MAP | test P@1 | test MAP | test MRR |",
        "|---|---|---|---|---|---|---|",
    ]
    for role, name, params, m, dev_map in rows:
        p = f"{params / 1e6:.1f}" if params else ""
        lines.append(f"| {role} | {name} | {p} | {dev_map:.4f} | {with_interval(m, 'p@1')} | {with_interval(m, 'map')} | "
                     f"{with_interval(m, 'mrr')} |")
    return "\n".join(lines) + "\n"


def sweep_markdown(root: Path, preset: Preset) -> str:
    """The sweep on dev, where the recipe is chosen: pooled MAP and the heads' diversity."""
    found = reader.Artifacts(root).sweep_points("dev")
    teachers = found["teachers"]
    lines = [f"Recipe sweep of preset `{preset.name}` on dev (the recipe is chosen here, never on test): "
             "CERBERUS, one seed. S: specialization; r: mean head-head Pearson r of the logit margins; "
             f"top-1: mean head-head top-1 disagreement. The teachers' own r is {teachers['teacher_teacher_r']:.3f} "
             f"(S = {1 - teachers['teacher_teacher_r']:.3f} if each head equalled its teacher), their top-1 "
             f"disagreement {teachers['teacher_top1_disagreement']:.3f}. Code {code_version()}.", "",
             "| recipe | changes | dev MAP | S | head-head r | top-1 disagreement |", "|---|---|---|---|---|---|"]
    for p in found["points"]:
        changes = (", ".join(f"{k}={v}" for k, v in preset.sweep[p["name"]].items()) or "(default)"
                   if p["name"] in preset.sweep else "(not in the preset's sweep)")
        lines.append(f"| {p['name']} | {changes} | {p['map']:.4f} | {p['specialization']:.4f} | "
                     f"{p['head_head_r']:.4f} | {p['head_top1_disagreement']:.3f} |")
    return "\n".join(lines) + "\n"


PERMUTATIONS = 10000  # the premise's paired test; its p cannot go below 2 / (N + 1)


def premise_markdown(root: Path, teachers: list[str], seed: int = 0) -> str:
    """Whether the teachers' ensemble (mean probability) beats its best member, the premise
    CERBERUS rests on: judged on dev, where the best member is chosen, and shown on test; with how
    alike the teachers rank (mean pairwise Pearson r of the margins, top-1 disagreement). The p is
    a paired permutation test over questions of the ensemble's AP against the best member's."""
    if len(teachers) < 2:
        return ""
    lines = ["## The premise: does the teachers' ensemble beat its best member?", "",
             "| split | best teacher on dev | its MAP | ensemble MAP | difference | p (permutation) | "
             "teacher-teacher r | top-1 disagreement |", "|---|---|---|---|---|---|---|---|"]
    best = None
    for role in ("dev", "test"):
        tables = {t: ScoreTable.load(artifacts.teacher_scores_dir(root, t) / f"{role}.tsv") for t in teachers}
        ref, probs = teacher_ensemble(tables)
        _, margins = score_matrix(tables, "score", reference=ref)
        per_map = PER_QUESTION_KEY["map"]
        ap = {t: ranking_metrics(ref.qids, ref.labels, margins[:, i], cand_idx=ref.cand_idx)["per_question"][per_map]
              for i, t in enumerate(teachers)}
        ensemble = ranking_metrics(ref.qids, ref.labels, probs, cand_idx=ref.cand_idx)["per_question"][per_map]
        best = best or max(teachers, key=lambda t: float(np.mean(ap[t])))
        test = paired_test(ensemble, ap[best], n_resamples=PERMUTATIONS, seed=seed)
        r = pairwise_correlation(margins)
        top1 = top1_disagreement(ref.qids, margins, ref.cand_idx)
        off = ~np.eye(len(teachers), dtype=bool)
        lines.append(f"| {role} | {best} | {np.mean(ap[best]):.4f} | {np.mean(ensemble):.4f} | "
                     f"{test['diff']:+.4f} | {format_p(test['p_value'], test['p_value'], 2 / (PERMUTATIONS + 1))} | {r[off].mean():.3f} | {top1[off].mean():.3f} |")
    return "\n".join(lines) + "\n"
