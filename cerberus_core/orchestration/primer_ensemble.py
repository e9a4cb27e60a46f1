"""The primer's second half: the KD loss by margin, a question the teachers disagree on, why CERBERUS
has k heads, and an ensemble's gain over its members (Krogh-Vedelsby)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..results import analysis as an
from ..results import artifacts
from ..results.scores import ScoreTable


# --------------------------------------------------------------------------- the KD loss, by margin
def kd_curves(teacher_margin: float, student_margins: Sequence[float] | np.ndarray,
              temperatures: Sequence[float] = (1.0, 2.0, 4.0)) -> dict[str, np.ndarray]:
    """The KD loss of one pair (`losses.kd_kl`, T² included) and its gradient with respect to the
    student's margin, at each temperature, over a range of student margins; and the cross-entropy
    with gold label 1, for comparison. The gradient is T·(sigmoid(m_s/T) - sigmoid(m_t/T))."""
    import torch

    from ..training.losses import kd_kl

    s = torch.tensor(np.asarray(student_margins, dtype=float), requires_grad=True)
    logits = torch.stack([torch.zeros_like(s), s], dim=-1)
    out = {"student_margin": s.detach().numpy().copy()}
    for t in temperatures:
        loss = kd_kl(logits, torch.full_like(s, float(teacher_margin)), float(t))
        (grad,) = torch.autograd.grad(loss.sum(), s, retain_graph=True)
        out[f"kd_T{t:g}"], out[f"grad_T{t:g}"] = loss.detach().numpy(), grad.numpy()
    out["ce_gold1"] = torch.nn.functional.softplus(-s).detach().numpy()  # -log sigmoid(m_s)
    return out


def plot_kd_curves(teacher_margin: float, temperatures: Sequence[float] = (1.0, 2.0, 4.0),
                   span: float = 8.0) -> Any:
    """Two panels over the student's margin: the KD loss at each T (zero where the student's margin
    equals the teacher's), and its gradient (the T² factor keeps the slopes comparable across T)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    grid = np.linspace(teacher_margin - span, teacher_margin + span, 201)
    curves = kd_curves(teacher_margin, grid, temperatures)
    fig = Figure(figsize=(9.6, 3.4))
    axes = fig.subplots(1, 2)
    shades = colormaps["Blues"](np.linspace(0.45, 0.95, len(temperatures)))
    for t, color in zip(temperatures, shades):
        axes[0].plot(grid, curves[f"kd_T{t:g}"], color=color, label=f"KD, T = {t:g}")
        axes[1].plot(grid, curves[f"grad_T{t:g}"], color=color, label=f"T = {t:g}")
    axes[0].plot(grid, curves["ce_gold1"], color="#7F7F7F", ls="--", label="CE, gold label 1")
    for ax in axes:
        ax.axvline(teacher_margin, color="k", lw=0.8, ls=":")
        ax.set_xlabel("student margin m_s")
    axes[0].set_ylabel("loss of one pair")
    axes[0].set_ylim(0, np.nanmax(curves[f"kd_T{temperatures[0]:g}"]) * 1.05)
    axes[1].set_ylabel("d loss / d m_s")
    axes[1].axhline(0, color="k", lw=0.5)
    axes[0].set_title(f"teacher margin m_t = {teacher_margin:.2f} (dotted)", fontsize=10)
    axes[1].set_title("gradient: T·(σ(m_s/T) − σ(m_t/T))", fontsize=10)
    axes[0].legend(frameon=False, fontsize=8)
    axes[1].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- a question the teachers disagree on
