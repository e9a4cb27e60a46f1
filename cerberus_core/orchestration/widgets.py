"""Interactive panels for notebooks: thin wiring from ipywidgets controls to pure functions.

Each `build_*` returns a `Panel` (an `ipywidgets.VBox`): `panel.controls` maps a name to its
widget, so a test or a notebook drives it by setting `.value` (or `.click()` on a button), the way
ipywidgets tests its own `interactive`; `panel.result` is the last Figure or HTML/text string
produced and `panel.output` shows it. The numbers come from `analysis`, the figures from
`plotting`; the few pure helpers here only lay out HTML tables. Figures are
`matplotlib.figure.Figure` objects, never pyplot ones, so replacing one leaks nothing.
"""
from __future__ import annotations

import html
import io
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import traitlets
from IPython.display import HTML, Image, clear_output, display
from matplotlib.figure import Figure

from ..results import analysis as an
from ..results import artifacts
from ..reporting import plotting as pl
from ..data import FILTERS, AS2Dataset, Question
from ..reporting.names import teacher_name
from ..results.scores import ScoreTable

KEEP_POLICIES = ("answerable", "clean")  # the filters worth showing: "none" keeps everything
MEASURES = (("pearson", "pearson"), ("spearman", "spearman"), ("kendall", "kendall"),
            ("top-1 disagreement", "top1"))
POSITIVE_STYLE = "background:#d9f2d9"
LABEL_STYLE = {"description_width": "initial"}  # a control's label is never cut ("temperat...")
TOP_STYLE = "font-weight:bold;background:#ffe8a8"


class Panel(widgets.VBox):
    """Controls above an Output. Any control's new value re-renders, unless a `trigger` button is
    given (for slow work such as timing): then only its click does."""

    result = traitlets.Any(None, allow_none=True)  # a trait, so a notebook can observe it too

    def __init__(self, title: str, controls: Mapping[str, widgets.Widget], render: Callable[[], Any],
                 extra: Sequence[widgets.Widget] = (), trigger: widgets.Button | None = None,
                 footer: Sequence[widgets.Widget] = ()) -> None:
        """`extra` widgets sit between the controls and the output, `footer` ones below the output
        (a long legend there keeps the plot right under its control)."""
        self.controls = dict(controls)
        self.output = widgets.Output()
        self._render = render
        super().__init__([widgets.HTML(f"<b>{html.escape(title)}</b>"), *self.controls.values(), *extra,
                          self.output, *footer])
        if trigger is None:
            for control in self.controls.values():
                control.observe(lambda _: self.refresh(), names="value")
            self.refresh()
        else:
            trigger.on_click(lambda _: self.refresh())

    def refresh(self) -> None:
        """Render once and show it. On an error `result` keeps its last value; inside a kernel the
        traceback appears in the Output (Output.__exit__ shows and swallows it), elsewhere, as in
        tests, it propagates."""
        with self.output:
            clear_output(wait=True)
            result = self._render()
            display(displayable(result))
            self.result = result


def displayable(result: Figure | str) -> Image | HTML:
    """What the Output shows. A Figure is rendered to PNG here: display(fig) on a bare Figure
    shows only "<Figure size ...>" in a kernel where pyplot's inline backend never loaded.
    A string is HTML, or a plain-text table kept aligned in a <pre> block."""
    if isinstance(result, Figure):
        png = io.BytesIO()
        result.savefig(png, format="png", bbox_inches="tight")
        return Image(png.getvalue(), format="png")
    return HTML(result if result.lstrip().startswith("<") else f"<pre>{html.escape(result)}</pre>")


def _question_dropdown(dataset: AS2Dataset) -> widgets.Dropdown:
    """Questions by qid (the stable key), labelled with their text so a reader can find one."""
    options = [(f"{q.qid} · {q.text[:70]}", q.qid) for q in dataset]
    return widgets.Dropdown(options=options, description="question", layout={"width": "95%"}, style=LABEL_STYLE)


def readable_colorbars(fig: Figure) -> Figure:
    """Give every colour bar of `fig` tick labels with as many decimals as it takes to tell its ticks
    apart (at least 2, at most 6): a bar spanning 0.981-0.989 otherwise prints "0.98" five times."""
    from matplotlib.ticker import FixedFormatter, FixedLocator

    for ax in fig.axes:
        colorbar = getattr(ax, "_colorbar", None)
        if colorbar is None:
            continue
        axis = ax.yaxis if colorbar.orientation == "vertical" else ax.xaxis
        low, high = sorted(axis.get_view_interval())
        ticks = [t for t in axis.get_major_locator()() if low - 1e-12 <= t <= high + 1e-12]
        if not ticks:
            continue
        digits = next((d for d in range(2, 7) if len({f"{t:.{d}f}" for t in ticks}) == len(ticks)), 6)
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FixedFormatter([f"{t:.{digits}f}" for t in ticks]))
    return fig


