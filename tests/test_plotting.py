"""Plots as pure functions (checked by their artists, never by pixels), save_figure, and make_figures
on a tiny synthetic artifacts tree written directly (no training)."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import patches  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cerberus_core import analysis as an  # noqa: E402
from cerberus_core import plotting as pl  # noqa: E402
from cerberus_core.figures import FIGURES, Artifacts, Missing, main, make_figures  # noqa: E402
from cerberus_core.metrics import metrics_with_ci, ranking_metrics  # noqa: E402
from cerberus_core.scores import ScoreTable  # noqa: E402

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
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["c0 +", "c1", "c2"]
    heights = [p.get_height() for p in fig.axes[0].patches[:3]]  # T=1
    np.testing.assert_allclose(heights, an.to_probability(np.array([2.0, -1.0, 0.5])))


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


def test_correlation_heatmap_annotations_equal_the_matrix():
    m = np.array([[1.0, 0.8312, 0.5], [0.8312, 1.0, 0.25], [0.5, 0.25, 1.0]])
    fig = pl.plot_correlation_heatmap(m, ["a", "b", "c"], "teachers")
    annotations = [t.get_text() for t in fig.axes[0].texts]
    assert annotations == [f"{v:.2f}" for v in m.ravel()]
    assert fig.axes[0].get_title() == "teachers"


def test_agreement_matrix_outlines_each_heads_closest_teacher():
    m = np.array([[0.9, 0.5, 0.4], [0.6, 0.8, 0.8]])  # head1 ties between two teachers
    fig = pl.plot_agreement_matrix(m, ["h0", "h1"], ["t0", "t1", "t2"], "cerberus")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [f"{v:.2f}" for v in m.ravel()]
    boxes = sorted(p.get_xy() for p in ax.patches if isinstance(p, patches.Rectangle) and not p.get_fill())
    assert boxes == [(0, 0), (1, 1), (2, 1)]


def test_loss_curves_one_panel_per_term_one_line_per_head():
    terms = [f"{f}/head{h}" for f in ("loss", "kd", "ce") for h in range(3)]
    rows = [{"step": s, "epoch": 0, "loss": 1.0, **{t: 1 / s + int(t[-1]) for t in terms}} for s in range(1, 81)]
    fig = pl.plot_loss_curves(rows, window=4)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert [line.get_label() for line in ax.get_lines()] == ["head0", "head1", "head2"]
        assert len(ax.get_lines()[0].get_xdata()) == 80 - 3  # running mean of 4
    gold_only = [{"step": s, "epoch": 0, "ce/head0": 0.5, "loss/head0": 0.5, "loss": 0.5} for s in range(1, 5)]
    assert len(pl.plot_loss_curves(gold_only).axes) == 2


def test_head_metrics_bars_with_ci():
    metrics = {"pooled": metric_row(0.7), "head0": metric_row(0.6), "head1": metric_row(0.65)}
    fig = pl.plot_head_metrics(metrics, {"t0": metric_row(0.75)}, head_labels=["head0 <- t0", "head1 <- t1"])
    assert len(fig.axes) == 3
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["pooled", "head0 <- t0", "head1 <- t1", "t0"]
    widths = [round(p.get_width(), 2) for p in ax.patches if isinstance(p, patches.Rectangle)]
    assert widths[:4] == [0.7, 0.6, 0.65, 0.75]
    assert any(c.has_xerr for c in ax.containers if isinstance(c, matplotlib.container.ErrorbarContainer))


def test_diversity_over_steps_lines_and_teacher_reference():
    rows = [{"step": s, "ambiguity": s / 100, "mean_pearson": 1 - s / 100, "top1_disagreement": s / 50}
            for s in (0, 10, 20)]
    fig = pl.plot_diversity_over_steps({"cerberus": rows, "replicated": rows}, teacher_level={"ambiguity": 0.3})
    assert [ax.get_title() for ax in fig.axes] == ["ambiguity", "mean pearson", "top1 disagreement"]
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["cerberus", "replicated", "teachers"]
    assert len(fig.axes[1].get_lines()) == 2
    assert len(pl.plot_diversity_over_steps(rows).axes[0].get_lines()) == 1


def test_ablation_one_panel_per_family_one_tick_per_run():
    rows = [{"panel": "heads", "x": k, "name": n, **metric_row(0.5 + k / 10)}
            for k, n in ((3, "a+b+c"), (1, "a"), (2, "a+b"), (1, "b"), (2, "b+c"))]
    rows += [{"panel": "split", "x": h, "name": f"B{4 - h} 3H{h}", **metric_row(0.6)} for h in (1, 2)]
    fig = pl.plot_ablation(rows)
    heads, split = fig.axes[:2]
    assert [heads.get_title(), split.get_title()] == ["heads", "split"]
    assert [t.get_text() for t in heads.get_xticklabels()] == ["a", "b", "a+b", "b+c", "a+b+c"]  # sorted by x
    assert len(heads.containers) == 3 and len(split.containers) == 2  # one colour per setting


def test_pareto_labels_every_point_and_joins_the_front():
    points, names = [(10, 0.6), (30, 0.7), (25, 0.5)], ["small", "large", "bad"]
    front = an.pareto_front(points)
    ax = pl.plot_pareto(points, names, front).axes[0]
    assert [t.get_text() for t in ax.texts] == names
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [10, 30])


def test_label_groups_join_points_that_nearly_coincide():
    points = [(10, 0.60), (10, 0.60), (30, 0.70), (10.1, 0.601), (20, 0.60)]
    assert pl.label_groups(points) == [[0, 1, 3], [2], [4]]
    assert pl.label_groups(points, tolerance=0.0) == [[0, 1], [2], [3], [4]]
    assert pl.label_groups([(5, 0.5)]) == [[0]]


def test_label_groups_on_one_axis_join_models_of_one_cost():
    points = [(10, 0.60), (10.1, 0.70), (30, 0.70)]
    assert pl.label_groups(points, axes=(0,)) == [[0, 1], [2]]
    assert pl.label_groups(points) == [[0], [1], [2]]


def test_pareto_tags_models_of_one_cost_and_lists_them_best_first():
    points, names = [(10, 0.6), (10, 0.65), (30, 0.7)], ["replicated", "cerberus", "teacher"]
    ax = pl.plot_pareto(points, names, an.pareto_front(points)).axes[0]
    tag, teacher, listing = ax.texts
    assert (tag.get_text(), teacher.get_text()) == ("A", "teacher")
    assert tag.xy == (10, 0.65)  # at the group's best point
    assert listing.get_text() == "A (x = 10):\n  cerberus  0.650\n  replicated  0.600"


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
        write_run(root / "teachers" / t, {"strategy": "gold", "num_heads": 1},
                  {"test": ScoreTable(qids, cand, labels, {"pooled": an.to_probability(m), "head0": m}, meta)}, curve=False)
    folders = [str(root / "teacher_scores" / t) for t in TEACHERS]
    runs = {"cerberus": ({"strategy": "cerberus", "teachers": folders, "num_heads": 3, "head_layers": 1,
                          "model": "B2 3H1"}, list(TEACHERS)),
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
    bench = [{"name": "artifacts/x/students/cerberus/best", "latency_ms": 10.0, "parameters": 5},
             {"name": "t-c", "latency_ms": 30.0, "parameters": 9},
             {"name": "not-a-run", "latency_ms": 1.0, "parameters": 1},
             {"name": "+".join(f"artifacts/x/teachers/{t}/best" for t in TEACHERS), "latency_ms": 60.0,
              "parameters": 27}]  # the teacher ensemble, as `bench --out` names it
    (root / "bench.json").write_text(json.dumps(bench))
    return root


def test_figures_cli_draws_every_figure_from_artifacts(artifacts, tmp_path, capsys):
    main(["--artifacts", str(artifacts), "--out", str(tmp_path)])
    printed = capsys.readouterr().out.splitlines()  # the written paths; no "skip" note
    assert printed == [str(tmp_path / f"{n}.{ext}") for n in FIGURES for ext in ("pdf", "png", "json")]
    sidecar = lambda name: json.loads((tmp_path / f"{name}.json").read_text())["data"]  # noqa: E731
    assert sidecar("agreement_cerberus")["own_teacher_is_closest"] == [True, True, True]
    assert sidecar("agreement_replicated")["heads"] == ["head0 ← t-a", "head1 ← t-a", "head2 ← t-a"]
    diversity = sidecar("diversity_over_steps")
    assert [r["ambiguity"] for r in diversity["runs"]["cerberus"]][0] == 0.0
    assert diversity["runs"]["cerberus"][-1]["ambiguity"] > diversity["runs"]["replicated-t-a"][-1]["ambiguity"]
    results = sidecar("results")
    students = ["cerberus", "gold", "replicated-t-a", "single-t-b"]
    assert [r["name"] for r in results["rows"]] == [*TEACHERS, "teacher ensemble", *students]
    ensemble = next(r for r in results["rows"] if r["role"] == "ensemble")
    scored = [ScoreTable.load(artifacts / "teacher_scores" / t / "test.tsv") for t in TEACHERS]
    mean_prob = an.to_probability(np.column_stack([t.columns["score"] for t in scored])).mean(1)
    assert ensemble["map"] == ranking_metrics(scored[0].qids, scored[0].labels, mean_prob)["map"]
    assert set(results["paired_vs_cerberus_map"]) == {*TEACHERS, "gold", "replicated-t-a", "single-t-b"}
    pareto = sidecar("pareto")
    assert pareto["names"] == ["cerberus", "t-c", "teacher ensemble"] and pareto["unmatched"] == ["not-a-run"]
    assert pareto["map"][2] == ensemble["map"] and pareto["latency_ms"][2] == 60.0
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


def test_make_figures_skips_what_is_missing(tmp_path, capsys):
    assert make_figures(tmp_path / "empty", tmp_path / "out") == []
    notes = capsys.readouterr().out.splitlines()
    assert len(notes) == len(FIGURES) and all(n.startswith("skip ") for n in notes)
    assert not (tmp_path / "out").exists()

