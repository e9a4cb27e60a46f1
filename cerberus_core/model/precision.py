"""Inference precisions: fp32 (the reference), bf16 and int8, on a copy of the model.

- bf16: the weights cast to bfloat16. Supported on GPUs that say so and on CPUs with
  AVX512-BF16 or AMX-BF16 instructions (elsewhere PyTorch emulates it, slower than fp32).
- int8: dynamic quantization (torch.ao) of the body's linear layers: weights stored as
  int8, activations quantized per batch, CPU only (fbgemm). The heads stay fp32 so they keep
  the batched first-token path, which already makes them a small share of the FLOPs.

A precision changes scores slightly, so rankings are checked against fp32 on WikiQA test
(`bench --precision ... --quality`), which records the MAP change beside the speed.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:  # torch loads when a model is converted, not when the CLI reads PRECISIONS
    import torch

    from .modeling import CerberusForRanking

PRECISIONS = ("fp32", "bf16", "int8")


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16, read from /proc/cpuinfo (Linux); False where it cannot be read."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def supports(precision: str, device: str | torch.device = "cpu") -> bool:
    import torch

    device = torch.device(device)
    if precision == "fp32":
        return True
    if precision == "bf16":
        return torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_bf16()
    if precision == "int8":
        return device.type == "cpu" and "fbgemm" in torch.backends.quantized.supported_engines
    return False


def with_precision(model: CerberusForRanking, precision: str) -> CerberusForRanking:
    """A copy of `model` that runs in `precision` (fp32 returns the model itself)."""
    import torch
    from torch import nn

    if precision not in PRECISIONS:
        raise InputError(None, f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if not supports(precision, model.device):
        raise InputError(None, f"precision {precision} is not supported on {model.device} here "
                               "(bf16: a GPU with bf16 or a CPU with avx512_bf16/amx_bf16; int8: CPU with fbgemm)")
    if precision == "fp32":
        return model
    converted = copy.deepcopy(model).eval()
    if precision == "bf16":
        return converted.to(torch.bfloat16)
    torch.backends.quantized.engine = "fbgemm"
    with warnings.catch_warnings():  # torch.ao is deprecated in favour of torchao; torch is pinned, so it is here
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning))
        converted.body = torch.ao.quantization.quantize_dynamic(converted.body, {nn.Linear}, dtype=torch.qint8)
    return converted