def disagreement_question(tables: Mapping[str, ScoreTable], fewest: int = 4, most: int = 8) -> dict[str, Any]:
    """A question with one correct candidate among `fewest`..`most` on which the teachers disagree
    most: the most distinct top-1 candidates, then the widest spread of where they rank the correct
    one, then the fewest candidates, then by qid. Returns {"qid", "ranks": teacher -> rank of the
    correct candidate, "tops": teacher -> candidate index it puts first, "candidates"}."""
    ref = next(iter(tables.values()))
    qids = np.asarray(ref.qids)
    options = []
    for qid in dict.fromkeys(ref.qids):
        rows = np.flatnonzero(qids == qid)
        if ref.labels[rows].sum() != 1 or not fewest <= len(rows) <= most:
            continue
        ranks, tops = {}, {}
        for name, table in tables.items():
            own = np.flatnonzero(np.asarray(table.qids) == qid)
            order = own[np.lexsort((table.cand_idx[own], -table.columns["score"][own]))]
            tops[name] = int(table.cand_idx[order[0]])
            ranks[name] = int(np.flatnonzero(table.labels[order])[0]) + 1
        spread = max(ranks.values()) - min(ranks.values())
        options.append((-len(set(tops.values())), -spread, len(rows), qid, ranks, tops))
    if not options:
        raise ValueError(f"no question with one correct candidate among {fewest}-{most}")
    _, _, n, qid, ranks, tops = min(options, key=lambda o: o[:4])
    return {"qid": qid, "ranks": ranks, "tops": tops, "candidates": n}


def soft_targets_frame(tables: Mapping[str, ScoreTable], question: Any, temperature: float = 2.0) -> Any:
    """One row per candidate of `question`: its label, each teacher's margin and soft target
    sigmoid(m / T), the teachers' mean soft target, and the candidate's text."""
    import pandas as pd

    from ..reporting.names import teacher_name

    frame = pd.DataFrame({"label": list(question.labels)})
    for name, table in tables.items():
        rows = np.flatnonzero(np.asarray(table.qids) == question.qid)
        margins = np.empty(len(question.labels))
        margins[table.cand_idx[rows]] = table.columns["score"][rows]
        frame[f"{teacher_name(name)} margin"] = margins.round(2)
        frame[f"{teacher_name(name)} soft target"] = an.to_probability(margins, temperature).round(3)
    soft = [c for c in frame.columns if c.endswith("soft target")]
    frame["mean soft target"] = frame[soft].mean(axis=1).round(3)
    frame["candidate"] = list(question.candidates)
    frame.index.name = "candidate #"
    return frame


# --------------------------------------------------------------------------- why k heads
WHY_K_HEADS = {  # student -> what it is, in the comparison of why CERBERUS has k heads
    "gold": "one head, gold labels only",
    "ensemble": "one head on the averaged teacher",
    "replicated-mpnet-base": "k heads, every head on the best teacher (the control)",
    "cerberus": "k heads, head i on teacher i (CERBERUS)",
}


def why_k_heads_data(root: str | Path) -> dict[str, Any]:
    """What answers "why k heads", from the committed students of `root`: per student of
    WHY_K_HEADS its test metrics and head diversity over seeds (`demo.seed_summary`) and parameters;
    the separate students' head diversity by seed (`reports.separate_students`) and their parameters."""
    from .demo import seed_summary
    from .reports import separate_students

    root = Path(root)
    summary = seed_summary(root, tuple(WHY_K_HEADS))
    parameters = {n: artifacts.read_metrics(artifacts.seed_run(root, "students", n, 0))["parameters"] for n in summary}
    seeds = sorted({s for n, s, _ in artifacts.finished_seed_runs(root, "students") if n == "cerberus"}) or [0]
    singles = artifacts.finished_runs(root, "students", "single-*")
    separate = separate_students(root, seeds) if singles else {}
    if separate:
        one = artifacts.read_metrics(artifacts.seed_run(root, "students", singles[0], seeds[0]))["parameters"]
        parameters["separate"] = len(singles) * one
    return {"summary": summary, "separate": separate, "parameters": parameters, "k": len(singles)}


