"""Quality figures as pure functions of data: metric dots with intervals, spread over seeds,
ablations, quality against cost, and the forest plot of the claims.

Every plot is drawn at one of the venue widths of `style` and coloured by role (`names`): a row's
"color" is used when given, CERBERUS rows ("emphasis") are drawn larger and bold-labelled.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from ..results.analysis import METRICS, format_mean_sd, mean_sd, pareto_front
from .names import CERBERUS_COLOR, CERBERUS_VARIANT_COLOR, SINGLE_KD_COLOR, head_color
from ..results.scores import head_names
from .style import METRIC_LABELS, MIN_FONT, SMALL_FONT, colors, figure, themed

NEUTRAL = "0.35"
SEED_DOT = "0.6"


def data_range(values: Sequence[float] | np.ndarray, pad: float = 0.05) -> tuple[float, float]:
    """(low, high) of the values, widened by `pad` of their span (or a hair when they are all equal)."""
    values = np.asarray(values, dtype=float).ravel()
    values = values[np.isfinite(values)]
    low, high = float(values.min()), float(values.max())
    span = high - low or (abs(high) or 1.0) * 0.2  # all equal (e.g. 0 disagreement): a visible band around it
    return low - pad * span, high + pad * span


def place_labels(ax, xy: Sequence[tuple[float, float]], texts: Sequence[str], fontsize: float = SMALL_FONT,
                 offsets: Sequence[tuple[float, float]] | None = None, **kwargs: Any) -> list[Any]:
    """Label each point with the first of `offsets` (points) at which its text overlaps neither a
    label already placed nor a marker, nor leaves the axes; the last offset is kept when none is free.
    Needs the axes' limits and scales set before it is called."""
    offsets = offsets or [(4, 2), (4, -8), (-4, 2), (-4, -8), (4, 8), (-4, 8), (4, -14), (-4, -14),
                          (10, -3), (-10, -3), (4, 14), (-4, 14), (4, -20), (-4, -20)]
    fig = ax.figure
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else None
    if renderer is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()
    frame = ax.get_window_extent(renderer)
    radius = 2.5 * fig.dpi / 72  # a marker's half-width, in pixels
    markers = [Bbox.from_extents(x - radius, y - radius, x + radius, y + radius)
               for x, y in (ax.transData.transform(p) for p in xy)]
    taken: list[Any] = []
    placed = []
    for (x, y), text in zip(xy, texts):
        for dx, dy in offsets:
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                              ha="left" if dx >= 0 else "right", va="bottom", **kwargs)
            box = ann.get_window_extent(renderer).expanded(1.02, 1.05)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            clear = not any(box.overlaps(t) for t in taken) and not any(box.overlaps(m) for m in markers)
            if inside and clear or (dx, dy) == offsets[-1]:
                break
            ann.remove()
        taken.append(box)
        placed.append(ann)
    return placed


def _error(rows: Sequence[Mapping[str, Any]], metric: str) -> np.ndarray:
    values = np.array([r[metric] for r in rows])
    ci = np.array([r[f"{metric}_ci"] for r in rows]).reshape(len(rows), 2)
    return np.clip(np.stack([values - ci[:, 0], ci[:, 1] - values]), 0, None)


def _row_color(row: Mapping[str, Any], fallback: Any) -> Any:
    return row.get("color") or fallback


def tag(artist: Any, name: str | None) -> Any:
    """Mark an artist (an errorbar: its marker line) as drawing the model or head `name` (its gid):
    `style.drawn_colors` reads the colour of every tagged artist, so a test can hold each name to one
    colour across figures."""
    if name:
        (artist.lines[0] if isinstance(artist, mpl.container.Container) else artist).set_gid(name)
    return artist


