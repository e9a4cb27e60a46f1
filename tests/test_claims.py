"""The claims table on synthetic runs whose answers are known: every number recomputed by hand."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cerberus_core.reporting import ablation_tests, claims
from cerberus_core.orchestration import cli
from cerberus_core.errors import InputError
from cerberus_core.results.metrics import ranking_metrics
from cerberus_core.results.scores import ScoreTable
from conftest import synthetic_dataset_meta

N_Q, N_C = 60, 5
QIDS = [f"q{i}" for i in range(N_Q) for _ in range(N_C)]
CAND = np.tile(np.arange(N_C), N_Q)
LABELS = np.tile([1, 0, 0, 0, 0], N_Q)
TEACHERS = ["a", "b", "c"]


def _write_run(run, name, seed, columns, teachers=(), meta=None, dev_map=0.5, **config):
    table = ScoreTable(QIDS, CAND, LABELS, {k: np.asarray(v, float) for k, v in columns.items()}, meta)
    table.save(run / "scores" / "test.tsv")
    config = {"name": name, "seed": seed, "dataset": "synthetic", "test_split": "test",
              "teachers": [f"../../../teacher_scores/{t}" for t in teachers], **config}  # from students/NAME/seedS
    (run / "config.json").write_text(json.dumps(config))
    model = f"B{config.get('body_layers', 5)} {config.get('num_heads', 1)}H{config.get('head_layers', 1)}"  # as training names it
    (run / "metrics.json").write_text(json.dumps({"dev": {"pooled": {"map": dev_map}}, "model": model}))


B5_3H1 = {"body_layers": 5, "num_heads": 3, "head_layers": 1}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Teachers a, b, c; students whose quality is set by how much noise hides the gold label.
    CERBERUS's head i copies teacher i (so S is high), replicated copies teacher c three times."""
    root = tmp_path_factory.mktemp("claims")
    meta = synthetic_dataset_meta(root, QIDS, CAND, LABELS)
    rng = np.random.default_rng(0)
    signal = LABELS * 2.0
    teacher = {t: signal + rng.normal(size=len(QIDS)) for t in TEACHERS}
    for t, dev in zip(TEACHERS, (0.6, 0.7, 0.8)):
        ScoreTable(QIDS, CAND, LABELS, {"score": teacher[t]}, meta).save(root / "teacher_scores" / t / "test.tsv")
        _write_run(root / "teachers" / t, f"teacher-{t}", 0, {"pooled": teacher[t]}, meta=meta, dev_map=dev)
    for seed in (0, 1, 2):
        noise = lambda scale: rng.normal(scale=scale, size=len(QIDS))  # noqa: E731
        heads = {f"head{i}": teacher[t] + noise(0.3) for i, t in enumerate(TEACHERS)}
        _write_run(root / "students" / "cerberus" / f"seed{seed}", "cerberus", seed,
                   {"pooled": signal + noise(0.2), **heads}, TEACHERS, meta, **B5_3H1)
        same = teacher["c"] + noise(0.3)
        _write_run(root / "students" / "replicated-c" / f"seed{seed}", "replicated-c", seed,
                   {"pooled": signal + noise(0.2), **{f"head{i}": same + noise(0.05) for i in range(3)}}, TEACHERS, meta)
        for name in ("single-a", "single-b", "single-c", "ensemble"):
            _write_run(root / "students" / name / f"seed{seed}", name, seed, {"pooled": signal + noise(3.0)},
                       TEACHERS, meta)
    return root


def test_holm_by_hand():
    assert claims.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert claims.holm([0.02, 0.02]) == pytest.approx([0.04, 0.04])


