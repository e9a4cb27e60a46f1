"""What `make figures` writes besides the per-figure builders of `figures`: the forest plot of the
claims, the cost figure (quality over seeds against parameters and latency), the LaTeX tables
(booktabs) made from the same data, and the gallery page (each figure with its caption).
"""
from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..results import analysis as an
from . import plotting as pl
from ..results.artifacts import BENCH, CLAIMS, DATASET_NAMES, SPLIT, finished_seed_runs
from ..results.reader import Artifacts, Missing, run_of
from ..atomic import write_text_atomic
from .figures_seeds import caption_params, is_flat, reader, seeds_of, seeds_text, student_names, where
from .names import (CERBERUS_COLOR, CERBERUS_VARIANT_COLOR, TEACHER_ENSEMBLE_COLOR, TEACHER_ENSEMBLE_NAME, model_color,
                    model_name, teacher_color, teacher_name)

FigureAndData = tuple[Any, dict[str, Any], dict[str, Any]]


# --------------------------------------------------------------------------- claims
def _claims(art: Artifacts) -> dict[str, Any]:
    path = art.root / CLAIMS
    if not path.is_file():
        raise Missing(f"no {CLAIMS}")
    return json.loads(path.read_text(encoding="utf-8"))


def _opponent(key: str) -> str:
    return f"{teacher_name(key.removeprefix('teacher-'))} (teacher)" if key.startswith("teacher-") else model_name(key)


