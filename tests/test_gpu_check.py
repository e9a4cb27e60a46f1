"""`make gpu-check`'s dry run: every step the GPU run takes (bench, the peer, one epoch of a
student), on the CPU with tiny encoders, into one JSON. Nothing here asserts a timing."""
from __future__ import annotations

import json

import pytest

from cerberus_core.orchestration.gpu_check import main

from conftest import needs_wikiqa


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check") / "gpu_check.json"
    main(["--dry-run", "--out", str(out)])
    return json.loads(out.read_text())


@needs_wikiqa
def test_dry_run_takes_every_step_into_one_json(dry_run):
    assert dry_run["dry_run"] is True and dry_run["environment"]["device"] == "cpu"
    rows = dry_run["bench"]["rows"]
    assert len(rows) == 6 and {r["precision"] for r in rows} == {"fp32", "bf16"} or \
        len(rows) == 3 and {r["precision"] for r in rows} == {"fp32"}
    assert all(r["throughput_b1"] > 0 and r["throughput_b2"] > 0 and r["latency_ms"] > 0 for r in rows)
    assert {r["model_spec"].rsplit("/", 1)[-1] for r in rows} == {"tiny-minilm", "tiny-minilm:B1-3H1", "tiny-mpnet"}
    assert "matmul peak" in dry_run["bench"]["conditions"]
    peer = dry_run["peer"]
    assert "skipped" in peer or all(r["pairs_per_s"] > 0 for r in peer["rows"])
    train = dry_run["training"]
    assert train["config"]["epochs"] == 1 and train["config"]["num_heads"] == 3 and train["steps"] >= 1
    assert 0 < train["dev"]["map"] <= 1 and "test" not in train  # the dry run trains on a few questions, no test
    assert set(dry_run["seconds"]) == {"bench", "peer", "training", "total"}


def test_without_a_gpu_the_real_run_says_so_in_one_line(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit:
        main([])
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--dry-run" in err and "\n" not in err
