"""The one look of every figure: venue widths, fonts, TrueType embedding, and the only writer.

Sizes follow the ACL format of the seed paper: one column is 7.7 cm (3.03 in) wide, the full text
16 cm (6.3 in). Figures are drawn at exactly one of these widths and saved without cropping
(`bbox_inches` is left alone), so a PDF placed at 100% in the paper shows its 7-8 pt text at 7-8 pt.
Fonts are embedded as TrueType (Type 42), not matplotlib's default Type 3, which some venues'
checkers reject. Our own settings (a few rcParams) are used rather than a style library: they are
all a figure needs, and they keep seaborn's whitegrid look the notebooks already use.

Colours and names of models come from `names`; `save_figure` writes PDF + PNG + a JSON sidecar
with the caption, the numbers shown, the parameters and the code version.
"""
from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import seaborn as sns
from cycler import cycler
from matplotlib.figure import Figure

from ..atomic import atomic_path
from ..provenance import code_version

CM = 1 / 2.54
COLUMN_WIDTH = 7.7 * CM  # 3.03 in: one ACL column
TEXT_WIDTH = 16.0 * CM  # 6.30 in: the full ACL text width
WIDTHS = {"column": COLUMN_WIDTH, "text": TEXT_WIDTH}
BASE_FONT, SMALL_FONT = 8.0, 7.0  # pt, at the printed size
MIN_FONT = 7.0  # the smallest text, for secondary notes (seed counts, values beside rows, keys)
PALETTE = "colorblind"
METRIC_LABELS = {"p@1": "P@1", "map": "MAP", "mrr": "MRR"}


def theme_rc() -> dict[str, Any]:
    """The rcParams of the project's one theme (sizes in points at the printed size)."""
    return {**sns.axes_style("whitegrid"),
            "axes.prop_cycle": cycler(color=sns.color_palette(PALETTE)), "figure.dpi": 100,
            "font.size": BASE_FONT, "axes.titlesize": BASE_FONT, "axes.labelsize": BASE_FONT,
            "figure.titlesize": BASE_FONT + 1, "legend.fontsize": SMALL_FONT, "legend.title_fontsize": SMALL_FONT,
            "xtick.labelsize": SMALL_FONT, "ytick.labelsize": SMALL_FONT,
            "axes.linewidth": 0.6, "grid.linewidth": 0.4, "lines.linewidth": 1.0, "lines.markersize": 4,
            "xtick.major.width": 0.6, "ytick.major.width": 0.6, "xtick.major.size": 2.5, "ytick.major.size": 2.5,
            "xtick.major.pad": 2, "ytick.major.pad": 2, "axes.labelpad": 2, "axes.titlepad": 4,
            "legend.frameon": False, "legend.borderaxespad": 0.3, "legend.handlelength": 1.4,
            "legend.handletextpad": 0.4, "legend.labelspacing": 0.3, "legend.columnspacing": 1.0,
            "patch.linewidth": 0.6, "errorbar.capsize": 1.5,
            "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",
            "figure.constrained_layout.h_pad": 0.02, "figure.constrained_layout.w_pad": 0.02,
            "savefig.pad_inches": 0.0}


def set_theme() -> None:
    """Apply the theme globally (for notebooks drawing their own plots)."""
    mpl.rcParams.update(theme_rc())


@contextlib.contextmanager
def theme() -> Iterator[None]:
    with mpl.rc_context(theme_rc()):
        yield