@themed
def plot_metric_bars(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = METRICS, title: str = "",
                     reference: str | None = None, width: str = "text") -> Figure:
    """Each row's value (dot) and 95% CI (whisker), one panel per metric, coloured by the row's
    "color" (else by its "role"); the x axis follows the data, not [0, 1]. Rows: {"name", "role",
    "map", "map_ci", ...}; a row's "label" (else its name) is shown. `reference` names the row whose
    value is a dotted line across each panel. Values are in the sidecar, not printed on the dots."""
    roles = list(dict.fromkeys(r.get("role", "") for r in rows))
    palette = dict(zip(roles, colors(len(roles))))
    fig = figure(width, 0.19 * len(rows) + 0.55)
    axes = np.atleast_1d(fig.subplots(1, len(metrics), sharey=True))
    y = np.arange(len(rows))[::-1]
    ref = next((r for r in rows if r["name"] == reference), None)
    for ax, metric in zip(axes, metrics):
        values = np.array([r[metric] for r in rows])
        error = _error(rows, metric)
        for yi, value, low, high, row in zip(y, values, *error, rows):
            big = row.get("emphasis")
            tag(ax.errorbar(value, yi, xerr=[[low], [high]], fmt="D" if big else "o", ms=4.5 if big else 3.5,
                            color=_row_color(row, palette[row.get("role", "")]), elinewidth=1.0, capsize=1.5),
                row.get("gid"))
        if ref is not None:
            ax.axvline(ref[metric], color=_row_color(ref, NEUTRAL), ls=":", lw=0.8)
        ax.set_xlim(*data_range(np.concatenate([values - error[0], values + error[1]]), pad=0.04))
        ax.set_xlabel(METRIC_LABELS.get(metric, metric))
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(4))
    axes[0].set_yticks(y, [r.get("label", r["name"]) for r in rows])
    for tick, row in zip(axes[0].get_yticklabels(), rows):
        if row.get("emphasis"):
            tick.set_fontweight("bold")
    if not any("color" in r for r in rows) and len(roles) > 1:
        handles = [mpl.lines.Line2D([], [], color=palette[r], marker="o", ls="", label=r) for r in roles]
        axes[-1].legend(handles=handles, loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def plot_head_metrics(metrics: Mapping[str, Mapping[str, Any]], teachers: Mapping[str, Mapping[str, Any]] | None = None,
                      head_labels: Sequence[str] | None = None, title: str = "",
                      teacher_colors: Mapping[str, str] | None = None, pooled_label: str = "student, pooled",
                      pooled_gid: str | None = None) -> Figure:
    """The pooled student, each head, and (optionally) the teachers, with 95% CIs.
    `metrics` is one split of a student's metrics ({"pooled": {...}, "head0": {...}});
    `teachers` maps a name to its pooled metrics; `head_labels` renames the heads (e.g. by teacher)."""
    heads = head_names(metrics)
    labels = list(head_labels) if head_labels is not None else heads
    rows = [{"name": "pooled", "label": pooled_label, "role": "student (pooled)", "color": CERBERUS_COLOR,
             "emphasis": True, **metrics["pooled"], "gid": pooled_gid}]
    rows += [{"name": label, "role": "student head", "color": head_color(i), "gid": label, **metrics[h]}
             for i, (h, label) in enumerate(zip(heads, labels))]
    rows += [{"name": n, "label": n if teacher_colors else f"teacher {n}", "role": "teacher",
              **({"color": teacher_colors[n], "gid": n} if teacher_colors else {}), **m}
             for n, m in (teachers or {}).items()]
    return plot_metric_bars(rows, title=title, reference="pooled")


def _whisker(values: Sequence[float]) -> float:
    """The half-length of a seed whisker: the sample sd, or none for one seed (which has no sd)."""
    return mean_sd(values)["sd"] if len(values) > 1 else 0.0


def _seed_error(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Each row's seed whisker, both ways."""
    sd = [_whisker(r["values"]) for r in rows]
    return np.array([sd, sd])


@themed
def plot_seed_spread(rows: Sequence[Mapping[str, Any]], references: Mapping[str, Any], metric: str = "map",
                     title: str = "", width: str = "column", xlabel: str | None = None, log: bool = False,
                     digits: int = 3) -> Figure:
    """One row per system: every seed's value (small grey dots) and their mean ± sample sd (dot and
    whisker, in the row's "color"), so a gap between systems can be read against the spread between
    seeds; "mean ± sd" is printed at the right edge. `rows`: {"label", "values", "color"?,
    "emphasis"?}; `references` (label -> value, or -> (value, colour); e.g. teachers, trained once)
    are dashed vertical lines in the legend."""
    fig = figure(width, 0.2 * len(rows) + 0.75 + 0.12 * len(references))
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1]
    shown = []
    same_n = len({len(r["values"]) for r in rows}) == 1
    for yi, row in zip(y, rows):
        values = np.asarray(row["values"], dtype=float)
        shown += list(values)
        c = row.get("color", NEUTRAL)
        ax.scatter(values, np.full(len(values), yi + 0.18), s=5, color=SEED_DOT, zorder=2, lw=0)
        centre = float(np.exp(np.mean(np.log(values)))) if log else mean_sd(values)["mean"]
        tag(ax.errorbar(centre, yi, xerr=None if log else _whisker(values), fmt="D" if row.get("emphasis") else "o",
                        color=c, ms=4.5 if row.get("emphasis") else 3.5, capsize=1.5, zorder=3), row.get("gid"))
        text = f"{centre:.{digits}g}" if log else format_mean_sd(values, digits).replace(" ", "")
        if not same_n:
            text += f" (n={len(values)})"
        ax.annotate(text, (1.0, yi), xycoords=("axes fraction", "data"), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=MIN_FONT, color="0.25")
    refs = {k: (v if isinstance(v, tuple) else (v, None)) for k, v in references.items()}
    for name, (value, lc) in refs.items():
        line = ax.axvline(value, color=lc or "black", ls="--", lw=0.9, label=f"{name} ({value:.{digits}g})" if log
                          else f"{name} ({value:.{digits}f})")
        tag(line, name if lc else None)
        shown.append(value)
    ax.set_yticks(y, [r["label"] for r in rows])
    for tick, row in zip(ax.get_yticklabels(), rows):
        if row.get("emphasis"):
            tick.set_fontweight("bold")
    ax.set_ylim(-0.6, len(rows) - 0.4)
    if log:
        ax.set_xscale("log")
    else:
        ax.set_xlim(*data_range(shown, pad=0.06))
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(5 if width == "text" else 4))
    ax.set_xlabel(xlabel or f"{METRIC_LABELS.get(metric, metric)} (mean ± sd over seeds; grey: each seed)")
    if refs:
        fig.legend(loc="outside lower center", ncols=min(len(refs), 4 if width == "text" else 2),
                   fontsize=MIN_FONT)
    if title:
        fig.suptitle(title)
    return fig


