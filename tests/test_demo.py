"""`make demo` on a tiny configuration: the quick chain's teachers and students stand in for the
committed programme, so the whole path (config, training, tables, head report, figure) runs in
about a minute; the real demo reads artifacts/v2."""
from __future__ import annotations

import dataclasses

import pytest

from cerberus_core.orchestration import demo
from cerberus_core.training.config import TrainConfig

from conftest import needs_wikiqa


def test_demo_config_is_the_v2_recipe(tmp_path):
    """Apart from precision and epochs (what a CPU budget forces), the demo is the committed v2 CERBERUS."""
    cfg = demo.demo_config(tmp_path, precision="bf16")
    committed = demo.committed_config(demo.V2)
    assert committed is not None, "artifacts/v2/students/cerberus/seed0/config.json is committed"
    assert cfg.epochs == 2 and cfg.mixed_precision == "bf16"
    assert [t.split("/")[-1] for t in cfg.teachers] == ["minilm-l3", "minilm-l6", "mpnet-base"]
    differences = demo.recipe_differences(cfg, committed)
    assert [d.split(":")[0] for d in differences] == ["mixed_precision"]
    assert demo.demo_config(tmp_path, precision="auto").epochs == 1  # fp32: half the recipe, said in the output
    fp32 = demo.recipe_differences(demo.demo_config(tmp_path, precision="auto"), committed)
    assert [d.split(":")[0] for d in fp32] == ["epochs"]


def test_seed_summary_reads_every_seed():
    found = demo.seed_summary(demo.V2)
    assert found["cerberus"]["map"]["n"] == 5
    assert 0.70 < found["cerberus"]["map"]["mean"] < 0.80 and found["cerberus"]["map"]["sd"] > 0
    assert "specialization" in found["cerberus"]


def test_recipe_differences_without_a_committed_run(tmp_path):
    assert demo.recipe_differences(demo.demo_config(tmp_path), None) == ["(no committed run to compare with)"]
    cfg = demo.demo_config(tmp_path)
    assert demo.recipe_differences(cfg, dataclasses.replace(cfg, name="other")) == []


@needs_wikiqa
@pytest.mark.slow
def test_demo_runs_on_the_quick_chain(tmp_path, capsys):
    from cerberus_core.orchestration.notebook_cache import notebook_artifacts

    root = notebook_artifacts("quick", progress=False)
    report = demo.run_demo(tmp_path, preset="quick", root=root, epochs=1, precision="auto", progress=False)
    assert "this demo: CERBERUS, 1 epoch" in report
    assert "| **this demo** | 1 |" in report  # head diversity row
    assert report.count(": closest to ") == 2  # one line per head (2 teachers in quick)
    assert "claims --root artifacts/v2" in report
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert TrainConfig.from_file(tmp_path / "cerberus" / "config.json").epochs == 1
    again = demo.run_demo(tmp_path, preset="quick", root=root, epochs=1, precision="auto", progress=False)
    assert again == report  # load-or-train: the second run reuses the student
