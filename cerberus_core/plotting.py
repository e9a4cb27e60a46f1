"""Figures as pure functions of data: each returns a matplotlib Figure and touches no global state.

Every plot is drawn inside `theme()` (one seaborn style, the colour-blind palette), so a figure looks
the same whatever the caller's rcParams; `set_theme()` applies the same look globally for notebooks.
Figures are built with `matplotlib.figure.Figure`, not pyplot, so nothing is registered with a
backend and nothing needs closing. `save_figure` is the only writer: PDF + PNG + a JSON sidecar
with the numbers shown, the parameters and the code version (style guide, point 9).
"""
from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import seaborn as sns
from cycler import cycler
from matplotlib import patches
from matplotlib.figure import Figure

from .analysis import METRICS, candidate_distribution, format_mean_sd, mean_sd, to_probability
from .atomic import atomic_path
from .provenance import code_version
from .scores import head_names

PALETTE = "colorblind"
METRIC_LABELS = {"p@1": "P@1", "map": "MAP", "mrr": "MRR"}


def theme_rc() -> dict[str, Any]:
    """The rcParams of the project's one theme."""
    return {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.1),
            "axes.prop_cycle": cycler(color=sns.color_palette(PALETTE)), "figure.dpi": 100}


def set_theme() -> None:
    """Apply the theme globally (for notebooks drawing their own plots)."""
    mpl.rcParams.update(theme_rc())


@contextlib.contextmanager
def theme() -> Iterator[None]:
    with mpl.rc_context(theme_rc()):
        yield


def _themed(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    @functools.wraps(plot)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with theme():
            fig = plot(*args, **kwargs)
            fig.tight_layout()
            return fig
    return wrapper


def colors(n: int) -> list[tuple[float, float, float]]:
    return sns.color_palette(PALETTE, n)


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


def data_range(values: Sequence[float] | np.ndarray, pad: float = 0.05) -> tuple[float, float]:
    """(low, high) of the values, widened by `pad` of their span (or a hair when they are all equal)."""
    values = np.asarray(values, dtype=float).ravel()
    values = values[np.isfinite(values)]
    low, high = float(values.min()), float(values.max())
    span = high - low or (abs(high) or 1.0) * 0.2  # all equal (e.g. 0 disagreement): a visible band around it
    return low - pad * span, high + pad * span


def _off_diagonal(matrix: np.ndarray) -> np.ndarray:
    return matrix[~np.eye(len(matrix), dtype=bool)] if len(matrix) > 1 else matrix.ravel()


def _heatmap(ax, matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], vmin: float, vmax: float,
             cmap: str, fmt: str, label: str, mask: np.ndarray | None = None) -> None:
    """Annotated heatmap with a labelled colourbar; masked cells are drawn grey and still annotated."""
    matrix = np.asarray(matrix, dtype=float)
    sns.heatmap(matrix, ax=ax, annot=False, cmap=cmap, vmin=vmin, vmax=vmax,
                xticklabels=list(cols), yticklabels=list(rows), square=True,
                cbar_kws={"shrink": 0.8, "label": label, "format": mpl.ticker.FormatStrFormatter(fmt)})
    cmap_obj, norm = mpl.colormaps[cmap], mpl.colors.Normalize(vmin, vmax)
    for (i, j), value in np.ndenumerate(matrix):
        masked = mask is not None and mask[i, j]
        if masked:  # covered, so it neither takes a colour of the scale nor needs seaborn's mask
            ax.add_patch(patches.Rectangle((j, i), 1, 1, facecolor="0.92", edgecolor="white", lw=1, label="masked"))
        dark = not masked and np.mean(cmap_obj(norm(value))[:3]) < 0.5
        ax.text(j + 0.5, i + 0.5, fmt % value, ha="center", va="center", fontsize=9,
                color="white" if dark else ("0.45" if masked else "black"))
    ax.tick_params(axis="x", rotation=30)
    ax.tick_params(axis="y", rotation=0)


