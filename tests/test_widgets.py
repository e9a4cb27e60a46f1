"""Panels driven the way ipywidgets tests its own `interactive`: set a control's `.value` (or click
its button) and check what `panel.result` became. Tiny synthetic tables and datasets only."""
from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import ipywidgets  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cerberus_core.results import analysis as an  # noqa: E402
from cerberus_core.orchestration import widgets as w  # noqa: E402
from cerberus_core.data import AS2Dataset, Question  # noqa: E402
from cerberus_core.model.modeling import CerberusForRanking  # noqa: E402
from cerberus_core.results.scores import ScoreTable  # noqa: E402

from conftest import tiny_backbone  # noqa: E402

QUESTIONS = [
    Question("q0", "what is the capital of france", ("paris is the capital", "the nile is long", "lyon is big"), (1, 0, 0)),
    Question("q1", "how long is the nile", ("the nile is 6650 km long", "paris is in france"), (0, 0)),
    Question("q2", "who was born in paris", ("a river", "sartre was born in paris", "a city", "france"), (0, 1, 0, 0)),
]


@pytest.fixture
def dataset() -> AS2Dataset:
    return AS2Dataset("toy", "test", list(QUESTIONS), "memory", "none")


def table(dataset: AS2Dataset, columns: dict[str, np.ndarray], reverse: bool = False) -> ScoreTable:
    """A score table over the dataset's pairs; `reverse` stores the rows backwards, so only a
    lookup by (qid, cand_idx) finds the right score."""
    qids, cand, labels = dataset.pair_arrays()
    order = np.arange(len(qids))[::-1] if reverse else np.arange(len(qids))
    return ScoreTable([qids[i] for i in order], cand[order], labels[order], {k: np.asarray(v, float)[order]
                                                                             for k, v in columns.items()})


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """Panels build Figure objects, never pyplot ones: nothing may be left open."""
    yield
    assert plt.get_fignums() == []


def children(panel: ipywidgets.Widget) -> list[ipywidgets.Widget]:
    return list(panel.children)


class FakeShell:
    """What Output.__exit__ needs from a kernel's shell: it shows the traceback and swallows the error."""

    kernel = None

    def __init__(self) -> None:
        self.shown: list[type] = []

    def showtraceback(self, exc_tuple, tb_offset=None) -> None:
        self.shown.append(exc_tuple[0])


def test_a_failed_render_keeps_the_last_result(monkeypatch):
    panel = w.build_temperature_panel([1.0, -1.0], [1, 0])
    before = panel.result
    panel._render = lambda: 1 / 0
    with pytest.raises(ZeroDivisionError):  # outside a kernel the error propagates
        panel.controls["temperature"].value = 2.0
    shell = FakeShell()
    monkeypatch.setattr(ipywidgets.widgets.widget_output, "get_ipython", lambda: shell)
    panel.controls["temperature"].value = 4.0  # in a kernel the Output shows it instead
    assert shell.shown == [ZeroDivisionError] and panel.result is before


def test_panel_shape(dataset):
    panel = w.build_question_browser(dataset)
    assert isinstance(panel, ipywidgets.VBox)
    assert isinstance(panel.output, ipywidgets.Output) and panel.output in children(panel)
    assert all(c in children(panel) for c in panel.controls.values())


# ----------------------------------------------------------------- temperature
def test_temperature_reshapes_the_plotted_targets():
    margins, labels = np.array([3.0, -1.0, 0.5]), [1, 0, 0]
    panel = w.build_temperature_panel(margins, labels, candidates=["paris", "nile", "lyon"])
    first = panel.result
    assert isinstance(first, Figure) and panel.controls["temperature"].value == 1.0
    for t in (0.5, 8.0):
        panel.controls["temperature"].value = t
        assert panel.result is not first
        pair, listwise = (np.array([p.get_height() for p in ax.patches]) for ax in panel.result.axes[:2])
        np.testing.assert_allclose(pair, an.to_probability(margins, t))
        np.testing.assert_allclose(listwise, an.candidate_distribution(margins, t))
        assert panel.result.axes[1].get_ylim() == (0.0, 1.0)
    assert listwise.max() < 0.5  # T=8 flattens the softmax: no candidate keeps most of the mass
    title, slider, output, key = children(panel)  # the plot right under its slider, the texts below
    assert slider is panel.controls["temperature"] and output is panel.output
    assert "c0 ✓: paris" in key.value and "c1: nile" in key.value


