import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cerberus_core.training.losses import TARGETS, DistillationLoss, head_targets, kd_kl, kd_mse


def test_kd_kl_hand_computed():
    # teacher margin 2 at T=2 -> p = sigmoid(1); student logits (0, 1) at T=2 -> softmax(0, .5)
    p = 1 / (1 + math.exp(-1))
    q1 = math.exp(0.5) / (1 + math.exp(0.5))
    expected = ((1 - p) * math.log((1 - p) / (1 - q1)) + p * math.log(p / q1)) * 4
    got = kd_kl(torch.tensor([[0.0, 1.0]], dtype=torch.float64), torch.tensor([2.0], dtype=torch.float64), 2.0)
    assert got.item() == pytest.approx(expected, abs=1e-12)


def test_kd_kl_zero_at_match_and_gradient():
    student = torch.tensor([[0.3, 1.7], [2.0, -1.0]], dtype=torch.float64, requires_grad=True)
    margin = (student[:, 1] - student[:, 0]).detach()
    assert kd_kl(student, margin, 3.0).abs().max().item() < 1e-12
    teacher = torch.tensor([0.5, 4.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda s: kd_kl(s, teacher, 2.0), (student,))
    # d/d(margin) of KL*T^2 is T * (sigmoid(s/T) - sigmoid(t/T)); on the positive logit it is that
    kd_kl(student, teacher, 2.0).sum().backward()
    s = margin
    expected = 2.0 * (torch.sigmoid(s / 2) - torch.sigmoid(teacher / 2))
    assert torch.allclose(student.grad[:, 1], expected) and torch.allclose(student.grad[:, 0], -expected)


def test_kd_mse():
    assert kd_mse(torch.tensor([[1.0, 3.0]]), torch.tensor([5.0]), 2.0).item() == pytest.approx(9.0)


def test_strategies_assign_teachers():
    teacher = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert torch.equal(head_targets("cerberus", teacher, 3), teacher)
    assert torch.equal(head_targets("single", teacher, 1, teacher_index=1), teacher[:, [1]])
    assert torch.equal(head_targets("ensemble", teacher, 1), torch.tensor([[2.0], [5.0]]))
    assert torch.equal(head_targets("replicated", teacher, 3, teacher_index=2), teacher[:, [2, 2, 2]])
    assert head_targets("gold", None, 3) is None
    assert set(TARGETS) == {"cerberus", "single", "ensemble", "replicated", "gold"}
    with pytest.raises(ValueError, match="one head per teacher"):
        head_targets("cerberus", teacher, 2)
    with pytest.raises(ValueError, match="choose a teacher"):
        head_targets("single", teacher, 1)
    with pytest.raises(ValueError, match="unknown strategy"):
        head_targets("avg", teacher, 1)


def test_distillation_loss_breakdown_and_mixing():
    torch.manual_seed(0)
    logits = torch.randn(5, 3, 2, requires_grad=True)
    labels = torch.tensor([0, 1, 0, 0, 1])
    teacher = torch.randn(5, 3)
    parts = DistillationLoss("cerberus", temperature=2.0, alpha=0.25)(logits, labels, teacher)
    for i in range(3):
        ce = torch.nn.functional.cross_entropy(logits[:, i], labels)
        kd = kd_kl(logits[:, i], teacher[:, i], 2.0).mean()
        assert parts[f"ce/head{i}"].item() == pytest.approx(ce.item())
        assert parts[f"kd/head{i}"].item() == pytest.approx(kd.item())
        assert parts[f"loss/head{i}"].item() == pytest.approx(0.75 * ce.item() + 0.25 * kd.item())
    assert parts["loss"].item() == pytest.approx(sum(parts[f"loss/head{i}"].item() for i in range(3)))
    parts["loss"].backward()
    assert logits.grad.abs().sum() > 0
    gold = DistillationLoss("gold")(logits, labels)
    assert not any(k.startswith("kd/") for k in gold)
    # head i learns only from teacher i: changing teacher 2 changes only head 2's loss
    other = teacher.clone()
    other[:, 2] += 3.0
    changed = DistillationLoss("cerberus", alpha=0.5)(logits, labels, other)
    base = DistillationLoss("cerberus", alpha=0.5)(logits, labels, teacher)
    assert changed["loss/head0"] == base["loss/head0"] and changed["loss/head2"] != base["loss/head2"]


def test_mean_over_heads_is_the_sum_divided_by_k():
    torch.manual_seed(0)
    logits, labels, teacher = torch.randn(6, 3, 2), torch.randint(0, 2, (6,)), torch.randn(6, 3)
    total = DistillationLoss("cerberus")(logits, labels, teacher)
    mean = DistillationLoss("cerberus", head_loss="mean")(logits, labels, teacher)
    assert torch.allclose(mean["loss"], total["loss"] / 3)
    assert torch.equal(mean["kd/head1"], total["kd/head1"])  # the breakdown per head is unchanged
    with pytest.raises(ValueError, match="head_loss"):
        DistillationLoss("cerberus", head_loss="max")


def test_a_learned_pooler_adds_its_cross_entropy_to_the_loss():
    torch.manual_seed(0)
    logits, labels, teacher = torch.randn(6, 2, 2), torch.randint(0, 2, (6,)), torch.randn(6, 2)
    pooled = torch.randn(6, 2, requires_grad=True)
    heads = DistillationLoss("cerberus")(logits, labels, teacher)
    both = DistillationLoss("cerberus")(logits, labels, teacher, pooled)
    ce = torch.nn.functional.cross_entropy(pooled, labels)
    assert "ce/pooler" not in heads and torch.allclose(both["ce/pooler"], ce)
    assert torch.allclose(both["loss"], heads["loss"] + ce)  # the pooler's term is minimised too
    both["loss"].backward()
    assert pooled.grad is not None and pooled.grad.abs().sum() > 0


def test_bf16_logits_are_scored_in_fp32_against_unrounded_teacher_targets():
    """A bf16 autocast forward gives bf16 logits; the loss upcasts them, and never rounds the
    teacher margins (fp32) to bf16, inside an autocast region or outside one."""
    torch.manual_seed(0)
    logits, labels = torch.randn(8, 3, 2).bfloat16(), torch.randint(0, 2, (8,))
    teacher, pooled = torch.randn(8, 3) * 3 + 1e-3, torch.randn(8, 2).bfloat16()  # no teacher margin is a bf16 value
    assert not torch.equal(teacher.bfloat16().float(), teacher)
    loss = DistillationLoss("cerberus", alpha=0.5)
    want = loss(logits.float(), labels, teacher, pooled.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = loss(logits, labels, teacher, pooled)
    for got in (loss(logits, labels, teacher, pooled), inside):
        assert got.keys() == want.keys()
        for key, value in got.items():
            assert value.dtype == torch.float32 and torch.equal(value, want[key]), key
    rounded = loss(logits.float(), labels, teacher.bfloat16().float())
    assert rounded["kd/head0"] != want["kd/head0"]  # rounded targets would show


def test_every_training_choice_a_config_accepts_has_its_implementation():
    """config.py names the choices (so a config is checked without torch); losses.py implements them."""
    from cerberus_core.training import config, losses

    assert set(losses.TARGETS) == set(config.STRATEGIES)
    assert set(losses.KD_FUNCTIONS) == set(config.KD_LOSSES)


def test_a_config_is_checked_without_importing_torch():
    code = ("import sys; from cerberus_core.training.config import TrainConfig; "
            "TrainConfig(strategy='cerberus', num_heads=2, teachers=['a', 'b']).check_consistent(); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
