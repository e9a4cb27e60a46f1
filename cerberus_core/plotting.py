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

from .analysis import METRICS, candidate_distribution, to_probability
from .atomic import atomic_path
from .provenance import code_version

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
@_themed
def plot_soft_targets(margins: Sequence[float], labels: Sequence[int],
                      temperatures: Sequence[float] = (1.0, 2.0, 4.0)) -> Figure:
    """One question's teacher margins softened at several temperatures: the per-pair KD target
    sigmoid(m/T) (left) and the softmax over candidates (right). Higher T flattens both."""
    margins, labels = np.asarray(margins, dtype=float), np.asarray(labels)
    fig = Figure(figsize=(9, 3.4))
    axes = fig.subplots(1, 2)
    x = np.arange(len(margins))
    width = 0.8 / len(temperatures)
    for i, (t, c) in enumerate(zip(temperatures, colors(len(temperatures)))):
        offset = (i - (len(temperatures) - 1) / 2) * width
        axes[0].bar(x + offset, to_probability(margins, t), width, color=c, label=f"T={t:g}")
        axes[1].bar(x + offset, candidate_distribution(margins, t), width, color=c, label=f"T={t:g}")
    ticks = [f"c{i}{' +' if y else ''}" for i, y in enumerate(labels)]
    for ax, title in zip(axes, ("per-pair soft target sigmoid(m/T)", "softmax over candidates")):
        ax.set_xticks(x, ticks)
        ax.set_title(title)
        ax.set_xlabel("candidate (+ = correct)")
    axes[0].set_ylim(0, 1)
    axes[0].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[0].set_ylabel("probability")
    axes[1].legend(title="temperature")
    return fig


@_themed
def plot_architecture(parameter_counts: Mapping[str, int], config_name: str) -> Figure:
    """The B_b kH_h model as boxes: embeddings -> shared body -> k heads -> pooler, with parameters per part."""
    heads = sorted((k for k in parameter_counts if re.fullmatch(r"head\d+", k)), key=lambda k: int(k[4:]))
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
def _heatmap(ax, matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], vmin: float | None,
             vmax: float | None, cmap: str) -> None:
    sns.heatmap(np.asarray(matrix, dtype=float), ax=ax, annot=True, fmt=".2f", cmap=cmap, vmin=vmin, vmax=vmax,
                xticklabels=list(cols), yticklabels=list(rows), square=True, cbar_kws={"shrink": 0.8})
    ax.tick_params(axis="x", rotation=30)
    ax.tick_params(axis="y", rotation=0)


@_themed
def plot_correlation_heatmap(matrix: np.ndarray, names: Sequence[str], title: str = "",
                             vmin: float | None = None, vmax: float | None = 1.0) -> Figure:
    """Annotated correlation matrix; pass the same vmin to figures that should be compared."""
    n = len(names)
    fig = Figure(figsize=(1.3 * n + 2.2, 1.1 * n + 1.4))
    ax = fig.add_subplot()
    _heatmap(ax, matrix, names, names, vmin, vmax, "crest")
    ax.set_title(title)
    return fig


@_themed
def plot_agreement_matrix(matrix: np.ndarray, head_names: Sequence[str], teacher_names: Sequence[str],
                          title: str = "", measure: str = "Pearson r") -> Figure:
    """Head x teacher agreement; each head's closest teacher is outlined (CERBERUS: the diagonal)."""
    matrix = np.asarray(matrix, dtype=float)
    fig = Figure(figsize=(1.3 * len(teacher_names) + 2.4, 1.1 * len(head_names) + 1.6))
    ax = fig.add_subplot()
    _heatmap(ax, matrix, head_names, teacher_names, None, None, "crest")
    for i, row in enumerate(matrix):
        for j in np.flatnonzero(row == row.max()):
            ax.add_patch(patches.Rectangle((j, i), 1, 1, fill=False, edgecolor="black", lw=2.5))
    ax.set_xlabel("teacher")
    ax.set_ylabel("head")
    ax.set_title(f"{title} ({measure}; box = closest teacher)" if title else f"{measure}; box = closest teacher")
    return fig