# ----------------------------------------------------------------- question browser
def test_browser_shows_the_selected_question_and_its_filters(dataset):
    panel = w.build_question_browser(dataset)
    assert "paris is the capital" in panel.result and "kept" in panel.result
    panel.controls["question"].value = "q2"
    page = panel.result
    assert "who was born in paris" in page and "paris is the capital" not in page
    positive = re.findall(r'<tr data-cand="(\d+)" class="pos"', page)
    assert positive == ["1"]
    assert "answerable: kept; clean: kept" in page
    panel.controls["question"].value = "q1"
    assert "answerable: dropped; clean: dropped" in panel.result
    assert 'class="pos"' not in panel.result


# ----------------------------------------------------------------- head correlation
@pytest.fixture
def student_tables(dataset):
    rng = np.random.default_rng(0)
    base = rng.normal(size=dataset.n_pairs)
    tables = {}
    for split, noise in (("dev", 0.1), ("test", 2.0)):
        heads = {f"head{i}": base + noise * rng.normal(size=len(base)) for i in range(3)}
        tables[split] = table(dataset, {"pooled": an.to_probability(np.mean(list(heads.values()), 0)), **heads})
    teachers = {s: {"ta": table(dataset, {"score": base}, reverse=True),
                    "tb": table(dataset, {"score": -base})} for s in tables}
    return tables, teachers


def heatmap(fig: Figure) -> tuple[list[str], np.ndarray]:
    ax = fig.axes[0]
    values = np.asarray(ax.collections[0].get_array()).reshape(len(ax.get_yticklabels()), -1)
    return [t.get_text() for t in ax.get_yticklabels()], values


def test_head_correlation_follows_heads_measure_split_and_teachers(student_tables):
    tables, teachers = student_tables
    panel = w.build_head_correlation_panel(tables, teachers)
    names, values = heatmap(panel.result)
    assert names == ["head0", "head1", "head2"] and np.allclose(np.diag(values), 1.0)
    dev_mean = values[~np.eye(3, dtype=bool)].mean()

    panel.controls["heads"].value = ("head0", "head2")
    names, values = heatmap(panel.result)
    assert names == ["head0", "head2"] and values.shape == (2, 2)

    panel.controls["split"].value = "test"  # noisier heads: lower correlation
    assert heatmap(panel.result)[1][0, 1] < dev_mean

    panel.controls["measure"].value = "top1"
    names, values = heatmap(panel.result)
    _, margins = an.score_matrix(tables["test"], ["head0", "head2"])
    np.testing.assert_allclose(values, an.top1_disagreement(tables["test"].qids, margins, tables["test"].cand_idx))
    assert np.allclose(np.diag(values), 0.0)

    panel.controls["measure"].value = "pearson"
    panel.controls["heads"].value = ("head0", "head1", "head2")
    _, values = heatmap(panel.result)
    low, high = panel.result.axes[0].collections[0].get_clim()
    off = values[~np.eye(3, dtype=bool)]
    assert low <= off.min() and off.max() <= high and high - low < 1.5 * np.ptp(off)  # follows the values
    panel.controls["heads"].value = ("head0", "head2")
    panel.controls["with teachers"].value = True
    names, values = heatmap(panel.result)
    assert names == ["head0", "head2", "ta", "tb"]
    assert values[2, 3] == pytest.approx(-1.0)  # tb = -ta, aligned although ta's rows are reversed

    panel.controls["heads"].value = ()
    assert "select at least one head" in panel.result


def test_with_teachers_is_disabled_without_teacher_tables(student_tables):
    panel = w.build_head_correlation_panel(student_tables[0])
    assert panel.controls["with teachers"].disabled


# ----------------------------------------------------------------- question explorer
def top_marks(page: str) -> dict[str, int]:
    """model -> the candidate whose row carries its top mark."""
    marks = {}
    for cand, row in re.findall(r'<tr data-cand="(\d+)"[^>]*>(.*?)</tr>', page):
        for model in re.findall(r'title="top of ([^"]+)"', row):
            marks[model] = int(cand)
    return marks