@_themed
def plot_correlation_heatmap(matrix: np.ndarray, names: Sequence[str], title: str = "",
                             vmin: float | None = None, vmax: float | None = None, label: str = "Pearson r",
                             digits: int | None = None) -> Figure:
    """Annotated similarity matrix. The diagonal (a scorer with itself) is grey and left out of the
    colour scale, which follows the other cells unless `vmin`/`vmax` are given (pass the same ones
    to figures that are compared); `digits` defaults to the fewest that tell the values apart."""
    matrix = np.asarray(matrix, dtype=float)
    off = _off_diagonal(matrix)
    low, high = data_range(off)
    digits = digits if digits is not None else decimals(off)
    n = len(names)
    fig = Figure(figsize=(1.35 * n + 2.6, 1.1 * n + 1.5))
    ax = fig.add_subplot()
    _heatmap(ax, matrix, names, names, low if vmin is None else vmin, high if vmax is None else vmax, "crest",
             f"%.{digits}f", label, mask=np.eye(n, dtype=bool) if n > 1 else None)
    ax.set_title(title)
    return fig


@_themed
def plot_agreement_matrix(matrix: np.ndarray, head_names: Sequence[str], teacher_names: Sequence[str],
                          title: str = "", measure: str = "Pearson r") -> Figure:
    """Head x teacher agreement, two panels. Left: the values, each head's closest teacher boxed
    (for CERBERUS's design, the diagonal). Right: each teacher's column minus its mean over the heads,
    so the per-teacher differences between heads (often in the third decimal) show in colour; ★ marks
    the head closest to each teacher."""
    matrix = np.asarray(matrix, dtype=float)
    rows, cols = len(head_names), len(teacher_names)
    fig = Figure(figsize=(2.5 * cols + 5.2, 1.0 * rows + 1.9))
    left, right = fig.subplots(1, 2)
    digits = max(decimals(matrix[:, j]) for j in range(cols)) if rows > 1 else decimals(matrix)
    low, high = data_range(matrix)
    _heatmap(left, matrix, head_names, teacher_names, low, high, "crest", f"%.{digits}f", measure)
    for i, row in enumerate(matrix):
        for j in np.flatnonzero(row == row.max()):
            left.add_patch(patches.Rectangle((j, i), 1, 1, fill=False, edgecolor="black", lw=2.5))
    left.set_title("box: the teacher closest to each head", fontsize=9)
    centred = (matrix - matrix.mean(axis=0)) * 1e3
    bound = float(np.abs(centred).max()) or 1.0
    _heatmap(right, centred, head_names, teacher_names, -bound, bound, "vlag", "%+.1f",
             f"{measure} − the teacher's mean over heads (×10⁻³)")  # symmetric limits: 0 is the middle
    for j, column in enumerate(matrix.T):
        for i in np.flatnonzero(column == column.max()):
            right.text(j + 0.93, i + 0.25, "★", ha="right", va="center", fontsize=10)
    right.set_title("★: the head closest to each teacher", fontsize=9)
    right.set_yticklabels([])
    for ax in (left, right):
        ax.set_xlabel("teacher")
    left.set_ylabel("head (← the teacher it learned from)")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- training
