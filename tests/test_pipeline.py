"""The main job end to end on the `quick` preset (real MiniLM-L3 teachers, real WikiQA questions)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cerberus_core.orchestration.pipeline as pipeline
from cerberus_core import provenance
from cerberus_core.orchestration import notebook_cache, presets, reports
from cerberus_core.results.reader import Artifacts
from cerberus_core.errors import InputError
from cerberus_core.results.scores import ScoreTable

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke():
    """The chain the quick notebooks read (trained once per checkout, then loaded)."""
    root = notebook_cache.notebook_artifacts("quick", progress=False)
    return root, (root / "results.md").read_text()


def test_reproduce_produces_every_strategy_and_artifacts(smoke):
    root, table = smoke
    for row in ["| teacher | l3-fast", "| teacher | l3-slow", "ensemble (mean prob.)", "| student | gold",
                "| student | single-l3-fast", "| student | single-l3-slow", "| student | ensemble",
                "| student | replicated-", "| student | cerberus", "cerberus head1",
                "| ablation | cerberus-B1H2 (B1 2H2)"]:
        assert row in table
    for teacher in ["l3-fast", "l3-slow"]:
        for split in ["train", "dev", "test"]:
            meta = ScoreTable.load(root / "teacher_scores" / teacher / f"{split}.tsv").meta
            assert {"data_fingerprint", "model_fingerprint", "max_length"} <= set(meta)
    metrics = json.loads((root / "students" / "cerberus" / "metrics.json").read_text())
    assert set(metrics["test"]) == {"pooled", "head0", "head1"} and metrics["model"] == "B2 2H1"
    curve = (root / "students" / "cerberus" / "curve.tsv").read_text().splitlines()[0].split("\t")
    assert {"kd/head0", "kd/head1", "ce/head0", "loss"} <= set(curve)


def test_second_run_skips_everything(smoke, monkeypatch):
    root, table = smoke

    def no_training(*args, **kwargs):
        raise AssertionError("an up-to-date step was recomputed")

    monkeypatch.setattr(pipeline, "train", no_training)
    monkeypatch.setattr(pipeline, "teacher_table", no_training)
    assert pipeline.reproduce("quick", root=root, progress=False, ablation=True).split("\n", 1)[1] == table.split("\n", 1)[1]


def test_workers_share_one_queue(smoke, tmp_path, monkeypatch, capsys):
    """Workers on one `reproduce` queue: a student run that another process is training is left to
    it. Still training when this worker's queue ends: no table, a note and exit code 3. Its holder
    killed meanwhile: this worker trains it on the retry. Finished meanwhile: its metrics are read.
    Either way the table is then the same as one worker's."""
    import os

    from cerberus_core.orchestration.cli import main

    root, table = smoke
    work = tmp_path / "quick"
    shutil.copytree(root, work, copy_function=os.link)  # hard links: files here are replaced, never written
    gold = work / "students" / "gold"
    finished = json.loads((gold / "metrics.json").read_text())

    def other_worker_takes_gold():
        (gold / "metrics.json").unlink(missing_ok=True)
        other = subprocess.Popen([sys.executable, "-c", "import sys, time; from cerberus_core.results.runlock import run_lock\n"
                                  "with run_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(300)", str(gold)],
                                 cwd=provenance.REPO, stdout=subprocess.PIPE, text=True)
        assert other.stdout.readline().strip() == "locked"
        return other

    trained = []

    def train_gold_only(cfg, run_dir, progress):
        assert run_dir == gold, "a finished run was trained again"
        trained.append(run_dir)
        return dict(finished)

    monkeypatch.setattr(pipeline, "train", train_gold_only)
    other = other_worker_takes_gold()
    try:
        assert main(["reproduce", "--preset", "quick", "--root", str(work), "--ablation"]) == 3
        err = capsys.readouterr().err
        assert f"left to another process for now: {gold} (pid {other.pid} is training it)" in err
        assert (f"note: results.md not written: 1 run(s) still being trained by another process ({gold} first); "
                "the worker that finishes last writes it") in err
        assert (work / "results.md").read_text() == table and not trained  # the earlier table stays

        ensure_trained = pipeline.ensure_trained
        for other_ends_gold in ("killed", "finished"):
            def meanwhile(cfg, run_dir, progress):
                if run_dir != gold and other.poll() is None:  # gold was left: the other worker ends now
                    if other_ends_gold == "finished":
                        (gold / "metrics.json").write_text(json.dumps(finished))
                    other.kill()
                    other.wait()
                return ensure_trained(cfg, run_dir, progress)

            monkeypatch.setattr(pipeline, "ensure_trained", meanwhile)
            again = pipeline.reproduce("quick", root=work, progress=False, ablation=True)
            assert other.returncode is not None and again.split("\n", 1)[1] == table.split("\n", 1)[1]
            assert trained == [gold]  # trained here once: on the retry after the holder was killed
            other = other_worker_takes_gold()
    finally:
        other.kill()


