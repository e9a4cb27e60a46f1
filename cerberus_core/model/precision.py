"""Inference precisions: fp32 (the reference), bf16 and int8, on a copy of the model, and
"auto": bf16 where the hardware runs it natively (CPUs with AVX512-BF16 or AMX, GPUs with
bf16), else fp32, the default of `evaluate`, `score` and `bench`.

- bf16: the weights cast to bfloat16. Supported on GPUs that say so and on CPUs with
  AVX512-BF16 or AMX-BF16 instructions (elsewhere PyTorch emulates it, slower than fp32).
- int8: dynamic quantization (torch.ao) of the body's linear layers, for CPUs without bf16:
  weights stored as int8 with one scale per output channel, activations quantized per batch,
  CPU only (fbgemm). Two changes from torch's defaults keep the rankings: one scale per output
  channel rather than per matrix (a matrix's small rows are no longer rounded to a few levels
  by its largest), and on CPUs with AVX512-VNNI 8-bit activations rather than torch's 7-bit
  ones (`reduce_range`, which only guards the int16 pair sums of CPUs without VNNI against
  saturation): together they cut the error of a trained student's scores about threefold
  (docs/speed.md). The heads stay fp32 so they keep the batched first-token path, which
  already makes them a small share of the FLOPs.

A precision changes scores slightly, so rankings are checked against fp32 on WikiQA test
(`bench --precision ... --quality`), which records the MAP change beside the speed.
"""
from __future__ import annotations

import copy
import functools
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:  # torch loads when a model is converted, not when the CLI reads PRECISIONS
    import torch

    from .modeling import CerberusForRanking

PRECISIONS = ("fp32", "bf16", "int8")
AUTO = "auto"
CHOICES = (AUTO, *PRECISIONS)  # what the command line accepts
RECIPES = {"bf16": "weights cast", "int8": "dynamic int8 of the body's linears, per-channel weight scales, "
                                           "8-bit activations on VNNI CPUs (else 7-bit)"}


def _cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16, read from /proc/cpuinfo (Linux); False where it cannot be read."""
    flags = _cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_has_vnni() -> bool:
    """AVX512-VNNI (int8 dot products summed in int32), from /proc/cpuinfo; False where unknown."""
    return "avx512_vnni" in _cpu_flags()


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


def resolve(precision: str, device: str | torch.device = "cpu") -> str:
    """The precision `precision` means on `device`: "auto" is bf16 where it runs natively,
    else fp32 (emulated bf16 is slower than fp32); any other name is itself."""
    if precision == AUTO:
        return "bf16" if supports("bf16", device) else "fp32"
    if precision not in PRECISIONS:
        raise InputError(None, f"precision must be one of {', '.join(PRECISIONS)} or {AUTO}, got {precision!r}")
    return precision


def describe(asked: str, device: str | torch.device = "cpu") -> str:
    """What a command prints and records: the precision used, and why when "auto" chose it."""
    used = resolve(asked, device)
    if asked != AUTO:
        return used
    where = "GPU" if str(device).startswith("cuda") else "CPU"
    return f"{used} (auto: this {where} {'has' if used == 'bf16' else 'lacks'} native bf16)"


def precision_of(model: torch.nn.Module) -> str:
    """What a model runs in, as `with_precision` left it: int8 (quantized linears), bf16 or fp32."""
    import torch

    if any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in model.modules()):
        return "int8"
    return "bf16" if next(model.parameters()).dtype == torch.bfloat16 else "fp32"


def with_precision(model: CerberusForRanking, precision: str) -> CerberusForRanking:
    """A copy of `model` that runs in `precision` ("auto": see `resolve`; fp32 returns the
    model itself)."""
    import torch
    from torch import nn

    precision = resolve(precision, model.device)
    if not supports(precision, model.device):
        raise InputError(None, f"precision {precision} is not supported on {model.device} here "
                               "(bf16: a GPU with bf16 or a CPU with avx512_bf16/amx_bf16; int8: CPU with fbgemm)")
    if precision == "fp32":
        return model
    converted = copy.deepcopy(model).eval()
    if precision == "bf16":
        return converted.to(torch.bfloat16)
    quantize_linears(converted.body, INT8_LAYERS)
    return converted


INT8_LAYERS = ("attention", "ffn_in", "ffn_out")  # which linears of each body layer int8 converts


def linear_role(name: str) -> str:
    """A transformer linear's role from its module name: "attention" (Q, K, V and the attention
    output), "ffn_in" (BERT's `intermediate.dense`), "ffn_out" (`output.dense`) or "other"."""
    path = name.split(".")
    if "intermediate" in path:
        return "ffn_in"
    if "attention" in path:
        return "attention"
    return "ffn_out" if "output" in path else "other"


@functools.cache
def _full_range_linear() -> type:
    """torch's dynamic int8 linear, with activations quantized to 8 bits instead of 7."""
    import torch
    from torch.ao.nn.quantized.dynamic import Linear

    class FullRangeLinear(Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            packed = self._packed_params._packed_params
            return torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False).to(x.dtype)

    return FullRangeLinear


def quantize_linears(module: torch.nn.Module, parts: tuple[str, ...] = INT8_LAYERS, per_channel: bool = True,
                     skip_layers: tuple[int, ...] = (), full_range: bool | None = None) -> torch.nn.Module:
    """Dynamic int8 (in place) of the linear layers under `module` whose `linear_role` is one of
    `parts` (every linear when parts is empty), except in the encoder layers `skip_layers`.
    Per-channel weight scales keep a row of small weights from being rounded by one large row
    elsewhere; full_range (default: where the CPU has VNNI) quantizes activations to 8 bits."""
    import torch
    from torch import nn
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig

    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    chosen = {}
    for name, sub in module.named_modules():
        if type(sub) is not nn.Linear:
            continue
        layer = next((int(p) for p in name.split(".") if p.isdigit()), None)
        if parts and linear_role(name) not in parts or layer in skip_layers:
            continue
        chosen[name] = qconfig
    torch.backends.quantized.engine = "fbgemm"
    with warnings.catch_warnings():  # torch.ao is deprecated in favour of torchao; torch is pinned, so it is here
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning))
        torch.ao.quantization.quantize_dynamic(module, chosen, dtype=torch.qint8, inplace=True)
    if cpu_has_vnni() if full_range is None else full_range:
        for sub in module.modules():
            if type(sub) is torch.ao.nn.quantized.dynamic.Linear:
                sub.__class__ = _full_range_linear()
    return module