def test_claims_table_recomputes_and_reads_right(root):
    result = claims.build_claims(root)
    rows = {(r["id"], r.get("b")): r for r in result["claims"]}
    single = rows[("1", "single-a")]
    assert single["n_seeds"] == 3 and len(single["runs"]["a"]) == 3
    by_hand = []
    for seed in (0, 1, 2):  # MAP difference recomputed from the saved tables
        maps = [ranking_metrics(t.qids, t.labels, t.columns["pooled"])["map"]
                for t in (ScoreTable.load(root / "students" / n / f"seed{seed}" / "scores" / "test.tsv")
                          for n in ("cerberus", "single-a"))]
        by_hand.append(maps[0] - maps[1])
    assert single["delta_map"] == pytest.approx(np.mean(by_hand))
    assert single["ci95"][0] < single["delta_map"] < single["ci95"][1]
    assert single["verdict"] == "supported" and single["p_holm_display"].startswith("< ")
    seeds = single["seed_aware"]  # the seed-aware test: its verdict, its own Holm family
    assert seeds["per_seed_delta"] == pytest.approx(by_hand) and seeds["delta_map"] == pytest.approx(single["delta_map"])
    assert seeds["p_seeds_only"] == pytest.approx(stats.ttest_1samp(by_hand, 0).pvalue)
    assert seeds["n_seeds"] == 3 and seeds["ci95"][0] < seeds["delta_map"] < seeds["ci95"][1]
    assert single["verdict_pooled"] == "supported" and seeds["p_holm"] < 0.05
    assert result["verdict_from"] == "seed_aware"
    assert result["seed_aware_correction"] == "Holm over the 7 distinct comparisons with two or more seeds"
    tested = {claims._key(r): r["seed_aware"]["p"] for r in result["claims"] if "p" in r}
    assert sorted(r["seed_aware"]["p_holm"] for r in result["claims"] if "p" in r) == pytest.approx(
        sorted(claims.holm(list(tested.values())) + [rows[("1", "ensemble")]["seed_aware"]["p_holm"]]))
    # the ensemble comparison appears under claims 1 and 2 but is one test of the family
    assert rows[("1", "ensemble")]["p_holm"] == rows[("2", "ensemble")]["p_holm"]
    assert result["correction"] == "Holm over the 7 distinct comparisons"
    assert rows[("3", "replicated-c")]["statement"].endswith("(the best teacher on dev, c)")
    assert rows[("3", "replicated-c")]["verdict"] == "not supported"  # same quality by construction
    special = rows[("5", "replicated-c")]
    assert special["verdict"] == "supported" and special["own_teacher_closest"] == 1.0
    assert special["specialization_a"]["mean"] > 0.3 > special["specialization_b"]["mean"]
    assert special["seed_aware"]["delta_specialization"] == pytest.approx(special["delta_specialization"])
    assert np.mean(special["seed_aware"]["per_seed_delta"]) == pytest.approx(special["delta_specialization"])
    assert rows[("4", None)]["verdict"] == "not tested"
    teacher = rows[("6", "teacher-c")]
    assert teacher["n_seeds"] == 3 and teacher["runs"]["b"] == [str(root / "teachers" / "c")]
    assert teacher["verdict"] == "not supported" and teacher["cost"] is None  # no bench.json: cost unknown


def test_one_seed_gets_no_seed_aware_verdict(root, tmp_path):
    """With one seed training variance cannot be estimated: no seed-aware test, the verdict says so,
    and the pooled verdict stays beside it."""
    import shutil

    one = tmp_path / "root"
    shutil.copytree(root, one)
    for folder in [*(one / "students").glob("*/seed1"), *(one / "students").glob("*/seed2")]:
        shutil.rmtree(folder)
    result = claims.build_claims(one)
    tested = [r for r in result["claims"] if "p" in r]
    assert tested and all(r["seed_aware"] is None and r["verdict"] == "not tested over seeds" for r in tested)
    assert all(r["seed_aware_reason"] == claims.ONE_SEED for r in tested)
    single = next(r for r in tested if r["b"] == "single-a")
    assert single["verdict_pooled"] == "supported" and single["n_seeds"] == 1
    assert result["seed_aware_correction"] == "Holm over the 0 distinct comparisons with two or more seeds"
    table = claims.format_claims_table(result)
    assert "| MAP +" in table and "| - | not tested over seeds (one seed) | - |" in table


def _break(scores, questions):
    """Scores with the gold candidate (candidate 0) of `questions` ranked last."""
    scores = np.array(scores, float)
    for q in questions:
        rows = slice(q * N_C, (q + 1) * N_C)
        scores[rows] = -scores[rows]
    return scores