def test_recipe_sweep_trains_each_recipe_and_reports_it_on_dev(smoke, tmp_path):
    root, _ = smoke
    work = tmp_path / "root"
    for t in ("l3-fast", "l3-slow"):  # finished teachers and their tables: only the sweep trains
        (work / "teachers" / t).mkdir(parents=True)
        for name in ("config.json", "metrics.json"):
            shutil.copy(root / "teachers" / t / name, work / "teachers" / t / name)
        shutil.copytree(root / "teacher_scores" / t, work / "teacher_scores" / t)
    table = pipeline.reproduce("quick", root=work, progress=False, sweep=True)
    run = work / "sweep" / "alpha1-T1"
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["strategy"], cfg["alpha"], cfg["temperature"], cfg["num_heads"]) == ("cerberus", 1.0, 1.0, 2)
    point = Artifacts(work).sweep_points("dev")["points"][0]
    assert point["map"] == json.loads((run / "metrics.json").read_text())["dev"]["pooled"]["map"]
    assert f"| alpha1-T1 | alpha=1.0, temperature=1.0 | {point['map']:.4f} | {point['specialization']:.4f} |" in table
    assert (work / "sweep.md").read_text() == table
    assert not (work / "students").exists()  # the sweep comes before the students, and stops there


def test_a_preset_without_a_sweep_says_so_before_training(tmp_path):
    with pytest.raises(InputError, match=r"preset 'full' has no recipe sweep; presets with one: \['quick', 'v2', 'v3'\]"):
        pipeline.reproduce("full", root=tmp_path, progress=False, sweep=True)
    assert not any(tmp_path.iterdir())


def test_a_transfer_preset_starts_each_run_from_the_same_run_of_its_source(smoke, tmp_path):
    """`quick-trecqa`: TREC-QA runs in ROOT/trecqa, each from the same-named `quick` run's weights."""
    import os

    import numpy as np

    from cerberus_core.model.building import load_saved
    from cerberus_core.results.scores import score_dataset
    from cerberus_core.training.preflight import load_splits

    root, _ = smoke
    source = tmp_path / "quick"
    shutil.copytree(root, source, copy_function=os.link)  # hard links: the weights are read, never written
    table = pipeline.reproduce("quick-trecqa", root=source / "trecqa", progress=False)
    assert "Preset `quick-trecqa`" in table and "| student | cerberus |" in table
    run = source / "trecqa" / "students" / "cerberus"
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["dataset"], cfg["init_from"]) == ("trecqa", "../../../students/cerberus/best")
    teacher = json.loads((source / "trecqa" / "teachers" / "l3-fast" / "config.json").read_text())
    assert teacher["init_from"] == "../../../teachers/l3-fast/best"
    # step 0 of the adapted run scores TREC-QA dev exactly as the WikiQA model it started from
    dev = load_splits(pipeline.TrainConfig.from_file(run / "config.json"))["dev"]
    start = ScoreTable.load(run / "trace" / "dev_step000000.tsv")
    before = score_dataset(load_saved(root / "students" / "cerberus" / "best"), dev, max_length=cfg["max_length"])
    np.testing.assert_allclose(start.columns["pooled"], before.columns["pooled"], atol=1e-5)


def test_a_transfer_preset_without_its_source_says_which_to_run_first(tmp_path):
    root = tmp_path / "trecqa"
    with pytest.raises(InputError) as error:
        pipeline.reproduce("quick-trecqa", root=root, progress=False)
    assert str(error.value).startswith(f"{tmp_path}/teachers/l3-fast/best: the model this quick-trecqa run starts from "
                                       "is not here (8 such source run(s)); weights are never committed: first run "
                                       f"`python -m cerberus_core reproduce --preset quick --root {tmp_path}`")
    assert not any(tmp_path.iterdir())


def test_stale_teacher_scores_without_weights_are_refused(smoke, tmp_path):
    root, _ = smoke
    cfg = presets.teacher_config(presets.PRESETS["quick"], "l3-fast", seed=0)
    cfg = cfg.__class__(**{**cfg.__dict__, "max_length": 64})  # different settings than the tables
    with pytest.raises(InputError, match="stale"):
        pipeline.ensure_teacher_scores(cfg, tmp_path / "no-weights", root / "teacher_scores" / "l3-fast")