def why_k_heads(data: Mapping[str, Any]) -> Any:
    """`why_k_heads_data` as a table: test MAP and the heads' specialization S on test (mean ± sd
    over seeds), parameters; the separate students' MAP is each one's own, so none is given for the group."""
    import pandas as pd

    from ..reporting.names import model_name

    rows = []
    for name, entry in data["summary"].items():
        rows.append({"student": model_name(name), "what it learns": WHY_K_HEADS[name], "seeds": entry["map"]["n"],
                     "parameters (M)": f"{data['parameters'][name] / 1e6:.1f}",
                     "test MAP": _mean_sd_text(entry["map"]),
                     "S (test)": _mean_sd_text(entry["specialization"]) if "specialization" in entry else "—"})
    if data["separate"]:
        rows.append({"student": "separate students", "what it learns": f"{data['k']} students, student i on teacher i",
                     "seeds": len(data["separate"]), "parameters (M)": f"{data['parameters']['separate'] / 1e6:.1f}",
                     "test MAP": "each its own",
                     "S (test)": an.format_mean_sd([v["specialization"] for v in data["separate"].values()], 3)})
    return pd.DataFrame(rows).set_index("student")


def k_heads_reading(data: Mapping[str, Any]) -> str:
    """What the table says, in its own numbers."""
    summary, separate = data["summary"], data["separate"]
    if not {"cerberus", "ensemble"} <= set(summary):
        return "The committed results lack CERBERUS or the averaged-teacher student; nothing to compare."
    cer, ens = summary["cerberus"], summary["ensemble"]
    parts = [f"Averaged teacher vs k heads: test MAP {_mean_sd_text(ens['map'])} vs {_mean_sd_text(cer['map'])} "
             f"({cer['map']['mean'] - ens['map']['mean']:+.3f}; the claims command tests it)."]
    if "replicated-mpnet-base" in summary and "specialization" in cer:
        rep = summary["replicated-mpnet-base"]
        parts.append(f"The replicated control has CERBERUS's architecture but one teacher for every head: its MAP is "
                     f"{_mean_sd_text(rep['map'])}, its S {_mean_sd_text(rep['specialization'])} (its heads have no "
                     f"teachers of their own to follow), against CERBERUS's S {_mean_sd_text(cer['specialization'])}.")
    if separate and "specialization" in cer:
        sep = an.mean_sd([v["specialization"] for v in separate.values()])
        parts.append(f"Separate students, each with a body of its own, specialise far more (S {_mean_sd_text(sep)}) "
                     f"at {data['parameters']['separate'] / data['parameters']['cerberus']:.1f}x CERBERUS's parameters "
                     f"and {data['k']} forward passes per pair: the shared body keeps CERBERUS's heads close together.")
    return " ".join(parts)


def _mean_sd_text(entry: Mapping[str, Any], digits: int = 3) -> str:
    return f"{entry['mean']:.{digits}f}" + (f" ± {entry['sd']:.{digits}f}" if entry["n"] > 1 else "")


def krogh_vedelsby(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The ambiguity decomposition of the squared error of the members' mean probability:
    ensemble error = mean member error - ambiguity (an identity; `check` is its residual)."""
    p, y = np.asarray(probabilities, dtype=float), np.asarray(labels, dtype=float)
    members = ((p - y[:, None]) ** 2).mean(axis=0)
    ensemble = float(((p.mean(axis=1) - y) ** 2).mean())
    ambiguity = an.ambiguity(p)
    return {"members": members.tolist(), "average_member": float(members.mean()), "ambiguity": ambiguity,
            "ensemble": ensemble, "check": float(members.mean() - ambiguity - ensemble)}


def gain_frame(gain: Mapping[str, Any]) -> Any:
    """`analysis.ensemble_gain` as a table: members, their average, the ensemble, and its gain over both."""
    import pandas as pd

    from ..reporting.names import teacher_name

    members = pd.DataFrame(gain["members"]).T[list(an.METRICS)].astype(float)
    members.index = [teacher_name(n) for n in members.index]
    ensemble = pd.Series(gain["ensemble"])[list(an.METRICS)].astype(float)
    rows = {**members.T.to_dict(), "average member": members.mean(), "ensemble (mean prob.)": ensemble,
            "ensemble − average member": ensemble - members.mean(), "ensemble − best member": ensemble - members.max()}
    return pd.DataFrame(rows).T.round(3)
