"""One display name and one colour per model, shared by every figure, table and widget.

Run folders use short keys ("mpnet-base", "single-mpnet-base", "replicated-mpnet-base",
"cerberus-B3H3", "head0"); readers see the names people write in a paper ("MPNet-base",
"KD from MPNet-base", "Replicated (MPNet-base)", "CERBERUS B3 3H3", "head 1 <- MiniLM-L3").
Colours follow the role, not the order of appearance, so a teacher is the same colour in every
figure and CERBERUS always stands out. Keys we do not know (a user's own teachers) keep their key
as their name and get a stable colour of their role.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

# Okabe-Ito, the colour-blind-safe palette; vermillion is kept for CERBERUS alone.
OKABE_ITO = {"orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000"}
CERBERUS_COLOR = OKABE_ITO["vermillion"]
CERBERUS_VARIANT_COLOR = "#EDA17F"  # a lighter vermillion: CERBERUS ablations (other heads, teachers or splits)
GOLD_COLOR = "#7F7F7F"
ENSEMBLE_COLOR = OKABE_ITO["purple"]
REPLICATED_COLOR = OKABE_ITO["orange"]
# Teachers: shades of one family (blue-green), each teacher its own shade.
TEACHER_COLORS = {"minilm-l3": "#9ecae1", "minilm-l6": "#4292c6", "mpnet-base": "#08519c"}
TEACHER_FALLBACK = ("#6baed6", "#2171b5", "#084594", "#c6dbef", "#3182bd")
SINGLE_KD_COLOR = OKABE_ITO["green"]
# Heads by index (Paul Tol's muted scheme): none of them is a model's colour above, so a head is never
# read as a model; head i has the same colour in every figure.
HEAD_COLORS = ("#44AA99", "#AA4499", "#999933", "#332288", "#DDCC77", "#882255")

ENCODER_NAMES = {"minilm-l3": "MiniLM-L3", "minilm-l6": "MiniLM-L6", "mpnet-base": "MPNet-base",
                 "electra-base": "ELECTRA-base", "electra-large": "ELECTRA-large",
                 "roberta-base": "RoBERTa-base", "roberta-large": "RoBERTa-large"}

SPLIT = re.compile(r"cerberus-B(\d+)H(\d+)")
HEAD = re.compile(r"head(\d+)")


def teacher_name(key: str) -> str:
    """"mpnet-base" -> "MPNet-base"; a teacher we do not know keeps its key."""
    return ENCODER_NAMES.get(key, key)


def model_name(key: str, num_heads: int | None = None) -> str:
    """The display name of a run folder's model key (teacher, student or ablation)."""
    if key in ("cerberus", "CERBERUS"):
        return "CERBERUS"
    if key == "gold":
        return "Gold labels"
    if key == "ensemble":
        return "KD from the teachers' mean"
    if key == "teacher ensemble":
        return TEACHER_ENSEMBLE_NAME
    if key.startswith("single-"):
        return f"KD from {teacher_name(key[len('single-'):])}"
    if key.startswith("replicated-"):
        return f"Replicated ({teacher_name(key[len('replicated-'):])})"
    if m := SPLIT.fullmatch(key):
        heads = f"{num_heads}" if num_heads else "k"
        return f"CERBERUS B{m[1]} {heads}H{m[2]}"
    if key.startswith("cerberus-"):
        return "CERBERUS {" + ", ".join(teacher_name(t) for t in key[len("cerberus-"):].split("+")) + "}"
    if key.startswith("teacher-"):
        return teacher_name(key[len("teacher-"):])
    return teacher_name(key)


def head_name(head: str | int, teacher: str | None = None) -> str:
    """"head0" (or 0) -> "head 1", or "head 1 <- MiniLM-L3" when its teacher is known (1-based for readers)."""
    index = int(HEAD.fullmatch(head)[1]) if isinstance(head, str) else int(head)
    return f"head {index + 1}" + (f" <- {teacher_name(teacher)}" if teacher else "")


def run_name(kind: str, key: str) -> str:
    """The display name of a run folder of a kind ("teachers", "students", "ablation", "sweep")."""
    return teacher_name(key) if kind == "teachers" else model_name(key)


TEACHER_ENSEMBLE_NAME = "Teacher ensemble"
TEACHER_ENSEMBLE_COLOR = "#4D4D4D"


def _stable_pick(key: str, choices: Sequence[str]) -> str:
    return choices[zlib.crc32(key.encode()) % len(choices)]


def teacher_color(key: str) -> str:
    return TEACHER_COLORS.get(key) or _stable_pick(key, TEACHER_FALLBACK)


def head_color(head: str | int) -> str:
    index = int(HEAD.fullmatch(head)[1]) if isinstance(head, str) else int(head)
    return HEAD_COLORS[index % len(HEAD_COLORS)]


def model_color(key: str) -> str:
    """The colour of a model key by its role: CERBERUS (and its ablations) vermillion, teachers blue shades."""
    if key in ("cerberus", "CERBERUS") or key.startswith("cerberus-"):
        return CERBERUS_COLOR
    if key == "gold":
        return GOLD_COLOR
    if key == "ensemble":
        return ENSEMBLE_COLOR
    if key == "teacher ensemble":
        return TEACHER_ENSEMBLE_COLOR
    if key.startswith("single-"):
        return SINGLE_KD_COLOR
    if key.startswith("replicated-"):
        return REPLICATED_COLOR
    if HEAD.fullmatch(key):
        return head_color(key)
    return teacher_color(key.removeprefix("teacher-"))