def test_cli_evaluate_any_saved_model_on_a_user_file(smoke, tmp_path):
    root, _ = smoke
    data = tmp_path / "mine.tsv"
    data.write_text("question\tcandidate\tlabel\nwho wrote hamlet\tshakespeare wrote hamlet\t1\n"
                    "who wrote hamlet\tparis is in france\t0\nwhat is h2o\twater is h2o\t1\nwhat is h2o\tthe sky\t0\n")
    out = tmp_path / "scores.tsv"
    run = subprocess.run([sys.executable, "-m", "cerberus_core", "evaluate", "--model", str(root / "students" / "cerberus"),
                          "--data", str(data), "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "eval  pooled" in run.stdout and "head1" in run.stdout and "(n=2)" in run.stdout
    assert ScoreTable.load(out).head_columns() == ["head0", "head1"]


def test_cli_evaluate_prints_the_heads_specialization_on_any_split_given_their_teachers(smoke, tmp_path):
    """S, head-head r and top-1 disagreement of a saved student on a split, against teacher tables of that
    split (here scored by `score`, as a user would for train: did the heads fit their teachers at all?)."""
    import numpy as np

    root, _ = smoke
    base = [sys.executable, "-m", "cerberus_core"]
    data = ["--data", "wikiqa", "--split", "test", "--max-length", "32"]
    teachers = []
    for t in ("l3-fast", "l3-slow"):
        teachers.append(str(tmp_path / t))
        scored = subprocess.run([*base, "score", "--model", str(root / "teachers" / t), *data, "--out", teachers[-1]],
                                capture_output=True, text=True)
        assert scored.returncode == 0, scored.stderr
    evaluate = [*base, "evaluate", "--model", str(root / "students" / "cerberus"), *data]
    one = subprocess.run([*evaluate, "--teachers", teachers[0]], capture_output=True, text=True)
    assert one.returncode == 2 and one.stderr.count("\n") == 1 and "Loading" not in one.stderr  # refused first
    assert "--teachers: 1 folders for a model with 2 head(s); expected one per head" in one.stderr
    student_tables = str(root / "students" / "cerberus" / "scores")  # a student's, not a teacher's
    wrong = subprocess.run([*evaluate, "--teachers", teachers[0], student_tables], capture_output=True, text=True)
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1 and "expected a teacher's table" in wrong.stderr
    subset = subprocess.run([*evaluate, "--teachers", teachers[0], str(root / "teacher_scores" / "l3-slow")],
                            capture_output=True, text=True)  # the quick chain scored 6 test questions, not all
    assert subset.returncode == 2 and "pairs evaluated; expected the same" in subset.stderr
    found = subprocess.run([*evaluate, "--teachers", *teachers, "--out", str(tmp_path / "student.tsv")],
                           capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    student = ScoreTable.load(tmp_path / "student.tsv")
    taught = []
    for t in ("l3-fast", "l3-slow"):  # each teacher's scores in the student's pair order
        table = ScoreTable.load(tmp_path / t / "test.tsv")
        index = table.key_index()
        taught.append(table.columns["score"][[index[(q, int(c))] for q, c in zip(student.qids, student.cand_idx)]])
    r = np.corrcoef([student.columns["head0"], student.columns["head1"], *taught])
    s = ((r[0, 2] - r[0, 3]) + (r[1, 3] - r[1, 2])) / 2  # each head's own teacher minus the other
    assert f"heads  S {s:.4f}  head-head r {r[0, 1]:.4f}  top-1 disagreement" in found.stdout, found.stdout


def test_results_over_seeds_give_mean_and_sample_sd_and_every_seeds_diversity():
    def metrics(dev, test, diversity=None):
        m = {"dev": {"pooled": {"map": dev}}, "test": {"pooled": {"p@1": test, "map": test, "mrr": test}}}
        return {**m, "head_diversity": diversity} if diversity else m

    runs = [("student", "gold", 0, metrics(0.70, 0.60)), ("student", "gold", 1, metrics(0.72, 0.64)),
            ("student", "cerberus", 0, metrics(0.75, 0.70, {"specialization": 0.012, "head_head_r": 0.99,
                                                            "head_top1_disagreement": 0.02}))]
    separate = {0: {"specialization": 0.0561, "head_head_r": 0.9362, "head_top1_disagreement": 0.1125}}
    table = reports.seeds_markdown(runs, separate)
    # sample sd of (0.60, 0.64) is 0.0283; one seed gives the mean alone
    assert "| student | gold | 2 | 0.7100 ± 0.0141 | 0.6200 ± 0.0283 | 0.6200 ± 0.0283 | 0.6200 ± 0.0283 |" in table
    assert "| student | cerberus | 1 | 0.7500 | 0.7000 | 0.7000 | 0.7000 |" in table
    assert "| student | cerberus | 0 | 0.0120 | 0.9900 | 0.020 |" in table and "| student | gold | 0 |" not in table
    assert table.rstrip().endswith("| reference | single-teacher students as heads (a body each) | 0 | 0.0561 | 0.9362 | 0.113 |")



@pytest.mark.parametrize("kwargs", [{"seeds": [0, 1]}, {"ablation": True, "ablation_seeds": [0, 1]}])
def test_several_seeds_need_a_preset_with_seed_folders_and_nothing_is_written(tmp_path, kwargs):
    with pytest.raises(InputError, match="preset 'quick' keeps one seed per student folder"):
        pipeline.reproduce("quick", root=tmp_path, progress=False, **kwargs)
    assert not any(tmp_path.iterdir())


def test_the_summary_over_seeds_reads_every_finished_seed_on_disk_in_the_comparisons_order(tmp_path):
    def write(kind, name, seed, dev):
        run = tmp_path / kind / name / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"dev": {"pooled": {"map": dev}}}))

    write("students", "cerberus", 0, 0.8)
    write("students", "gold", 3, 0.6)
    write("students", "gold", 1, 0.7)
    write("ablation", "cerberus-B4H2", 0, 0.5)
    (tmp_path / "students" / "ensemble" / "seed2").mkdir(parents=True)  # not finished
    runs = reports.seed_runs(presets.PRESETS["v2"], tmp_path, "mpnet-base")
    assert [(role, name, seed) for role, name, seed, _ in runs] == [
        ("student", "gold", 1), ("student", "gold", 3), ("student", "cerberus", 0), ("ablation", "cerberus-B4H2", 0)]
    assert runs[0][3]["dev"]["pooled"]["map"] == 0.7