@pytest.mark.parametrize("broken, verdict", [((6, 6, 6), "supported"), ((0, 6, 12), "not supported")])
def test_per_seed_differences_that_disagree_are_not_a_finding(root, tmp_path, broken, verdict):
    """KD from teacher a is CERBERUS with the gold answer of some questions ranked last: the same
    number of questions at every seed (a consistent gap), or 0, 6 and 12 (a gap as large on average,
    that the seeds disagree on). The question-pooled test supports both; the seed-aware one only the first."""
    import shutil

    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    for seed, n in enumerate(broken):
        main = ScoreTable.load(copy / "students" / "cerberus" / f"seed{seed}" / "scores" / "test.tsv")
        questions = np.arange(n) + 10 * seed  # other questions at each seed
        ScoreTable(main.qids, main.cand_idx, main.labels, {"pooled": _break(main.columns["pooled"], questions)},
                   main.meta).save(copy / "students" / "single-a" / f"seed{seed}" / "scores" / "test.tsv")
    systems = claims.find_systems(copy)["synthetic"]
    row = {"id": "1", "dataset": "synthetic", "statement": "", "a": "cerberus", "b": "single-a", "test": "map",
           **claims.compare_map(systems["cerberus"], systems["single-a"])}
    row = claims.correct_claims(copy, [row])["claims"][0]
    assert row["verdict_pooled"] == "supported" and row["p"] < 0.001
    assert row["verdict"] == verdict
    per_seed = row["seed_aware"]["per_seed_delta"]
    assert (max(per_seed) - min(per_seed) < 1e-9) == (verdict == "supported")


def test_one_name_must_be_one_experiment(root, tmp_path):
    import shutil

    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    config = copy / "students" / "gold-like" / "config.json"
    shutil.copytree(copy / "students" / "ensemble" / "seed0", config.parent)
    (config.parent / "config.json").write_text(json.dumps({"name": "ensemble", "seed": 5, "dataset": "synthetic", "lr": 1.0}))
    with pytest.raises(InputError, match="differs from .* in more than its seed"):
        claims.find_systems(copy)


def test_a_second_dataset_in_a_subfolder_is_claimed_apart_and_joins_the_holm_family(root, tmp_path):
    import shutil

    both = tmp_path / "root"
    shutil.copytree(root, both)
    shutil.copytree(root, both / "trecqa")  # the same runs as another dataset, nested as a transfer preset's
    for config in (both / "trecqa").rglob("config.json"):  # each seed transferred from the source's same seed
        values = {**json.loads(config.read_text()), "dataset": "trecqa"}
        if config.parent.name.startswith("seed"):
            values["init_from"] = f"../../../../students/{config.parent.parent.name}/{config.parent.name}/best"
        config.write_text(json.dumps(values))
    alone = {(r["id"], r.get("b")): r for r in claims.build_claims(root)["claims"]}
    result = claims.build_claims(both)
    assert result["correction"] == "Holm over the 14 distinct comparisons"
    assert [r["dataset"] for r in result["claims"]] == ["synthetic"] * 9 + ["trecqa"] * 9
    nested = {(r["id"], r.get("b")): r for r in result["claims"] if r["dataset"] == "trecqa"}
    row, single = nested[("1", "single-b")], alone[("1", "single-b")]
    assert row["delta_map"] == single["delta_map"] and row["runs"]["a"][0].startswith(str(both / "trecqa"))
    assert row["p_holm"] >= single["p_holm"]  # a larger family corrects more


def test_a_dataset_whose_tables_are_not_here_keeps_its_saved_rows_and_the_family_is_corrected_again(root, tmp_path):
    """TREC-QA's run tables are never committed (licence): on a clean clone its rows are taken as saved,
    the rest is measured again, and the Holm correction and verdicts are recomputed over both."""
    import shutil

    both = tmp_path / "root"
    shutil.copytree(root, both)
    shutil.copytree(root, both / "trecqa")
    for config in (both / "trecqa").rglob("config.json"):
        config.write_text(json.dumps({**json.loads(config.read_text()), "dataset": "trecqa"}))
    saved = json.loads(json.dumps(claims.build_claims(both)))
    for tables in (both / "trecqa").rglob("scores"):
        shutil.rmtree(tables)
    again, measured = claims.recompute(saved)
    assert measured == ["synthetic"] and again == saved
    edited = json.loads(json.dumps(saved))  # a kept row's raw p is corrected again, not copied
    at = next(i for i, r in enumerate(edited["claims"]) if r["dataset"] == "trecqa" and "p" in r)
    edited["claims"][at]["p"] = 0.5
    row = claims.recompute(edited)[0]["claims"][at]
    assert row["p_holm"] == 1.0 != saved["claims"][at]["p_holm"] and row["verdict_pooled"] == "not supported"
    assert saved["claims"][at]["verdict_pooled"] == saved["claims"][at]["verdict"] == "supported"
    assert row["verdict"] == "supported"  # the verdict is the seed-aware test's, which was not edited
    edited["claims"][at]["seed_aware"]["p"] = 0.5  # a kept row's seed-aware p is corrected again too
    row = claims.recompute(edited)[0]["claims"][at]
    assert row["seed_aware"]["p_holm"] == 1.0 and row["verdict"] == "not supported"
    edited = json.loads(json.dumps(saved))  # a measured row that does not measure the same is not kept
    edited["claims"][0]["delta_map"] += 0.001
    assert claims.recompute(edited)[0] == saved


