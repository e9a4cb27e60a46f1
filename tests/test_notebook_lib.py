"""The library side of the notebooks: cerberus_core.orchestration.notebook (preamble, committed bench), tables
(every table a notebook shows) and book (the static HTML rendering). Synthetic inputs where the
logic is the point; the committed v2 programme where the tables must read it as the notebooks do."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from cerberus_core.results import analysis as an
from cerberus_core.orchestration import notebook
from cerberus_core.reporting import tables
from cerberus_core.results.reader import Artifacts
from cerberus_core.errors import InputError
from cerberus_core.results.scores import ScoreTable

REPO = Path(__file__).resolve().parents[1]
V2 = REPO / "artifacts" / "v2"


# --------------------------------------------------------------------------- numbers
def test_fmt_never_prints_nan_or_negative_zero():
    assert an.fmt(-0.00001) == "0.0000" and an.fmt(-0.0) == "0.0000"
    assert an.fmt(float("nan")) == "–" and an.fmt(None) == "–" and an.fmt(float("inf")) == "–"
    assert an.fmt(0.12345, 3) == "0.123" and an.fmt(-0.5, 1) == "-0.5"
    assert an.fmt_signed(0.0123, 3) == "+0.012" and an.fmt_signed(-0.00001, 3) == "0.000"
    assert an.fmt("yes") == "yes"


def test_decimals_tell_values_apart():
    assert tables.decimals([0.98526, 0.98505, 0.97539]) == 4
    assert tables.decimals([0.9999, 0.99994, 0.99991]) == 5
    assert tables.decimals([0.5, 0.25]) == 3  # at least 3
    assert tables.decimals([0.1, 0.1]) == 3


def test_display_statement_names_known_teachers_only():
    text = "CERBERUS beats knowledge distillation from minilm-l3 + mpnet-base, not my-teacher"
    assert tables.display_statement(text) == ("CERBERUS beats knowledge distillation from MiniLM-L3 + MPNet-base, "
                                              "not my-teacher")


# --------------------------------------------------------------------------- questions by disagreement
def _table(rows: list[tuple[str, int, int, dict[str, float]]]) -> ScoreTable:
    qids = [r[0] for r in rows]
    columns = {k: np.array([r[3][k] for r in rows], dtype=float) for k in rows[0][3]}
    return ScoreTable(qids, np.array([r[1] for r in rows]), np.array([r[2] for r in rows]), columns)


def test_questions_where_heads_leave_their_teacher_come_first():
    # q1: both heads follow their teachers; q2: head0 leaves teacher a's top-1, heads split
    student = _table([("q1", 0, 1, {"head0": 2.0, "head1": 2.0, "pooled": 0.9}),
                      ("q1", 1, 0, {"head0": 0.0, "head1": 0.0, "pooled": 0.1}),
                      ("q2", 0, 1, {"head0": 0.0, "head1": 3.0, "pooled": 0.6}),
                      ("q2", 1, 0, {"head0": 1.0, "head1": 0.0, "pooled": 0.4})])
    a = _table([("q1", 0, 1, {"score": 1.0}), ("q1", 1, 0, {"score": 0.0}),
                ("q2", 0, 1, {"score": 1.0}), ("q2", 1, 0, {"score": 0.0})])
    frame = tables.question_disagreement(student, {"a": a, "b": a}, taught=["a", "b"])
    assert list(frame["qid"]) == ["q2", "q1"]
    assert list(frame["heads off their teacher's top-1"]) == [1, 0]
    assert list(frame["distinct head top-1"]) == [2, 1]
    heads_only = tables.question_disagreement(student, {}, None)
    assert "heads off their teacher's top-1" not in heads_only and heads_only["qid"][0] == "q2"


# --------------------------------------------------------------------------- claims
def test_claims_frame_shows_seed_aware_fields_and_reasons():
    pooled_only = {"claims": [{"id": "1", "dataset": "wikiqa", "statement": "CERBERUS beats minilm-l3",
                               "n_seeds": 5, "test": "map", "delta_map": 0.05, "ci95": [0.04, 0.06], "p": 0.001,
                               "p_holm_display": "< 0.0028", "verdict": "supported"},
                              {"id": "4", "dataset": "wikiqa", "statement": "heterogeneous teachers",
                               "verdict": "not tested", "reason": "no pair isolates it"}]}
    frame = tables.claims_frame(pooled_only)
    assert list(frame.columns) == ["claim", "dataset", "statement", "seeds", "difference [95% CI]", "p (Holm)", "verdict"]
    assert frame.loc[0, "statement"] == "CERBERUS beats MiniLM-L3"
    assert frame.loc[0, "difference [95% CI]"] == "MAP +0.050 [+0.040, +0.060]"
    assert frame.loc[1, "verdict"] == "not tested (no pair isolates it)" and frame.loc[1, "p (Holm)"] == "–"

    aware = {"claims": [{**pooled_only["claims"][0], "verdict_pooled": "supported", "verdict": "not supported",
                         "seed_aware": {"delta_map": 0.05, "ci95": [-0.01, 0.11], "per_seed_delta": [0.04, -0.0],
                                        "p_holm": 0.2, "p_holm_display": "0.2"}},
                        {**pooled_only["claims"][0], "n_seeds": 1, "seed_aware": None, "verdict": "not tested over seeds",
                         "seed_aware_reason": "one seed"}]}
    frame = tables.claims_frame(aware)
    assert frame.loc[0, "difference [95% CI], over seeds and questions"] == "MAP +0.050 [-0.010, +0.110]"
    assert frame.loc[0, "difference at each seed"] == "+0.040, 0.000"
    assert frame.loc[0, "verdict"] == "not supported" and frame.loc[0, "verdict, questions pooled over seeds"] == "supported"
    assert frame.loc[1, "verdict"] == "not tested over seeds (one seed)" and frame.loc[1, "p (Holm)"] == "–"
    assert not frame.isna().any().any()


def test_ablation_frame_keeps_the_figures_panel_order():
    rows = [{"panel": "heads", "x": 2, "name": "a+b", "legend": "2 heads", "values": [0.7, 0.72], "map": 0.71},
            {"panel": "split", "x": 1, "name": "B5 3H1", "legend": "main", "values": [0.75, 0.76], "map": 0.755},
            {"panel": "heads", "x": 1, "name": "a", "legend": "1 head", "values": [0.69, 0.7], "map": 0.695}]
    frame = tables.ablation_frame(rows)
    assert list(frame["name"]) == ["a", "a+b", "B5 3H1"]
    assert frame.loc[0, "test MAP, mean ± sd over seeds"] == an.format_mean_sd([0.69, 0.7], 4)


# --------------------------------------------------------------------------- the committed bench
def _run(folder: Path, backbone: str, model: str, parameters: int) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"backbone": backbone}))
    (folder / "metrics.json").write_text(json.dumps({"model": model, "parameters": parameters}))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    _run(root / "teachers" / "small", "enc-small", "B2 1H1", 10)
    _run(root / "teachers" / "big", "enc-big", "B11 1H1", 100)
    _run(root / "students" / "cerberus" / "seed0", "enc-small", "B1 2H1", 12)
    _run(root / "students" / "single-big" / "seed0", "enc-small", "B1 1H1", 9)
    return root


def test_a_bench_of_the_same_architectures_stands_for_this_folders_models(results: Path, tmp_path: Path):
    rows = [{"name": "enc-small:B1-2H1", "parameters": 12, "latency_ms": 20.0},
            {"name": "small", "parameters": 10, "latency_ms": 15.0},  # a bare name: the teacher of that backbone
            {"name": "enc-big", "parameters": 100, "latency_ms": 90.0},
            {"name": "enc-small+enc-big", "parameters": 110, "latency_ms": 105.0},  # the teachers' ensemble
            {"name": "enc-other:B1-1H1", "parameters": 5, "latency_ms": 1.0}]
    bench = tmp_path / "elsewhere" / "bench.json"
    bench.parent.mkdir()
    bench.write_text(json.dumps({"conditions": {"threads": 1}, "rows": rows}))
    art = Artifacts(results, 0)
    found = notebook.committed_bench(art, bench)
    assert found["latency"] == {"cerberus": 20.0, "big": 90.0, an.TEACHER_ENSEMBLE: 105.0}
    assert found["unmatched"] == ["small", "enc-other:B1-1H1"]  # "small" is no run there, and no backbone here
    assert found["parameters"]["cerberus"] == 12 and "elsewhere/bench.json" in found["note"]
    assert notebook.committed_bench(art) is None  # no bench of its own, and none in the repository fits


def test_v2_reads_a_bench_covering_cerberus_and_every_teacher():
    art = Artifacts(V2, 0)
    found = notebook.committed_bench(art)
    assert found is not None, "no committed bench fits the v2 models"
    assert {"cerberus", *art.names("teachers"), an.TEACHER_ENSEMBLE} <= set(found["latency"])
    assert re.match(r"Timings read from artifacts/\w+/bench\.json", found["note"])
    named = [r["name"] for r in notebook.bench_table(found)]
    assert any(n.startswith("CERBERUS") for n in named) and "MPNet-base" in named


# --------------------------------------------------------------------------- tables on the committed programme
@pytest.fixture(scope="module")
def v2() -> Artifacts:
    art = Artifacts(V2, 0)
    try:
        art.table(art.run("students", "cerberus"))
    except InputError as e:  # the score tables read their labels from WikiQA
        pytest.skip(f"WikiQA is not available (set CERBERUS_DATA): {e}")
    return art


def test_head_pairs_have_display_names_and_units(v2: Artifacts):
    frame = tables.head_pairs(v2)
    assert set(frame["student"]) == {"CERBERUS", "Replicated (MPNet-base)"} and len(frame) == 6
    assert "top-1 disagreement (share of questions)" in frame
    assert frame["heads"][0] == "head 1 <- MiniLM-L3 · head 2 <- MiniLM-L6"


def test_agreement_reads_rows_and_columns(v2: Artifacts):
    per_head, summary = tables.agreement(v2, "cerberus", ("pearson", "top1"))
    assert list(per_head["closest teacher"][:3]) == ["MiniLM-L6"] * 3
    assert list(summary["heads closest to their own teacher"]) == ["1/3", "1/3"]
    assert summary.loc[0, "teachers whose own head is the closest head"] == "3/3"
    _, control = tables.agreement(v2, v2.replicated(), ("pearson",))
    assert "teachers whose own head is the closest head" not in control


def test_closest_teacher_by_seed_covers_every_seed(v2: Artifacts):
    frame = tables.closest_teacher_by_seed(V2)
    assert list(frame.columns) == [f"seed {s}" for s in notebook.seeds(V2)]
    assert (frame == "MiniLM-L6").all().all()


def test_open_results_reads_without_training(capsys):
    art = notebook.open_results("v2", 1)
    assert art.root == V2 and art.seed == 1
    assert "seed 1 of 5" in capsys.readouterr().out


# --------------------------------------------------------------------------- the book
def test_book_renders_a_notebook_to_html(tmp_path: Path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from cerberus_core.orchestration import book

    source = tmp_path / "09_tiny.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# 09 · Tiny"), new_code_cell("print(6 * 7)")]), source)
    index = book.build(tmp_path / "book", [source])
    page = (tmp_path / "book" / "09_tiny.html").read_text(encoding="utf-8")
    assert "42" in page and "09_tiny.html" in index.read_text(encoding="utf-8")
    assert "09 · Tiny" in index.read_text(encoding="utf-8")


def test_make_book_renders_every_notebook():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^book:.*\n(?:\t.*\n)*\t.*-m cerberus_core\.orchestration\.book --out book", makefile, re.MULTILINE)
    assert "/book/" in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()


@pytest.mark.slow
def test_book_builds_from_every_notebook(tmp_path: Path, v2: Artifacts):
    """`make book` in full: every notebook executed in its default preset and rendered."""
    from cerberus_core.orchestration import book

    index = book.build(tmp_path / "book")
    pages = sorted(p.name for p in (tmp_path / "book").glob("*.html"))
    assert pages == sorted([*(f"{p.stem}.html" for p in book.NOTEBOOKS.glob("*.ipynb")), "index.html"])
    assert "Traceback" not in "".join((tmp_path / "book" / p).read_text(encoding="utf-8") for p in pages)
    assert index.is_file()