def claim_rows(claims: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(tested rows, untested claims): per tested claim the difference and 95% interval drawn, from
    its seed-aware test where it has one ("seed_aware"), else the question-pooled one; the verdict."""
    rows, untested = [], []
    for c in claims["claims"]:
        if c.get("verdict") == "not tested" or "ci95" not in c:
            untested.append(c)
            continue
        seed_aware = c.get("seed_aware") or {}
        metric = "map" if c.get("test") == "map" else "specialization"
        pooled = {"delta": c.get(f"delta_{metric}"), "ci": c["ci95"], "p": c.get("p_holm_display", "")}
        use = {"delta": seed_aware.get(f"delta_{metric}", seed_aware.get("delta")), "ci": seed_aware.get("ci95"),
               "p": seed_aware.get("p_holm_display", "")} if seed_aware.get("ci95") else pooled
        dataset = DATASET_NAMES.get(c.get("dataset"), c.get("dataset", ""))
        seeds = f"{c.get('n_seeds')} seed{'s' if c.get('n_seeds') != 1 else ''}"
        rows.append({"claim": c["id"], "dataset": dataset, "metric": metric,
                     "label": f"{dataset}, {seeds}, claim {c['id']}: vs {_opponent(c['b'])}",
                     "panel": metric, "verdict": c.get("verdict"), "method": seed_aware.get("method", "pooled over "
                                                                                            "questions"),
                     "seed_aware": bool(seed_aware.get("ci95")), "n_seeds": c.get("n_seeds"),
                     "n_questions": c.get("n_questions"), "statement": c["statement"], **use,
                     "pooled": pooled, "verdict_pooled": c.get("verdict_pooled")})
        if not rows[-1]["seed_aware"] and c.get("verdict_pooled") and c.get("verdict") != c.get("verdict_pooled"):
            # no seed-aware test (one seed): the verdict is "not tested over seeds"; show the pooled one
            rows[-1]["style"] = "pooled only"
            rows[-1]["note"] = f"pooled: {c['verdict_pooled']}, p {pooled['p']}"
    return rows, untested


def claims_forest(art: Artifacts) -> FigureAndData:
    """The claims as a forest plot: per comparison the difference, its 95% interval and the verdict."""
    claims = _claims(art)
    rows, untested = claim_rows(claims)
    if not rows:
        raise Missing(f"no tested claim in {CLAIMS}")
    first = {d: i for i, d in enumerate(dict.fromkeys(r["dataset"] for r in rows))}  # the file's order: main first
    rows.sort(key=lambda r: (r["metric"] != "map", first[r["dataset"]], r["claim"]))
    fig = pl.plot_forest(rows, xlabels={"map": "difference in test MAP, CERBERUS − the model named",
                                        "specialization": "difference in specialization S, CERBERUS − the model "
                                                          "named"})
    aware = sum(r["seed_aware"] for r in rows)
    per_dataset = {d: sorted({r["n_seeds"] for r in rows if r["dataset"] == d and r["n_seeds"]})
                   for d in dict.fromkeys(r["dataset"] for r in rows)}
    pooled_only = [r for r in rows if r.get("style") == "pooled only"]
    method = (f"seed-aware test ({claims.get('seed_aware_method', 'over seeds')}; "
              f"{claims.get('seed_aware_correction', 'Holm')}) for the {aware} rows with several seeds; "
              f"the others: 95% bootstrap over questions and a paired permutation test, "
              f"{claims.get('correction', 'Holm')}" if aware else
              f"95% bootstrap over questions, paired permutation test, {claims.get('correction', 'Holm')}")
    seeds = "; ".join(f"{d}: {'/'.join(map(str, n))} seed{'s' if n != [1] else ''} per model"
                      for d, n in per_dataset.items())
    caption = (f"The claims as paired comparisons on the test sets ({seeds}): the difference, "
               f"CERBERUS minus the other model, with its 95% interval, and the verdict with its Holm-corrected p "
               f"(alpha {claims.get('alpha', 0.05)}); intervals and p: {method}. Filled diamond: supported; filled "
               f"square: contradicted; open circle: not supported"
               + (f"; grey triangle: one seed, so not tested over seeds: the question-pooled test and its verdict "
                  f"({len(pooled_only)} rows)" if pooled_only else "")
               + ". A verdict can need more than the interval (claim 5 also asks each head to be closest to its own "
                 "teacher). "
               + (f"Not tested: {'; '.join(sorted({u['statement'] for u in untested}))}." if untested else ""))
    return fig, {"rows": rows, "untested": untested}, caption_params(caption, claims=CLAIMS)


# --------------------------------------------------------------------------- cost
def _spec_architecture(art: Artifacts, spec: str) -> tuple[str, str] | str | None:
    """The (backbone, "B_b kH_h") a bench row timed, or "ensemble" for the teachers run together:
    from a run it names (`run_of`) or from an architecture spec ("minilm-l6:B5-3H1", "mpnet-base")."""
    name = run_of(spec, art.root)
    if name == an.TEACHER_ENSEMBLE or ("+" in spec and set(spec.split("+")) == set(art.names("teachers"))):
        return "ensemble"
    if name is not None:
        kind = "students" if name in art.names("students") else "teachers"
        return art.architecture(kind, name)
    backbone, _, split = spec.partition(":")
    if not split:
        return art.architecture("teachers", backbone) if backbone in art.names("teachers") else None
    b, heads = split.split("-")
    return backbone, f"{b} {heads}"


def _runs_values(art: Artifacts, kind: str, name: str) -> list[float]:
    values = []
    for s in seeds_of(art, name, kind):
        with contextlib.suppress(Missing):
            values.append(reader(art, s).run(kind, name)["metrics"][SPLIT]["pooled"]["map"])
    return values


def cost(art: Artifacts) -> FigureAndData:
    """Test MAP over seeds against parameters and latency (bench.json) for the teachers, the teacher
    ensemble, CERBERUS, its body/head splits and the ensemble-KD student (every 1-head student's cost)."""
    path = art.root / BENCH
    if not path.is_file():
        raise Missing("no bench.json")
    bench = json.loads(path.read_text(encoding="utf-8"))
    rows = bench["rows"] if isinstance(bench, dict) else bench
    conditions = bench.get("conditions", {}) if isinstance(bench, dict) else {}
    if not any(":" in r["name"] for r in rows):
        raise Missing(f"{BENCH} times runs, not architectures (NAME:B_b-kH_h): drawn by the pareto figure")
    timed = {}
    for row in rows:
        if row.get("precision", "fp32") == "fp32":
            arch = _spec_architecture(art, row["name"])
            if arch is not None:
                timed.setdefault(arch, row)
    points = []

    def add(label: str, arch: Any, values: list[float], color: str, **extra: Any) -> None:
        if arch in timed and values:
            points.append({"label": label, "gid": extra.pop("gid", label), "color": color, "values": values,
                           "architecture": arch,
                           "parameters": timed[arch]["parameters"], "latency_ms": timed[arch]["latency_ms"],
                           "bench_row": timed[arch]["name"], **extra})

    for t in art.names("teachers"):
        add(teacher_name(t), art.architecture("teachers", t), [art.quality(t)], teacher_color(t))
    with contextlib.suppress(Missing):
        add(TEACHER_ENSEMBLE_NAME, "ensemble", [art.quality(an.TEACHER_ENSEMBLE)], TEACHER_ENSEMBLE_COLOR)
    main = art.run("students", "cerberus")
    add(f"CERBERUS {main['metrics']['model']}", art.architecture("students", "cerberus"),
        _runs_values(art, "students", "cerberus"), CERBERUS_COLOR, emphasis=True, gid="CERBERUS")
    if "ensemble" in art.names("students"):
        add(f"{model_name('ensemble')} (1 head)", art.architecture("students", "ensemble"),
            _runs_values(art, "students", "ensemble"), model_color("ensemble"), gid=model_name("ensemble"))
    splits = sorted({n for n, _, _ in finished_seed_runs(art.root, "ablation")} | set(art.names("ablation")))
    split_of = {n: int(n.removeprefix("cerberus-B").split("H")[0]) for n in splits if n.startswith("cerberus-B")}
    for name in sorted(split_of, key=lambda n: -split_of[n]):  # head depth 1, 2, ...: the body shrinking
        with contextlib.suppress(Missing):
            run = reader(art, seeds_of(art, name, "ablation")[0]).run("ablation", name)
            add(f"CERBERUS {run['metrics']['model']}",
                art.architecture("ablation", name) if name in art.names("ablation") else
                (art.architecture("students", "cerberus")[0], run["metrics"]["model"]),
                _runs_values(art, "ablation", name), CERBERUS_VARIANT_COLOR)
    if len(points) < 2:
        raise Missing(f"fewer than two models of {BENCH} have a quality ({[r['name'] for r in rows]})")
    fig = pl.plot_cost(points)
    means = {p["label"]: sum(p["values"]) / len(p["values"]) for p in points}
    for p in points:
        p["mean"] = means[p["label"]]
    seeds = seeds_of(art)
    load = conditions.get("load avg")
    threads = conditions.get("threads") or 1
    under_load = bool(load) and float(str(load).split("/")[0]) > float(threads) + 0.5  # more than the bench's own
    timed_text = ", ".join(f"{k} {conditions[k]}" for k in ("device", "cpu", "threads", "dtype", "seq len",
                                                            "candidates/question") if k in conditions)
    caption = (f"Test MAP on {where(art)} against parameters (left) and latency per question (right, median of "
               f"{conditions.get('repeats', '?')} repeats; {timed_text or 'conditions not recorded'}), both on log "
               f"scales. Students: mean ± sample sd over {seeds_text(seeds, is_flat(art))} (the body/head "
               f"splits: the seeds they were run at), grey dots each seed; teachers are trained once. The teacher "
               f"ensemble runs the three teachers one after another. Every 1-head student (gold labels, KD from one "
               f"teacher or from the teachers' mean) has the cost of {model_name('ensemble')}, drawn as their "
               f"representative. Black line, ringed points: the Pareto front of the means. The y axis follows the "
               f"students; a model far above or below them is a triangle at the edge with its MAP."
               + (f" Latency was measured on a shared, loaded machine (load average {load}): absolute times are "
                  f"inflated; compare them with each other." if under_load else ""))
    return fig, {"points": points, "conditions": conditions}, caption_params(
        caption, split=SPLIT, bench=BENCH, spread="sample sd over seeds")


# --------------------------------------------------------------------------- LaTeX tables
def _tex(text: str) -> str:
    return (str(text).replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%")
            .replace("_", r"\_").replace("#", r"\#").replace("<-", r"$\leftarrow$").replace("<", r"$<$"))


def _num(value: float | None, digits: int = 3) -> str:
    return "--" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def results_table(art: Artifacts) -> str:
    """Test P@1 / MAP / MRR of every student (mean ± sd over its seeds) and teacher, booktabs."""

    found: dict[str, dict[int, dict[str, float]]] = {}
    for name, seed, _ in finished_seed_runs(art.root, "students"):
        found.setdefault(name, {})[seed] = reader(art, seed).run("students", name)["metrics"][SPLIT]["pooled"]
    if not found:
        for name in art.names("students"):
            found[name] = {art.seed: art.run("students", name)["metrics"][SPLIT]["pooled"]}
    if not found:
        raise Missing("no finished student")
    seeds = sorted({s for v in found.values() for s in v})
    lines = [r"\begin{tabular}{lrccc}", r"\toprule", r"Model & Seeds & P@1 & MAP & MRR \\", r"\midrule"]
    for t in art.names("teachers"):
        m = art.run("teachers", t)["metrics"][SPLIT]["pooled"]
        cells = " & ".join(_num(m[k]) for k in ("p@1", "map", "mrr"))
        lines.append(f"{_tex(teacher_name(t))} (teacher) & -- & {cells} \\\\")
    with contextlib.suppress(Missing):
        ref, probs = art.teacher_ensemble()
        m = an.metrics_frame({an.TEACHER_ENSEMBLE: probs}, ref.qids, ref.labels)[0]
        lines.append(f"{TEACHER_ENSEMBLE_NAME} & -- & {_num(m['p@1'])} & {_num(m['map'])} & {_num(m['mrr'])} \\\\")
    lines.append(r"\midrule")
    for name in student_names(art, [n for n in found if n in art.names("students")] or list(found)):
        per = list(found[name].values())
        cells = []
        for metric in ("p@1", "map", "mrr"):
            values = [p[metric] for p in per]
            cells.append(f"{an.mean_sd(values)['mean']:.3f} $\\pm$ {an.mean_sd(values)['sd']:.3f}"
                         if len(values) > 1 else _num(values[0]))
        label = _tex(model_name(name))
        label = rf"\textbf{{{label}}}" if name == "cerberus" else label
        lines.append(f"{label} & {len(per)} & {' & '.join(cells)} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    caption = (f"Test quality on {where(art)}: students as mean $\\pm$ sample sd over {seeds_text(seeds)}"
               + ("" if len(seeds) > 1 else "") + "; teachers and their ensemble (mean probability) are trained once.")
    return _table(lines, caption, "tab:results")


def claims_table(art: Artifacts) -> str:
    claims = _claims(art)
    rows, untested = claim_rows(claims)
    lines = [r"\begin{tabular}{llrrrl}", r"\toprule",
             r"Claim & Comparison & $\Delta$ & 95\% interval & $p_\mathrm{Holm}$ & Verdict \\", r"\midrule"]
    first = {d: i for i, d in enumerate(dict.fromkeys(r["dataset"] for r in rows))}  # the file's order: main first
    for r in sorted(rows, key=lambda r: (first[r["dataset"]], r["claim"])):
        unit = "MAP" if r["metric"] == "map" else "S"
        verdict = rf"\textbf{{{r['verdict']}}}" if r["verdict"] == "supported" else _tex(r["verdict"])
        if r.get("note"):
            verdict += f" ({_tex(r['note'].split(', p ')[0])})"
        lines.append(f"{_tex(r['dataset'])} {r['claim']} & CERBERUS vs {_tex(_opponent_key(r))} ({unit}) & "
                     f"{r['delta']:+.3f} & [{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}] & {_tex(r['p'])} & {verdict} \\\\")
    for u in untested:
        lines.append(f"{_tex(DATASET_NAMES.get(u.get('dataset'), u.get('dataset', '')))} {u['id']} & "
                     f"\\multicolumn{{4}}{{l}}{{{_tex(u['statement'])}}} & not tested \\\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    aware = any(r["seed_aware"] for r in rows)
    caption = ("The claims as paired comparisons: $\\Delta$ is CERBERUS minus the other model, with its 95\\% "
               "interval and Holm-corrected p "
               + (f"from the seed-aware test ({_tex(claims.get('seed_aware_correction', 'Holm'))}) where a model has "
                  f"several seeds, else pooled over questions ({_tex(claims.get('correction', 'Holm'))}; one seed: "
                  f"not tested over seeds, the pooled verdict in brackets)." if aware else
                  f"pooled over questions (95\\% bootstrap; {_tex(claims.get('correction', 'Holm'))})."))
    return _table(lines, caption, "tab:claims", wide=True)


def _opponent_key(row: dict[str, Any]) -> str:
    return row["label"].split(": vs ", 1)[1]


def _table(lines: list[str], caption: str, label: str, wide: bool = False) -> str:
    """A booktabs table: one column wide, or across both columns (table*) when `wide`."""
    env = "table*" if wide else "table"
    return "\n".join([r"% generated by `make figures` (python -m cerberus_core.reporting.figures); needs \usepackage{booktabs}",
                      rf"\begin{{{env}}}[t]", r"\centering", r"\small", *lines, rf"\caption{{{caption}}}",
                      rf"\label{{{label}}}", rf"\end{{{env}}}", ""])


def write_tables(art: Artifacts, out_dir: str | Path) -> list[Path]:
    written = []
    for name, build in (("results_table", results_table), ("claims_table", claims_table)):
        try:
            text = build(art)
        except Missing as why:
            print(f"skip {name}: {why}")
            continue
        path = Path(out_dir) / f"{name}.tex"
        write_text_atomic(path, text)
        written.append(path)
    return written


# --------------------------------------------------------------------------- gallery
def write_gallery(out_dir: str | Path, captions: Mapping[str, tuple[str | None, Any]], artifacts: str) -> Path:
    """README.md of a figures folder: each figure (PNG, linked to its PDF) with its width and caption,
    and the LaTeX tables; renders on a code host."""
    out_dir = Path(out_dir)
    lines = [f"# Figures from `{artifacts}`", "",
             "Regenerated by `make figures` from committed artifacts. Each figure is a PDF (TrueType fonts, "
             "drawn at an ACL column width of 3.03 in or the text width of 6.3 in), a PNG preview and a JSON "
             "sidecar with the numbers drawn and the caption below.", ""]
    for name, (caption, size) in captions.items():
        width = "one column" if abs(size[0] - pl.COLUMN_WIDTH) < 0.05 else "text width"
        lines += [f"## {name}", "", f"![{name}]({name}.png)", "",
                  f"*{width}, {size[0]:.2f} x {size[1]:.2f} in; [PDF]({name}.pdf), [data]({name}.json)*", "",
                  caption or "(no caption)", ""]
    tables = sorted(p.name for p in out_dir.glob("*_table.tex"))
    if tables:
        lines += ["## LaTeX tables (booktabs)", "", *[f"- [{t}]({t})" for t in tables], ""]
    path = out_dir / "README.md"
    write_text_atomic(path, "\n".join(lines))
    return path