def test_the_command_keeps_the_saved_rows_of_a_dataset_whose_tables_are_not_here(root, tmp_path, capsys):
    """`claims` on a clone without TREC-QA's tables must not drop its rows (and change every corrected p)."""
    import shutil

    both = tmp_path / "root"
    shutil.copytree(root, both)
    shutil.copytree(root, both / "trecqa")
    for config in (both / "trecqa").rglob("config.json"):
        config.write_text(json.dumps({**json.loads(config.read_text()), "dataset": "trecqa"}))
    assert cli.main(["claims", "--root", str(both)]) == 0
    saved = (both / "claims.json").read_text()
    for tables in (both / "trecqa").rglob("scores"):
        shutil.rmtree(tables)
    capsys.readouterr()
    assert cli.main(["claims", "--root", str(both)]) == 0
    assert (both / "claims.json").read_text() == saved
    assert "note: trecqa: no test tables here, so the rows of" in capsys.readouterr().out


def test_command_writes_claims_json_and_prints_the_table(root, capsys):
    assert cli.main(["claims", "--root", str(root)]) == 0
    saved = json.loads((root / "claims.json").read_text())
    assert [r["id"] for r in saved["claims"]] == ["1", "1", "1", "1", "2", "3", "4", "5", "6"]
    assert "| 5 |" in capsys.readouterr().out
    assert cli.main(["claims", "--root", str(root / "teachers")]) == 2


def test_ablations_are_tested_as_a_family_of_their_own(root, tmp_path, capsys):
    """Head count (CERBERUS on every teacher against a subset, the subset against KD from its best teacher)
    and body/head split (against CERBERUS, on MAP and on S), Holm-corrected apart from the claims."""
    import shutil

    both = tmp_path / "root"
    shutil.copytree(root, both)
    assert ablation_tests.build_ablation_tests(both) is None
    rng = np.random.default_rng(1)
    signal = LABELS * 2.0
    teacher = {t: ScoreTable.load(root / "teacher_scores" / t / "test.tsv").columns["score"] for t in TEACHERS}
    meta = ScoreTable.load(root / "teacher_scores" / "a" / "test.tsv").meta
    for seed in (0, 1, 2):
        noise = lambda scale: rng.normal(scale=scale, size=len(QIDS))  # noqa: E731
        _write_run(both / "ablation" / "cerberus-a+b" / f"seed{seed}", "cerberus-a+b", seed,  # far worse than CERBERUS
                   {"pooled": signal + noise(3.0), "head0": teacher["a"], "head1": teacher["b"]}, TEACHERS[:2], meta,
                   body_layers=5, num_heads=2, head_layers=1)
        same = signal + noise(0.2)  # as good as CERBERUS, but its heads are one
        _write_run(both / "ablation" / "cerberus-B4H2" / f"seed{seed}", "cerberus-B4H2", seed,
                   {"pooled": same, **{f"head{i}": same + noise(0.05) for i in range(3)}}, TEACHERS, meta,
                   body_layers=4, num_heads=3, head_layers=2)
    result = ablation_tests.build_ablation_tests(both)
    rows = {(r["a"], r["b"], r["test"]): r for r in result["claims"]}
    assert [r["id"] for r in result["claims"]] == ["k", "k", "split", "split"]
    assert result["correction"].startswith("Holm over the 4 distinct comparisons of the ablations")
    assert rows[("cerberus", "cerberus-a+b", "map")]["verdict"] == "supported"
    assert rows[("cerberus-a+b", "single-b", "map")]["statement"].endswith("best of them on dev (b)")
    assert rows[("cerberus-a+b", "single-b", "map")]["n_seeds"] == 3
    split = rows[("cerberus-B4H2", "cerberus", "specialization")]
    assert split["statement"] == "B4 3H2 has a higher specialization S than B5 3H1 (CERBERUS)"
    assert split["verdict"] == "contradicted" and split["delta_specialization"] < -0.3
    assert rows[("cerberus-B4H2", "cerberus", "map")]["verdict"] == "not supported"
    assert cli.main(["claims", "--root", str(both)]) == 0
    assert json.loads((both / "ablation_tests.json").read_text()) == json.loads(json.dumps(result))
    written = json.loads((both / "claims.json").read_text())  # the claims' family is not widened by the ablations
    assert [r.get("p_holm") for r in written["claims"]] == [r.get("p_holm") for r in claims.build_claims(root)["claims"]]
    assert "Ablations (Holm over the 4 distinct comparisons" in capsys.readouterr().out
    shutil.rmtree(both / "teachers" / "b")  # a subset's best teacher must be among finished runs, never guessed
    rows = {r["statement"]: r for r in ablation_tests.build_ablation_tests(both)["claims"]}
    assert rows["CERBERUS on a + b beats KD from the best of them on dev (?)"]["verdict"] == "not tested"
    for folder in (both / "ablation").iterdir():
        shutil.rmtree(folder)
    assert cli.main(["claims", "--root", str(both)]) == 0
    assert not (both / "ablation_tests.json").exists()  # no ablations left: no stale table either