def test_the_sweep_keeps_its_runs_when_the_chosen_recipe_is_set_in_the_students():
    import dataclasses

    v2 = presets.PRESETS["v2"]
    chosen = dataclasses.replace(v2, student={**v2.student, "temperature": 4.0, "head_loss": "mean"})
    assert presets.sweep_configs(chosen, 0) == presets.sweep_configs(v2, 0)
    assert presets.sweep_configs(v2, 0)["default"].temperature == 2.0


@pytest.mark.parametrize("inner", ["students/cerberus", "students/cerberus/seed3"])
def test_run_weights_finds_a_retrained_copy_of_a_run_in_either_layout(tmp_path, monkeypatch, capsys, inner):
    """A committed run has no weights: run_weights says so, or finds the copy retrained into the notebook cache
    under the same relative folder (students/<name>/seed<s> in a multi-seed programme)."""
    root, cache = tmp_path / "artifacts" / "v9", tmp_path / "cache"
    monkeypatch.setattr(notebook_cache, "NOTEBOOK_CACHE", cache)
    (root / inner).mkdir(parents=True)
    assert notebook_cache.run_weights(root / inner) is None
    assert "has no weights (best/ is never committed): set TRAIN_MISSING = True" in capsys.readouterr().out
    retrained = cache / "retrained" / notebook_cache._mirror_name(root.resolve()) / inner
    assert notebook_cache._mirror_name(root.resolve()).name.startswith("v9-")  # outside the repository: name and hash
    (retrained / "best").mkdir(parents=True)
    (retrained / "best" / "config.json").write_text("{}")
    (retrained / "metrics.json").write_text("{}")
    assert notebook_cache.run_weights(root / inner) == retrained / "best"
    other = tmp_path / "elsewhere" / "v9"  # another root of the same name does not share the mirror
    (other / inner).mkdir(parents=True)
    assert notebook_cache.run_weights(other / inner) is None


def test_a_root_in_the_repository_is_mirrored_at_its_own_path():
    trecqa = provenance.REPO / "artifacts" / "v2" / "trecqa"
    assert notebook_cache._mirror_name(trecqa) == Path("artifacts/v2/trecqa")