@themed
def plot_ablation(rows: Sequence[Mapping[str, Any]], metric: str = "map",
                  xlabels: Mapping[str, str] | None = None, title: str = "") -> Figure:
    """Quality of every ablation run, one panel per "panel" (e.g. number of heads, body/head split),
    one tick per run ("name", "+" starts a new line), ordered by its setting "x" and coloured by it;
    the row marked "main" (the main run, in every panel) is CERBERUS's colour and marker everywhere
    with a dotted line at its value. Rows with "values" and "seeds" (one value per seed; `metric` is
    their mean) show each seed as a grey dot and mean ± sd; others their 95% CI."""
    over_seeds = all("values" in r for r in rows)
    panels = list(dict.fromkeys(r["panel"] for r in rows))
    sizes = [sum(r["panel"] == p for r in rows) for p in panels]
    members = {p: [r["name"].split("+") for r in sorted((r for r in rows if r["panel"] == p),
                                                           key=lambda r: (r["x"], bool(r.get("main"))))]
               for p in panels}
    sets = {p: list(dict.fromkeys(m for names in members[p] for m in names)) for p in panels
            if any(len(names) > 1 for names in members[p])}  # panels of teacher sets: a dot matrix under the axis
    rows_below = max((len(v) for v in sets.values()), default=0)
    fig = figure("text", 2.2 + 0.13 * rows_below)
    grid = fig.add_gridspec(2 if sets else 1, len(panels), width_ratios=[max(s, 2) for s in sizes],
                            height_ratios=[1, 0.075 * rows_below + 0.02] if sets else [1])
    axes = [fig.add_subplot(grid[0, i]) for i in range(len(panels))]
    for ax in axes[1:]:
        ax.sharey(axes[0])
        ax.tick_params(labelleft=False)
    handles: dict[str, Any] = {}
    main = next((r for r in rows if r.get("main")), None)
    for ax, panel in zip(axes, panels):
        sub = sorted((r for r in rows if r["panel"] == panel), key=lambda r: (r["x"], bool(r.get("main"))))
        for key in dict.fromkeys("main" if r.get("main") else r["x"] for r in sub):
            pos = [i for i, r in enumerate(sub) if ("main" if r.get("main") else r["x"]) == key]
            runs = [sub[i] for i in pos]
            is_main = key == "main"
            error = _seed_error(runs) if over_seeds else _error(runs, metric)
            one_head = not is_main and str(runs[0].get("legend", "")).startswith("1 head")
            color = CERBERUS_COLOR if is_main else SINGLE_KD_COLOR if one_head else CERBERUS_VARIANT_COLOR
            legend = ("main run" if is_main else "1 head: KD from one teacher" if one_head
                      else "other CERBERUS variants")
            handles[legend] = ax.errorbar(pos, [r[metric] for r in runs], yerr=error, fmt="D" if is_main else "o",
                                          ms=4.5 if is_main else 3.5, color=color, capsize=1.5, zorder=3,
                                          label=(runs[0].get("legend") or legend) if is_main else legend)
            tag(handles[legend], runs[0].get("gid") if is_main else None)
            if over_seeds:
                for p_, r in zip(pos, runs):
                    ax.scatter([p_ + 0.18] * len(r["values"]), r["values"], s=5, color=SEED_DOT, zorder=2, lw=0)
        if main is not None:
            ax.axhline(main[metric], color=CERBERUS_COLOR, ls=":", lw=0.8)
        ax.set_xlim(-0.5, len(sub) - 0.3)
        ax.set_title(panel)
        if panel in sets:
            universe = sets[panel]
            below = fig.add_subplot(grid[1, panels.index(panel)], sharex=ax)
            for i, names in enumerate(members[panel]):
                ys = [len(universe) - 1 - universe.index(m) for m in names]
                below.scatter([i] * len(universe), range(len(universe)), s=9, color="0.85", lw=0)
                below.scatter([i] * len(ys), ys, s=9, color="0.2", lw=0)
                below.plot([i, i], [min(ys), max(ys)], color="0.2", lw=0.8)
            below.set_yticks(range(len(universe)), universe[::-1], fontsize=MIN_FONT)
            below.set_ylim(-0.6, len(universe) - 0.4)
            below.grid(False)
            below.tick_params(labelbottom=False, length=0)
            for side in below.spines.values():
                side.set_visible(False)
            ax.tick_params(labelbottom=False)
            below.set_xlabel((xlabels or {}).get(panel, ""))
        else:
            ax.set_xticks(range(len(sub)), [r["name"].replace("+", "\n+") for r in sub], fontsize=MIN_FONT)
            ax.set_xlabel((xlabels or {}).get(panel, ""))
    order = sorted(handles, key=lambda k: k != "main run")
    fig.legend([handles[k] for k in order], [handles[k].get_label() for k in order], loc="outside lower center",
               ncols=len(order))
    spread = "mean ± sd over seeds" if over_seeds else "95% CI"
    axes[0].set_ylabel(f"{METRIC_LABELS.get(metric, metric)} ({spread})")
    if title:
        fig.suptitle(title)
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


