"""All k ranking heads as one batched computation, first token only in their last layer.

Two savings, both exact (the per-head loop in `CerberusForRanking` is the reference, and
the tests hold outputs and gradients to it within 1e-5):

1. A head scores the pair from its first-token state alone, so its last layer needs the
   keys and values of every position but the query, attention output, feed-forward and
   layer norms of position 0 only: about 1/6 of a full layer's FLOPs for BERT shapes.
2. The k heads' weights are stacked (k, in, out) and run as batched matmuls, so k heads
   cost k times the FLOPs but not k times the kernel launches (what dominated on a GPU).

The per-head modules stay the saved format (checkpoints, `from_pretrained` and the
analysis are unchanged); stacking their weights is a copy per forward, small beside the
matmuls. Only BERT-style layers (BERT, RoBERTa, ELECTRA, MiniLM: `attention.self.query`
...) and plain `nn.Linear` weights (not int8-quantized ones) take this path; other
layers (MPNet) run the loop. Earlier layers of deeper heads (h > 1) run per head.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _linears(layer: nn.Module) -> list[nn.Module] | None:
    try:
        att = layer.attention
        return [att.self.query, att.self.key, att.self.value, att.output.dense,
                layer.intermediate.dense, layer.output.dense]
    except AttributeError:
        return None


def can_batch(heads: Sequence[nn.Module]) -> bool:
    """True when every head's last layer is BERT-shaped with plain linear weights."""
    for head in heads:
        layers = head.encoder.layer
        if not layers:
            return False
        linears = _linears(layers[-1])
        if linears is None or any(type(m) is not nn.Linear for m in linears):
            return False
        if getattr(layers[-1], "is_decoder", False) or type(head.scorer.dense) is not nn.Linear:
            return False
    return True


def _stack(modules: Sequence[nn.Module], transpose: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (k, in, out) of linears (or (k, 1, d) scales of norms) and (k, 1, out) biases."""
    weight = torch.stack([m.weight for m in modules])
    weight = weight.transpose(1, 2) if transpose else weight.unsqueeze(1)
    return weight, torch.stack([m.bias for m in modules]).unsqueeze(1)


def _stack_all(heads: Sequence[nn.Module]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    last = [h.encoder.layer[-1] for h in heads]
    att = [layer.attention for layer in last]
    key, value = _stack([a.self.key for a in att], True), _stack([a.self.value for a in att], True)
    return {
        "query": _stack([a.self.query for a in att], True),
        "key_value": (torch.cat([key[0], value[0]], -1), torch.cat([key[1], value[1]], -1)),
        "attn_out": _stack([a.output.dense for a in att], True),
        "attn_norm": _stack([a.output.LayerNorm for a in att], False),
        "ffn_in": _stack([layer.intermediate.dense for layer in last], True),
        "ffn_out": _stack([layer.output.dense for layer in last], True),
        "ffn_norm": _stack([layer.output.LayerNorm for layer in last], False),
        "dense": _stack([h.scorer.dense for h in heads], True),
        "out_proj": _stack([h.scorer.out_proj for h in heads], True),
    }


def stacked_weights(heads: Sequence[nn.Module], cache: dict | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The heads' weights stacked per role. Under autograd they are restacked every call (the
    gradient flows back to each head's own tensors); without it, `cache` keeps them until a
    weight changes (any in-place update bumps its version), so inference copies them once."""
    if torch.is_grad_enabled() or cache is None:
        return _stack_all(heads)
    key = tuple((p.data_ptr(), p._version, p.dtype) for h in heads for p in h.parameters())
    if cache.get("key") != key:
        cache.clear()
        cache.update(key=key, weights=_stack_all(heads))
    return cache["weights"]


def _layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """Per-head LayerNorm of x (k, n, d): one normalisation, then each head's scale and shift."""
    return F.layer_norm(x, norm.normalized_shape, eps=norm.eps) * weight + bias


def _dropout(x: torch.Tensor, module: nn.Dropout) -> torch.Tensor:
    return F.dropout(x, module.p, module.training)


def batched_heads_forward(
    heads: Sequence[nn.Module], hidden: torch.Tensor, mask: torch.Tensor | None, attention_mask: torch.Tensor | None,
    cache: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (batch, k, 2) and first-token states (batch, k, hidden) of every head.

    `hidden` is the body's output (batch, seq, d); `mask` the body's attention mask in the
    format the heads' HF layers read (for the layers before the last), `attention_mask` the
    (batch, seq) 0/1 padding mask.
    """
    k = len(heads)
    if heads[0].encoder.layer[:-1]:  # deeper heads: their first h-1 layers run per head, in full
        x = torch.stack([_run_layers(h.encoder.layer[:-1], hidden, mask) for h in heads])
    else:
        x = hidden.unsqueeze(0)  # every head reads the same body output
    last = [h.encoder.layer[-1] for h in heads]
    w = stacked_weights(heads, cache)
    self_attn = last[0].attention.self
    n_heads, head_size = self_attn.num_attention_heads, self_attn.attention_head_size
    batch, seq, d = hidden.shape

    first = x[:, :, 0].expand(k, batch, d)  # the only query the scorer needs
    query = (first @ w["query"][0] + w["query"][1]).view(k * batch, n_heads, 1, head_size)
    wkv, bkv = w["key_value"]  # (k, d, 2d), (k, 1, 2d)
    if x.shape[0] == 1:  # one shared input: a single matmul against every head's keys and values
        flat = x.reshape(batch * seq, d) @ wkv.transpose(0, 1).reshape(d, k * 2 * d)
        keys_values = flat.view(batch * seq, k, 2 * d).transpose(0, 1) + bkv
    else:
        keys_values = x.reshape(k, batch * seq, d) @ wkv + bkv
    keys, values = (t.reshape(k * batch, seq, n_heads, head_size).transpose(1, 2)
                    for t in keys_values.split(d, dim=-1))
    bool_mask = None
    if attention_mask is not None:  # True = attend; one row per (head, pair)
        bool_mask = attention_mask.bool()[None, :, None, None, :].expand(k, batch, 1, 1, seq).reshape(k * batch, 1, 1, seq)
    context = F.scaled_dot_product_attention(query, keys, values, attn_mask=bool_mask,
                                             dropout_p=self_attn.dropout.p if self_attn.dropout.training else 0.0,
                                             scale=self_attn.scaling).reshape(k, batch, d)

    h1 = _layer_norm(_dropout(context @ w["attn_out"][0] + w["attn_out"][1], last[0].attention.output.dropout) + first,
                     *w["attn_norm"], last[0].attention.output.LayerNorm)
    ffn = last[0].intermediate.intermediate_act_fn(h1 @ w["ffn_in"][0] + w["ffn_in"][1]) @ w["ffn_out"][0] + w["ffn_out"][1]
    states = _layer_norm(_dropout(ffn, last[0].output.dropout) + h1, *w["ffn_norm"], last[0].output.LayerNorm)

    drop = heads[0].scorer.dropout
    z = torch.tanh(_dropout(states, drop) @ w["dense"][0] + w["dense"][1])
    logits = _dropout(z, drop) @ w["out_proj"][0] + w["out_proj"][1]
    return logits.transpose(0, 1), states.transpose(0, 1)


def _run_layers(layers: Sequence[nn.Module], hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    for layer in layers:
        out = layer(hidden, attention_mask=mask)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden
