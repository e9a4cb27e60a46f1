"""Per-head distillation losses and the teacher-assignment strategies.

A teacher's score for a pair is its logit margin m = z1 - z0, so its softened
distribution over (negative, positive) is (1 - s, s) with s = sigmoid(m / T).
Each head i gets a target margin from the strategy, and its loss is

    loss_i = alpha * KD_i + (1 - alpha) * CE(head_i, gold)

with KD the Hinton loss KL(teacher_T || head_T) * T^2 (or an MSE between margins).
The total is the sum over heads (the body receives every head's gradient, so k heads give
it about k times the gradient of one), or their mean (`head_loss="mean"`: the body's
gradient scale of a one-head student, so 1-head and k-head runs compare at one learning rate).
These equations are a standard choice; the paper's own are not available.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..model.modeling import head_margins
from .config import HEAD_LOSSES

# ---------------------------------------------------------------- strategies
# Each maps teacher margins (n_pairs, n_teachers) to per-head targets (n_pairs, k),
# or None when the heads learn from gold labels only.
Strategy = Callable[..., "torch.Tensor | None"]


def _cerberus(teacher: torch.Tensor, num_heads: int, teacher_index: int | None = None) -> torch.Tensor:
    if teacher.shape[1] != num_heads:
        raise ValueError(f"cerberus needs one head per teacher: {num_heads} heads, {teacher.shape[1]} teachers")
    return teacher


def _single(teacher: torch.Tensor, num_heads: int, teacher_index: int | None = None) -> torch.Tensor:
    if num_heads != 1:
        raise ValueError(f"single distils into one head, the model has {num_heads}")
    return teacher[:, [_pick(teacher, teacher_index)]]


def _ensemble(teacher: torch.Tensor, num_heads: int, teacher_index: int | None = None) -> torch.Tensor:
    """One head learns the teachers' mean margin (the 'mean of logits' ensemble)."""
    if num_heads != 1:
        raise ValueError(f"ensemble distils into one head, the model has {num_heads}")
    return teacher.mean(dim=1, keepdim=True)


def _replicated(teacher: torch.Tensor, num_heads: int, teacher_index: int | None = None) -> torch.Tensor:
    return teacher[:, [_pick(teacher, teacher_index)] * num_heads]


def _gold(teacher: torch.Tensor | None, num_heads: int, teacher_index: int | None = None) -> None:
    return None


def _pick(teacher: torch.Tensor, teacher_index: int | None) -> int:
    if teacher_index is None:
        if teacher.shape[1] != 1:
            raise ValueError(f"choose a teacher: {teacher.shape[1]} are given and teacher_index is not set")
        return 0
    if not 0 <= teacher_index < teacher.shape[1]:
        raise ValueError(f"teacher_index {teacher_index} out of range for {teacher.shape[1]} teachers")
    return teacher_index


TARGETS: dict[str, Strategy] = {  # one per config.STRATEGIES
    "cerberus": _cerberus,      # head i <- teacher i
    "single": _single,          # one head <- one teacher
    "ensemble": _ensemble,      # one head <- mean of the teachers
    "replicated": _replicated,  # k heads <- the same teacher
    "gold": _gold,              # no teacher
}


def head_targets(
    strategy: str, teacher: torch.Tensor | None, num_heads: int, teacher_index: int | None = None
) -> torch.Tensor | None:
    """Per-head teacher margins (n_pairs, k) for a strategy, or None for `gold`."""
    if strategy not in TARGETS:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {sorted(TARGETS)}")
    if strategy != "gold" and teacher is None:
        raise ValueError(f"strategy {strategy!r} needs teacher scores")
    return TARGETS[strategy](teacher, num_heads, teacher_index)


# -------------------------------------------------------------------- losses
def _fp32_at_least(x: torch.Tensor | None) -> torch.Tensor | None:
    """bf16/fp16 tensors as fp32; fp32 and fp64 ones (and None) unchanged."""
    return x.float() if x is not None and x.is_floating_point() and x.dtype.itemsize < 4 else x


def kd_kl(student_logits: torch.Tensor, teacher_margin: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton KD per pair: KL(teacher_T || student_T) * T^2, on (negative, positive)."""
    p_pos = torch.sigmoid(teacher_margin / temperature)
    target = torch.stack([1 - p_pos, p_pos], dim=-1)
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    kl = (target * (torch.log(target.clamp_min(1e-12)) - log_student)).sum(-1)
    return kl * temperature**2


def kd_mse(student_logits: torch.Tensor, teacher_margin: torch.Tensor, temperature: float) -> torch.Tensor:
    """MSE between the head's and the teacher's margins (temperature-free)."""
    return (head_margins(student_logits) - teacher_margin) ** 2


KD_FUNCTIONS = {"kl": kd_kl, "mse": kd_mse}  # one per config.KD_LOSSES


class DistillationLoss(nn.Module):
    """Sum (or mean) over heads of alpha * KD(head, its target) + (1 - alpha) * CE(head, gold).

    Returns a breakdown: {"loss", "loss/head0", "kd/head0", "ce/head0", ...}; "loss" is what
    is minimised. Given `pooled_logits` (a learned pooler), it adds "ce/pooler", the pooler's
    cross-entropy on gold labels, to "loss" (the pooler reads detached head states).
    """

    def __init__(
        self,
        strategy: str = "cerberus",
        kd: str = "kl",
        temperature: float = 2.0,
        alpha: float = 0.5,
        teacher_index: int | None = None,
        head_loss: str = "sum",
    ):
        super().__init__()
        if head_loss not in HEAD_LOSSES:
            raise ValueError(f"unknown head_loss {head_loss!r}; choose from {HEAD_LOSSES}")
        if strategy not in TARGETS:
            raise ValueError(f"unknown strategy {strategy!r}; choose from {sorted(TARGETS)}")
        if kd not in KD_FUNCTIONS:
            raise ValueError(f"unknown kd loss {kd!r}; choose from {sorted(KD_FUNCTIONS)}")
        if temperature <= 0 or not 0 <= alpha <= 1:
            raise ValueError("need temperature > 0 and 0 <= alpha <= 1")
        self.strategy, self.kd, self.temperature = strategy, kd, temperature
        self.alpha = 0.0 if strategy == "gold" else alpha
        self.teacher_index = teacher_index
        self.head_loss = head_loss

    def forward(
        self, head_logits: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None = None,
        pooled_logits: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """head_logits (n, k, 2); labels (n,); teacher margins (n, n_teachers) or None;
        pooled_logits (n, 2) of a learned pooler, else None. Computed in fp32 whatever the inputs'
        dtype: bf16 logits from an autocast forward must not round the teacher targets to bf16."""
        head_logits, teacher, pooled_logits = (_fp32_at_least(x) for x in (head_logits, teacher, pooled_logits))
        k = head_logits.shape[1]
        targets = head_targets(self.strategy, teacher, k, self.teacher_index) if self.alpha > 0 else None
        parts: dict[str, torch.Tensor] = {}
        total = head_logits.new_zeros(())
        for i in range(k):
            logits = head_logits[:, i]
            ce = F.cross_entropy(logits, labels)
            loss = (1 - self.alpha) * ce
            parts[f"ce/head{i}"] = ce.detach()
            if targets is not None:
                kd = KD_FUNCTIONS[self.kd](logits, targets[:, i].to(logits.dtype), self.temperature).mean()
                loss = loss + self.alpha * kd
                parts[f"kd/head{i}"] = kd.detach()
            parts[f"loss/head{i}"] = loss.detach()
            total = total + loss
        parts["loss"] = total / k if self.head_loss == "mean" else total
        if pooled_logits is not None:
            pooler = F.cross_entropy(pooled_logits, labels)
            parts["ce/pooler"] = pooler.detach()
            parts["loss"] = parts["loss"] + pooler
        return parts