def test_ablations_that_cannot_be_compared_with_cerberus_are_not_tested(root, tmp_path):
    """Teachers are compared as the folders they resolve to, not as spelt; other teachers or no shared
    seed give a "not tested" row with the reason, never an error or a comparison of unlike runs."""
    import shutil

    both = tmp_path / "root"
    shutil.copytree(root, both)
    shutil.copytree(both / "teacher_scores", both / "teacher_scores_other")
    signal = LABELS * 2.0
    rng = np.random.default_rng(2)
    meta = ScoreTable.load(root / "teacher_scores" / "a" / "test.tsv").meta

    def ablation(folder, name, seed, teachers, **config):
        run = both / "ablation" / folder / f"seed{seed}"
        _write_run(run, name, seed, {"pooled": signal + rng.normal(size=len(QIDS)),
                                     **{f"head{i}": signal + rng.normal(size=len(QIDS)) for i in range(3)}},
                   (), meta, **config)
        written = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**written, "teachers": teachers}))

    for seed in (0, 1):
        ablation("deeper/cerberus-B3H3", "cerberus-B3H3", seed,  # CERBERUS's teachers, spelt from one level deeper
                 [f"../../../../teacher_scores/{t}" for t in TEACHERS], body_layers=3, num_heads=3, head_layers=3)
        ablation("cerberus-B2H4", "cerberus-B2H4", seed, [f"../../../teacher_scores_other/{t}" for t in TEACHERS],
                 body_layers=2, num_heads=3, head_layers=4)
        ablation("cerberus-a+z", "cerberus-a+z", seed, ["../../../teacher_scores/a", "../../../teacher_scores_other/z"])
        ablation("cerberus-a+a", "cerberus-a+a", seed, ["../../../teacher_scores/a"] * 2)  # one teacher twice
        ablation("deeper/cerberus-a+c", "cerberus-a+c", seed, ["../../../../teacher_scores/a", "../../../../teacher_scores/c"])
    ablation("cerberus-B6H1", "cerberus-B6H1", 7, [f"../../../teacher_scores/{t}" for t in TEACHERS],
             body_layers=6, num_heads=3, head_layers=1)
    result = ablation_tests.build_ablation_tests(both)
    rows = result["claims"]
    reasons = {r["statement"]: r.get("reason") for r in rows}
    assert reasons["CERBERUS on all 3 teachers beats CERBERUS on a + c"] is None  # a subset, spelt from deeper
    assert not any(s.startswith("CERBERUS on a + c beats KD") for s, r in reasons.items() if r)  # (best: c)
    assert reasons["CERBERUS on all 3 teachers beats CERBERUS on a + a"] == reasons[
        "CERBERUS on all 3 teachers beats CERBERUS on a + z"] == "its teachers are not a subset of CERBERUS's (fewer, each once)"
    assert reasons["B3 3H3 beats B5 3H1 (CERBERUS) in test MAP"] is None  # tested
    assert {r["n_seeds"] for r in rows if r["statement"].startswith("B3 3H3")} == {2}
    assert reasons["B2 3H4 beats B5 3H1 (CERBERUS) in test MAP"] == "its teachers are not CERBERUS's"
    assert reasons["B2 3H4 has a higher specialization S than B5 3H1 (CERBERUS)"] == "its teachers are not CERBERUS's"
    assert reasons["CERBERUS on a + z beats KD from the best of them on dev"] == reasons[
        "CERBERUS on all 3 teachers beats CERBERUS on a + z"]
    assert reasons["B6 3H1 beats B5 3H1 (CERBERUS) in test MAP"] == (
        "'cerberus-B6H1' (seeds [7]) and 'cerberus' (seeds [0, 1, 2]) share no seed")
    assert sum(r["verdict"] == "not tested" for r in rows) == 8
    # tested: B3H3 on MAP and on S, a + c against CERBERUS and against KD from c; the rest stay out of Holm
    assert result["correction"].startswith("Holm over the 4 distinct comparisons of the ablations")


