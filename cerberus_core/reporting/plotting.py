"""Figures as pure functions of data: each returns a matplotlib Figure and touches no global state.

Every plot is drawn inside `style.theme()` at one of the venue widths (one ACL column, 3.03 in, or
the text width, 6.3 in), with 7-8 pt text; models and heads take their colour and display name from
`names`. Figures are built with `matplotlib.figure.Figure`, not pyplot, so nothing is registered
with a backend and nothing needs closing. `save_figure` (in `style`) is the only writer: PDF + PNG +
a JSON sidecar with the caption, the numbers shown, the parameters and the code version.

This module holds the teaching, matrix and training figures; the quality figures are in
`plots_quality` and are re-exported here, so `plotting.plot_*` names every plot.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import seaborn as sns
from matplotlib import patches
from matplotlib.figure import Figure

from ..results.analysis import candidate_distribution, to_probability
from .names import CERBERUS_COLOR, head_color
from .names import SINGLE_KD_COLOR as SEPARATE_COLOR
from .plots_quality import (NEUTRAL, _error, _log_ticks, _seed_error, _whisker, data_range, label_groups,  # noqa: F401
                            place_labels, plot_ablation, plot_cost, plot_forest, plot_head_metrics,
                            plot_metric_bars, plot_pareto, plot_seed_spread, tag)
from ..results.scores import head_names
from .style import (COLUMN_WIDTH, METRIC_LABELS, MIN_FONT, PALETTE, SAVE_METADATA, SMALL_FONT,  # noqa: F401
                    TEXT_WIDTH, colors, drawn_colors, drawn_texts, figure, save_figure, set_theme, smallest_font,
                    theme, theme_rc, themed)

_themed = themed  # the name earlier callers used


def format_count(n: int) -> str:
    """Parameter counts as people quote them: 22.71M, 1.5K, 768."""
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    return f"{n / 1e3:.1f}K" if n >= 1e3 else str(int(n))


# --------------------------------------------------------------------------- teaching figures
POSITIVE_COLOR = "#2a9d3c"  # the correct candidate's tick labels and band


def _candidate_ticks(ax, labels: np.ndarray, every: int = 5, max_all: int = 12) -> None:
    """One tick per candidate ("c3 ✓" for a correct one, in green and bold, on a green band); past
    `max_all` candidates only every `every`-th and the correct ones are labelled, so labels never overprint."""
    n = len(labels)
    shown = [i for i in range(n) if n <= max_all or labels[i] or i % every == 0]
    ax.set_xticks(shown, [f"c{i} ✓" if labels[i] else f"c{i}" for i in shown])
    for tick, i in zip(ax.get_xticklabels(), shown):
        if labels[i]:
            tick.set_color(POSITIVE_COLOR)
            tick.set_fontweight("bold")
    for i in np.flatnonzero(labels):  # a collection, not a patch: ax.patches stay the bars
        ax.fill_betweenx([0, 1], i - 0.45, i + 0.45, transform=ax.get_xaxis_transform(), color=POSITIVE_COLOR,
                         alpha=0.12, lw=0, zorder=0)


@_themed
def plot_soft_targets(margins: Sequence[float], labels: Sequence[int],
                      temperatures: Sequence[float] = (1.0, 2.0, 4.0)) -> Figure:
    """One question's teacher margins softened at several temperatures: the per-pair KD target
    sigmoid(m/T) (left) and the softmax over candidates (right). Higher T flattens both.
    The correct candidates are marked (green tick label and band)."""
    margins, labels = np.asarray(margins, dtype=float), np.asarray(labels)
    fig = Figure(figsize=(9, 3.4))
    axes = fig.subplots(1, 2)
    x = np.arange(len(margins))
    width = 0.8 / len(temperatures)
    for i, (t, c) in enumerate(zip(temperatures, colors(len(temperatures)))):
        offset = (i - (len(temperatures) - 1) / 2) * width
        axes[0].bar(x + offset, to_probability(margins, t), width, color=c, label=f"T={t:g}")
        axes[1].bar(x + offset, candidate_distribution(margins, t), width, color=c, label=f"T={t:g}")
    for ax, title in zip(axes, ("per-pair soft target sigmoid(m/T)", "softmax over the candidates")):
        _candidate_ticks(ax, labels)
        ax.set_title(title)
        ax.set_xlabel("candidate (✓ = correct)")
    axes[0].set_ylim(0, 1)
    axes[0].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[0].set_ylabel("probability of 'correct'")
    axes[1].set_ylabel("share of the question's mass")
    axes[1].legend(title="temperature")
    return fig


@_themed
def plot_architecture(parameter_counts: Mapping[str, int], config_name: str) -> Figure:
    """The B_b kH_h model as boxes: embeddings -> shared body -> k heads -> pooler, with parameters per part."""
    heads = head_names(parameter_counts)
    match = re.fullmatch(r"B(\d+) (\d+)H(\d+)", config_name)
    body_layers, head_layers = (match.group(1), match.group(3)) if match else ("?", "?")
    c = colors(4)
    k = max(len(heads), 1)
    fig = Figure(figsize=(max(6.0, 2.0 * k + 2), 5.2))
    ax = fig.add_subplot()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.axis("off")

    def box(x: float, y: float, w: float, h: float, color, text: str) -> None:
        ax.add_patch(patches.FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05,rounding_size=0.2",
                                            facecolor=(*color, 0.35), edgecolor=color, lw=1.5))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.add_patch(patches.FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12, color="0.3"))

    box(1, 0.3, 8, 1.4, c[0], f"embeddings\n{format_count(parameter_counts['embeddings'])}")
    box(1, 2.4, 8, 1.8, c[1], f"shared body: {body_layers} layers\n{format_count(parameter_counts['body_layers'])}")
    arrow(5, 1.75, 5, 2.35)
    gap = 0.3
    w = (8 - gap * (k - 1)) / k
    for i, name in enumerate(heads):
        x = 1 + i * (w + gap)
        label = f"{name}: {head_layers} layer(s)\n+ classifier\n{format_count(parameter_counts[name])}"
        box(x, 4.9, w, 1.9, c[2], label)
        arrow(x + w / 2, 4.25, x + w / 2, 4.85)
        arrow(x + w / 2, 6.85, 5, 7.55)
    pooler = parameter_counts.get("pooler", 0)
    box(3, 7.6, 4, 1.2, c[3], f"pooler\n{format_count(pooler) if pooler else 'no parameters'}")
    total = parameter_counts.get("total", sum(v for n, v in parameter_counts.items() if n != "total"))
    ax.set_title(f"{config_name}: {format_count(total)} parameters")
    return fig


@_themed
def plot_dataset_stats(stats: dict[str, Any] | Sequence[dict[str, Any]]) -> Figure:
    """Per split: questions kept by each filter policy (left), candidates per question and positive rate (right)."""
    rows = [stats] if isinstance(stats, dict) else list(stats)
    splits = [s["split"] or s["name"] for s in rows]
    policies = list(rows[0]["by_filter"])
    fig = Figure(figsize=(9, 3.4))
    axes = fig.subplots(1, 2)
    x = np.arange(len(rows))
    width = 0.8 / len(policies)
    for i, (p, c) in enumerate(zip(policies, colors(len(policies)))):
        values = [s["by_filter"][p]["questions"] for s in rows]
        bars = axes[0].bar(x + (i - (len(policies) - 1) / 2) * width, values, width, color=c, label=p)
        axes[0].bar_label(bars, fontsize=7)
    axes[0].set_xticks(x, splits)
    axes[0].set_ylabel("questions")
    axes[0].set_title("questions kept per filter policy")
    axes[0].legend(title="policy")
    bars = axes[1].bar(x, [s["mean_candidates"] for s in rows], 0.6, color=colors(1)[0])
    axes[1].bar_label(bars, labels=[f"{s['positive_rate']:.1%} pos." for s in rows], fontsize=8)
    axes[1].set_xticks(x, splits)
    axes[1].set_ylabel("candidates per question")
    axes[1].set_title("candidates and positive rate")
    return fig


# --------------------------------------------------------------------------- matrices
def decimals(values: Sequence[float] | np.ndarray, least: int = 2, most: int = 4) -> int:
    """The fewest decimals (between `least` and `most`) at which values that differ print
    differently: 0.9918 and 0.9966 need 3, 0.9664 and 0.9666 need 4."""
    values = np.unique(np.round(np.asarray(values, dtype=float).ravel(), 12))
    for d in range(least, most + 1):
        if len({f"{v:.{d}f}" for v in values}) == len(values):
            return d
    return most


def _off_diagonal(matrix: np.ndarray) -> np.ndarray:
    return matrix[~np.eye(len(matrix), dtype=bool)] if len(matrix) > 1 else matrix.ravel()


def _plain() -> mpl.ticker.ScalarFormatter:
    """Colour-bar ticks with as many decimals as tell them apart, and no offset."""
    formatter = mpl.ticker.ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    return formatter


def _heatmap(ax, matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], vmin: float, vmax: float,
             cmap: str, fmt: str, label: str, mask: np.ndarray | None = None, hidden: np.ndarray | None = None,
             colorbar: bool = True, bar_fmt: str | None = None) -> Any:
    """Annotated heatmap with a labelled colourbar; `mask`ed cells are drawn grey and still annotated,
    `hidden` cells (e.g. the upper triangle of a symmetric matrix) are left blank."""
    matrix = np.asarray(matrix, dtype=float)
    sns.heatmap(matrix, ax=ax, annot=False, cmap=cmap, vmin=vmin, vmax=vmax, mask=hidden, cbar=colorbar,
                xticklabels=list(cols), yticklabels=list(rows), square=False, linewidths=0.5, linecolor="white",
                cbar_kws={"label": label, "pad": 0.03, "aspect": 15, "fraction": 0.08,
                          "format": mpl.ticker.FormatStrFormatter(bar_fmt) if bar_fmt else _plain()})
    if colorbar:
        ax.collections[0].colorbar.locator = mpl.ticker.MaxNLocator(5)
        ax.collections[0].colorbar.update_ticks()
    ax.grid(False)
    cmap_obj, norm = mpl.colormaps[cmap], mpl.colors.Normalize(vmin, vmax)
    for (i, j), value in np.ndenumerate(matrix):
        if hidden is not None and hidden[i, j]:
            continue
        masked = mask is not None and mask[i, j]
        if masked:  # covered, so it neither takes a colour of the scale nor needs seaborn's mask
            ax.add_patch(patches.Rectangle((j, i), 1, 1, facecolor="0.92", edgecolor="white", lw=0.5, label="masked"))
        dark = not masked and np.mean(cmap_obj(norm(value))[:3]) < 0.5
        ax.text(j + 0.5, i + 0.5, fmt % value, ha="center", va="center", fontsize=SMALL_FONT,
                color="white" if dark else ("0.45" if masked else "black"))
    ax.tick_params(axis="x", rotation=30, length=0)
    ax.tick_params(axis="y", rotation=0, length=0)
    for tick in ax.get_xticklabels():
        tick.set_ha("right")
        tick.set_rotation_mode("anchor")
    return ax.collections[0].colorbar if colorbar else None


@themed
def plot_correlation_heatmap(matrix: np.ndarray, names: Sequence[str], title: str = "",
                             vmin: float | None = None, vmax: float | None = None, label: str = "Pearson r",
                             digits: int | None = None, triangle: bool = False,
                             marks: Mapping[str, float] | None = None, width: str | None = None) -> Figure:
    """Annotated similarity matrix. The diagonal (a scorer with itself) is grey and left out of the
    colour scale, which follows the other cells unless `vmin`/`vmax` are given (pass the same ones
    to figures that are compared); `digits` defaults to the fewest that tell the values apart.
    `triangle` shows each pair once (the lower triangle); `marks` (label -> value) are drawn as lines
    on the colourbar, e.g. the teachers' own correlation as a reference for heads'. `width`: "column"
    or "text" (default: one column up to 4 names)."""
    matrix = np.asarray(matrix, dtype=float)
    off = _off_diagonal(matrix)
    low, high = data_range(off)
    digits = digits if digits is not None else decimals(off)
    n = len(names)
    fig = figure(width or ("column" if n <= 4 else "text"), 0.42 * n + 1.0)
    ax = fig.add_subplot()
    hidden = np.triu(np.ones((n, n), dtype=bool), k=0 if triangle else 1) if triangle else None
    bar = _heatmap(ax, matrix, names, names, low if vmin is None else vmin, high if vmax is None else vmax, "crest",
                   f"%.{digits}f", label, mask=None if triangle or n < 2 else np.eye(n, dtype=bool), hidden=hidden)
    if triangle:  # nothing to show in the first row and the last column
        ax.set_ylim(n, 1)
        ax.set_xlim(0, n - 1)
        ax.set_yticks(np.arange(1, n) + 0.5, [name.replace(" <- ", "\n<- ") for name in list(names)[1:]])
        ax.set_xticks(np.arange(n - 1) + 0.5, [name.replace(" <- ", "\n<- ") for name in list(names)[:-1]],
                      rotation=0, ha="center")
    if marks:  # ticks at the ends of the scale and at each mark, the mark named
        low_, high_ = bar.mappable.get_clim()
        named = {round(v, 6): f"{v:.2f}\n{k}" for k, v in marks.items()}
        ticks = sorted({round(low_, 6), round(high_, 6), *named})
        bar.set_ticks(ticks, labels=[named.get(t, f"{t:.2f}") for t in ticks])
        for value in marks.values():
            bar.ax.axhline(value, color="black", lw=1.0)
        bar.set_label("")
        bar.ax.set_title(label, fontsize=SMALL_FONT, loc="left")
    if title:
        ax.set_title(title)
    return fig


@themed
def plot_agreement_matrix(matrix: np.ndarray, head_names: Sequence[str], teacher_names: Sequence[str],
                          title: str = "", measure: str = "Pearson r", bound: float | None = None,
                          closest: np.ndarray | None = None, tie: float = 0.0) -> Figure:
    """Head x teacher agreement, two panels. Left: the values, each head's closest teacher boxed.
    Right: each teacher's column minus its mean over the heads (x 10^-3), so the per-teacher
    differences between heads show in colour, on ±`bound` (pass one bound to figures that are
    compared; default: this matrix's largest); ★ marks the head closest to each teacher when it is
    closer than the next head by more than `tie` (heads that tie get no star). `closest` (heads x
    teachers counts, e.g. of seeds at which that head was the closest) is printed under the value."""
    matrix = np.asarray(matrix, dtype=float)
    rows, cols = len(head_names), len(teacher_names)
    fig = figure("text", 0.36 * rows + 1.15)
    left, right = fig.subplots(1, 2)
    digits = max(decimals(matrix[:, j]) for j in range(cols)) if rows > 1 else decimals(matrix)
    low, high = data_range(matrix)
    _heatmap(left, matrix, head_names, teacher_names, low, high, "crest", f"%.{digits}f", measure)
    for i, row in enumerate(matrix):
        for j in np.flatnonzero(row == row.max()):
            left.add_patch(patches.Rectangle((j, i), 1, 1, fill=False, edgecolor="black", lw=1.5))
    centred = np.round((matrix - matrix.mean(axis=0)) * 1e3, 1) + 0.0  # + 0.0: no '-0.0' label
    bound = bound or float(np.abs(centred).max()) or 1.0
    _heatmap(right, centred, head_names, teacher_names, -bound, bound, "vlag", "%+.1f",
             f"{measure} − teacher's mean\nover heads (×10⁻³)", bar_fmt="%+.0f")  # symmetric: 0 in the middle
    counts = None if closest is None else np.asarray(closest)
    for j, column in enumerate(matrix.T):
        order = np.argsort(column)[::-1]
        if rows < 2 or column[order[0]] - column[order[1]] <= tie:
            continue  # heads that tie have no closest
        if counts is None or counts[order[0], j] == counts[:, j].sum() > 0:  # the closest at every seed
            right.text(j + 0.97, order[0] + 0.3, "★", ha="right", va="center", fontsize=SMALL_FONT)
    if counts is not None:
        for (i, j), count in np.ndenumerate(counts):
            right.text(j + 0.5, i + 0.8, f"{count}/{counts[:, j].sum()}", ha="center", va="center",
                       fontsize=MIN_FONT, color="0.3")
    right.set_yticks([])
    for ax in (left, right):
        ax.set_xlabel("teacher")
    left.set_ylabel("head")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- training
def _runs(rows: Any) -> list[list[Mapping[str, float]]]:
    """One run's rows, or several runs' (e.g. seeds): always a list of runs."""
    rows = list(rows)
    return [list(r) for r in rows] if rows and not isinstance(rows[0], Mapping) else [rows]


def _band(ax, runs: Sequence[tuple[np.ndarray, np.ndarray]], color: Any, label: str, lw: float = 1.0,
          gid: str | None = None) -> None:
    """The mean over runs (line) and its min-max range (band), on the steps all runs share."""
    steps = np.array(sorted(set.intersection(*[set(s.tolist()) for s, _ in runs])))
    values = np.array([np.interp(steps, s, v) for s, v in runs])
    ax.plot(steps, values.mean(axis=0), color=color, label=label, lw=lw, gid=gid)
    if len(runs) > 1:
        ax.fill_between(steps, values.min(axis=0), values.max(axis=0), color=color, alpha=0.2, lw=0)


@themed
def plot_loss_curves(curve_rows: Sequence[Mapping[str, float]] | Sequence[Sequence[Mapping[str, float]]],
                     window: int | None = None, head_labels: Sequence[str] | None = None, title: str = "") -> Figure:
    """Per-head loss over steps, one panel per term that carries information, as a running mean over
    `window` steps (default: about 1/40 of the run). The total per-head loss is left out when it
    equals the KD term (alpha = 1: then the CE term has weight 0 and is left out too). `curve_rows`
    is one run's rows or a list of runs (seeds): then the line is their mean, the band their range."""
    runs = _runs(curve_rows)
    if not runs or not runs[0]:
        raise ValueError("no curve rows to plot")
    columns = list(runs[0][0])
    families = [f for f in ("loss", "kd", "ce") if any(c.startswith(f"{f}/") for c in columns)]
    heads = head_names({c.split("/")[1] for c in columns if "/" in c})
    kd_only = "kd" in families and all(
        np.allclose([r[f"loss/{h}"] for r in run], [r[f"kd/{h}"] for r in run], rtol=1e-6, atol=1e-7)
        for run in runs for h in heads if f"loss/{h}" in columns and f"kd/{h}" in columns)
    if kd_only:
        families = ["kd"]
    names = dict(zip(heads, head_labels)) if head_labels is not None else {}
    window = window or max(1, len(runs[0]) // 40)
    fig = figure("column" if len(families) == 1 else "text", 2.1)
    axes = np.atleast_1d(fig.subplots(1, len(families), sharey=True))
    kernel = np.ones(window) / window
    for ax, family in zip(axes, families):
        for i, head in enumerate(heads):
            key = f"{family}/{head}"
            if key in columns:
                curves = [(np.array([r["step"] for r in run])[window - 1:],
                           np.convolve([r[key] for r in run], kernel, mode="valid")) for run in runs]
                _band(ax, curves, head_color(i), names.get(head, head), gid=names.get(head))
        ax.set_title({"loss": "per-head loss", "kd": "KD term (per head = total)" if kd_only else "KD (teacher) term",
                      "ce": "CE (gold) term"}[family])
        ax.set_xlabel("training step")
    axes[0].set_ylabel(f"loss (running mean, {window} steps)")
    axes[-1].legend()
    if title:
        fig.suptitle(title)
    return fig


def _diversity_measures(rows: Sequence[Mapping[str, float]]) -> list[str]:
    return [k for k in rows[0] if k != "step"]


DIVERSITY_TITLES = {"ambiguity": "ambiguity", "top1_disagreement": "top-1 disagreement"}
DIVERSITY_LABELS = {"ambiguity": "variance of the heads'\nprobabilities (mean)",
                    "top1_disagreement": "share of questions,\nmean over head pairs"}


def _diversity_title(measure: str) -> str:
    if measure.startswith("mean_"):
        return f"mean {measure[5:].capitalize()} r"
    return DIVERSITY_TITLES.get(measure, measure.replace("_", " "))


def _diversity_label(measure: str) -> str:
    if measure.startswith("mean_"):
        return f"{measure[5:].capitalize()} r between\nthe heads' margins"
    return DIVERSITY_LABELS.get(measure, measure.replace("_", " "))


@themed
def plot_diversity_over_steps(rows: Sequence[Mapping[str, float]] | Mapping[str, Any],
                              teacher_level: Mapping[str, float] | None = None, title: str = "",
                              run_colors: Mapping[str, str] | None = None) -> Figure:
    """Head diversity during training, one panel per measure, one line per run (e.g. CERBERUS vs
    replicated); a run given as several seeds' rows is their mean with their range as a band. The y
    axis follows the runs; the teachers' own diversity is a dashed line when it falls inside it and
    an arrow with its value at the edge when it does not (drawing it would flatten the runs' curves)."""
    runs = rows if isinstance(rows, Mapping) else {"heads": rows}
    runs = {name: _runs(r) for name, r in runs.items()}
    measures = _diversity_measures(next(iter(runs.values()))[0])
    fig = figure("text", 1.9)
    axes = np.atleast_1d(fig.subplots(1, len(measures)))
    palette = dict(zip(runs, colors(len(runs))))
    for ax, measure in zip(axes, measures):
        values = []
        for name, seeds in runs.items():
            curves = [(np.array([r["step"] for r in run]), np.array([r[measure] for r in run])) for run in seeds]
            values += [v for _, ys in curves for v in ys]
            _band(ax, curves, (run_colors or {}).get(name, palette[name]), name,
                  gid=name if run_colors and name in run_colors else None)
        low, high = data_range(values, pad=0.12)
        ax.set_ylim(low, high)
        level = (teacher_level or {}).get(measure)
        if level is not None and low <= level <= high:
            ax.axhline(level, color="0.3", ls="--", lw=0.9, label="teachers")
        elif level is not None:
            above = level > high
            ax.annotate(f"teachers: {level:.{decimals([level, *values], 3, 4)}f} {'↑' if above else '↓'}",
                        xy=(0.97, 0.96 if above else 0.04), xycoords="axes fraction", ha="right",
                        va="top" if above else "bottom", fontsize=MIN_FONT, color="0.25",
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6", "lw": 0.5})
        ax.set_ylabel(_diversity_label(measure))
        ax.set_title(_diversity_title(measure))
        ax.set_xlabel("training step")
        ax.yaxis.set_major_locator(mpl.ticker.MaxNLocator(4))
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    if title:
        fig.suptitle(title)
    return fig


def _edge_note(ax, text: str, k: int) -> None:
    """A value off the x range, named at the right edge (k-th from the bottom)."""
    ax.annotate(text, xy=(0.98, 0.03 + 0.1 * k), xycoords="axes fraction", ha="right", va="bottom",
                fontsize=MIN_FONT, color="0.25", bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6",
                                                             "lw": 0.5})


@themed
def plot_diversity_tradeoff(points: Sequence[Mapping[str, Any]], teacher_level: float, metric: str = "map",
                            title: str = "", separate: Mapping[str, float] | None = None) -> Figure:
    """One point per recipe: the heads' diversity (left: 1 - mean head-head r, log scale; right: the
    specialization S) against pooled quality with its 95% CI (a point's "ci"). Points are numbered and
    the key below names each (its "label", else "name"). The teachers' own 1 - r (also the S of heads
    that each equal their teacher) and, given `separate` (`Artifacts.separate_students`), the
    single-teacher students with a body each are vertical lines, or named at the edge when far off."""
    fig = figure("text", 3.0)
    axes = fig.subplots(1, 2, sharey=True)
    ys = np.array([p[metric] for p in points])
    err = np.array([[p[metric] - p["ci"][0], p["ci"][1] - p[metric]] for p in points]).T if all(
        "ci" in p for p in points) else None
    panels = ((axes[0], [max(1 - p["head_head_r"], 1e-6) for p in points], "1 − mean head-head r (log scale)",
               None if not separate else max(1 - separate["head_head_r"], 1e-6)),
              (axes[1], [p["specialization"] for p in points], "specialization S",
               None if not separate else separate["specialization"]))
    for k, (ax, xs, label, sep) in enumerate(panels):
        xs = np.asarray(xs)
        ax.errorbar(xs, ys, yerr=err, fmt="o", ms=3.5, color=CERBERUS_COLOR, ecolor="0.75", elinewidth=0.6,
                    capsize=0, zorder=3)
        if k == 0:
            ax.set_xscale("log")
            _log_ticks(ax)
            lo, hi = xs.min() / 1.5, xs.max() * 1.5
        else:
            lo, hi = data_range(xs, pad=0.12)
        ax.set_xlim(lo, hi)
        edge = 0
        for value, name, style in ((teacher_level, "teachers", ("0.3", "--", 0.9)),
                                   (sep, "separate students", (SEPARATE_COLOR, ":", 1.2))):
            if value is None:
                continue
            if lo <= value <= hi:
                ax.axvline(value, color=style[0], ls=style[1], lw=style[2], label=f"{name} ({value:.3f})")
            else:
                _edge_note(ax, f"{name}: {value:.3f} →", edge)
                edge += 1
        ax.set_xlabel(label)
        ax.set_ylim(*data_range(np.concatenate([ys - (err[0] if err is not None else 0),
                                                ys + (err[1] if err is not None else 0)]), pad=0.05))
        place_labels(ax, list(zip(xs, ys)), [str(i + 1) for i in range(len(points))], fontsize=MIN_FONT,
                     offsets=[(3, 1), (-3, 1), (3, -7), (-3, -7), (3, 6), (-3, 6), (6, -3), (-6, -3)])
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=MIN_FONT)
    axes[0].set_ylabel(f"pooled {METRIC_LABELS.get(metric, metric)}" + (" (95% CI)" if err is not None else ""))
    blank = [patches.Patch(visible=False)] * len(points)
    fig.legend(blank, [f"{i + 1}: {p.get('label', p['name'])}" for i, p in enumerate(points)],
               loc="outside lower center", ncols=5, handlelength=0, handletextpad=0, fontsize=MIN_FONT)
    if title:
        fig.suptitle(title)
    return fig
