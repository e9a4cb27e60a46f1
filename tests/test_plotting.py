"""Plots as pure functions (checked by their artists, never by pixels), save_figure, and make_figures
on a tiny synthetic artifacts tree written directly (no training)."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import patches  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cerberus_core.results import analysis as an  # noqa: E402
from cerberus_core.reporting import plotting as pl  # noqa: E402
from cerberus_core.results.reader import Artifacts, Missing  # noqa: E402
from cerberus_core.errors import InputError  # noqa: E402
from cerberus_core.reporting.figures import FIGURES, main, make_figures  # noqa: E402
from cerberus_core.results.metrics import metrics_with_ci, ranking_metrics  # noqa: E402
from cerberus_core.reporting.names import CERBERUS_COLOR  # noqa: E402
from cerberus_core.results.scores import ScoreTable  # noqa: E402

from conftest import synthetic_dataset_meta  # noqa: E402

COUNTS = {"embeddings": 11_918_592, "body_layers": 8_875_520, "head0": 1_776_770, "head1": 1_776_770,
          "head2": 1_776_770, "pooler": 0, "total": 26_124_422}


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text)]


def metric_row(value: float) -> dict:
    return {"p@1": value, "map": value, "mrr": value, "p@1_ci": (value - 0.1, value + 0.1),
            "map_ci": (value - 0.1, value + 0.1), "mrr_ci": (value - 0.1, value + 0.1)}


# ----------------------------------------------------------------- plot functions
def test_soft_targets_bars_per_candidate_and_temperature():
    fig = pl.plot_soft_targets([2.0, -1.0, 0.5], [1, 0, 0], temperatures=(1, 2, 4, 8))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax in fig.axes:
        assert len(ax.patches) == 3 * 4
    ticks = fig.axes[0].get_xticklabels()
    assert [t.get_text() for t in ticks] == ["c0 ✓", "c1", "c2"]
    assert ticks[0].get_color() == pl.POSITIVE_COLOR and ticks[1].get_color() != pl.POSITIVE_COLOR
    heights = [p.get_height() for p in fig.axes[0].patches[:3]]  # T=1
    np.testing.assert_allclose(heights, an.to_probability(np.array([2.0, -1.0, 0.5])))


def test_soft_targets_never_overprint_many_candidates():
    labels = np.zeros(30, dtype=int)
    labels[17] = 1
    fig = pl.plot_soft_targets(np.linspace(-2, 2, 30), labels, temperatures=(1,))
    shown = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert shown == ["c0", "c5", "c10", "c15", "c17 ✓", "c20", "c25"]


def test_architecture_shows_every_part_and_its_count():
    fig = pl.plot_architecture(COUNTS, "B5 3H1")
    shown = "\n".join(texts(fig))
    for part in ("embeddings", "body_layers", "head0", "head1", "head2"):
        assert pl.format_count(COUNTS[part]) in shown
    assert "shared body: 5 layers" in shown and "head2: 1 layer(s)" in shown
    assert "no parameters" in shown and "26.12M" in shown
    boxes = [p for p in fig.axes[0].patches if isinstance(p, patches.FancyBboxPatch)]
    assert len(boxes) == 3 + 3  # embeddings, body, pooler + k heads


def test_format_count():
    assert [pl.format_count(n) for n in (768, 1536, 22_713_216)] == ["768", "1.5K", "22.71M"]


def test_dataset_stats_panels():
    stats = [{"name": "wikiqa", "split": s, "mean_candidates": 9.0, "positive_rate": 0.12,
              "by_filter": {"none": {"questions": q}, "answerable": {"questions": q // 2},
                            "clean": {"questions": q // 3}}}
             for s, q in (("train", 2118), ("dev", 296), ("test", 633))]
    fig = pl.plot_dataset_stats(stats)
    assert len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["train", "dev", "test"]
    assert len(fig.axes[0].patches) == 3 * 3 and "12.0% pos." in texts(fig)


def annotations(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_decimals_tell_the_values_apart():
    assert pl.decimals([0.81, 0.79]) == 2
    assert pl.decimals([0.9966, 0.9918, 0.9957]) == 3  # 2 decimals print 1.00, 0.99, 1.00
    assert pl.decimals([0.9664, 0.9666]) == 3  # 0.966 vs 0.967
    assert pl.decimals([0.96641, 0.96644]) == 4
    assert pl.decimals([0.99991, 0.99992]) == 4  # capped
    assert pl.decimals([0.5, 0.5]) == 2


def test_correlation_heatmap_scale_follows_the_off_diagonal():
    m = np.array([[1.0, 0.9966, 0.9918], [0.9966, 1.0, 0.9957], [0.9918, 0.9957, 1.0]])
    fig = pl.plot_correlation_heatmap(m, ["a", "b", "c"], "heads", label="Pearson r")
    ax, bar = fig.axes
    assert annotations(ax) == [f"{v:.3f}" for v in m.ravel()]  # 3 decimals: distinct values stay distinct
    low, high = ax.collections[0].get_clim()
    assert 0.99 < low < 0.9918 and 0.9966 < high < 0.9975  # not [0, 1]: the heads' differences get colour
    assert bar.get_ylabel() == "Pearson r" and ax.get_title() == "heads"
    grey = sorted(p.get_xy() for p in ax.patches if p.get_label() == "masked")
    assert grey == [(0, 0), (1, 1), (2, 2)]  # the diagonal (a head with itself) is grey, off the scale


def test_correlation_heatmaps_can_share_one_scale():
    m = np.array([[1.0, 0.99991], [0.99991, 1.0]])
    fig = pl.plot_correlation_heatmap(m, ["a", "b"], vmin=0.99, vmax=1.0, digits=4)
    assert fig.axes[0].collections[0].get_clim() == (0.99, 1.0)
    assert annotations(fig.axes[0])[1] == "0.9999"


def test_agreement_matrix_boxes_each_heads_closest_teacher_and_stars_each_teachers_closest_head():
    m = np.array([[0.9, 0.9664, 0.4], [0.6, 0.9666, 0.8], [0.5, 0.9665, 0.8]])  # t1 prefers h1 by 1e-4; t2 ties
    fig = pl.plot_agreement_matrix(m, ["h0", "h1", "h2"], ["t0", "t1", "t2"], "cerberus")
    values, centred = fig.axes[0], fig.axes[1]
    assert annotations(values) == [f"{v:.4f}" for v in m.ravel()]  # 4 decimals tell t1's heads apart
    boxes = sorted(p.get_xy() for p in values.patches if isinstance(p, patches.Rectangle) and not p.get_fill())
    assert boxes == [(1, 0), (1, 1), (1, 2)]  # each head's closest teacher
    stars = sorted((int(t.get_position()[0]), int(t.get_position()[1])) for t in centred.texts if t.get_text() == "★")
    assert stars == [(0, 0), (1, 1)]  # t0 <- h0, t1 <- h1; t2's h1 and h2 tie: no star
    assert annotations(centred)[:9][1::3] == ["-0.1", "+0.1", "+0.0"]  # t1's column minus its mean, x 1e3
    assert fig.axes[2].get_ylabel() == "Pearson r" and fig._suptitle.get_text() == "cerberus"


def test_loss_curves_one_panel_per_term_one_line_per_head():
    terms = [f"{f}/head{h}" for f in ("loss", "kd", "ce") for h in range(3)]
    rows = [{"step": s, "epoch": 0, "loss": 1.0, **{t: 1 / s + int(t[-1]) for t in terms}} for s in range(1, 81)]
    for r in rows:  # the total per-head loss differs from its KD term (alpha < 1)
        r.update({f"loss/head{h}": r[f"kd/head{h}"] + 0.5 * r[f"ce/head{h}"] for h in range(3)})
    fig = pl.plot_loss_curves(rows, window=4, head_labels=["head0 ← a", "head1 ← b", "head2 ← c"], title="wikiqa")
    assert len(fig.axes) == 3 and fig._suptitle.get_text() == "wikiqa"
    for ax in fig.axes:
        assert [line.get_label() for line in ax.get_lines()] == ["head0 ← a", "head1 ← b", "head2 ← c"]
        assert len(ax.get_lines()[0].get_xdata()) == 80 - 3  # running mean of 4
    gold_only = [{"step": s, "epoch": 0, "ce/head0": 0.5, "loss/head0": 0.5, "loss": 0.5} for s in range(1, 5)]
    assert len(pl.plot_loss_curves(gold_only).axes) == 2


def test_loss_curves_at_alpha_1_draw_the_kd_term_alone_and_seeds_as_a_band():
    """With alpha = 1 each head's loss is its KD term and the CE term weighs 0: one panel, not three
    (two of them a copy and a term that is not trained on); several seeds: their mean and range."""
    def run(shift: float) -> list[dict]:
        return [{"step": s, "epoch": 0, "loss": 1.0, **{f"{f}/head{h}": 1 / s + h + shift for f in ("loss", "kd")
                                                       for h in range(2)}, "ce/head0": 0.7, "ce/head1": 0.7}
                for s in range(1, 41)]
    fig = pl.plot_loss_curves([run(0.0), run(0.2)], window=1)
    (ax,) = fig.axes
    assert ax.get_title().startswith("KD term")
    assert [line.get_label() for line in ax.get_lines()] == ["head0", "head1"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata()[:2], [1.1, 0.6])  # mean of the two seeds
    assert len(ax.collections) == 2  # a band per head
    assert fig.get_size_inches()[0] == pytest.approx(pl.COLUMN_WIDTH)


def errorbar_x(ax) -> list[float]:
    return [round(float(c.lines[0].get_xdata()[0]), 2) for c in ax.containers
            if isinstance(c, matplotlib.container.ErrorbarContainer)]


def test_head_metrics_dots_with_ci_on_a_scale_that_follows_the_data():
    metrics = {"pooled": metric_row(0.7), "head0": metric_row(0.6), "head1": metric_row(0.65)}
    fig = pl.plot_head_metrics(metrics, {"t0": metric_row(0.75)}, head_labels=["head0 <- t0", "head1 <- t1"])
    assert len(fig.axes) == 3
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["student, pooled", "head0 <- t0", "head1 <- t1", "teacher t0"]
    assert errorbar_x(ax) == [0.7, 0.6, 0.65, 0.75]
    low, high = ax.get_xlim()
    assert 0.45 < low < 0.5 and 0.85 < high < 0.9  # the CIs' span, not [0, 1]
    assert ax.get_lines()[-1].get_xdata()[0] == 0.7  # dotted reference: the pooled student


def test_metric_rows_show_their_label_and_every_role_in_the_legend():
    rows = [{"name": "ensemble", "label": "KD from the teachers' mean", "role": "student", **metric_row(0.6)},
            {"name": "teacher ensemble", "role": "teacher ensemble", **metric_row(0.61)}]
    fig = pl.plot_metric_bars(rows)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["KD from the teachers' mean", "teacher ensemble"]
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == ["student", "teacher ensemble"]


def test_diversity_over_steps_follows_the_runs_and_points_at_teachers_off_scale():
    rows = [{"step": s, "ambiguity": s / 1000, "mean_pearson": 1 - s / 1000, "top1_disagreement": s / 500}
            for s in (0, 10, 20)]
    fig = pl.plot_diversity_over_steps({"cerberus": rows, "replicated": rows},
                                       teacher_level={"ambiguity": 0.3, "top1_disagreement": 0.02}, title="t")
    assert [ax.get_title() for ax in fig.axes] == ["ambiguity", "mean Pearson r", "top-1 disagreement"]
    assert all(ax.get_ylabel() for ax in fig.axes)
    ambiguity, _, top1 = fig.axes
    assert ambiguity.get_ylim()[1] < 0.03  # the teachers' 0.3 does not squash the runs' 0..0.02
    assert [line.get_label() for line in ambiguity.get_lines()] == ["cerberus", "replicated"]
    assert "teachers: 0.300 ↑" in annotations(ambiguity)
    assert [line.get_label() for line in top1.get_lines()] == ["cerberus", "replicated", "teachers"]  # in range
    assert len(pl.plot_diversity_over_steps(rows).axes[0].get_lines()) == 1
    seeds = pl.plot_diversity_over_steps({"cerberus": [rows, [{**r, "ambiguity": 0.0} for r in rows]]})
    np.testing.assert_allclose(seeds.axes[0].get_lines()[0].get_ydata(), [0.0, 0.005, 0.01])  # mean over seeds


def test_ablation_one_panel_per_family_one_tick_per_run_main_run_alike_everywhere():
    main = {"x": 3, "name": "a+b+c", "main": True, **metric_row(0.8)}
    rows = [{"panel": "heads", "x": k, "name": n, **metric_row(0.5 + k / 10)}
            for k, n in ((1, "a"), (2, "a+b"), (1, "b"), (2, "b+c"))]
    rows += [{"panel": "heads", **main}, {"panel": "split", **{**main, "name": "B3 3H1", "x": 1}}]
    rows += [{"panel": "split", "x": 2, "name": "B2 3H2", **metric_row(0.6)}]
    fig = pl.plot_ablation(rows, xlabels={"heads": "teachers", "split": "split"})
    heads, split, members = fig.axes[:3]
    assert [heads.get_title(), split.get_title()] == ["heads", "split"]
    assert [members.get_xlabel(), split.get_xlabel()] == ["teachers", "split"]
    # teacher sets as a dot matrix under the panel (one row per teacher), not overprinting tick labels
    assert [t.get_text() for t in members.get_yticklabels()] == ["c", "b", "a"]
    filled = [sorted(map(tuple, c.get_offsets().tolist())) for c in members.collections[1::2]]
    assert filled == [[(0, 2)], [(1, 1)], [(2, 1), (2, 2)], [(3, 0), (3, 1)], [(4, 0), (4, 1), (4, 2)]]
    assert [t.get_text() for t in split.get_xticklabels()] == ["B3 3H1", "B2 3H2"]
    assert len(heads.containers) == 3 and len(split.containers) == 2  # one per setting, the main run apart
    main_colors = [c.lines[0].get_color() for ax in (heads, split) for c in ax.containers
                   if c.lines[0].get_marker() == "D"]
    assert main_colors == [CERBERUS_COLOR] * 2  # the main run is CERBERUS: its colour, in every panel
    others = {c.lines[0].get_color() for ax in (heads, split) for c in ax.containers if c.lines[0].get_marker() != "D"}
    assert CERBERUS_COLOR not in others  # CERBERUS's colour means the main run only
    assert [t.get_text() for t in fig.legends[0].get_texts()][0] == "main run"


def test_pareto_labels_every_point_and_joins_the_front():
    points, names = [(10, 0.6), (30, 0.7), (25, 0.5)], ["small", "large", "bad"]
    front = an.pareto_front(points)
    ax = pl.plot_pareto(points, names, front).axes[0]
    assert [t.get_text() for t in ax.texts] == ["small  0.600", "large  0.700", "bad  0.500"]
    assert not overlapping(ax.texts)
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [10, 30])
    assert ax.get_xscale() == "log"


def test_pareto_lists_the_members_of_an_architecture_and_draws_their_range():
    points, names = [(10, 0.62), (30, 0.7)], ["B2 1H1 students", "teacher"]
    members = [[("a", 0.6), ("b", 0.65), ("c", 0.62)], [("teacher", 0.7)]]
    ax = pl.plot_pareto(points, names, an.pareto_front(points), spread=[(0.6, 0.65), (0.7, 0.7)],
                        members=members).axes[0]
    assert ax.texts[0].get_text() == "B2 1H1 students:\n  b  0.650\n  c  0.620\n  a  0.600"
    (bar,) = [c for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)]
    np.testing.assert_allclose(bar.get_segments()[0], [[10, 0.6], [10, 0.65]])


def overlapping(texts) -> list[tuple[str, str]]:
    """Pairs of texts whose drawn boxes overlap."""
    texts = list(texts)
    fig = texts[0].figure
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else None
    if renderer is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    return [(texts[i].get_text(), texts[j].get_text()) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
            if boxes[i].overlaps(boxes[j])]


def test_place_labels_keeps_labels_of_close_points_apart():
    points = [(10, 0.60), (10.2, 0.601), (10.4, 0.600), (11, 0.6), (30, 0.7)]
    fig = pl.figure("column", 2.0)
    ax = fig.add_subplot()
    ax.scatter(*zip(*points))
    ax.set_xscale("log")
    ax.set_xlim(5, 50)
    ax.set_ylim(0.55, 0.75)
    placed = pl.place_labels(ax, points, ["first", "second", "third", "fourth", "far"])
    assert [t.get_text() for t in placed] == ["first", "second", "third", "fourth", "far"]
    assert not overlapping(placed)


def test_label_groups_join_points_that_nearly_coincide():
    points = [(10, 0.60), (10, 0.60), (30, 0.70), (10.1, 0.601), (20, 0.60)]
    assert pl.label_groups(points) == [[0, 1, 3], [2], [4]]
    assert pl.label_groups(points, tolerance=0.0) == [[0, 1], [2], [3], [4]]
    assert pl.label_groups([(5, 0.5)]) == [[0]]


def test_label_groups_on_one_axis_join_models_of_one_cost():
    points = [(10, 0.60), (10.1, 0.70), (30, 0.70)]
    assert pl.label_groups(points, axes=(0,)) == [[0, 1], [2]]
    assert pl.label_groups(points) == [[0], [1], [2]]


def test_plots_leave_global_rcparams_alone():
    before = dict(mpl.rcParams)
    pl.plot_correlation_heatmap(np.eye(2), ["a", "b"])
    assert dict(mpl.rcParams) == before


def test_set_theme_applies_the_plots_theme():
    with mpl.rc_context():  # restores the global state afterwards
        pl.set_theme()
        assert tuple(mpl.rcParams["axes.prop_cycle"].by_key()["color"][0]) == pl.colors(1)[0]
        assert mpl.rcParams["axes.grid"]


# ----------------------------------------------------------------- save_figure
def test_save_figure_writes_three_deterministic_files(tmp_path):
    data = {"matrix": np.eye(2), "names": ["a", "b"], "value": np.float64(0.5)}
    fig = pl.plot_correlation_heatmap(np.eye(2), ["a", "b"])
    paths = pl.save_figure(fig, "corr", data, {"method": "pearson"}, tmp_path)
    assert [p.name for p in paths] == ["corr.pdf", "corr.png", "corr.json"]
    sidecar = json.loads((tmp_path / "corr.json").read_text())
    assert sidecar["data"] == {"matrix": [[1.0, 0.0], [0.0, 1.0]], "names": ["a", "b"], "value": 0.5}
    assert sidecar["params"] == {"method": "pearson"} and sidecar["code_version"] and sidecar["figure"] == "corr"
    first = [p.read_bytes() for p in paths]
    pl.save_figure(pl.plot_correlation_heatmap(np.eye(2), ["a", "b"]), "corr", data, {"method": "pearson"}, tmp_path)
    assert [p.read_bytes() for p in paths] == first  # reruns do not churn committed figures
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corr.json", "corr.pdf", "corr.png"]  # no temporaries


# ----------------------------------------------------------------- make_figures on synthetic artifacts
TEACHERS = ("t-a", "t-b", "t-c")


def write_run(run_dir, config: dict, tables: dict[str, ScoreTable], curve: bool = True) -> None:
    run_dir.mkdir(parents=True)
    config = {"dataset": "synthetic", **config}
    (run_dir / "config.json").write_text(json.dumps(config))
    metrics = {"name": run_dir.name, "model": config.get("model", "B2 1H1"), "parameters": 1000}
    for split, t in tables.items():
        t.save(run_dir / "scores" / f"{split}.tsv")
        columns = ["pooled", *t.head_columns()]
        metrics[split] = {c: {k: v for k, v in metrics_with_ci(t.qids, t.labels, t.columns[c], n_resamples=100).items()
                              if k != "per_question"} for c in columns}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    if curve:
        heads = [c for c in tables["test"].head_columns()]
        rows = ["\t".join(["epoch", "step", "loss", *(f"{f}/{h}" for f in ("ce", "kd") for h in heads)])]
        rows += ["\t".join(["0", str(s), "1.0", *["0.5"] * 2 * len(heads)]) for s in range(1, 9)]
        (run_dir / "curve.tsv").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """3 teachers; cerberus heads follow their own teacher, replicated heads all follow t-a; traces at steps 0, 5, 10;
    two ablation runs (2 heads; a B1 3H2 split) and a bench.json."""
    root = tmp_path_factory.mktemp("artifacts")
    rng = np.random.default_rng(0)
    n_q, n_c = 12, 5
    qids, cand = list(np.repeat([f"q{i}" for i in range(n_q)], n_c)), np.tile(np.arange(n_c), n_q)
    labels = (rng.random(n_q * n_c) < 0.3).astype(int)
    labels[::n_c], labels[1::n_c] = 1, 0  # every question has a positive and a negative
    teacher = {t: 2 * labels + rng.normal(size=len(labels)) for t in TEACHERS}
    meta = synthetic_dataset_meta(root, qids, cand, labels)  # saved tables need a dataset for their labels

    def student(heads: list[np.ndarray]) -> ScoreTable:
        cols = {f"head{i}": h for i, h in enumerate(heads)}
        return ScoreTable(qids, cand, labels, {"pooled": an.to_probability(np.column_stack(heads)).mean(1), **cols}, meta)

    for t, m in teacher.items():
        table = ScoreTable(qids, cand, labels, {"score": m}, meta)
        for split in ("dev", "test"):
            table.save(root / "teacher_scores" / t / f"{split}.tsv")
        write_run(root / "teachers" / t, {"strategy": "gold", "num_heads": 1, "backbone": f"enc-{t}", "model": "B4 1H1"},
                  {"test": ScoreTable(qids, cand, labels, {"pooled": an.to_probability(m), "head0": m}, meta)}, curve=False)
    folders = [str(root / "teacher_scores" / t) for t in TEACHERS]
    runs = {"cerberus": ({"strategy": "cerberus", "teachers": folders, "num_heads": 3, "body_layers": 2,
                          "head_layers": 1, "model": "B2 3H1"}, list(TEACHERS)),
            "replicated-t-a": ({"strategy": "replicated", "teachers": folders, "teacher_index": 0, "num_heads": 3},
                               ["t-a"] * 3),
            "single-t-b": ({"strategy": "single", "teachers": folders, "teacher_index": 1, "num_heads": 1}, ["t-b"]),
            "gold": ({"strategy": "gold", "num_heads": 1}, ["t-b"])}
    for name, (config, taught) in runs.items():
        final = [teacher[t] + 0.2 * rng.normal(size=len(labels)) for t in taught]
        write_run(root / "students" / name, config, {"test": student(final)})
        for step, mix in ((0, 0.0), (5, 0.5), (10, 1.0)):  # copy init: identical heads at step 0
            heads = [mix * f + (1 - mix) * final[0] for f in final]
            student(heads).save(root / "students" / name / "trace" / f"dev_step{step:06d}.tsv")
    ablation = {"cerberus-t-a+t-b": {"num_heads": 2, "head_layers": 1, "teachers": folders[:2], "model": "B2 2H1"},
                "cerberus-B1H2": {"num_heads": 3, "head_layers": 2, "teachers": folders, "model": "B1 3H2"}}
    for name, config in ablation.items():
        taught = [teacher[t] for t in TEACHERS[: config["num_heads"]]]
        write_run(root / "ablation" / name, {"strategy": "cerberus", **config}, {"test": student(taught)}, curve=False)
    for name, noise in (("default", 0.5), ("alpha1-T1", 0.05)):  # the recipe sweep, on dev: less noise, closer
        final = [teacher[t] + noise * rng.normal(size=len(labels)) for t in TEACHERS]  # to each head's own teacher
        write_run(root / "sweep" / name, {"strategy": "cerberus", "teachers": folders, "num_heads": 3, "model": "B2 3H1"},
                  {"dev": student(final), "test": student(final)}, curve=False)
    bench = [{"name": "artifacts/x/students/cerberus/best", "latency_ms": 10.0, "parameters": 5},
             {"name": "t-c", "latency_ms": 30.0, "parameters": 9},
             {"name": "not-a-run", "latency_ms": 1.0, "parameters": 1},
             {"name": "artifacts/x/students/gold/best", "latency_ms": 5.0, "parameters": 3},
             {"name": "single-t-b", "latency_ms": 7.0, "parameters": 3},  # gold's architecture: timing noise
             {"name": "+".join(f"artifacts/x/teachers/{t}/best" for t in TEACHERS), "latency_ms": 60.0,
              "parameters": 27}]  # the teacher ensemble, as `bench --out` names it
    (root / "bench.json").write_text(json.dumps(bench))
    return root


def test_figures_cli_draws_every_figure_from_artifacts(artifacts, tmp_path, capsys):
    main(["--artifacts", str(artifacts), "--out", str(tmp_path)])
    printed = capsys.readouterr().out.splitlines()  # the written paths; "skip" notes for what these artifacts lack
    skipped = {"results_over_seeds", "claims_forest", "cost"}  # one seed, no claims.json, a bench of runs
    assert [p for p in printed if p.startswith("skip ")] == [
        "skip results_over_seeds: no students/<name>/seed<s> runs (a multi-seed preset)",
        "skip claims_forest: no claims.json",
        "skip cost: bench.json times runs, not architectures (NAME:B_b-kH_h): drawn by the pareto figure",
        "skip claims_table: no claims.json"]
    assert [p for p in printed if not p.startswith("skip ")] == [
        str(tmp_path / f"{n}.{ext}") for n in FIGURES if n not in skipped for ext in ("pdf", "png", "json")] + [
        str(tmp_path / "results_table.tex"), str(tmp_path / "README.md")]
    gallery = (tmp_path / "README.md").read_text()
    for name in FIGURES:
        assert (f"![{name}]({name}.png)" in gallery) == (name not in skipped)
        if name not in skipped:
            caption = json.loads((tmp_path / f"{name}.json").read_text())["caption"]
            assert caption and caption in gallery
    sidecar = lambda name: json.loads((tmp_path / f"{name}.json").read_text())["data"]  # noqa: E731
    assert sidecar("agreement_cerberus")["own_teacher_is_closest"] == [True, True, True]
    assert sidecar("agreement_replicated")["heads"] == ["head 1 <- t-a", "head 2 <- t-a", "head 3 <- t-a"]
    diversity = sidecar("diversity_over_steps")
    assert [r["ambiguity"] for r in diversity["runs"]["cerberus"]][0] == 0.0
    assert diversity["runs"]["cerberus"][-1]["ambiguity"] > diversity["runs"]["replicated-t-a"][-1]["ambiguity"]
    results = sidecar("results")
    students = ["gold", "single-t-b", "replicated-t-a", "cerberus"]  # the README table's order
    assert [r["name"] for r in results["rows"]] == [*TEACHERS, "teacher ensemble", *students]
    ensemble = next(r for r in results["rows"] if r["role"] == "teacher ensemble")
    scored = [ScoreTable.load(artifacts / "teacher_scores" / t / "test.tsv") for t in TEACHERS]
    mean_prob = an.to_probability(np.column_stack([t.columns["score"] for t in scored])).mean(1)
    assert ensemble["map"] == ranking_metrics(scored[0].qids, scored[0].labels, mean_prob)["map"]
    assert set(results["paired_vs_cerberus_map"]) == {*TEACHERS, "gold", "replicated-t-a", "single-t-b"}
    pareto = sidecar("pareto")
    points = {p["name"]: p for p in pareto["points"]}  # one per teacher, ensemble and student architecture
    assert list(points) == ["teacher t-c", "teacher ensemble (mean prob.)", "CERBERUS: 3 heads ← 3 teachers (B2 3H1)",
                            "B2 1H1 students"] and pareto["unmatched"] == ["not-a-run"]
    assert points["teacher ensemble (mean prob.)"]["map"] == ensemble["map"]
    assert points["teacher ensemble (mean prob.)"]["latency_ms"] == 60.0
    one_head = points["B2 1H1 students"]
    maps = {n: Artifacts(artifacts).quality(n) for n in ("gold", "replicated-t-a", "single-t-b")}
    assert one_head["latency_ms"] == 6.0  # the median of gold's 5 ms and single-t-b's 7 ms
    assert one_head["map"] == np.median(list(maps.values())) and one_head["range"] == [min(maps.values()), max(maps.values())]
    assert sorted(m for m, _ in one_head["members"]) == sorted(maps)
    assert pareto["front"][0] == "B2 1H1 students"
    tradeoff = sidecar("diversity_tradeoff")
    points = {p["name"]: p for p in tradeoff["points"]}
    assert list(points) == ["alpha1-T1", "default"]
    dev = [ScoreTable.load(artifacts / "teacher_scores" / t / "dev.tsv") for t in TEACHERS]
    for name, p in points.items():
        table = ScoreTable.load(artifacts / "sweep" / name / "scores" / "dev.tsv")
        found = an.run_head_diversity(table, dev)
        assert p["specialization"] == found["specialization"] and p["head_head_r"] == found["head_head_r"]
        assert p["map"] == ranking_metrics(table.qids, table.labels, table.columns["pooled"])["map"]
    assert points["alpha1-T1"]["specialization"] > points["default"]["specialization"] > 0
    assert tradeoff["teacher_level"] == 1 - found["teacher_teacher_r"]
    assert "separate_students" not in tradeoff  # one single-teacher student (t-b) is not a set of them
    assert [(r["panel"][:4], r["x"], r["name"]) for r in sidecar("ablation")["rows"]] == [
        ("numb", 1, "t-b"), ("body", 2, "B1 3H2"), ("numb", 2, "t-a+t-b"), ("numb", 3, "t-a+t-b+t-c"),
        ("body", 1, "B2 3H1")]


def test_artifacts_quality_and_teachers_in_words(artifacts):
    art = Artifacts(artifacts)
    assert art.quality("cerberus") == art.run("students", "cerberus")["metrics"]["test"]["pooled"]["map"]
    assert art.quality("t-b", "p@1") == art.run("teachers", "t-b")["metrics"]["test"]["pooled"]["p@1"]
    ref, probs = art.teacher_ensemble()
    assert art.quality(an.TEACHER_ENSEMBLE) == ranking_metrics(ref.qids, ref.labels, probs)["map"]
    with pytest.raises(Missing):
        art.quality("no-such-run")
    assert [art.taught_by(art.run("students", n)) for n in ("cerberus", "replicated-t-a", "single-t-b", "gold")] == [
        "t-a+t-b+t-c", "t-a", "t-b", "gold labels only"]


def test_the_single_teacher_students_are_read_together_as_heads_with_a_body_each(artifacts, tmp_path):
    """The reference for CERBERUS's heads: one single-teacher student per CERBERUS teacher, in head order,
    their logit margins (head0, not the pooled probability) against their own teachers."""
    import shutil

    root = tmp_path / "separate"
    shutil.copytree(artifacts, root)
    with pytest.raises(Missing, match="single-t-a"):  # only single-t-b has run
        Artifacts(root).separate_students()
    single_b = ScoreTable.load(root / "students" / "single-t-b" / "scores" / "test.tsv")
    rng = np.random.default_rng(1)
    teachers = {t: ScoreTable.load(root / "teacher_scores" / t / "test.tsv").columns["score"] for t in TEACHERS}
    margins = {"t-b": single_b.columns["head0"]}

    def table(m):
        return ScoreTable(single_b.qids, single_b.cand_idx, single_b.labels, {"pooled": an.to_probability(m), "head0": m},
                          single_b.meta)

    for i, t in ((0, "t-a"), (2, "t-c")):
        margins[t] = teachers[t] + 0.2 * rng.normal(size=len(teachers[t]))
        dev = teachers[t] + 0.6 * rng.normal(size=len(teachers[t]))  # dev differs from test
        write_run(root / "students" / f"single-{t}", {"strategy": "single", "num_heads": 1, "teacher_index": i,
                                                       "teachers": [str(root / "teacher_scores" / u) for u in TEACHERS]},
                  {"test": table(margins[t]), "dev": table(dev)}, curve=False)
    found = Artifacts(root).separate_students()
    r = np.corrcoef(np.stack([margins[t] for t in TEACHERS] + [teachers[t] for t in TEACHERS]))
    own_minus_others = [r[i, 3 + i] - np.mean([r[i, 3 + j] for j in range(3) if j != i]) for i in range(3)]
    assert found["specialization"] == pytest.approx(np.mean(own_minus_others), abs=1e-12)
    assert found["head_head_r"] == pytest.approx(np.mean([r[0, 1], r[0, 2], r[1, 2]]), abs=1e-12)
    assert found["specialization"] > 0.2  # each follows its own teacher, as these were made to
    # the recipe sweep's figure marks them (on dev, where recipes are chosen)
    table(margins["t-b"]).save(root / "students" / "single-t-b" / "scores" / "dev.tsv")
    fig, data, _ = FIGURES["diversity_tradeoff"](Artifacts(root))
    dev = data["separate_students"]
    assert dev == Artifacts(root).separate_students("dev") and dev["specialization"] < found["specialization"]
    shown = [line.get_label() for ax in fig.axes for line in ax.get_lines()] + [t.get_text() for t in fig.axes[1].texts]
    x = dev["specialization"]
    assert f"separate students ({x:.3f})" in shown or f"separate students: {x:.3f} →" in shown
    config = root / "students" / "single-t-c" / "config.json"  # named after t-c, taught by t-b
    config.write_text(config.read_text().replace('"teacher_index": 2', '"teacher_index": 1'))
    with pytest.raises(InputError, match="single-t-c learned from .*t-b; expected teacher t-c"):
        Artifacts(root).separate_students()


def test_a_multi_seed_layout_is_read_one_seed_at_a_time(artifacts, tmp_path):
    """students/<name>/seed<s> (reproduce --seeds): the reader opens one seed, teachers are shared."""
    import shutil

    root = tmp_path / "seeds"
    shutil.copytree(artifacts, root)
    for run in [p for p in (root / "students").iterdir()]:
        shutil.move(run, run.with_name("tmp"))
        shutil.copytree(run.with_name("tmp"), run / "seed0")
        shutil.move(run.with_name("tmp"), run / "seed3")
    metrics = root / "students" / "cerberus" / "seed3" / "metrics.json"
    changed = json.loads(metrics.read_text())
    changed["test"]["pooled"]["map"] = 0.123
    metrics.write_text(json.dumps(changed))
    shutil.rmtree(root / "students" / "gold" / "seed3")  # a seed that has not run yet
    first, later = Artifacts(root), Artifacts(root, seed=3)
    assert first.names("students") == Artifacts(artifacts).names("students")
    assert "gold" not in later.names("students") and "cerberus" in later.names("students")
    assert later.quality("cerberus") == 0.123 != first.quality("cerberus")
    assert later.quality("t-b") == first.quality("t-b")  # one teacher run for every seed
    assert later.run("students", "cerberus")["name"] == "cerberus"
    assert later.where("test") == "synthetic test, 12 questions, seed 3"
    with pytest.raises(Missing):
        later.run("students", "gold")
    fig, data, params = FIGURES["results_over_seeds"](first)
    rows = {r["name"]: r for r in data["rows"]}
    assert rows["cerberus"]["seeds"] == [0, 3] and rows["gold"]["seeds"] == [0]  # every finished seed on disk
    assert rows["cerberus"]["values"] == [first.quality("cerberus"), 0.123]
    assert data["teachers"]["t-b"] == first.quality("t-b") and not fig.texts  # no title: the caption says it
    notes = [t.get_text() for t in fig.axes[0].texts]  # a sd needs two seeds: gold's one seed shows its value alone
    assert f"{first.quality('gold'):.3f} (n=1)" in notes and sum("±" in n and "(n=2)" in n for n in notes) >= 1
    caption = params["caption"]
    assert "2 training seeds (0, 3)" in caption and "teacher ensemble" in caption
    with pytest.raises(Missing, match="multi-seed"):
        FIGURES["results_over_seeds"](Artifacts(artifacts))


def test_ablations_with_seeds_show_every_seed_and_mean_sd_at_the_ablations_seeds(artifacts, tmp_path):
    """ablation/<name>/seed<s>: each row is the mean over the seeds the ablations ran at; the main and
    single-teacher runs are read at those seeds only (seed 3 of the students has no ablation)."""
    import shutil

    root = tmp_path / "seeds"
    shutil.copytree(artifacts, root)
    for run in [*(root / "students").iterdir(), *(root / "ablation").iterdir()]:
        shutil.move(run, run.with_name("tmp"))
        for seed in (0, 1, 3) if run.parent.name == "students" else (0, 1):
            shutil.copytree(run.with_name("tmp"), run / f"seed{seed}")
        shutil.rmtree(run.with_name("tmp"))

    def set_map(run: Path, value: float) -> None:
        metrics = json.loads((run / "metrics.json").read_text())
        metrics["test"]["pooled"]["map"] = value
        (run / "metrics.json").write_text(json.dumps(metrics))

    set_map(root / "ablation" / "cerberus-t-a+t-b" / "seed1", 0.5)
    set_map(root / "students" / "cerberus" / "seed3", 0.1)  # no ablation at seed 3: never read
    shutil.rmtree(root / "ablation" / "cerberus-B1H2" / "seed1")  # not trained yet at seed 1
    fig, data, params = FIGURES["ablation"](Artifacts(root))
    rows = {(r["panel"][:4], r["name"]): r for r in data["rows"]}
    first = Artifacts(artifacts)
    pair = first.run("ablation", "cerberus-t-a+t-b")["metrics"]["test"]["pooled"]["map"]
    assert rows["numb", "t-a+t-b"]["values"] == [pair, 0.5] and rows["numb", "t-a+t-b"]["map"] == (pair + 0.5) / 2
    assert rows["numb", "t-a+t-b+t-c"]["seeds"] == [0, 1] == rows["numb", "t-b"]["seeds"]
    assert rows["numb", "t-a+t-b+t-c"]["values"] == [first.quality("cerberus")] * 2
    assert rows["body", "B1 3H2"]["seeds"] == [0] and params["spread"] == "sample sd over seeds"
    assert "(0, 1; 1-2 per run" in params["caption"] and not fig.texts  # the seeds are in the caption, not a title
    assert fig.axes[0].get_ylabel() == "MAP (mean ± sd over seeds)"
    pair_bar = next(c for c in fig.axes[0].containers if c.lines[0].get_ydata()[0] == pytest.approx((pair + 0.5) / 2))
    (whisker,) = pair_bar.lines[2]
    assert np.ptp(whisker.get_segments()[0][:, 1]) == pytest.approx(2 * np.std([pair, 0.5], ddof=1))
    shutil.rmtree(root / "students" / "cerberus" / "seed1")  # an ablation seed whose main run is still training
    assert {tuple(r["seeds"]) for r in FIGURES["ablation"](Artifacts(root))[1]["rows"]} == {(0,)}


def test_example_question_is_short_and_ranked_right_by_every_teacher(artifacts):
    art = Artifacts(artifacts)
    example = art.example_question("dev")
    tables = art.teacher_tables("dev")
    qids = np.asarray(tables["t-a"].qids)
    assert tables["t-a"].labels[qids == example["qid"]].sum() == 1
    best = max(sum(art.correct_rank(t, q) == 1 for t in tables.values())
               for q in dict.fromkeys(qids) if tables["t-a"].labels[qids == q].sum() == 1)
    assert sum(r == 1 for r in example["ranks"].values()) == best
    assert example["ranks"] == {t: art.correct_rank(table, example["qid"]) for t, table in tables.items()}


def test_figures_have_captions_not_titles(artifacts):
    """What a figure shows (data, n, seeds) is said in its caption; a figure carries no title."""
    for name in ("head_correlation_cerberus", "agreement_replicated", "results", "loss_curves"):
        fig, _, params = FIGURES[name](Artifacts(artifacts))
        assert "synthetic test (12 questions)" in params["caption"] or name == "loss_curves"
        assert "one training run (seed 0)" in params["caption"], name
        assert not fig.texts and not [ax.get_title() for ax in fig.axes if len(ax.get_title()) > 40]
    assert Artifacts(artifacts).where("test") == "synthetic test, 12 questions"


def test_make_figures_skips_what_is_missing(tmp_path, capsys):
    assert make_figures(tmp_path / "empty", tmp_path / "out") == []
    notes = capsys.readouterr().out.splitlines()
    assert len(notes) == len(FIGURES) + 2 and all(n.startswith("skip ") for n in notes)  # + the two tables
    assert not (tmp_path / "out").exists()



# ----------------------------------------------------------------- provenance
def test_code_version_counts_code_changes_only(tmp_path):
    """Sidecars are stamped with the last commit that changed the code, "+dirty" only while the code
    has uncommitted changes: rewriting figures (or committing them) does not change the stamp."""
    from cerberus_core.provenance import code_version

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "cerberus_core").mkdir()
    (tmp_path / "figures").mkdir()
    (tmp_path / "cerberus_core" / "m.py").write_text("x = 1\n")
    (tmp_path / "figures" / "f.json").write_text("{}\n")
    git("add", ".")
    git("commit", "-qm", "code")
    code_commit = git("rev-parse", "--short", "HEAD")
    assert code_version(tmp_path) == code_commit
    (tmp_path / "figures" / "f.json").write_text('{"redrawn": 1}\n')
    assert code_version(tmp_path) == code_commit  # an output changed: still clean
    git("commit", "-qam", "figures")
    assert code_version(tmp_path) == code_commit  # committing outputs keeps the code's commit
    (tmp_path / "cerberus_core" / "m.py").write_text("x = 2\n")
    assert code_version(tmp_path) == code_commit + "+dirty"
    (tmp_path / "cerberus_core" / "m.py").write_text("x = 1\n")
    (tmp_path / "cerberus_core" / "new.py").write_text("y = 1\n")  # a new module is code too
    assert code_version(tmp_path) == code_commit + "+dirty"


# ----------------------------------------------------------------- paper figures: forest, cost, style
def test_forest_marks_each_verdict_and_groups_panels():
    rows = [{"label": "a", "delta": 0.05, "ci": (0.02, 0.08), "verdict": "supported", "p": "0.01", "panel": "map"},
            {"label": "b", "delta": 0.0, "ci": (-0.02, 0.02), "verdict": "not supported", "p": "1", "panel": "map"},
            {"label": "c", "delta": -0.1, "ci": (-0.15, -0.05), "verdict": "contradicted", "p": "0.01", "panel": "map"},
            {"label": "d", "delta": 0.02, "ci": (0.01, 0.03), "verdict": "not tested over seeds", "p": "0.02",
             "panel": "s", "style": "pooled only", "note": "pooled: supported, p 0.02"}]
    fig = pl.plot_forest(rows, xlabels={"map": "MAP", "s": "S"})
    top, bottom = fig.axes
    assert [t.get_text() for t in top.get_yticklabels()] == ["a", "b", "c"] and bottom.get_xlabel() == "S"
    markers = [line.get_marker() for line in top.get_lines() if len(line.get_xdata()) == 1]
    assert markers == ["D", "o", "s"]
    assert annotations(top) == ["supported, p 0.01", "not supported, p 1", "contradicted, p 0.01"]
    assert annotations(bottom) == ["pooled: supported, p 0.02"]
    assert fig.get_size_inches()[0] == pytest.approx(pl.TEXT_WIDTH)


def test_cost_follows_the_students_and_puts_far_models_at_the_edge():
    points = [{"label": "teacher", "values": [0.9], "parameters": 1e8, "latency_ms": 300.0, "gid": "T"},
              {"label": "student", "values": [0.70, 0.72, 0.71], "parameters": 2e7, "latency_ms": 50.0,
               "color": CERBERUS_COLOR, "gid": "CERBERUS", "emphasis": True},
              {"label": "other", "values": [0.69, 0.70, 0.72], "parameters": 3e7, "latency_ms": 70.0}]
    fig = pl.plot_cost(points)
    params, latency = fig.axes[:2]
    assert params.get_ylim()[1] < 0.9  # the teacher does not squash the students
    assert "1: 0.900 ↑" in annotations(params) and [t.get_text() for t in fig.legends[0].get_texts()] == [
        "1: teacher", "2: student", "3: other"]
    assert pl.drawn_colors(fig)["CERBERUS"] == [CERBERUS_COLOR.lower()]
    assert pl.drawn_texts(fig)[1] == []


def test_figures_are_a_venue_width_and_save_truetype_fonts(tmp_path):
    for fig in (pl.plot_correlation_heatmap(np.eye(3), ["a", "b", "c"]),
                pl.plot_seed_spread([{"label": "x", "values": [0.5, 0.6]}], {}),
                pl.plot_metric_bars([{"name": "a", **metric_row(0.5)}])):
        assert min(abs(fig.get_size_inches()[0] - w) for w in (pl.COLUMN_WIDTH, pl.TEXT_WIDTH)) < 1e-9
    pl.save_figure(fig, "bars", {}, {}, tmp_path, caption="A caption.")
    pdf = (tmp_path / "bars.pdf").read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf
    width = float(re.search(rb"/MediaBox \[ *0 0 ([\d.]+)", pdf)[1]) / 72
    assert width == pytest.approx(pl.TEXT_WIDTH, abs=0.01)  # saved uncropped, at its venue width
    assert json.loads((tmp_path / "bars.json").read_text())["caption"] == "A caption."


def test_claims_forest_draws_the_seed_aware_interval_when_a_claim_has_one(artifacts, tmp_path):
    import shutil

    from cerberus_core.reporting import paper_tables as pt

    root = tmp_path / "claims"
    shutil.copytree(artifacts, root)
    pooled = {"a": "cerberus", "b": "gold", "test": "map", "dataset": "wikiqa", "n_seeds": 3, "n_questions": 12,
              "delta_map": 0.02, "ci95": [0.0, 0.04], "p_holm_display": "0.09", "statement": "s"}
    claims = {"alpha": 0.05, "correction": "Holm over 2", "claims": [
        {**pooled, "id": "1", "verdict": "supported", "verdict_pooled": "not supported",
         "seed_aware": {"method": "t", "delta_map": 0.021, "ci95": [0.01, 0.03], "p_holm_display": "0.04"}},
        {**pooled, "id": "2", "b": "teacher-t-a", "verdict": "not supported"},
        {"id": "4", "dataset": "wikiqa", "statement": "untested", "verdict": "not tested"}]}
    (root / "claims.json").write_text(json.dumps(claims))
    fig, data, params = pt.claims_forest(Artifacts(root))
    first, second = data["rows"]
    assert (first["delta"], first["ci"], first["p"], first["seed_aware"]) == (0.021, [0.01, 0.03], "0.04", True)
    assert (second["delta"], second["ci"], second["seed_aware"]) == (0.02, [0.0, 0.04], False)
    assert first["label"] == "WikiQA, 3 seeds, claim 1: vs Gold labels" and second["label"].endswith("t-a (teacher)")
    assert "Not tested: untested." in params["caption"]
    table = pt.claims_table(Artifacts(root))
    assert r"\textbf{supported}" in table and "+0.021 & [+0.010, +0.030] & 0.04" in table and r"\begin{table*}" in table