def _log_ticks(ax) -> None:
    ax.xaxis.set_major_locator(mpl.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())


@themed
def plot_pareto(points: Sequence[tuple[float, float]], names: Sequence[str], front: Sequence[int],
                spread: Sequence[tuple[float, float]] | None = None,
                members: Sequence[Sequence[tuple[str, float]]] | None = None,
                xlabel: str = "latency per question (ms, log scale)", ylabel: str = "test MAP",
                title: str = "", point_colors: Sequence[str] | None = None, width: str = "text",
                gids: Sequence[str | None] | None = None) -> Figure:
    """Quality against cost, one labelled point per model or architecture (coloured by `point_colors`),
    the Pareto front (`analysis.pareto_front`, fastest first) joined by a black line. A point that
    stands for several models (one architecture) gets `spread`, the range of their quality, as a grey
    bar, and `members`, (name, quality) pairs, listed beside the plot. Labels are placed clear of each
    other and of the points."""
    pts = np.asarray(points, dtype=float).reshape(len(names), 2)
    fig = figure(width, 2.6)
    ax = fig.add_subplot()
    if spread is not None:
        for (x, _), (low, high) in zip(pts, spread):
            if high > low:
                ax.vlines(x, low, high, color="0.55", lw=2.0, alpha=0.5, zorder=1)
    pc = list(point_colors) if point_colors is not None else [NEUTRAL] * len(pts)
    on_front = np.isin(np.arange(len(pts)), front)
    for i, (x, y) in enumerate(pts):
        tag(ax.scatter([x], [y], color=pc[i], s=24 if on_front[i] else 14, zorder=3, edgecolors="black",
                       linewidths=0.8 if on_front[i] else 0.0), (gids or [None] * len(pts))[i])
    ax.plot(pts[list(front), 0], pts[list(front), 1], color="black", lw=0.8, zorder=2, label="Pareto front")
    ax.set_xscale("log")
    _log_ticks(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.margins(x=0.15, y=0.15)
    listing = [f"{names[i]}:\n" + "\n".join(f"  {m}  {q:.3f}" for m, q in sorted(group, key=lambda mq: -mq[1]))
               for i, group in enumerate(members or []) if len(group) > 1]
    if listing:
        ax.text(1.02, 1.0, "\n".join(listing), transform=ax.transAxes, va="top", ha="left",
                fontsize=MIN_FONT)
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    place_labels(ax, [tuple(p) for p in pts], [f"{n}  {p[1]:.3f}" for n, p in zip(names, pts)])
    return fig


def _cost_points(ax, points: Sequence[Mapping[str, Any]], xs: np.ndarray, means: np.ndarray,
                 front: Sequence[int], which: Sequence[int]) -> None:
    for i in which:
        p = points[i]
        ax.scatter(np.full(len(p["values"]), xs[i] * 1.03), p["values"], s=3, color=SEED_DOT,
                   zorder=2, lw=0)
        color = p.get("color", NEUTRAL)
        tag(ax.errorbar(xs[i], means[i], yerr=_whisker(p["values"]), fmt="D" if p.get("emphasis") else "o",
                        ms=4 if p.get("emphasis") else 3, color=color, capsize=1.5, zorder=3,
                        mec="black" if i in front else color, mew=0.8 if i in front else 0.5), p.get("gid"))


@themed
def plot_cost(points: Sequence[Mapping[str, Any]], metric: str = "map",
              costs: Sequence[tuple[str, str]] = (("parameters", "parameters (millions)"),
                                                  ("latency_ms", "latency per question (ms)")),
              title: str = "") -> Figure:
    """Quality over seeds against each cost, one panel per cost (log x): a point per architecture
    ({"label", "color", "values": per-seed quality, and each cost}), mean ± sd over seeds, the
    Pareto front of each panel (on the means) joined in black and its points ringed. Points are
    numbered (the key is below). The y axis follows the points with several seeds (the students);
    a point far above or below them (a teacher) is a triangle at the edge with its value."""
    fig = figure("text", 3.0)
    axes = np.atleast_1d(fig.subplots(1, len(costs), sharey=True))
    means = np.array([mean_sd(p["values"])["mean"] for p in points])
    seeded = [v for p in points if len(p["values"]) > 1 for v in p["values"]]
    low, high = data_range(seeded if len(seeded) > 2 else [v for p in points for v in p["values"]], pad=0.15)
    offsets = [(3, 1), (-3, 1), (3, -8), (-3, -8), (5, -3), (-5, -3), (3, 6), (-3, 6), (3, -13), (-3, -13),
               (3, 11), (-3, 11)]
    for ax, (key, label) in zip(axes, costs):
        scale = 1e6 if key == "parameters" else 1.0
        xs = np.array([p[key] / scale for p in points])
        front = pareto_front(list(zip(xs, means)))
        inside = [i for i in range(len(points)) if low <= means[i] <= high]
        _cost_points(ax, points, xs, means, front, inside)
        ax.plot(xs[front], means[front], color="black", lw=0.8, zorder=1, label="Pareto front (means)")
        stacked = {True: 0, False: 0}
        for i in sorted(set(range(len(points))) - set(inside), key=lambda i: xs[i]):
            above = means[i] > high
            shift = 9 * stacked[above]  # several off the scale at one edge: their notes one under the other
            stacked[above] += 1
            ax.plot(xs[i], 1.0 if above else 0.0, "^" if above else "v", transform=ax.get_xaxis_transform(),
                    color=points[i].get("color", NEUTRAL), ms=5, clip_on=False, zorder=4,
                    mec="black" if i in front else points[i].get("color", NEUTRAL), mew=0.8 if i in front else 0.5,
                    gid=points[i].get("gid"))
            ax.annotate(f"{i + 1}: {means[i]:.3f} {'↑' if above else '↓'}", (xs[i], 1.0 if above else 0.0),
                        xycoords=ax.get_xaxis_transform(), xytext=(0, -7 - shift if above else 7 + shift),
                        textcoords="offset points", ha="right", va="top" if above else "bottom",
                        fontsize=MIN_FONT, color="0.25")
        ax.set_xscale("log")
        _log_ticks(ax)
        ax.set_xlabel(label)
        ax.set_xlim(xs.min() / 1.4, xs.max() * 1.4)
        ax.set_ylim(low, high)
        place_labels(ax, [(xs[i], means[i]) for i in inside], [str(i + 1) for i in inside],
                     fontsize=MIN_FONT, offsets=offsets)
    axes[0].set_ylabel(f"test {METRIC_LABELS.get(metric, metric)} (mean ± sd)")
    axes[-1].legend(loc="lower right")
    blank = [mpl.patches.Patch(visible=False)] * len(points)
    fig.legend(blank, [f"{i + 1}: {p['label']}" for i, p in enumerate(points)], loc="outside lower center",
               ncols=4, handlelength=0, handletextpad=0, fontsize=MIN_FONT)
    if title:
        fig.suptitle(title)
    return fig


VERDICT_STYLE = {"supported": ("D", True, CERBERUS_COLOR), "contradicted": ("s", True, "0.15"),
                 "not supported": ("o", False, NEUTRAL), "pooled only": ("^", False, "0.6")}


@themed
def plot_forest(rows: Sequence[Mapping[str, Any]], xlabel: str = "difference in test MAP (A - B)",
                title: str = "", xlabels: Mapping[str, str] | None = None) -> Figure:
    """One row per comparison: the difference ("delta") and its 95% interval ("ci"), with the verdict
    and corrected p ("p" text) at the right edge; the verdict picks the marker (filled diamond:
    supported, filled square: contradicted, open circle: not supported; a row's "style" and "note"
    override the verdict's marker and text, e.g. "pooled only"). Rows with a "panel" are
    grouped one panel each (its own x axis, labelled by `xlabels[panel]`), in order of appearance."""
    panels = list(dict.fromkeys(r.get("panel", "") for r in rows))
    sizes = [sum(r.get("panel", "") == p for r in rows) for p in panels]
    fig = figure("text", 0.2 * len(rows) + 0.55 * len(panels) + 0.2)
    axes = np.atleast_1d(fig.subplots(len(panels), 1, height_ratios=[s + 0.8 for s in sizes]))
    for ax, panel in zip(axes, panels):
        sub = [r for r in rows if r.get("panel", "") == panel]
        y = np.arange(len(sub))[::-1]
        for yi, r in zip(y, sub):
            marker, filled, c = VERDICT_STYLE.get(r.get("style", r.get("verdict")), VERDICT_STYLE["not supported"])
            lo, hi = r["ci"]
            ax.plot([lo, hi], [yi, yi], color=c, lw=1.2, solid_capstyle="butt")
            ax.plot(r["delta"], yi, marker, ms=4.5, color=c, mfc=c if filled else "white", mew=1.0)
            ax.annotate(r.get("note") or f"{r.get('verdict', '')}, p {r.get('p', '')}", (1.0, yi),
                        xycoords=("axes fraction", "data"),
                        xytext=(4, 0), textcoords="offset points", va="center", fontsize=MIN_FONT,
                        color=c if filled else "0.3", fontweight="bold" if r.get("verdict") == "supported" else None)
        ax.axvline(0, color="black", lw=0.7)
        ax.set_yticks(y, [r["label"] for r in sub])
        ax.set_ylim(-0.6, len(sub) - 0.4)
        ax.set_xlabel((xlabels or {}).get(panel, xlabel))
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(6))
        span = [v for r in sub for v in (*r["ci"], r["delta"])] + [0.0]
        ax.set_xlim(*data_range(span, pad=0.06))
    if title:
        fig.suptitle(title)
    return fig