# --------------------------------------------------------------------------- training
@_themed
def plot_loss_curves(curve_rows: Sequence[Mapping[str, float]], window: int | None = None) -> Figure:
    """Per-head loss over steps, one panel per component (total, KD, CE), as a running mean over
    `window` steps (default: about 1/40 of the run) because per-batch losses are noisy."""
    if not curve_rows:
        raise ValueError("no curve rows to plot")
    columns = list(curve_rows[0])
    families = [f for f in ("loss", "kd", "ce") if any(c.startswith(f"{f}/") for c in columns)]
    heads = sorted({c.split("/")[1] for c in columns if "/" in c}, key=lambda h: int(h[4:]))
    window = window or max(1, len(curve_rows) // 40)
    steps = np.array([r["step"] for r in curve_rows])
    fig = Figure(figsize=(3.6 * len(families), 3.2))
    axes = np.atleast_1d(fig.subplots(1, len(families), sharey=True))
    kernel = np.ones(window) / window
    for ax, family in zip(axes, families):
        for head, c in zip(heads, colors(len(heads))):
            key = f"{family}/{head}"
            if key in columns:
                values = np.array([r[key] for r in curve_rows])
                smooth = np.convolve(values, kernel, mode="valid")
                ax.plot(steps[window - 1:], smooth, color=c, label=head)
        ax.set_title({"loss": "per-head loss", "kd": "KD (teacher) term", "ce": "CE (gold) term"}[family])
        ax.set_xlabel("step")
    axes[0].set_ylabel(f"loss (running mean of {window} steps)")
    axes[-1].legend()
    return fig


def _diversity_measures(rows: Sequence[Mapping[str, float]]) -> list[str]:
    return [k for k in rows[0] if k != "step"]


@_themed
def plot_diversity_over_steps(rows: Sequence[Mapping[str, float]] | Mapping[str, Sequence[Mapping[str, float]]],
                              teacher_level: Mapping[str, float] | None = None) -> Figure:
    """Head diversity during training, one panel per measure, one line per run (e.g. CERBERUS vs
    replicated); the teachers' own diversity is the dashed reference the heads may approach."""
    runs = rows if isinstance(rows, Mapping) else {"heads": rows}
    measures = _diversity_measures(next(iter(runs.values())))
    fig = Figure(figsize=(3.6 * len(measures), 3.2))
    axes = np.atleast_1d(fig.subplots(1, len(measures)))
    for ax, measure in zip(axes, measures):
        for (name, run), c in zip(runs.items(), colors(len(runs))):
            ax.plot([r["step"] for r in run], [r[measure] for r in run], marker="o", ms=3, color=c, label=name)
        if teacher_level and measure in teacher_level:
            ax.axhline(teacher_level[measure], color="0.3", ls="--", lw=1, label="teachers")
        ax.set_title(measure.replace("_", " "))
        ax.set_xlabel("step")
    axes[-1].legend()
    return fig


# --------------------------------------------------------------------------- quality
def _error(rows: Sequence[Mapping[str, Any]], metric: str) -> np.ndarray:
    values = np.array([r[metric] for r in rows])
    ci = np.array([r[f"{metric}_ci"] for r in rows]).reshape(len(rows), 2)
    return np.clip(np.stack([values - ci[:, 0], ci[:, 1] - values]), 0, None)


@_themed
def plot_metric_bars(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = METRICS, title: str = "") -> Figure:
    """Horizontal bars with 95% CI whiskers, one panel per metric, coloured by each row's "role".
    Rows: {"name", "role", "map", "map_ci", ...} as `analysis.metrics_frame` or metrics.json give."""
    roles = list(dict.fromkeys(r.get("role", "") for r in rows))
    palette = dict(zip(roles, colors(len(roles))))
    fig = Figure(figsize=(3.3 * len(metrics) + 1.5, 0.32 * len(rows) + 1.4))
    axes = np.atleast_1d(fig.subplots(1, len(metrics), sharey=True))
    y = np.arange(len(rows))[::-1]
    for ax, metric in zip(axes, metrics):
        ax.barh(y, [r[metric] for r in rows], xerr=_error(rows, metric), height=0.7,
                color=[palette[r.get("role", "")] for r in rows], error_kw={"elinewidth": 1, "capsize": 2})
        ax.set_xlabel(METRIC_LABELS.get(metric, metric))
        ax.set_xlim(0, 1)
    axes[0].set_yticks(y, [r["name"] for r in rows])
    if len(roles) > 1:
        handles = [patches.Patch(color=palette[r], label=r) for r in roles]
        axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_head_metrics(metrics: Mapping[str, Mapping[str, Any]], teachers: Mapping[str, Mapping[str, Any]] | None = None,
                      head_labels: Sequence[str] | None = None, title: str = "") -> Figure:
    """The pooled student, each head, and (optionally) the teachers, with 95% CIs.
    `metrics` is one split of a student's metrics.json ({"pooled": {...}, "head0": {...}});
    `teachers` maps a name to its pooled metrics; `head_labels` renames the heads (e.g. by teacher)."""
    heads = sorted((k for k in metrics if k.startswith("head")), key=lambda k: int(k[4:]))
    labels = list(head_labels) if head_labels is not None else heads
    rows = [{"name": "pooled", "role": "pooled", **metrics["pooled"]}]
    rows += [{"name": label, "role": "head", **metrics[h]} for h, label in zip(heads, labels)]
    rows += [{"name": n, "role": "teacher", **m} for n, m in (teachers or {}).items()]
    return plot_metric_bars(rows, title=title)


@_themed
def plot_ablation(rows: Sequence[Mapping[str, Any]], metric: str = "map") -> Figure:
    """Quality with 95% CIs of every ablation run, one panel per "panel" (e.g. number of heads,
    body/head split), one tick per run ("name"), ordered and coloured by their setting "x"."""
    panels = list(dict.fromkeys(r["panel"] for r in rows))
    sizes = [sum(r["panel"] == p for r in rows) for p in panels]
    fig = Figure(figsize=(max(5.0, 0.75 * sum(sizes) + 2.0 * len(panels)), 4.2))
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True, width_ratios=sizes))
    for ax, panel in zip(axes, panels):
        sub = sorted((r for r in rows if r["panel"] == panel), key=lambda r: r["x"])
        xs = list(dict.fromkeys(r["x"] for r in sub))
        for x, c in zip(xs, colors(len(xs))):
            pos = [i for i, r in enumerate(sub) if r["x"] == x]
            runs = [sub[i] for i in pos]
            ax.errorbar(pos, [r[metric] for r in runs], yerr=_error(runs, metric), fmt="o", color=c, capsize=3)
        ax.set_xticks(range(len(sub)), [r["name"] for r in sub], rotation=35, ha="right", fontsize=7)
        ax.set_xlim(-0.6, len(sub) - 0.4)
        ax.set_title(panel)
    axes[0].set_ylabel(f"test {METRIC_LABELS.get(metric, metric)}")
    return fig


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
                xlabel: str = "latency per question (ms)", ylabel: str = "test MAP") -> Figure:
    """Quality against cost, every model labelled; the Pareto front (`analysis.pareto_front`) joined.
    Models of (nearly) one cost are tagged A, B, ... at their best point and listed, best first,
    beside the plot: their labels would otherwise print over each other."""
    pts = np.asarray(points, dtype=float).reshape(len(names), 2)
    on_front = np.isin(np.arange(len(pts)), front)
    c = colors(2)
    fig = Figure(figsize=(7.5, 3.8))
    ax = fig.add_subplot()
    ax.scatter(pts[~on_front, 0], pts[~on_front, 1], color=c[0], alpha=0.6, label="dominated")
    ax.scatter(pts[on_front, 0], pts[on_front, 1], color=c[1], s=60, zorder=3, label="Pareto front")
    ax.plot(pts[list(front), 0], pts[list(front), 1], color=c[1], lw=1.2)
    listing = []
    for group in label_groups(pts, axes=(0,)):
        best_first = sorted(group, key=lambda i: -pts[i, 1])
        if len(group) == 1:  # labels of the rightmost points go to their left, clear of the listing
            rightmost = pts[group[0], 0] > pts[:, 0].min() + 0.75 * np.ptp(pts[:, 0])
            ax.annotate(names[group[0]], pts[group[0]], xytext=(-4 if rightmost else 4, 4), textcoords="offset points",
                        fontsize=7, va="bottom", ha="right" if rightmost else "left")
            continue
        tag = chr(ord("A") + len(listing))
        ax.annotate(tag, pts[best_first[0]], xytext=(4, 4), textcoords="offset points", fontsize=8,
                    fontweight="bold", va="bottom")
        listing.append(f"{tag} (x = {np.median(pts[group, 0]):.0f}):\n"
                       + "\n".join(f"  {names[i]}  {pts[i, 1]:.3f}" for i in best_first))
    if listing:
        ax.text(1.03, 1.0, "\n\n".join(listing), transform=ax.transAxes, va="top", ha="left", fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.margins(0.15)
    ax.legend(loc="best")
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