@_themed
def plot_loss_curves(curve_rows: Sequence[Mapping[str, float]], window: int | None = None,
                     head_labels: Sequence[str] | None = None, title: str = "") -> Figure:
    """Per-head loss over steps, one panel per component (total, KD, CE), as a running mean over
    `window` steps (default: about 1/40 of the run) because per-batch losses are noisy.
    `head_labels` name the heads in the legend (e.g. "head0 ← teacher")."""
    if not curve_rows:
        raise ValueError("no curve rows to plot")
    columns = list(curve_rows[0])
    families = [f for f in ("loss", "kd", "ce") if any(c.startswith(f"{f}/") for c in columns)]
    heads = head_names({c.split("/")[1] for c in columns if "/" in c})
    names = dict(zip(heads, head_labels)) if head_labels is not None else {}
    window = window or max(1, len(curve_rows) // 40)
    steps = np.array([r["step"] for r in curve_rows])
    fig = Figure(figsize=(3.6 * len(families), 3.4))
    axes = np.atleast_1d(fig.subplots(1, len(families), sharey=True))
    kernel = np.ones(window) / window
    for ax, family in zip(axes, families):
        for head, c in zip(heads, colors(len(heads))):
            key = f"{family}/{head}"
            if key in columns:
                values = np.array([r[key] for r in curve_rows])
                smooth = np.convolve(values, kernel, mode="valid")
                ax.plot(steps[window - 1:], smooth, color=c, label=names.get(head, head))
        ax.set_title({"loss": "per-head loss", "kd": "KD (teacher) term", "ce": "CE (gold) term"}[family])
        ax.set_xlabel("training step")
    axes[0].set_ylabel(f"loss (running mean of {window} steps)")
    axes[-1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def _diversity_measures(rows: Sequence[Mapping[str, float]]) -> list[str]:
    return [k for k in rows[0] if k != "step"]


DIVERSITY_LABELS = {"ambiguity": "ambiguity: variance of the heads'\nprobabilities around their mean",
                    "top1_disagreement": "top-1 disagreement:\nshare of questions, mean over pairs"}


def _diversity_label(measure: str) -> str:
    if measure.startswith("mean_"):
        return f"mean pairwise {measure[5:].capitalize()} r\nbetween the heads' margins"
    return DIVERSITY_LABELS.get(measure, measure.replace("_", " "))


@_themed
def plot_diversity_over_steps(rows: Sequence[Mapping[str, float]] | Mapping[str, Sequence[Mapping[str, float]]],
                              teacher_level: Mapping[str, float] | None = None, title: str = "") -> Figure:
    """Head diversity during training, one panel per measure, one line per run (e.g. CERBERUS vs
    replicated). The y axis follows the runs; the teachers' own diversity, the level the heads may
    approach, is a dashed line when it falls inside it and an arrow with its value at the edge when
    it does not (it is usually far away, and drawing it would flatten the runs' curves)."""
    runs = rows if isinstance(rows, Mapping) else {"heads": rows}
    measures = _diversity_measures(next(iter(runs.values())))
    fig = Figure(figsize=(3.9 * len(measures), 3.5))
    axes = np.atleast_1d(fig.subplots(1, len(measures)))
    for ax, measure in zip(axes, measures):
        values = []
        for (name, run), c in zip(runs.items(), colors(len(runs))):
            ys = [r[measure] for r in run]
            values += ys
            ax.plot([r["step"] for r in run], ys, marker="o", ms=3, color=c, label=name)
        low, high = data_range(values, pad=0.12)
        ax.set_ylim(low, high)
        level = (teacher_level or {}).get(measure)
        if level is not None and low <= level <= high:
            ax.axhline(level, color="0.3", ls="--", lw=1, label="teachers")
        elif level is not None:
            above = level > high
            ax.annotate(f"teachers: {level:.{decimals([level, *values], 3, 4)}f} {'↑' if above else '↓'}",
                        xy=(0.98, 0.97 if above else 0.03), xycoords="axes fraction", ha="right",
                        va="top" if above else "bottom", fontsize=8, color="0.25",
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6", "lw": 0.6})
        ax.set_ylabel(_diversity_label(measure), fontsize=8.5)
        ax.set_title(measure.replace("_", " "))
        ax.set_xlabel("training step")
    axes[-1].legend(fontsize=8, loc="center right")
    if title:
        fig.suptitle(title)
    return fig


@_themed
def plot_diversity_tradeoff(points: Sequence[Mapping[str, Any]], teacher_level: float, metric: str = "map",
                            title: str = "", separate: Mapping[str, float] | None = None) -> Figure:
    """One point per recipe: the heads' diversity (left: 1 - mean head-head r, log scale; right: the
    specialization S) against pooled quality. The dashed line is the teachers' own 1 - r, which is
    also S for heads that each equal their own teacher: the level a recipe could reach. The dotted
    line, given `separate` (`Artifacts.separate_students`), is where single-teacher students with a
    body each stand: what the student learns from each teacher without a shared body."""
    fig = Figure(figsize=(9.5, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    ys = [p[metric] for p in points]
    panels = ((axes[0], [max(1 - p["head_head_r"], 1e-6) for p in points], "1 - mean head-head r (log)"),
              (axes[1], [p["specialization"] for p in points], "specialization S"))
    for ax, xs, label in panels:
        ax.scatter(xs, ys, s=22, color=colors(1)[0], zorder=3)
        for x, y, p in zip(xs, ys, points):
            ax.annotate(p["name"], (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
        ax.axvline(teacher_level, color="0.3", ls="--", lw=1, label=f"teachers ({teacher_level:.3f})")
        ax.set_xlabel(label)
    if separate:
        for ax, x in ((axes[0], max(1 - separate["head_head_r"], 1e-6)), (axes[1], separate["specialization"])):
            ax.axvline(x, color=colors(2)[1], ls=":", lw=1.2, label=f"single-teacher students, a body each ({x:.3f})")
    axes[0].set_xscale("log")
    axes[0].set_ylabel(f"pooled {metric.upper()}")
    for ax in axes:  # one legend per panel (its own x values), under it: inside, it hid the points' labels
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- quality
def plot_seed_spread(rows: Sequence[Mapping[str, Any]], references: Mapping[str, float], metric: str = "map",
                     title: str = "") -> Figure:
    """One row per system: every seed's value (small dots) and their mean ± sample sd (large dot and
    whisker), so a gap between systems can be read against the spread between seeds. `rows`:
    {"label", "values": per-seed values}; `references` (teachers, trained once) are dashed lines."""
    fig = Figure(figsize=(7.5, 0.42 * len(rows) + 1.6))
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1]
    c = colors(1)[0]
    for yi, row in zip(y, rows):
        values = np.asarray(row["values"], dtype=float)
        ax.scatter(values, np.full(len(values), yi), s=10, color="0.55", zorder=2)
        found = mean_sd(values)
        ax.errorbar(found["mean"], yi, xerr=_whisker(values), fmt="o", color=c, ms=6, capsize=3, zorder=3)
        ax.annotate(f"{format_mean_sd(values, 3)} (n={found['n']})", (found["mean"], yi), xytext=(0, 5),
                    textcoords="offset points", ha="center", va="bottom", fontsize=6.5, color="0.2")
    for (name, value), lc in zip(references.items(), colors(len(references) + 1)[1:]):
        ax.axvline(value, color=lc, ls="--", lw=1, label=f"{name} ({value:.3f})")
    ax.set_yticks(y, [r["label"] for r in rows])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(f"{METRIC_LABELS.get(metric, metric)}: seeds (grey), mean ± sd")
    if references:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    if title:
        fig.suptitle(title)
    return fig


def _error(rows: Sequence[Mapping[str, Any]], metric: str) -> np.ndarray:
    values = np.array([r[metric] for r in rows])
    ci = np.array([r[f"{metric}_ci"] for r in rows]).reshape(len(rows), 2)
    return np.clip(np.stack([values - ci[:, 0], ci[:, 1] - values]), 0, None)


@_themed
def plot_metric_bars(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = METRICS, title: str = "",
                     reference: str | None = None) -> Figure:
    """Each row's value (dot, printed to 3 decimals) and 95% CI (whisker), one panel per metric,
    coloured by the row's "role"; the x axis follows the data, not [0, 1], so differences of a
    hundredth are visible. Rows: {"name", "role", "map", "map_ci", ...} as `analysis.metrics_frame`
    or a run's metrics give; a row's "label" (else its name) is shown. `reference` names the row whose
    value is drawn as a dotted line across each panel."""
    roles = list(dict.fromkeys(r.get("role", "") for r in rows))
    palette = dict(zip(roles, colors(len(roles))))
    fig = Figure(figsize=(3.4 * len(metrics) + 2.6, 0.34 * len(rows) + 1.5))
    axes = np.atleast_1d(fig.subplots(1, len(metrics), sharey=True))
    y = np.arange(len(rows))[::-1]
    ref = next((r for r in rows if r["name"] == reference), None)
    for ax, metric in zip(axes, metrics):
        values = np.array([r[metric] for r in rows])
        error = _error(rows, metric)
        for yi, value, low, high, row in zip(y, values, *error, rows):
            c = palette[row.get("role", "")]
            ax.errorbar(value, yi, xerr=[[low], [high]], fmt="o", color=c, ms=5, elinewidth=1.2, capsize=2)
            ax.annotate(f"{value:.3f}", (value, yi), xytext=(0, 4), textcoords="offset points", ha="center",
                        va="bottom", fontsize=6.5, color="0.2")
        if ref is not None:
            ax.axvline(ref[metric], color="0.4", ls=":", lw=1)
        ax.set_xlim(*data_range(np.concatenate([values - error[0], values + error[1]]), pad=0.04))
        ax.set_xlabel(f"{METRIC_LABELS.get(metric, metric)} (95% CI)")
        ax.set_ylim(-0.7, len(rows) - 0.3)
    axes[0].set_yticks(y, [r.get("label", r["name"]) for r in rows])
    handles = [mpl.lines.Line2D([], [], color=palette[r], marker="o", ls="", label=r) for r in roles]
    if ref is not None:
        handles.append(mpl.lines.Line2D([], [], color="0.4", ls=":", label=ref.get("label", ref["name"])))
    if len(handles) > 1:
        axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_head_metrics(metrics: Mapping[str, Mapping[str, Any]], teachers: Mapping[str, Mapping[str, Any]] | None = None,
                      head_labels: Sequence[str] | None = None, title: str = "") -> Figure:
    """The pooled student, each head, and (optionally) the teachers, with 95% CIs.
    `metrics` is one split of a student's metrics ({"pooled": {...}, "head0": {...}});
    `teachers` maps a name to its pooled metrics; `head_labels` renames the heads (e.g. by teacher)."""
    heads = head_names(metrics)
    labels = list(head_labels) if head_labels is not None else heads
    rows = [{"name": "pooled", "label": "student, pooled", "role": "student (pooled)", **metrics["pooled"]}]
    rows += [{"name": label, "role": "student head", **metrics[h]} for h, label in zip(heads, labels)]
    rows += [{"name": n, "label": f"teacher {n}", "role": "teacher", **m} for n, m in (teachers or {}).items()]
    return plot_metric_bars(rows, title=title, reference="pooled")


@_themed
def plot_ablation(rows: Sequence[Mapping[str, Any]], metric: str = "map",
                  xlabels: Mapping[str, str] | None = None, title: str = "") -> Figure:
    """Quality with 95% CIs of every ablation run, one panel per "panel" (e.g. number of heads,
    body/head split), one tick per run ("name", "+" starts a new line), ordered by its setting "x"
    and coloured by it; the row marked "main" (the main run, in every panel) has one colour and
    marker everywhere and a dotted line at its value. `xlabels`: panel -> x-axis label. Rows with
    "values" and "seeds" (one value per seed; `metric` is then their mean) show each seed as a grey
    dot and mean ± sd instead of the CI, and name their seeds."""
    over_seeds = all("values" in r for r in rows)
    panels = list(dict.fromkeys(r["panel"] for r in rows))
    sizes = [sum(r["panel"] == p for r in rows) for p in panels]
    widths = [max(size, 3) for size in sizes]  # room for a panel's title and legend, even with one run
    fig = Figure(figsize=(max(6.0, 0.95 * sum(widths) + 2.2 * len(panels)), 4.6))
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True, width_ratios=widths))
    settings = list(dict.fromkeys((p, r["x"]) for p in panels
                                  for r in sorted(rows, key=lambda r: r["x"]) if r["panel"] == p and not r.get("main")))
    palette = dict(zip(settings, colors(len(settings) + 1)[1:]))  # colour 0 is the main run's; none means two things
    main_color = colors(1)[0]
    main = next((r for r in rows if r.get("main")), None)
    for ax, panel in zip(axes, panels):
        sub = sorted((r for r in rows if r["panel"] == panel), key=lambda r: (r["x"], bool(r.get("main"))))
        for key in dict.fromkeys("main" if r.get("main") else r["x"] for r in sub):
            pos = [i for i, r in enumerate(sub) if ("main" if r.get("main") else r["x"]) == key]
            runs = [sub[i] for i in pos]
            is_main = key == "main"
            label = runs[0].get("legend", "main run" if is_main else f"{key}")
            error = _seed_error(runs) if over_seeds else _error(runs, metric)
            ax.errorbar(pos, [r[metric] for r in runs], yerr=error, fmt="*" if is_main else "o",
                        ms=11 if is_main else 6, color=main_color if is_main else palette[(panel, key)], capsize=3,
                        label=label, zorder=3)
            for p_, r in zip(pos, runs):
                note = f"{r[metric]:.3f}"
                if over_seeds:
                    ax.scatter([p_] * len(r["values"]), r["values"], s=9, color="0.55", zorder=2)
                    note = f"{format_mean_sd(r['values'], 3)}\n(seed{'s' if len(r['seeds']) > 1 else ''} " \
                           f"{','.join(map(str, r['seeds']))})"
                ax.annotate(note, (p_, r[metric]), xytext=(6, 0), textcoords="offset points",
                            va="center", fontsize=6.5 if over_seeds else 7, color="0.2")
        if main is not None:
            ax.axhline(main[metric], color=main_color, ls=":", lw=1)
        ax.set_xticks(range(len(sub)), [r["name"].replace("+", "\n+") for r in sub], fontsize=7.5)
        ax.set_xlim(-0.6, len(sub) - 0.2)
        ax.set_title(panel)
        ax.set_xlabel((xlabels or {}).get(panel, ""))
        ax.legend(fontsize=7.5, loc="lower right")
    spread = "seeds (grey), mean ± sd" if over_seeds else "95% CI"
    axes[0].set_ylabel(f"{METRIC_LABELS.get(metric, metric)} ({spread})")
    if title:
        fig.suptitle(title)
    return fig


def _whisker(values: Sequence[float]) -> float:
    """The half-length of a seed whisker: the sample sd, or none for one seed (which has no sd)."""
    return mean_sd(values)["sd"] if len(values) > 1 else 0.0


def _seed_error(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Each row's seed whisker, both ways."""
    sd = [_whisker(r["values"]) for r in rows]
    return np.array([sd, sd])


def label_groups(points: np.ndarray, tolerance: float = 0.02, axes: Sequence[int] = (0, 1)) -> list[list[int]]:
    """Indices of points that nearly coincide (within `tolerance` of the data range on each of
    `axes`), grouped in order of first appearance: models of one architecture share a latency, so
    their labels would print over each other."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    span = np.ptp(pts, axis=0) if len(pts) else np.ones(2)
    tol = tolerance * np.where(span > 0, span, 1.0)
    axes = list(axes)
    groups: list[list[int]] = []
    for i, p in enumerate(pts):
        group = next((g for g in groups if np.all(np.abs(pts[g[0]] - p)[axes] <= tol[axes])), None)
        if group is None:
            groups.append([i])
        else:
            group.append(i)
    return groups


@_themed
def plot_pareto(points: Sequence[tuple[float, float]], names: Sequence[str], front: Sequence[int],
                spread: Sequence[tuple[float, float]] | None = None,
                members: Sequence[Sequence[tuple[str, float]]] | None = None,
                xlabel: str = "latency per question (ms, log scale)", ylabel: str = "test MAP",
                title: str = "") -> Figure:
    """Quality against cost, one labelled point per model or architecture, the Pareto front
    (`analysis.pareto_front`, fastest first) joined. A point that stands for several models (one
    architecture) gets `spread`, the range of their quality, as a vertical bar, and `members`,
    (name, quality) pairs listed beside the plot. Labels of points that nearly coincide are stacked."""
    pts = np.asarray(points, dtype=float).reshape(len(names), 2)
    on_front = np.isin(np.arange(len(pts)), front)
    c = colors(2)
    fig = Figure(figsize=(8.2, 4.0))
    ax = fig.add_subplot()
    if spread is not None:
        for (x, _), (low, high) in zip(pts, spread):
            if high > low:
                ax.vlines(x, low, high, color="0.55", lw=2.5, alpha=0.5, zorder=1)
    ax.scatter(pts[~on_front, 0], pts[~on_front, 1], color=c[0], s=30, zorder=3, label="dominated")
    ax.scatter(pts[on_front, 0], pts[on_front, 1], color=c[1], s=60, zorder=3, label="Pareto front")
    ax.plot(pts[list(front), 0], pts[list(front), 1], color=c[1], lw=1.2, zorder=2)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(mpl.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    log_x = np.log(pts[:, 0])
    right = log_x > log_x.min() + 0.75 * np.ptp(log_x)  # labelled below-left, clear of the listing
    for group in label_groups(np.column_stack([log_x, pts[:, 1]]), tolerance=0.04):
        for k, i in enumerate(sorted(group, key=lambda i: -pts[i, 1])):  # stacked, best on top
            ax.annotate(f"{names[i]}  {pts[i, 1]:.3f}", pts[i], xytext=(-4, -7 - 11 * k) if right[i] else (6, 4 - 11 * k),
                        textcoords="offset points", fontsize=7.5, va="top" if right[i] else "bottom",
                        ha="right" if right[i] else "left")
    listing = [f"{names[i]}:\n" + "\n".join(f"  {m}  {q:.3f}" for m, q in sorted(group, key=lambda mq: -mq[1]))
               for i, group in enumerate(members or []) if len(group) > 1]
    if listing:
        ax.text(1.03, 1.0, "\n\n".join(listing), transform=ax.transAxes, va="top", ha="left", fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.margins(x=0.12, y=0.12)
    ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title)
    return fig


# --------------------------------------------------------------------------- saving
def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a figure sidecar")


# metadata that would change on every save (dates, versions): dropped so reruns leave files unchanged
SAVE_METADATA = {"pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
                 "png": {"Software": None}}


def save_figure(fig: Figure, name: str, data: Mapping[str, Any], params: Mapping[str, Any],
                out_dir: str | Path = "figures") -> list[Path]:
    """Write NAME.pdf, NAME.png (150 dpi) and NAME.json (data shown, parameters, code version), each atomically."""
    out_dir = Path(out_dir)
    written = []
    for fmt, options in (("pdf", {}), ("png", {"dpi": 150})):
        path = out_dir / f"{name}.{fmt}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, metadata=SAVE_METADATA[fmt], bbox_inches="tight", **options)
        written.append(path)
    sidecar = {"figure": name, "code_version": code_version(), "params": dict(params), "data": dict(data)}
    path = out_dir / f"{name}.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(sidecar, indent=1, sort_keys=True, default=_jsonable) + "\n", encoding="utf-8")
    written.append(path)
    return written