REPO = Path(__file__).resolve().parents[1]
COMMITTED = sorted(REPO.glob("artifacts/*/claims.json"))
COMMITTED_ABLATIONS = sorted(REPO.glob("artifacts/*/ablation_tests.json"))


@pytest.mark.parametrize("saved", COMMITTED, ids=[p.parent.name for p in COMMITTED])
def test_committed_claims_json_recomputes_from_its_runs(saved, monkeypatch):
    """Every dataset whose tables are committed is measured again; TREC-QA's (not committed) only where the
    runs are. The correction and verdicts are recomputed over the whole family either way."""
    monkeypatch.chdir(REPO)  # claims.json names its runs as `claims --root artifacts/<version>` was given them
    expected = json.loads(saved.read_text())
    found, measured = claims.recompute(expected)
    assert "wikiqa" in measured and json.loads(json.dumps(found)) == expected
    kept = [r for r in expected["claims"] if r["dataset"] not in measured]
    assert {r["dataset"] for r in kept} <= {"trecqa"}  # only the dataset whose tables are never committed
    for row in (r for r in kept if r.get("test") == "map"):  # its rows still agree with its committed metrics
        for side in ("a", "b"):
            maps = [json.loads((REPO / run / "metrics.json").read_text())["test"]["pooled"]["map"]
                    for run in row["runs"][side]]
            assert row[f"map_{side}"]["mean"] == pytest.approx(np.mean(maps), abs=1e-12), (row["statement"], side)


@pytest.mark.parametrize("saved", COMMITTED_ABLATIONS, ids=[p.parent.name for p in COMMITTED_ABLATIONS])
def test_committed_ablation_tests_recompute_from_their_runs(saved, monkeypatch):
    """ablation_tests.json is the claims command's output over the committed runs: a synced ablation seed
    fails this until the table is rebuilt and committed with it."""
    monkeypatch.chdir(REPO)
    expected = json.loads(saved.read_text())
    assert json.loads(json.dumps(ablation_tests.build_ablation_tests(expected["root"]))) == expected


def test_every_claims_table_in_the_results_doc_is_a_committed_claims_json():
    """docs/results.md quotes claims tables; each must be the rendering of a committed claims.json or
    ablation_tests.json, never edited by hand."""
    lines = (REPO / "docs" / "results.md").read_text(encoding="utf-8").splitlines()
    quoted = []
    for start in (i for i, line in enumerate(lines) if line.startswith("| claim |")):  # any claims table, any header
        end = next((j for j in range(start, len(lines)) if not lines[j].startswith("|")), len(lines))
        quoted.append("\n".join(lines[start:end]) + "\n")
    rendered = {claims.format_claims_table(json.loads(p.read_text())) for p in COMMITTED + COMMITTED_ABLATIONS}
    assert quoted and all(table in rendered for table in quoted)
