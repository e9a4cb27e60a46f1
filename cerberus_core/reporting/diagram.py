"""The whole method in one picture, drawn from a real model: teachers -> per-head losses -> heads ->
shared body -> input, and at inference the heads' pooled score.

`model_structure` walks a `CerberusForRanking` (its body's embeddings and layer stack, each head's
layers and scorer, the pooler) and counts the parameters of each part; `draw_method` draws that
structure, so the boxes, layer counts and sizes are the model's, not a sketch's.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _count(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def model_structure(model: Any) -> dict[str, Any]:
    """What a CerberusForRanking is made of: {"name" (B_b kH_h), "backbone", "hidden", "embeddings"
    (parameters), "body_layers" (one {"name", "parameters"} per layer), "heads" (one {"layers",
    "scorer", "parameters"} per head), "pooler", "total"}. Layer names are the modules' own
    (`body.encoder.layer.4`), so the picture shows where each part lives in the state dict."""
    body = model.body
    layers = [{"name": f"body.encoder.layer.{i}", "parameters": _count(layer)} for i, layer in enumerate(body.encoder.layer)]
    heads = []
    for i, head in enumerate(model.heads):
        heads.append({"layers": [f"heads.{i}.encoder.layer.{j}" for j in range(len(head.encoder.layer))],
                      "scorer": f"heads.{i}.scorer ({head.scorer.out_proj.in_features} -> {head.scorer.out_proj.out_features})",
                      "parameters": _count(head)})
    config = model.config
    return {"name": config.name, "backbone": config.backbone_name or config.backbone.get("_name_or_path", "?"),
            "hidden": body.config.hidden_size, "embeddings": _count(body) - _count(body.encoder),
            "body_layers": layers, "heads": heads, "pooler": config.pooler, "total": _count(model)}


def _millions(n: int) -> str:
    return f"{n / 1e6:.1f}M"


def draw_method(structure: dict[str, Any], teachers: Sequence[str], temperature: float = 2.0, alpha: float = 1.0) -> Any:
    """The method from bottom to top: a (question, candidate) pair, the shared body (embeddings and
    its layers), k heads (their layers and scorer), each head's loss against its own teacher's soft
    target (and the gold label, weighted 1 - alpha), and, at inference, the pooled score. The
    teachers (their names in head order) are used while training only; their scores are read from
    the cached tables."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    from .names import CERBERUS_COLOR, GOLD_COLOR, head_color, head_name, teacher_color, teacher_name

    heads = structure["heads"]
    k = len(heads)
    if len(teachers) != k:
        raise ValueError(f"{k} heads but {len(teachers)} teachers")
    width = max(3.2 * k, 8.0)
    fig = Figure(figsize=(width, 7.4))  # not pyplot: nothing is left open in the caller's session
    ax = fig.subplots()
    ax.set_xlim(0, width)
    ax.set_ylim(0, 10.4)
    ax.axis("off")

    def box(x: float, y: float, w: float, h: float, text: str, color: str, fill: float = 0.25, size: int = 8) -> None:
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.04", fc=color, ec=color,
                                    alpha=fill, lw=1.2))
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.04", fc="none", ec=color, lw=1.2))
        ax.text(x, y, text, ha="center", va="center", fontsize=size)

    def arrow(x0: float, y0: float, x1: float, y1: float, color: str = "0.35", style: str = "-|>", ls: str = "-") -> None:
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle=style, mutation_scale=10, color=color, lw=1.0, ls=ls))

    centre = width / 2
    xs = [width * (i + 0.5) / k for i in range(k)]
    box(centre, 0.5, 5.2, 0.6, "input: [CLS] question [SEP] candidate [SEP]", "0.6", 0.15)
    layers = structure["body_layers"]
    body_text = (f"shared body ({_millions(structure['embeddings'] + sum(l['parameters'] for l in layers))}): "
                 f"embeddings ({_millions(structure['embeddings'])}) + {len(layers)} layers "
                 f"(body.encoder.layer.0-{len(layers) - 1}, {_millions(layers[0]['parameters'])} each)"
                 if layers else f"shared body: embeddings only ({_millions(structure['embeddings'])})")
    box(centre, 1.9, width - 0.8, 0.9, body_text + f"\nbackbone {structure['backbone']}, hidden size {structure['hidden']}",
        "0.45", 0.18)
    arrow(centre, 0.8, centre, 1.45)
    for i, (x, head, teacher) in enumerate(zip(xs, heads, teachers)):
        color = head_color(i)
        arrow(x, 2.35, x, 3.15)
        box(x, 3.75, 2.3, 1.1, f"{head_name(i)}: {len(head['layers'])} layer(s)\n{head['layers'][0]}"
            + (" ..." if len(head["layers"]) > 1 else "") + f"\n+ scorer -> logits (z0, z1), {_millions(head['parameters'])}",
            color, 0.3)
        arrow(x, 4.3, x, 5.15)
        box(x, 5.75, 2.3, 1.0, f"loss of {head_name(i)}\n{alpha:g}·KL(teacher_T ‖ head_T)·T²"
            f"{f' + {1 - alpha:g}·CE(gold)' if alpha < 1 else ''}\nT = {temperature:g}", color, 0.12)
        box(x, 7.55, 2.3, 0.8, f"teacher {i + 1}: {teacher_name(teacher)}\n(cached margins, training only)",
            teacher_color(teacher), 0.45)
        arrow(x, 7.15, x, 6.3, color=teacher_color(teacher))
    if alpha < 1:
        ax.text(centre, 6.55, "gold label (weight 1 − α)", ha="center", fontsize=8, color=GOLD_COLOR)
    box(centre, 9.4, width - 0.2, 0.9, f"inference: score = mean over the {k} heads of softmax(z)[1] "
        f"(pooler '{structure['pooler']}'); teachers and losses are not needed\n"
        f"{structure['name']}: {_millions(structure['total'])} parameters in all", CERBERUS_COLOR, 0.18, size=8)
    for x in xs:  # each head's logits to the pooler, up the gap to the right of its column
        ax.plot([x + 1.15, x + 1.4, x + 1.4], [3.75, 3.75, 8.6], color=CERBERUS_COLOR, lw=1.0, ls="--")
        arrow(x + 1.4, 8.6, x + 1.4, 8.95, color=CERBERUS_COLOR)
    ax.set_title(f"CERBERUS {structure['name']}: {k} teachers, {k} heads, one student\n"
                 "training (solid): each head's loss flows back through its head into the shared body; "
                 "inference (dashed): the heads' pooled score", fontsize=10)
    fig.tight_layout()
    return fig
