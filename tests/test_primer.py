"""The primer's library (notebook 01): the toy's load-or-train and its statistics, the KD curves,
the disagreement question, the why-k-heads table and the method diagram."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cerberus_core.results import artifacts
from cerberus_core.reporting import diagram
from cerberus_core.orchestration import primer, primer_ensemble
from cerberus_core.model.modeling import CerberusForRanking

from conftest import needs_wikiqa, tiny_backbone

V2 = primer.REPO / "artifacts" / "v2"


def test_sign_flip_p_is_exact():
    assert primer.sign_flip_p([0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(2 / 32)  # the floor with 5 seeds
    assert primer.sign_flip_p([0.1, -0.1]) == 1.0
    assert primer.sign_flip_p([0.0, 0.0, 0.0]) == 1.0


def test_kd_curves_zero_at_the_teacher_and_the_gradient_formula():
    m_t = -0.43
    grid = np.array([m_t - 3, m_t, m_t + 2])
    curves = primer_ensemble.kd_curves(m_t, grid, temperatures=(1.0, 2.0, 4.0))
    for t in (1.0, 2.0, 4.0):
        assert curves[f"kd_T{t:g}"][1] == pytest.approx(0.0, abs=1e-9)
        assert (curves[f"kd_T{t:g}"][[0, 2]] > 0).all()
        sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
        assert np.allclose(curves[f"grad_T{t:g}"], t * (sig(grid / t) - sig(m_t / t)), atol=1e-9)
    assert np.allclose(curves["ce_gold1"], np.log1p(np.exp(-grid)))


def test_fit_linear_follows_its_targets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    margins = x @ np.array([2.0, -1.0, 0.0, 0.5, 0.0])
    soft = primer.fit_linear(x, margins, "soft", 2.0, 0, steps=300, lr=0.05, weight_decay=0.0)
    hard = primer.fit_linear(x, (margins > 0).astype(int), "hard", 2.0, 0, steps=300, lr=0.05, weight_decay=0.0)
    assert np.corrcoef(x @ soft[:-1], margins)[0, 1] > 0.99
    assert np.corrcoef(x @ hard[:-1], margins)[0, 1] > 0.9
    with pytest.raises(ValueError, match="kind"):
        primer.fit_linear(x, margins, "medium", 2.0, 0, 1, 0.1, 0.0)
    with pytest.raises(ValueError, match="unknown toy settings"):
        primer.toy_config(epochs=3)


def test_question_order_is_nested_and_seeded():
    a, b = primer.question_order(50, 1), primer.question_order(50, 1)
    assert (a == b).all() and sorted(a) == list(range(50))
    assert not (a == primer.question_order(50, 2)).all()


def _fake_result():
    rows = []
    for n, gain in ((10, 0.02), (20, -0.01)):
        for seed in range(3):
            for kind, shift in (("hard", 0.0), ("soft", gain + 0.001 * seed)):
                rows.append({"train_questions": n, "seed": seed, "target": kind, "map": 0.6 + shift, "p@1": 0.5,
                             "mrr": 0.6, "ap": [0.6 + shift, 0.5 + shift]})
    return {"rows": rows, "config": {**primer.TOY, "seeds": [0, 1, 2]}, "n_test_questions": 2,
            "teacher_test": {"map": 0.9}}


def test_toy_summary_and_reading():
    summary = primer.toy_summary(_fake_result())
    assert [s["train_questions"] for s in summary] == [10, 20]
    assert summary[0]["wins"] == 3 and summary[1]["wins"] == 0
    assert summary[0]["difference"]["mean"] == pytest.approx(0.021)
    assert summary[0]["sign_flip_p"] == pytest.approx(2 / 8)
    reading = primer.toy_reading(_fake_result())
    assert "at every seed for n = 10" in reading and "lose on average at n = 20" in reading
    assert primer.toy_frame(_fake_result()).shape == (2, 6)


@needs_wikiqa
def test_committed_toy_matches_its_inputs(monkeypatch):
    """The committed result is what the notebook reads: its key must match the current config and
    inputs, or the notebook would train (about a minute) instead of reading it."""
    monkeypatch.setattr(primer, "train_toy", lambda *a, **k: pytest.fail("the committed toy result is stale"))
    result = primer.toy_result(progress=False)
    assert result["config"] == primer.TOY
    assert {(r["train_questions"], r["seed"], r["target"]) for r in result["rows"]} == {
        (n, s, t) for n in primer.TOY["train_questions"] for s in primer.TOY["seeds"] for t in primer.TARGETS}
    assert 0.8 < result["teacher_test"]["map"] < 0.9


@needs_wikiqa
@pytest.mark.slow
def test_toy_trains_then_is_reused(tmp_path, monkeypatch):
    config = primer.toy_config(train_questions=[4], seeds=[0, 1], eval_split="dev", steps=20)
    first = primer.toy_result(config, progress=False, committed=tmp_path / "none.json", cache=tmp_path)
    assert len(first["rows"]) == 4 and first["key"] == primer.toy_key(config)
    monkeypatch.setattr(primer, "train_toy", lambda *a, **k: pytest.fail("trained again"))
    again = primer.toy_result(config, progress=False, committed=tmp_path / "none.json", cache=tmp_path)
    assert again == json.loads(json.dumps(first))


@needs_wikiqa
def test_disagreement_question_on_the_committed_teachers():
    tables = artifacts.load_teacher_tables(V2, "dev")
    found = primer_ensemble.disagreement_question(tables)
    assert len(set(found["tops"].values())) == 3  # three teachers, three different first choices
    assert 4 <= found["candidates"] <= 8
    from cerberus_core.data import load_as2

    question = next(q for q in load_as2("wikiqa", split="dev") if q.qid == found["qid"])
    frame = primer_ensemble.soft_targets_frame(tables, question, 2.0)
    assert len(frame) == len(question.candidates) and frame["label"].sum() == 1
    assert ((frame["mean soft target"] > 0) & (frame["mean soft target"] < 1)).all()


@needs_wikiqa
def test_why_k_heads_reads_every_seed():
    data = primer_ensemble.why_k_heads_data(V2)
    frame = primer_ensemble.why_k_heads(data)
    assert list(frame["seeds"]) == [5] * len(frame) and "separate students" in frame.index
    assert data["parameters"]["separate"] > 2 * data["parameters"]["cerberus"]
    assert "Separate students" in primer_ensemble.k_heads_reading(data)


def test_krogh_vedelsby_is_an_identity():
    rng = np.random.default_rng(0)
    p, y = rng.uniform(size=(50, 3)), rng.integers(0, 2, 50)
    kv = primer_ensemble.krogh_vedelsby(p, y)
    assert abs(kv["check"]) < 1e-12 and kv["ambiguity"] >= 0


def test_model_structure_and_diagram(tiny_tokenizer):
    torch.manual_seed(0)
    model = CerberusForRanking.from_backbone(tiny_backbone("bert", layers=4), body_layers=2, num_heads=3,
                                             head_layers=2, tokenizer=tiny_tokenizer)
    found = diagram.model_structure(model)
    assert found["name"] == "B2 3H2" and len(found["body_layers"]) == 2 and len(found["heads"]) == 3
    assert found["heads"][0]["layers"] == ["heads.0.encoder.layer.0", "heads.0.encoder.layer.1"]
    parts = found["embeddings"] + sum(l["parameters"] for l in found["body_layers"]) + sum(h["parameters"] for h in found["heads"])
    assert parts == found["total"]  # mean_prob pooler: no parameters of its own
    fig = diagram.draw_method(found, ["a", "b", "c"])
    assert any("B2 3H2" in t.get_text() for t in fig.axes[0].texts)
    with pytest.raises(ValueError, match="3 heads but 2 teachers"):
        diagram.draw_method(found, ["a", "b"])