def test_explorer_lists_every_model_and_marks_each_top_candidate(dataset):
    # q2 has 4 candidates; per pair: ta likes cand 3, tb cand 0, head0 cand 2, head1 cand 1
    n = dataset.n_pairs
    offset = sum(len(q.candidates) for q in QUESTIONS[:2])
    col = lambda best: np.eye(n)[offset + best]  # noqa: E731 - 1 on one q2 candidate, 0 elsewhere
    student = table(dataset, {"pooled": 0.5 + 0.2 * col(1) + 0.1 * col(2), "head0": col(2), "head1": col(1)})
    teachers = {"ta": table(dataset, {"score": col(3)}, reverse=True), "tb": table(dataset, {"score": col(0)})}
    panel = w.build_question_explorer(student, teachers, dataset)
    panel.controls["question"].value = "q2"
    page = panel.result
    header = re.findall(r"<th>(.*?)</th>", page)
    assert header == ["#", "label", "ta (margin)", "tb (margin)", "head0 (margin)", "head1 (margin)",
                      "pooled (probability)", "candidate"]
    assert top_marks(page) == {"ta (margin)": 3, "tb (margin)": 0, "head0 (margin)": 2, "head1 (margin)": 1,
                               "pooled (probability)": 1}
    assert [int(c) for c in re.findall(r'<tr data-cand="(\d+)"', page)] == [1, 2, 0, 3]  # by pooled, ties by index
    assert re.search(r'<tr data-cand="1" class="pos"', page)

    panel.controls["question"].value = "q0"
    assert "paris is the capital" in panel.result and "sartre" not in panel.result


def test_explorer_shows_a_missing_pair_as_a_dash(dataset):
    full = table(dataset, {"score": np.arange(dataset.n_pairs, dtype=float)})
    keep = [i for i, (q, c) in enumerate(zip(full.qids, full.cand_idx)) if (q, c) != ("q0", 2)]
    partial = ScoreTable([full.qids[i] for i in keep], full.cand_idx[keep], full.labels[keep],
                         {"score": full.columns["score"][keep]})
    student = table(dataset, {"pooled": np.zeros(dataset.n_pairs), "head0": np.zeros(dataset.n_pairs)})
    page = w.build_question_explorer(student, {"ta": partial}, dataset).result
    assert "–" in page and top_marks(page)["ta (margin)"] == 1


def test_explorer_orders_questions_by_disagreement(dataset):
    """The order control puts first the questions where heads leave their own teacher's top-1, or
    split among themselves, and says how many; the chosen question stays chosen when it can."""
    n = dataset.n_pairs
    offset = sum(len(q.candidates) for q in QUESTIONS[:2])
    col = lambda best: np.eye(n)[offset + best]  # noqa: E731
    # on q2 the teachers put cand 3 and 0 first, the heads cand 2 and 1: both heads leave their teacher
    student = table(dataset, {"pooled": 0.5 + 0.1 * col(2), "head0": col(2), "head1": col(1)})
    teachers = {"ta": table(dataset, {"score": col(3)}), "tb": table(dataset, {"score": col(0)})}
    panel = w.build_question_explorer(student, teachers, dataset, taught=["ta", "tb"],
                                      head_labels=["head 1 <- ta", "head 2 <- tb"])
    assert list(panel.controls) == ["order", "question"]
    panel.controls["order"].value = "teacher"
    first_label, first = panel.controls["question"].options[0]
    assert first == "q2" and "2 heads off their teacher" in first_label
    panel.controls["order"].value = "heads"
    assert panel.controls["question"].options[0][1] == "q2"
    assert "head 1 &lt;- ta (margin)" in panel.result


def test_colorbar_ticks_tell_values_apart():
    from cerberus_core.reporting import plotting as pl

    matrix = np.array([[1.0, 0.9812, 0.9851], [0.9812, 1.0, 0.9887], [0.9851, 0.9887, 1.0]])
    fig = w.readable_colorbars(pl.plot_correlation_heatmap(matrix, ["a", "b", "c"], digits=4))
    bar = next(ax for ax in fig.axes if getattr(ax, "_colorbar", None) is not None)
    ticks = [t.get_text() for t in bar.yaxis.get_ticklabels()]
    assert ticks and len(set(ticks)) == len(ticks)