# --------------------------------------------------------------------------- pure HTML helpers
def _cell(value: Any, style: str = "", title: str = "") -> str:
    attrs = (f' style="{style}"' if style else "") + (f' title="{html.escape(title)}"' if title else "")
    return f"<td{attrs}>{value}</td>"


def _table(header: Sequence[str], rows: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return f'<table class="cerberus"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _row(cand: int, label: int, cells: str) -> str:
    style = f' style="{POSITIVE_STYLE}"' if label else ""
    return f'<tr data-cand="{cand}" class="{"pos" if label else "neg"}"{style}>{cells}</tr>'


def _heading(question: Question) -> str:
    return f"<p><b>{html.escape(question.qid)}</b>: {html.escape(question.text)}</p>"


def question_html(question: Question, policies: Sequence[str] = KEEP_POLICIES) -> str:
    """One question's candidates with their labels (positives highlighted) and which filter
    policies would keep it, so a reader sees why a question counts or not."""
    rows = [_row(i, y, _cell(i) + _cell(y) + _cell(html.escape(c)))
            for i, (c, y) in enumerate(zip(question.candidates, question.labels))]
    kept = "; ".join(f"{p}: {'kept' if FILTERS[p](question) else 'dropped'}" for p in policies)
    return f"{_heading(question)}<p>filters: {kept}</p>{_table(['#', 'label', 'candidate'], rows)}"


def candidate_scores(table: ScoreTable, index: Mapping[tuple[str, int], int], qid: str, n: int,
                     column: str) -> np.ndarray:
    """The column's score of candidates 0..n-1 of `qid`; NaN where the table lacks the pair."""
    return np.array([table.columns[column][index[(qid, i)]] if (qid, i) in index else np.nan
                     for i in range(n)])


def explorer_html(question: Question, scores: Mapping[str, np.ndarray], sort_by: str) -> str:
    """Candidates (rows, sorted by `sort_by` desc., ties to the lower index) x models (columns);
    each model's top candidate is marked (bold, ★, title "top of NAME"), ties to the lower index
    as in `analysis.top1`."""
    n = len(question.candidates)
    tops = {name: int(np.nanargmax(v)) for name, v in scores.items() if np.isfinite(v).any()}
    order = np.lexsort((np.arange(n), -np.nan_to_num(scores[sort_by], nan=-np.inf)))
    rows = []
    for i in order:
        cells = [_cell(f"{v[i]:.3f} ★" if tops.get(m) == i else ("–" if np.isnan(v[i]) else f"{v[i]:.3f}"),
                       TOP_STYLE if tops.get(m) == i else "", f"top of {m}" if tops.get(m) == i else "")
                 for m, v in scores.items()]
        text = _cell(html.escape(question.candidates[i]))
        rows.append(_row(int(i), question.labels[i], _cell(i) + _cell(question.labels[i]) + "".join(cells) + text))
    return _heading(question) + _table(["#", "label", *scores, "candidate"], rows)


# --------------------------------------------------------------------------- panels
def build_temperature_panel(margins: Sequence[float], labels: Sequence[int], candidates: Sequence[str] | None = None,
                            temperatures: Sequence[float] = (0.5, 1, 2, 4, 8)) -> Panel:
    """One question's teacher margins as KD targets at the chosen temperature: per-pair
    sigmoid(m/T) and the softmax over candidates. Both y axes are fixed to [0, 1] so moving the
    slider moves the bars, not the axis. The plot sits right under the slider; the candidates'
    texts (the correct ones highlighted) come below it."""
    temperatures = [float(t) for t in temperatures]
    slider = widgets.SelectionSlider(options=[(f"{t:g}", t) for t in temperatures], description="temperature",
                                     value=1.0 if 1.0 in temperatures else temperatures[0], style=LABEL_STYLE)

    def render() -> Any:
        fig = pl.plot_soft_targets(margins, labels, temperatures=(slider.value,))
        fig.axes[1].set_ylim(0, 1)
        return fig

    key = [widgets.HTML(candidate_key_html(candidates, labels))] if candidates else []
    return Panel("Teacher scores softened by temperature", {"temperature": slider}, render, footer=key)


def candidate_key_html(candidates: Sequence[str], labels: Sequence[int]) -> str:
    """"c0: text" per candidate, the correct ones marked ✓ and highlighted as in the plots."""
    lines = [f'<span style="{POSITIVE_STYLE};font-weight:bold">c{i} ✓: {html.escape(c)}</span>' if y
             else f"c{i}: {html.escape(c)}" for i, (c, y) in enumerate(zip(candidates, labels))]
    return "<br>".join(lines)


def build_question_browser(dataset: AS2Dataset) -> Panel:
    """Browse a split question by question. Load it with filter="none" to see what the
    answerable / clean policies would drop."""
    questions = {q.qid: q for q in dataset}
    control = _question_dropdown(dataset)
    return Panel(f"{dataset.name}/{dataset.split} ({dataset.filter} filter): {len(dataset)} questions",
                 {"question": control}, lambda: question_html(questions[control.value]))


def build_head_correlation_panel(tables: Mapping[str, ScoreTable],
                                 teacher_tables: Mapping[str, Mapping[str, ScoreTable]] | None = None,
                                 head_labels: Sequence[str] | None = None) -> Panel:
    """How alike the heads (and optionally the teachers) score one split: a correlation of the
    margins or the fraction of questions whose top-1 differs. `tables`: split -> student table;
    `teacher_tables`: split -> {teacher: table}. The colour scale and the decimals follow the
    values shown (heads correlate at 0.99 and more: a fixed [0, 1] scale would paint them alike), and
    the colour bar's ticks carry the decimals that tell them apart. `head_labels`: display names of
    the heads, in column order (names.head_name); teachers are shown by names.teacher_name."""
    first = next(iter(tables.values()))
    heads = first.head_columns()
    labels = dict(zip(heads, head_labels or heads))
    display_name = lambda name: labels.get(name, teacher_name(name))  # noqa: E731
    c = {"split": widgets.Dropdown(options=list(tables), description="split", style=LABEL_STYLE),
         "heads": widgets.SelectMultiple(options=[(labels[h], h) for h in heads], value=tuple(heads),
                                         description="heads", style=LABEL_STYLE, layout={"width": "max-content"}),
         "measure": widgets.Dropdown(options=MEASURES, value="pearson", description="measure", style=LABEL_STYLE),
         "with teachers": widgets.Checkbox(False, description="with teachers", disabled=not teacher_tables,
                                           style=LABEL_STYLE)}

    def render() -> Any:
        table, measure = tables[c["split"].value], c["measure"].value
        if not c["heads"].value:
            return "<p><i>select at least one head</i></p>"
        names, matrix = an.score_matrix(table, c["heads"].value)
        teachers = (teacher_tables or {}).get(c["split"].value, {}) if c["with teachers"].value else {}
        if teachers:
            t_names, t_matrix = an.score_matrix(teachers, reference=table)
            names, matrix = [*names, *t_names], np.column_stack([matrix, t_matrix])
        values = (an.top1_disagreement(table.qids, matrix, table.cand_idx) if measure == "top1"
                  else an.pairwise_correlation(matrix, measure))
        label = dict((v, k) for k, v in MEASURES)[measure]
        n = len(set(table.qids))
        shown = [display_name(name) for name in names]
        fig = pl.plot_correlation_heatmap(values, shown, f"{c['split'].value} split, {n} questions: {label}",
                                          label="share of questions" if measure == "top1" else f"{label} r of the margins")
        return readable_colorbars(fig)

    return Panel("Head diversity", c, render)


ORDERS = (("question id", "qid"), ("heads off their own teacher's top-1 first", "teacher"),
          ("heads that disagree with each other first", "heads"))


def build_question_explorer(student_table: ScoreTable, teacher_tables: Mapping[str, ScoreTable],
                            dataset: AS2Dataset, taught: Sequence[str] | None = None,
                            head_labels: Sequence[str] | None = None) -> Panel:
    """One question seen by every teacher, every head and the pooled student, side by side: where
    a head follows its teacher's top candidate and where the pooled vote lands. Scores are
    matched by (qid, cand_idx); a pair a table lacks shows as "–". Every column says its unit:
    teachers and heads give logit margins, the pooled score is a probability.

    An "order" control sorts the questions so the ones where the heads part from their own teachers
    (`taught`: the teacher of each head, in head order) or from each other come first
    (`tables.question_disagreement`); each option shows its counts."""
    from ..reporting.tables import question_disagreement

    questions = {q.qid: q for q in dataset}
    student_index = student_table.key_index()
    heads = student_table.head_columns()
    labels = dict(zip(heads, head_labels or heads))
    sources = {f"{name} (margin)": (t, "score", t.key_index()) for name, t in teacher_tables.items()}
    sources |= {f"{labels[col]} (margin)": (student_table, col, student_index) for col in heads}
    if "pooled" in student_table.columns:
        sources["pooled (probability)"] = (student_table, "pooled", student_index)
    sort_by = "pooled (probability)" if "pooled (probability)" in sources else next(reversed(sources))
    control = _question_dropdown(dataset)
    ranking = question_disagreement(student_table, teacher_tables, taught)
    counts = ranking.set_index("qid")
    orders = [o for o in ORDERS if o[1] != "teacher" or taught]
    order = widgets.Dropdown(options=orders, value="qid", description="order questions by", style=LABEL_STYLE,
                             layout={"width": "max-content"})

    def reorder(_: Any = None) -> None:
        if order.value == "qid":
            options = [(f"{q.qid} · {q.text[:70]}", q.qid) for q in dataset]
        else:
            key = "heads off their teacher's top-1" if order.value == "teacher" else "distinct head top-1"
            frame = ranking.sort_values([key, "head spread (logits)"], ascending=False, kind="stable")
            what = "heads off their teacher" if order.value == "teacher" else "distinct top candidates"
            options = [(f"{qid} · {counts.loc[qid, key]} {what} · {questions[qid].text[:60]}", qid)
                       for qid in frame["qid"] if qid in questions]
        current = control.value
        control.options = options
        control.value = current if current in dict((v, k) for k, v in options) else options[0][1]

    order.observe(reorder, names="value")

    def render() -> str:
        q = questions[control.value]
        scores = {name: candidate_scores(t, index, q.qid, len(q.candidates), col)
                  for name, (t, col, index) in sources.items()}
        return explorer_html(q, scores, sort_by)

    return Panel(f"Teachers vs heads, question by question (candidates sorted by {sort_by})",
                 {"order": order, "question": control}, render)


BENCH_COLUMNS = (("params (M)", "parameters", 1e-6, "{:.1f}"), ("latency (ms)", "latency_ms", 1, "{:.1f}"),
                 ("p90 (ms)", "latency_p90_ms", 1, "{:.1f}"), ("params x", "params_vs_ref", 1, "{:.2f}"),
                 ("latency x", "latency_vs_ref", 1, "{:.2f}"), ("throughput x", "throughput_vs_ref", 1, "{:.2f}"))


def bench_html(rows: Sequence[Mapping[str, Any]], conditions: Mapping[str, Any]) -> str:
    """Benchmark rows as an HTML table that does not wrap (the plain-text table of
    bench.format_table is wider than a notebook), under the conditions as a short list:
    model, parameters, latency, throughput per batch size, and the ratios to the first row."""
    if not rows:
        return "<p><i>no rows</i></p>"
    sizes = sorted(int(k.removeprefix("throughput_b")) for k in rows[0] if k.startswith("throughput_b"))
    columns = [*BENCH_COLUMNS[:3], *((f"pairs/s b{s}", f"throughput_b{s}", 1, "{:.0f}") for s in sizes),
               *BENCH_COLUMNS[3:]]
    columns = [col for col in columns if all(col[1] in r for r in rows)]
    body = [f'<tr><td style="text-align:left">{html.escape(str(r["name"]))}</td>'
            + "".join(f"<td>{fmt.format(r[key] * scale)}</td>" for _, key, scale, fmt in columns) + "</tr>"
            for r in rows]
    head = '<th style="text-align:left">model</th>' + "".join(f"<th>{html.escape(h)}</th>" for h, *_ in columns)
    reference = html.escape(str(rows[0].get("reference", rows[0]["name"])))
    conds = "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in conditions.items())
    return (f'<div style="overflow-x:auto"><table class="cerberus bench"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>'
            f"<p>Ratios (x) are relative to <code>{reference}</code>, measured in the same run.</p>"
            f'<details><summary>conditions</summary><ul style="font-size:smaller">{conds}</ul></details>')


def _forward_calls(models: Mapping[str, Any], batch_sizes: Sequence[int], repeats: int, warmup: int) -> int:
    """How many forward passes bench.benchmark makes: every member of every model, once per job
    (one question's candidates, then one batch per batch size), in every round."""
    from ..model import building

    members = sum(len(building.members(m)) for m in models.values())
    return members * (1 + len(batch_sizes)) * (repeats + warmup)


def timed_with_progress(models: Mapping[str, Any], pairs: Sequence[tuple[str, str]], batch_sizes: Sequence[int],
                        repeats: int, warmup: int, threads: int, max_length: int) -> list[dict[str, Any]]:
    """bench.benchmark with a progress bar (tqdm; a widget in a notebook) that advances at every
    forward pass of every model, so a reader sees the minutes a live timing takes go by."""
    from tqdm.auto import tqdm

    from . import bench
    from ..model import building

    distinct = {id(m): m for model in models.values() for m in building.members(model)}
    total = _forward_calls(models, batch_sizes, repeats, warmup)
    with tqdm(total=total, desc=f"timing {len(models)} models", unit="pass") as bar:
        def advance(*_: Any) -> None:  # a forward hook that returns None leaves the output alone
            bar.update(1)

        hooks = [m.register_forward_hook(advance) for m in distinct.values()]
        try:
            return bench.benchmark(models, pairs, batch_sizes=tuple(batch_sizes), repeats=repeats, warmup=warmup,
                                   threads=threads, max_length=max_length)
        finally:
            for hook in hooks:
                hook.remove()


def build_bench_panel(models: Mapping[str, Any] | Callable[[], Mapping[str, Any]], pairs: Sequence[tuple[str, str]],
                      warmup: int = 1) -> Panel:
    """Time the models live on this machine (bench.benchmark, all models interleaved in one run)
    when "measure" is clicked; the result is the `bench_html` table, conditions included. While it
    runs the button is disabled and says so, and a progress bar counts the forward passes.
    `models` may be a function that loads them: it is called at the first click (loading takes time
    too), never before. `pairs` are one question's candidates (bench.question_pairs gives a typical one)."""
    loaded: dict[str, Mapping[str, Any]] = {}
    from . import bench  # torch is imported only by the panel that needs it
    from ..model import building

    c = {"batch_size": widgets.BoundedIntText(32, min=1, max=4096, description="batch size", style=LABEL_STYLE),
         "seq_len": widgets.BoundedIntText(64, min=8, max=512, description="seq len", style=LABEL_STYLE),
         "threads": widgets.IntSlider(1, min=1, max=os.cpu_count() or 1,  # 1: more than the free cores is erratic
                                      description="threads", style=LABEL_STYLE),
         "repeats": widgets.BoundedIntText(3, min=1, max=100, description="repeats", style=LABEL_STYLE),
         "measure": widgets.Button(description="measure", icon="play")}
    button = c["measure"]

    def render() -> str:
        size, seq, threads, repeats = (c[k].value for k in ("batch_size", "seq_len", "threads", "repeats"))
        button.disabled, button.icon = True, "hourglass"
        try:
            if "models" not in loaded:
                button.description = "loading models…"
                loaded["models"] = models() if callable(models) else models
            button.description = "measuring…"
            rows = timed_with_progress(loaded["models"], pairs, (size,), repeats, warmup, threads, seq)
        finally:
            button.disabled, button.description, button.icon = False, "measure", "play"
        device = str(building.members(next(iter(loaded["models"].values())))[0].device)
        conds = bench.conditions(threads, (size,), seq, repeats, warmup, len(pairs), rows[0]["peak_gflops"], device)
        return bench_html(rows, conds)

    return Panel("Cost, measured live", c, render, trigger=button)


def models_to_time(root: str | Path) -> tuple[dict[str, Any], dict[str, list[str]], str]:
    """What notebook 08 times, as `bench.models_from_artifacts` (models, stands_for), plus a note.

    Trained weights are never committed, so without them each run's *architecture* is built from
    its pretrained backbone instead (same B_b kH_h, untrained scorers): a forward pass costs the
    same whatever the weights' values, so the timings hold, only the scores would not. The note
    says which it is, in one line."""
    from . import bench
    from ..model import building

    root = Path(root)
    stands_for = bench.student_architectures(root)
    teachers = artifacts.finished_runs(root, "teachers")
    runs = {label: artifacts.seed_run(root, "students", group[0]) for label, group in stands_for.items()}
    runs |= {t: artifacts.run_dir(root, "teachers", t) for t in teachers}
    if all(artifacts.has_model(run) for run in runs.values()):
        return (*bench.models_from_artifacts(root), "timing the trained models")

    def architecture(run: Path) -> Any:
        backbone = artifacts.read_json(artifacts.config_path(run))["backbone"]
        model = artifacts.read_metrics(run)["model"]  # "B5 3H1"
        return building.load_model(f"{backbone}:{model.replace(' ', '-')}")

    models = {label: architecture(run) for label, run in runs.items()}
    stands_for |= {t: [t] for t in teachers}
    if len(teachers) > 1:
        models[an.TEACHER_ENSEMBLE], stands_for[an.TEACHER_ENSEMBLE] = [models[t] for t in teachers], [an.TEACHER_ENSEMBLE]
    note = (f"no trained weights under {root.name}/ (best/ is never committed): timing each run's architecture "
            "built from its pretrained backbone, which costs the same to run")
    return models, stands_for, note
