"""The side-by-side benchmark against sentence-transformers' CrossEncoder on a tiny encoder: it
runs, its rows are well formed, and the peer and ours score the same pairs alike (the same
function by construction). No assertion on speed: the benchmark reports it with its conditions."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("sentence_transformers")

from cerberus_core.orchestration.bench_peer import PEER, compare, format_result, main  # noqa: E402
from cerberus_core.model.precision import supports  # noqa: E402

from conftest import tiny_backbone  # noqa: E402

PAIRS = [("what is the capital of france", "paris is the capital city of france"),
         ("what is the capital of france", "the nile is a long river"),
         ("who was born in paris", "who was born in paris is a question of the city of paris where a river is"),
         ("where is the nile", "the nile")]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory, tiny_tokenizer):
    folder = tmp_path_factory.mktemp("encoder")
    tiny_backbone("bert", layers=3).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def result(encoder):
    precisions = ["fp32", "bf16"] if supports("bf16") else ["fp32"]
    return compare(encoder, PAIRS, precisions, batch_size=3, max_length=32, threads=1, repeats=2, warmup=0)


def test_rows_are_well_formed_and_the_peer_leads_each_precision(result):
    rows = result["rows"]
    precisions = list(dict.fromkeys(r["precision"] for r in rows))
    assert [(r["model"], r["precision"]) for r in rows] == [
        (name, p) for p in precisions for name in (PEER, "B2 1H1", "B2 3H1")]
    for row in rows:
        assert row["pairs"] == len(PAIRS) and len(row["times_s"]) == 2
        assert row["pairs_per_s"] == pytest.approx(len(PAIRS) / row["median_s"]) and row["pairs_per_s"] > 0
        assert row["heads"] == (3 if row["model"] == "B2 3H1" else 1)
        assert row["vs_peer"] == pytest.approx(row["pairs_per_s"] / next(
            r["pairs_per_s"] for r in rows if r["model"] == PEER and r["precision"] == row["precision"]))
    conditions = result["conditions"]
    for key in ("threads", "pairs", "batch size", "max length", "repeats", "padding", "auto", "peer", "cpu"):
        assert key in conditions
    assert conditions["threads"] == 1 and conditions["pairs"] == len(PAIRS)


def test_peer_and_ours_score_the_same_pairs_alike(result):
    """Our heads carry the peer's classifier, so one pair scored differently means other pairs,
    another truncation or other weights went in."""
    for row in result["rows"]:
        limit = 1e-5 if row["precision"] == "fp32" else 0.05
        assert row["max_abs_diff_vs_peer"] <= limit, row


def test_table_and_json_from_the_command_line(encoder, tmp_path, capsys, monkeypatch):
    import cerberus_core.orchestration.bench_peer as bench_peer

    monkeypatch.setattr(bench_peer, "split_pairs", lambda data, split, n: PAIRS[:n])
    main(["--backbone", str(encoder), "--pairs", "3", "--batch-size", "2", "--max-length", "24", "--threads", "1",
          "--repeats", "1", "--precision", "fp32", "--out", str(tmp_path)])
    table = capsys.readouterr().out
    saved = json.loads((tmp_path / "bench_peer.json").read_text())
    assert [r["name"] for r in saved["rows"]] == [PEER, "B2 1H1", "B2 3H1"]
    assert "threads: 1" in table and "pairs: 3" in table and "batch size: 2" in table and "max length: 24" in table
    assert format_result(saved) == table.rstrip("\n")


def test_bad_arguments_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--threads", "100000", "--repeats", "1"])
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--threads 100000" in err and "\n" not in err
