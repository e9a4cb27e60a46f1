"""Score tables: saved files hold scores only (no gold labels, WikiQA may not be redistributed);
loading re-joins the labels from the dataset named in the .json sidecar."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cerberus_core.results import scores
from cerberus_core.data import AS2Dataset, Question, load_as2, write_as2
from cerberus_core.errors import InputError
from cerberus_core.results.scores import ScoreTable, meta_path
from conftest import DATA, HAS_WIKIQA

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dev() -> AS2Dataset:
    if not HAS_WIKIQA:
        pytest.skip("WikiQA not found: set CERBERUS_DATA to the folder holding wikiqa/")
    return load_as2("wikiqa", split="dev", filter="clean", data_root=DATA)


@pytest.fixture(scope="module")
def saved(dev, tmp_path_factory) -> tuple[ScoreTable, Path]:
    rng = np.random.default_rng(0)
    table = ScoreTable.for_dataset(dev, {"score": rng.normal(size=dev.n_pairs), "head0": rng.normal(size=dev.n_pairs)},
                                   {"model_fingerprint": "abc"})
    path = table.save(tmp_path_factory.mktemp("scores") / "dev.tsv")
    return table, path


def toy_file(folder: Path, labels=((1, 0, 0), (0, 1))) -> Path:
    """A generic TSV dataset (questions a and b) written to `folder`."""
    questions = [Question(qid, f"question {qid}", tuple(f"cand {qid}{i}" for i in range(len(y))), tuple(y))
                 for qid, y in zip("ab", labels)]
    return write_as2(AS2Dataset("toy", None, questions, "memory"), folder / "toy.tsv")


# ----------------------------------------------------------------- round trip, no labels on disk
def test_round_trip_rejoins_labels_from_wikiqa(dev, saved):
    table, path = saved
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["qid", "cand_idx", "score", "head0"]  # no label column
    assert all(len(line.split("\t")) == 4 for line in lines[1:]) and len(lines) == dev.n_pairs + 1
    meta = json.loads(meta_path(path).read_text())
    assert (meta["dataset"], meta["split"], meta["filter"]) == ("wikiqa", "dev", "clean")
    assert "path" not in meta

    loaded = ScoreTable.load(path, expect={"data_fingerprint": dev.fingerprint(), "model_fingerprint": "abc"},
                             data_root=DATA)
    assert loaded.qids == table.qids
    np.testing.assert_array_equal(loaded.cand_idx, table.cand_idx)
    np.testing.assert_array_equal(loaded.labels, dev.pair_arrays()[2])
    for name in ("score", "head0"):
        np.testing.assert_array_equal(loaded.columns[name], table.columns[name])  # bit for bit
    assert loaded.meta == table.meta and loaded.path == path
    assert ScoreTable.load(path).labels.sum() == dev.n_positives  # the default data roots find $CERBERUS_DATA


def test_copied_tables_keep_the_dataset_meta(dev, saved, tmp_path):
    """What cli/pipeline do: a new table over another's pairs, with its meta."""
    table, _ = saved
    copy = ScoreTable(table.qids, table.cand_idx, table.labels, {"score": table.columns["head0"]}, table.meta)
    loaded = ScoreTable.load(copy.save(tmp_path / "copy.tsv"), data_root=DATA)
    np.testing.assert_array_equal(loaded.labels, table.labels)


def test_save_refuses_a_table_that_names_no_dataset(tmp_path):
    table = ScoreTable(["a"], np.array([0]), np.array([1]), {"score": np.array([0.5])}, {"teacher": "x"})
    with pytest.raises(InputError, match="dataset, split"):
        table.save(tmp_path / "t.tsv")
    assert not (tmp_path / "t.tsv").exists()


# ----------------------------------------------------------------- refusals
def test_stale_expect_is_refused(dev, saved):
    _, path = saved
    with pytest.raises(InputError, match="stale score table: data_fingerprint"):
        ScoreTable.load(path, expect={"data_fingerprint": "0" * 64})
    with pytest.raises(InputError, match="model_fingerprint is 'abc', expected 'xyz'"):
        ScoreTable.load(path, expect={"model_fingerprint": "xyz"})