def test_a_committed_multi_seed_preset_is_read_at_the_seed_asked_for():
    """Notebooks read artifacts/v2 as it is: at a seed whose students are all there it is returned, at a seed
    not trained it names the missing runs and the command."""
    root = notebook_cache.notebook_artifacts("v2", progress=False, seed=0)
    assert root == provenance.REPO / "artifacts" / "v2"
    assert notebook_cache.notebook_artifacts("full", progress=False) == provenance.REPO / "artifacts" / "full"
    with pytest.raises(InputError, match=r"run\(s\) are missing \(students/gold/seed99, .*reproduce --preset v2 --seeds"):
        notebook_cache.notebook_artifacts("v2", progress=False, seed=99)
    with pytest.raises(InputError, match=r"unknown notebook preset 'v3'; choose from \['full', 'quick', 'v2'\]"):
        notebook_cache.notebook_artifacts("v3")
    with pytest.raises(InputError, match=r"preset 'full' trained one seed \(0\), so SEED = 1 has no runs; .*\['v2'\]"):
        notebook_cache.notebook_artifacts("full", progress=False, seed=1)


def test_a_teacher_may_name_its_own_seed_so_a_preset_can_hold_a_seed_ensemble():
    v3 = presets.PRESETS["v3"]
    seeds = {name: presets.teacher_config(v3, name, seed=0).seed for name in v3.teachers}
    assert seeds == {"mpnet-base-seed1": 1, "mpnet-base-seed2": 2}
    assert presets.teacher_config(presets.PRESETS["v2"], "mpnet-base", seed=3).seed == 3  # no override: the programme's
    cfg = presets.teacher_config(v3, "mpnet-base-seed1", seed=0)
    assert (cfg.name, cfg.strategy, cfg.num_heads, cfg.mixed_precision) == ("teacher-mpnet-base-seed1", "gold", 1, "bf16")


def test_zero_shot_scores_a_finished_student_on_another_dataset_once_pooled_per_head_and_as_chosen_on_dev(
        smoke, tmp_path, capsys):
    from cerberus_core.training.config import TrainConfig
    from cerberus_core.training.zero_shot import ensure_zero_shot

    root, _ = smoke
    if not (Path(__import__("os").environ.get("CERBERUS_DATA", "data")) / "trecqa").is_dir():
        pytest.skip("TREC-QA not found under CERBERUS_DATA")
    run = tmp_path / "cerberus"
    shutil.copytree(root / "students" / "cerberus", run)
    cfg = TrainConfig.from_file(run / "config.json")
    ensure_zero_shot(cfg, run, ("trecqa",), progress=False)
    found = json.loads((run / "metrics.json").read_text())["zero_shot"]["trecqa"]
    assert {"pooled", "head0", "head1"} <= set(found) and found["split"] == "test"
    assert 0 <= found["pooled"]["map"] <= 1 and found["chosen_on_dev"]["pooler"]
    assert not list(run.glob("scores/*trecqa*"))  # no table of the target is written
    before = (run / "metrics.json").stat().st_mtime_ns
    ensure_zero_shot(cfg, run, ("trecqa",), progress=False)  # already there: nothing is recomputed
    assert (run / "metrics.json").stat().st_mtime_ns == before
    shutil.rmtree(run / "best")  # a committed run without its weights: a note, metrics untouched
    ensure_zero_shot(cfg, run, ("trecqa", "wikiqa"), progress=False)
    assert "no weights here" in capsys.readouterr().err and (run / "metrics.json").stat().st_mtime_ns == before


def test_the_premise_table_compares_the_ensemble_with_the_member_best_on_dev():
    """v2's teachers: the ensemble (mean probability) is below MPNet-base alone on dev and test, the
    numbers ensemble_metrics gives; the member is chosen on dev and kept for test."""
    root = provenance.REPO / "artifacts" / "v2"
    teachers = list(presets.PRESETS["v2"].teachers)
    rows = [line.split(" | ") for line in reports.premise_markdown(root, teachers).splitlines()
            if line.startswith(("| dev", "| test"))]
    assert [r[1] for r in rows] == ["mpnet-base", "mpnet-base"]
    for row, role in zip(rows, ("dev", "test")):
        ensemble = pipeline.ensemble_metrics(root, teachers, role, seed=0)["map"]
        assert float(row[3]) == pytest.approx(ensemble, abs=5e-5)
        assert float(row[4]) == pytest.approx(ensemble - float(row[2]), abs=1e-4) and float(row[4]) < 0
    assert rows[1][5].startswith("< ")  # at the permutation test's floor: a bound, not an estimate
