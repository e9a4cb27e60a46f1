"""What a run is: `TrainConfig`, saved as config.json in its run folder, with the checks that read
no file: each field on its own when the config is made (type, range, choices), and the rules
between fields (`check_consistent`) once the config is complete. Everything that touches files,
models or data is checked once, by `preflight.preflight`, before a run writes anything.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, loads_json
from ..data import FILTERS, SPLITS
from ..model.choices import HEAD_INITS, MAX_HEADS, MAX_LAYERS, POOLERS


@dataclass
class TrainConfig:
    """Everything that defines a training run; defaults train a gold-label teacher."""

    name: str = "run"
    # model: an embedded name, a folder or a hub id; or continue from a saved model (transfer, then
    # adapt), a folder relative to the run folder like `teachers`
    backbone: str = "minilm-l6"
    init_from: str | None = None
    body_layers: int | None = None  # default: depth - head_layers
    num_heads: int = 1
    head_layers: int = 1
    pooler: str = "mean_prob"
    head_init: str = "copy"
    # distillation
    strategy: str = "gold"
    # folders holding <train_split>.tsv score tables; relative paths are relative to the run
    # folder (where config.json lives), so a results folder can move as a whole
    teachers: list[str] = field(default_factory=list)
    teacher_index: int | None = None
    kd: str = "kl"
    temperature: float = 2.0
    alpha: float = 0.5
    head_loss: str = "sum"  # sum or mean of the per-head losses (losses.py)
    # data
    dataset: str = "wikiqa"
    data_root: str | None = None
    train_split: str = "train"
    dev_split: str = "dev"
    test_split: str | None = "test"
    train_filter: str = "none"
    eval_filter: str = "clean"
    train_questions: int | None = None  # a random subset, for quick presets
    eval_questions: int | None = None
    # optimisation
    epochs: int = 1
    batch_size: int = 32
    lr: float = 5e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_length: int = 128
    eval_batch_size: int = 64
    evals_per_epoch: int = 1
    checkpoint_every: int = 50
    seed: int = 0  # initialisation, data order, dropout
    data_seed: int = 0  # which questions a subset keeps: shared by teachers and students across seeds
    mixed_precision: str = "auto"  # auto: bf16 autocast on a GPU that has it, else fp32; "bf16" also on a CPU
    length_grouping: int = 0  # batches per pool sorted by length (batching.py); 0: plain random batches

    def __post_init__(self) -> None:
        """Refuse a bad value at once: every field against its type, range or choices. The
        rules between fields (`check_consistent`) wait for the finished config (a config may be
        built in steps, e.g. a file completed by --set overrides); `preflight` checks them, and
        everything that needs files, before a run writes anything."""
        for name, value in dataclasses.asdict(self).items():
            _check_field(name, value)
        if self.strategy == "cerberus" and self.teachers and len(self.teachers) != self.num_heads:
            raise InputError(None, f"cerberus needs one head per teacher: num_heads={self.num_heads}, "
                                   f"{len(self.teachers)} teachers")

    def check_consistent(self) -> None:
        """The rules between fields that need no files: heads, strategy, teachers."""
        n, strategy = len(self.teachers), self.strategy
        if strategy in ("single", "ensemble") and self.num_heads != 1:
            raise InputError(None, f"strategy {strategy!r} distils into one head, but num_heads={self.num_heads}; "
                                   "set num_heads=1 (or use strategy 'replicated' or 'cerberus' for several heads)")
        if strategy != "gold" and n == 0:
            raise InputError(None, f"strategy {strategy!r} needs teacher score tables (config field 'teachers', "
                                   "a list of folders holding <train_split>.tsv)")
        if strategy == "cerberus" and n != self.num_heads:
            raise InputError(None, f"cerberus needs one head per teacher: num_heads={self.num_heads}, {n} teachers")
        if strategy in ("single", "replicated"):
            if self.teacher_index is None and n > 1:
                raise InputError(None, f"strategy {strategy!r} with {n} teachers needs teacher_index "
                                       f"(0 to {n - 1}): which teacher to distil")
            if self.teacher_index is not None and self.teacher_index >= n:
                raise InputError(None, f"config field 'teacher_index' is {self.teacher_index}, but there "
                                       f"{'is' if n == 1 else 'are'} {n} teacher{'' if n == 1 else 's'} "
                                       f"(valid: 0 to {n - 1})")

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """A config from JSON; a field's error names the file and the line the field is on."""
        from ..atomic import read_text_bounded

        path = Path(path)
        text = read_text_bounded(path, "a JSON experiment config")  # a FIFO or /dev/zero is refused unread
        try:
            values = loads_json(text, path)
        except json.JSONDecodeError as err:
            raise InputError(path, f"expected a JSON experiment config ({err.msg})", line=err.lineno) from None
        if not isinstance(values, dict):
            raise InputError(path, "expected a JSON object of TrainConfig fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(path, f"unknown config field {unknown[0]!r}; known: {', '.join(sorted(known))}",
                             line=_line_of(text, unknown[0]))
        try:
            return cls(**values)
        except InputError as err:
            raise InputError(path, err.message, line=_line_of(text, getattr(err, "field", None))) from None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1) + "\n"