def test_nan_is_refused(saved, tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        ScoreTable(["a"], np.array([0]), np.array([1]), {"score": np.array([np.nan])})
    _, path = saved
    lines = path.read_text().splitlines()
    lines[3] = "\t".join([*lines[3].split("\t")[:2], "nan", "0.0"])
    bad = tmp_path / "nan.tsv"
    bad.write_text("\n".join(lines) + "\n")
    meta_path(bad).write_text(meta_path(path).read_text())
    with pytest.raises(InputError, match=r"nan\.tsv:4: NaN or infinite score"):
        ScoreTable.load(bad)


def test_a_table_with_a_label_column_is_refused(saved, tmp_path):
    """The old format stored gold labels; read as a score column it would score as a perfect ranker."""
    _, path = saved
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    old = tmp_path / "old.tsv"
    old.write_text("\n".join("\t".join([*r[:2], "label" if i == 0 else "1", *r[2:]]) for i, r in enumerate(rows)) + "\n")
    meta_path(old).write_text(meta_path(path).read_text())
    with pytest.raises(InputError, match=r"old\.tsv:1: a score table with a label column"):
        ScoreTable.load(old)


def test_corrupt_sidecar_is_an_input_error(saved, tmp_path):
    _, path = saved
    bad = tmp_path / "dev.tsv"
    bad.write_text(path.read_text())
    meta_path(bad).write_text('{"dataset": "wikiqa", "split": ')
    with pytest.raises(InputError, match=r"dev\.tsv\.json.*not valid JSON") as err:
        ScoreTable.load(bad)
    assert err.value.path == str(meta_path(bad))
    meta_path(bad).write_text("[1, 2]")
    with pytest.raises(InputError, match="expected a JSON object"):
        ScoreTable.load(bad)


def test_pair_missing_from_the_dataset_names_table_and_pair(saved, tmp_path):
    _, path = saved
    bad = tmp_path / "extra.tsv"
    bad.write_text(path.read_text() + "no-such-question\t0\t1.0\t2.0\n")
    meta_path(bad).write_text(meta_path(path).read_text())
    with pytest.raises(InputError, match=r"extra\.tsv:\d+: pair \('no-such-question', 0\) is not in dataset 'wikiqa'"):
        ScoreTable.load(bad)


def test_missing_data_says_which_table_needed_it(saved, tmp_path):
    _, path = saved
    with pytest.raises(InputError, match=r"dev\.tsv: score table needs its labels from dataset 'wikiqa' split 'dev'"
                                         r".*looked in: .*empty") as err:
        ScoreTable.load(path, data_root=tmp_path / "empty")
    assert err.value.path == str(path)


def test_new_format_without_sidecar_is_refused(saved, tmp_path):
    _, path = saved
    bare = tmp_path / "bare.tsv"
    bare.write_text(path.read_text())
    with pytest.raises(InputError, match="names no dataset"):
        ScoreTable.load(bare)


def test_aligned_names_the_loaded_file(dev, saved):
    _, path = saved
    table = ScoreTable.load(path)
    other = AS2Dataset("wikiqa", "dev", [Question("zz", "q", ("c",), (1,))], "memory")
    with pytest.raises(InputError, match=r"dev\.tsv: score table lacks pair \('zz', 0\)") as err:
        table.aligned(other)
    assert err.value.path == str(path)


# ----------------------------------------------------------------- sidecars written by older code
def test_a_path_key_in_an_old_sidecar_is_dropped(dev, saved, tmp_path):
    table, path = saved
    old = tmp_path / "old.tsv"
    old.write_text(path.read_text())
    meta = json.loads(meta_path(path).read_text())
    meta_path(old).write_text(json.dumps({**meta, "path": "/somewhere/old.tsv"}))  # old code's hack, dropped
    loaded = ScoreTable.load(old)
    np.testing.assert_array_equal(loaded.labels, dev.pair_arrays()[2])
    np.testing.assert_array_equal(loaded.columns["head0"], table.columns["head0"])
    assert list(loaded.columns) == ["score", "head0"] and "path" not in loaded.meta


# ----------------------------------------------------------------- users' own data files
def test_a_table_for_a_data_file_records_its_path_and_loads_anywhere(tmp_path, monkeypatch):
    data = load_as2(str(toy_file(tmp_path)))
    table = ScoreTable.for_dataset(data, {"score": np.arange(5.0)}, {})
    assert table.meta["dataset"] == str((tmp_path / "toy.tsv").resolve())
    path = table.save(tmp_path / "out" / "toy_scores.tsv")
    monkeypatch.chdir(tmp_path / "out")
    np.testing.assert_array_equal(ScoreTable.load(path).labels, [1, 0, 0, 0, 1])
    toy_file(tmp_path, labels=((0, 0, 1), (1, 0)))  # the data file changes: the label cache sees it
    np.testing.assert_array_equal(ScoreTable.load(path).labels, [0, 0, 1, 1, 0])


def test_loading_many_tables_loads_the_dataset_once(saved, tmp_path, monkeypatch):
    _, path = saved
    calls = []
    real = scores.load_as2
    monkeypatch.setattr(scores, "load_as2", lambda *a, **k: calls.append(a) or real(*a, **k))
    scores._dataset_labels.cache_clear()
    for _ in range(3):
        ScoreTable.load(path, data_root=DATA)
    assert len(calls) == 1