# ----------------------------------------------------------------- bench
def test_bench_measures_on_click_with_the_chosen_conditions(tiny_tokenizer):
    model = CerberusForRanking.from_backbone(tiny_backbone("bert"), body_layers=3, num_heads=2,
                                             tokenizer=tiny_tokenizer)
    pairs = [(QUESTIONS[0].text, c) for c in QUESTIONS[0].candidates]
    panel = w.build_bench_panel({"tiny": model}, pairs)
    assert panel.result is None  # timing is slow: only a click measures
    for name, value in {"batch_size": 5, "seq_len": 16, "threads": 1, "repeats": 1}.items():
        panel.controls[name].value = value
    assert panel.result is None
    panel.controls["measure"].click()
    assert not panel.controls["measure"].disabled and panel.controls["measure"].description == "measure"
    page = panel.result
    assert "<b>threads</b>: 1<" in page and "<b>batch sizes</b>: 5<" in page and "<b>seq len</b>: 16 (padded)<" in page
    assert "<th>pairs/s b5</th>" in page and "<b>repeats</b>: 1<" in page
    assert re.search(r'<tr><td style="text-align:left">tiny</td>', page)


def test_bench_html_is_one_row_per_model_with_its_ratios():
    rows = [{"name": "cerberus", "reference": "cerberus", "parameters": 26.6e6, "latency_ms": 107.0,
             "latency_p90_ms": 109.0, "throughput_b32": 86.2, "params_vs_ref": 1.0, "latency_vs_ref": 1.0,
             "throughput_vs_ref": 1.0},
            {"name": "mpnet-base", "reference": "cerberus", "parameters": 109.5e6, "latency_ms": 532.0,
             "latency_p90_ms": 533.0, "throughput_b32": 15.5, "params_vs_ref": 4.12, "latency_vs_ref": 4.97,
             "throughput_vs_ref": 0.2}]
    page = w.bench_html(rows, {"threads": 2})
    header = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", page)
    assert header == ["model", "params (M)", "latency (ms)", "p90 (ms)", "pairs/s b32", "params x", "latency x",
                      "throughput x"]
    cells = re.findall(r"<tr>(.*?)</tr>", page)[2]  # after the header and the reference
    assert re.findall(r"<td[^>]*>(.*?)</td>", cells) == ["mpnet-base", "109.5", "532.0", "533.0", "16", "4.12",
                                                         "4.97", "0.20"]
    assert "overflow-x:auto" in page and "<b>threads</b>: 2" in page


def test_outputs_are_shown_as_png_or_html():
    """A bare Figure displays as text in a kernel without pyplot's inline backend, so panels show PNG."""
    fig = w.build_temperature_panel([1.0, -1.0], [1, 0]).result
    shown = w.displayable(fig)
    assert shown.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert w.displayable("<p>x</p>").data == "<p>x</p>"
    assert w.displayable("a  b\n1  <2>").data == "<pre>a  b\n1  &lt;2&gt;</pre>"


def test_bench_times_on_one_thread_unless_told(tiny_tokenizer):
    """More threads than free cores makes timings erratic on a shared machine, so 1 is the default."""
    model = CerberusForRanking.from_backbone(tiny_backbone("bert"), body_layers=3, tokenizer=tiny_tokenizer)
    assert w.build_bench_panel({"tiny": model}, [("q", "a")]).controls["threads"].value == 1


def test_bench_button_is_disabled_while_it_loads_and_times(monkeypatch, tiny_tokenizer):
    """A live timing takes minutes: the button says so and cannot be pressed again until it is done;
    the models are loaded at the first press only."""
    model = CerberusForRanking.from_backbone(tiny_backbone("bert"), body_layers=3, tokenizer=tiny_tokenizer)
    loads, seen = [], []

    def load():
        loads.append(1)
        return {"tiny": model}

    panel = w.build_bench_panel(load, [("q", "a")])
    assert not loads  # nothing is loaded before a press
    real = w.timed_with_progress

    def spy(*args, **kwargs):
        button = panel.controls["measure"]
        seen.append((button.disabled, button.description))
        return real(*args, **kwargs)

    monkeypatch.setattr(w, "timed_with_progress", spy)
    panel.controls["repeats"].value = 1
    panel.controls["measure"].click()
    panel.controls["measure"].click()
    assert seen == [(True, "measuring…")] * 2 and loads == [1]
    assert not panel.controls["measure"].disabled and "tiny" in panel.result


def test_forward_calls_count_every_pass_the_bench_makes(tiny_tokenizer):
    model = CerberusForRanking.from_backbone(tiny_backbone("bert"), body_layers=3, tokenizer=tiny_tokenizer)
    calls = []
    hook = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        w.timed_with_progress({"a": model, "pair": [model, model]}, [("q", "a")], (4,), repeats=2, warmup=1,
                              threads=1, max_length=16)
    finally:
        hook.remove()
    assert len(calls) == w._forward_calls({"a": model, "pair": [model, model]}, (4,), 2, 1) == 3 * 2 * 3
