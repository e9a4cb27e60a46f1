"""Pooling the heads, chosen on dev: each rule computes what it says, and the choice sees dev only."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cerberus_core.results.analysis import to_probability
from cerberus_core.orchestration.cli import main
from cerberus_core.results.pooling import Pooler, apply_pooler, candidates, choose_pooler
from cerberus_core.results.scores import ScoreTable
from conftest import needs_wikiqa

REPO = Path(__file__).resolve().parents[1]


def table(margins: np.ndarray, labels: np.ndarray, per_question: int = 4) -> ScoreTable:
    n = len(labels)
    qids = [f"q{i // per_question}" for i in range(n)]
    return ScoreTable(qids, np.arange(n) % per_question, labels, {f"head{j}": margins[:, j] for j in range(margins.shape[1])})


def test_each_rule_computes_what_its_name_says():
    m = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    np.testing.assert_allclose(Pooler("mean_prob")(m), to_probability(m).mean(axis=1))
    np.testing.assert_allclose(Pooler("mean_logit")(m), [0.5, 1 / 3])
    np.testing.assert_allclose(Pooler("head", head=1)(m), [-1.0, 3.0])
    np.testing.assert_allclose(Pooler("weighted", weights=(0.5, 0.5, 0.0))(m), to_probability(m)[:, :2].mean(axis=1))


def test_candidates_are_simplest_first_and_the_grid_repeats_no_simpler_rule():
    found = candidates(3, step=0.25)
    assert [p.name for p in found[:5]] == ["mean_prob", "mean_logit", "head0", "head1", "head2"]
    weights = [p.weights for p in found[5:]]
    assert all(abs(sum(w) - 1) < 1e-9 and max(w) < 1 and len(set(w)) > 1 for w in weights)
    assert len(weights) == len(set(weights)) == 15 - 3 - 0  # 15 points of the simplex grid, less the 3 corners


def test_the_head_that_ranks_dev_right_is_chosen_and_test_is_scored_with_it_alone():
    rng = np.random.default_rng(0)
    labels = np.tile([1, 0, 0, 0], 30)
    good = labels * 2.0 + rng.normal(0, 0.1, labels.size)  # head 1 ranks every positive first
    noise = rng.normal(0, 1.0, (labels.size, 2))
    dev = table(np.column_stack([noise[:, 0], good, noise[:, 1]]), labels)
    chosen, values = choose_pooler(dev)
    assert chosen.name == "head1" and values["head1"] == pytest.approx(1.0)
    # on test the same head is pure noise: the chosen rule is applied as it is, whatever test would prefer
    test = table(np.column_stack([good, noise[:, 0], noise[:, 1]]), labels)
    assert apply_pooler(chosen, test)["map"] < 0.9 < apply_pooler(Pooler("head", head=0), test)["map"]


def test_on_ties_the_simpler_rule_wins():
    labels = np.tile([1, 0, 0, 0], 10)
    same = np.column_stack([labels * 3.0 - 1] * 3)  # three identical perfect heads: every rule scores 1
    chosen, values = choose_pooler(table(same, labels))
    assert chosen.name == "mean_prob" and set(values.values()) == {1.0}


def test_a_table_without_heads_is_refused_by_name():
    t = ScoreTable(["q0", "q0"], np.arange(2), np.array([1, 0]), {"score": np.array([1.0, 0.0])})
    with pytest.raises(ValueError, match="no head columns"):
        choose_pooler(t)


@needs_wikiqa
def test_the_pool_command_chooses_on_a_committed_runs_dev_and_reports_its_test(capsys):
    run = REPO / "artifacts" / "v2" / "students" / "cerberus" / "seed0"
    assert main(["pool", str(run)]) == 0
    out = capsys.readouterr().out
    dev = ScoreTable.load(run / "scores" / "dev.tsv")
    chosen, values = choose_pooler(dev)
    test = apply_pooler(chosen, ScoreTable.load(run / "scores" / "test.tsv"))
    assert f"chosen on dev {chosen.name} (dev MAP {values[chosen.name]:.4f}" in out and f"test MAP {test['map']:.4f}" in out


def test_the_pool_command_names_a_missing_table_in_one_line(tmp_path, capsys):
    assert main(["pool", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "dev.tsv" in err