def _field_types() -> dict[str, tuple[tuple[type, ...], bool]]:
    """Each field's accepted types and whether it may be null, read from the annotations
    (a field added to TrainConfig is checked with no table to update). A float field takes
    an int too; `list[str]` is checked as a list (its items by `_check_field`)."""
    found = {}
    for name, hint in typing.get_type_hints(TrainConfig).items():
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        kinds = tuple(typing.get_origin(a) or a for a in args if a is not type(None))
        found[name] = ((int, float) if kinds == (float,) else kinds, type(None) in args)
    return found


TYPES = _field_types()  # name -> (types, nullable); a bool is never a number
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
# the training choices, named here so a config is checked without torch; losses.py implements each
STRATEGIES = ("gold", "single", "ensemble", "replicated", "cerberus")
KD_LOSSES = ("kl", "mse")
HEAD_LOSSES = ("sum", "mean")  # how the per-head losses make the total
SEED_MAX = 2**32 - 1  # numpy's seed range
# sizes checked before anything is allocated (a typo must not take the machine's memory for minutes)
MAX_BATCH_SIZE = 4096  # pairs per batch, training and scoring
# name -> (lowest, highest, lowest included): numeric ranges (None: unbounded)
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    **{k: (1, None, True) for k in ("epochs", "max_length", "evals_per_epoch", "checkpoint_every",
                                    "train_questions", "eval_questions")},
    "num_heads": (1, MAX_HEADS, True), "batch_size": (1, MAX_BATCH_SIZE, True),
    "eval_batch_size": (1, MAX_BATCH_SIZE, True),
    "body_layers": (0, MAX_LAYERS, True), "head_layers": (0, MAX_LAYERS, True), "teacher_index": (0, None, True),
    "length_grouping": (0, None, True),
    "seed": (0, SEED_MAX, True), "data_seed": (0, SEED_MAX, True),
    "lr": (0, None, False), "temperature": (0, None, False), "alpha": (0, 1, True), "warmup": (0, 1, True),
    "weight_decay": (0, None, True),
}


def _field_error(name: str, message: str) -> InputError:
    err = InputError(None, f"config field {name!r} {message}")
    err.field = name  # type: ignore[attr-defined]  # from_file finds its line
    return err


def _check_field(name: str, value: Any) -> None:
    """One field against its type, range or choices."""
    kind, nullable = TYPES[name]
    if value is None:
        if nullable:
            return
        raise _field_error(name, f"must not be null (expects {_type_names(kind)})")
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _field_error(name, f"expects {_type_names(kind)}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _field_error(name, f"must be a finite number, got {value!r}")
    if name in RANGES:
        low, high, closed = RANGES[name]
        if (value < low if closed else value <= low) or (high is not None and value > high):
            bound = f">= {low}" if closed else f"> {low}"
            wanted = f"between {low} and {high}" if high is not None else bound
            raise _field_error(name, f"must be {wanted}, got {value!r}")
    choices = {"strategy": STRATEGIES, "kd": KD_LOSSES, "pooler": POOLERS, "head_init": HEAD_INITS,
               "train_filter": FILTERS, "eval_filter": FILTERS, "mixed_precision": MIXED_PRECISION,
               "train_split": SPLITS, "dev_split": SPLITS, "test_split": SPLITS, "head_loss": HEAD_LOSSES}
    if name in choices and value not in choices[name]:
        raise _field_error(name, f"must be one of {sorted(choices[name])}, got {value!r}")
    if isinstance(value, str) and not value.strip() and name not in ("data_root", "init_from"):
        raise _field_error(name, "must not be empty")
    if name == "teachers":
        bad = [t for t in value if not isinstance(t, str) or not t.strip()]
        if bad:
            raise _field_error(name, f"expects a list of folder paths (strings), got {bad[0]!r} in {value!r}")


def _type_names(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)


def _line_of(text: str, key: str | None) -> int | None:
    """The line of a JSON text where `"key":` first appears (for error messages)."""
    if not key:
        return None
    match = re.search(rf'"{re.escape(key)}"\s*:', text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def init_from_folder(cfg: TrainConfig, run_dir: str | Path | None) -> Path:
    """The saved model `init_from` names: relative to the run folder (so a results folder that
    transfers from its parent moves as a whole), or to the working folder when there is no run."""
    from ..results.artifacts import from_run

    return from_run(run_dir, cfg.init_from) if run_dir is not None else Path(cfg.init_from)


def config_with_overrides(path: str | None, overrides: list[str], **fixed: Any) -> TrainConfig:
    """A TrainConfig from an optional JSON file, then KEY=VALUE overrides (VALUE parsed as JSON).
    A folder typed here (`init_from`, `teachers` entries) is relative to where it was typed, so it
    is made absolute; in a config file, relative folders are relative to the run folder."""
    cfg = TrainConfig.from_file(path) if path else TrainConfig()
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or key not in known:
            raise InputError(None, f"--set expects KEY=VALUE with KEY a config field, got {item!r}")
        if key in fixed:
            raise InputError(None, f"{key} is fixed to {fixed[key]!r} by this command")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    typed = lambda v: str(Path(v).absolute()) if isinstance(v, str) and v.strip() else v  # noqa: E731 (blank: refused later)
    if "init_from" in values:
        values["init_from"] = typed(values["init_from"])
    if isinstance(values.get("teachers"), list):
        values["teachers"] = [typed(t) for t in values["teachers"]]
    return dataclasses.replace(cfg, **values, **fixed)
