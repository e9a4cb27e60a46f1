"""The training benchmark's profile: its phase timer sees every phase of the real train_step and
changes nothing the step computes; the table names its conditions and every phase. No assertion on
speed: the benchmark reports it with its conditions."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from cerberus_core.model.modeling import CerberusForRanking
from cerberus_core.orchestration import bench_training
from cerberus_core.orchestration.bench_training import PHASES, PROFILED, _OneProcess, _PhaseTimer, format_profile
from cerberus_core.training.config import TrainConfig
from cerberus_core.training.loop import TrainInputs, _optimizer, train_step
from cerberus_core.training.losses import DistillationLoss

from conftest import needs_wikiqa, tiny_backbone

PAIRS = [("what is the capital of france", "paris is the capital city of france"),
         ("what is the capital of france", "the nile is a long river"),
         ("who was born in paris", "who was born in paris is a question of the city of paris where a river is"),
         ("where is the nile", "the nile")]


def step(tokenizer, precision: str, phase=None) -> tuple[dict, CerberusForRanking]:
    """One CERBERUS step (2 heads, 2 teachers) on a tiny model from fixed weights."""
    torch.manual_seed(0)
    model = CerberusForRanking.from_backbone(tiny_backbone("bert", layers=2), body_layers=1, num_heads=2,
                                             tokenizer=tokenizer).train()
    cfg = TrainConfig(strategy="cerberus", num_heads=2, teachers=["a", "b"], mixed_precision=precision, max_length=32)
    labels, teacher = torch.tensor([1, 0, 1, 0]), torch.tensor([[2.0, 1.0], [-1.0, 0.5], [0.3, 3.0], [-2.0, -1.0]])
    kw = {} if phase is None else {"phase": phase}
    parts = train_step(model, _optimizer(model, cfg), DistillationLoss("cerberus"), _OneProcess(precision),
                       TrainInputs(tokenizer, PAIRS, 32), labels, teacher, torch.tensor([3, 0, 2, 1]), cfg, **kw)
    return parts, model


@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_the_phase_timer_sees_every_phase_and_changes_nothing(tiny_tokenizer, precision):
    timer = _PhaseTimer()
    timed, timed_model = step(tiny_tokenizer, precision, timer)
    plain, plain_model = step(tiny_tokenizer, precision)
    assert tuple(timer.seconds) == PHASES and all(s >= 0 for s in timer.seconds.values())
    assert timed.keys() == plain.keys() and all(torch.equal(timed[k], plain[k]) for k in timed)
    for a, b in zip(timed_model.parameters(), plain_model.parameters()):
        assert torch.equal(a, b)


def test_the_profile_table_names_its_conditions_and_every_phase():
    rows = [{"variant": name, "mean_step_s": 0.5, "phases_s": {p: 0.5 / len(PHASES) for p in PHASES},
             "other_s": 0.0, "gflops_per_s": 200.0, "tokenize_batch_s": 0.01, "tokenize_once_s": 1.2,
             "dev_evaluation_s": 12.0, "evaluation_share": 0.05} for name in PROFILED]
    result = {"conditions": {"threads": 2, "batch sizes": "32"}, "rows": rows, "evals_per_epoch": 2,
              "steps_per_epoch": 271, "train_pairs": 8672}
    text = format_profile(result)
    assert text.startswith("# threads: 2; batch sizes: 32")
    for name in (*PROFILED, *PHASES, "step", "GFLOP/s", "tokenize", "dev evaluation"):
        assert name in text, name
    assert "8672 training pairs once per run" in text and "5.0%" in text


@pytest.mark.slow
@needs_wikiqa
def test_the_profile_runs_on_the_real_recipes(capsys):
    """One step of each profiled variant on MiniLM-L6 with the committed teacher tables."""
    real = bench_training.TrainConfig

    def few_questions(**kw):  # a small dev split keeps the timed evaluation short
        return dataclasses.replace(real(**kw), eval_questions=10)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench_training, "TrainConfig", few_questions)
        bench_training.main(["--profile", "--before", "--steps", "1", "--warmup", "0", "--threads", "1",
                             "--clock", "cpu"])
    out = capsys.readouterr().out
    assert "CPU seconds" in out and all(f"{name} (before)" in out for name in PROFILED)