def themed(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw `plot` inside the theme. Figures made with `figure()` lay themselves out (constrained
    layout); any other figure is tightened once."""
    @functools.wraps(plot)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with theme():
            fig = plot(*args, **kwargs)
            if fig.get_layout_engine() is None:
                fig.tight_layout()
            return fig
    return wrapper


def figure(width: str = "column", height: float | None = None) -> Figure:
    """A Figure of one venue width ("column" or "text"), `height` inches tall (default: 0.7 x the
    column width), laid out by constrained layout so nothing is cropped when saved."""
    w = WIDTHS[width]
    return Figure(figsize=(w, height if height is not None else 0.7 * COLUMN_WIDTH), layout="constrained")


def colors(n: int) -> list[tuple[float, float, float]]:
    """`n` colours for categories that are not models or heads (temperatures, filter policies)."""
    return sns.color_palette(PALETTE, n)


def note(ax, text: str, xy: tuple[float, float] = (0.02, 0.98), **kwargs: Any) -> None:
    """A small text in axes coordinates (top left by default)."""
    ax.text(*xy, text, transform=ax.transAxes, fontsize=SMALL_FONT, va=kwargs.pop("va", "top"),
            ha=kwargs.pop("ha", "left"), color=kwargs.pop("color", "0.25"), **kwargs)


# --------------------------------------------------------------------------- saving
def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a figure sidecar")


def _color_of(artist: Any) -> str | None:
    for get in ("get_color", "get_facecolor", "get_edgecolor"):
        if hasattr(artist, get):
            value = getattr(artist, get)()
            value = value[0] if isinstance(value, np.ndarray) and value.ndim == 2 and len(value) else value
            try:
                return mpl.colors.to_hex(value)
            except (ValueError, TypeError):
                continue
    return None


def drawn_colors(fig: Figure) -> dict[str, list[str]]:
    """The colours of the artists tagged with a model's or head's display name (their gid), by name."""
    found: dict[str, set[str]] = {}
    for artist in fig.findobj(lambda a: bool(a.get_gid())):
        color = _color_of(artist)
        if color is not None:
            found.setdefault(artist.get_gid(), set()).add(color)
    return {name: sorted(colors) for name, colors in sorted(found.items())}


def drawn_texts(fig: Figure) -> tuple[list[str], list[list[str]]]:
    """Every visible text of a figure as drawn, and the pairs of texts whose boxes overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    fig.draw(renderer)
    hidden = _out_of_view(fig)
    texts = [t for t in fig.findobj(mpl.text.Text) if t.get_visible() and t.get_text().strip() and id(t) not in hidden]
    boxes = [t.get_window_extent(renderer).shrunk(0.9, 0.8) for t in texts]  # glyph boxes have slack
    overlaps = [[texts[i].get_text(), texts[j].get_text()] for i in range(len(texts)) for j in range(i + 1, len(texts))
                if boxes[i].overlaps(boxes[j])]
    return sorted({t.get_text() for t in texts}), overlaps


def smallest_font(fig: Figure) -> float:
    """The size (pt) of the smallest visible text of a figure."""
    sizes = [t.get_fontsize() for t in fig.findobj(mpl.text.Text) if t.get_visible() and t.get_text().strip()]
    return float(min(sizes)) if sizes else 0.0


def _out_of_view(fig: Figure) -> set[int]:
    """Tick labels outside their axis's range (kept by matplotlib, never drawn)."""
    hidden = set()
    for ax in fig.axes:
        for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            low, high = sorted(lim)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - 1e-9 * (abs(low) + 1) <= tick.get_loc() <= high + 1e-9 * (abs(high) + 1):
                    hidden |= {id(tick.label1), id(tick.label2)}
    return hidden


# metadata that would change on every save (dates, versions): dropped so reruns leave files unchanged
SAVE_METADATA = {"pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
                 "png": {"Software": None}}


def save_figure(fig: Figure, name: str, data: Mapping[str, Any], params: Mapping[str, Any],
                out_dir: str | Path = "figures", caption: str | None = None) -> list[Path]:
    """Write NAME.pdf (TrueType fonts), NAME.png (200 dpi) and NAME.json (caption, width, data shown,
    parameters, code version), each atomically. The figure keeps its size: a figure made at a venue
    width is saved at that width."""
    out_dir = Path(out_dir)
    written = []
    with theme():  # the font embedding is read at save time
        for fmt, options in (("pdf", {}), ("png", {"dpi": 200})):
            path = out_dir / f"{name}.{fmt}"
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, metadata=SAVE_METADATA[fmt], **options)
            written.append(path)
    width, height = (round(float(v), 3) for v in fig.get_size_inches())
    texts, overlaps = drawn_texts(fig)
    sidecar = {"figure": name, "code_version": code_version(), "params": dict(params), "data": dict(data),
               "size_in": [width, height], "colors": drawn_colors(fig), "texts": texts, "overlapping_texts": overlaps,
               "smallest_font_pt": smallest_font(fig)}
    if caption is not None:
        sidecar["caption"] = caption
    path = out_dir / f"{name}.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(sidecar, indent=1, sort_keys=True, default=_jsonable) + "\n", encoding="utf-8")
    written.append(path)
    return written
