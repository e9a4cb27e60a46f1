"""The experiments `reproduce` runs, read from data files (experiments/<name>.json, one per
experiment), and the TrainConfigs each one trains: changing an experiment is not a code change.

A file holds the fields of `Preset` (every value an ordinary TrainConfig value) and an "about"
line. A transfer experiment names its source ("transfer_from"), its "dataset" and optional
"teacher_changes"; it takes everything else from the source, so a change there carries over.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, loads_json
from ..provenance import REPO
from ..results import artifacts
from ..training.config import TrainConfig

EXPERIMENTS = Path(__file__).resolve().parent / "experiments"


@dataclass
class Preset:
    """What `reproduce` trains; every field is an ordinary TrainConfig value."""

    name: str
    about: str = ""
    teachers: dict[str, dict[str, Any]] = field(default_factory=dict)  # teacher -> TrainConfig overrides
    student: dict[str, Any] = field(default_factory=dict)  # shared TrainConfig overrides for students
    common: dict[str, Any] = field(default_factory=dict)  # data and sizes, for everyone
    ablation_head_layers: tuple[int, ...] = (2,)  # other body/head splits tried by the ablation
    seed_folders: bool = False  # students of seed s in students/<name>/seed<s> (multi-seed programmes)
    sweep: dict[str, dict[str, Any]] = field(default_factory=dict)  # recipe name -> CERBERUS config overrides
    sweep_base: dict[str, Any] = field(default_factory=dict)  # what the recipes change from, fixed when the sweep ran
    # transfer, then adapt: every run starts from the same run (kind, name, seed) of this preset, whose
    # results folder holds this one's, in a subfolder named after the dataset (so both move as one)
    transfer_from: str | None = None
    zero_shot: tuple[str, ...] = ()  # datasets every student is also scored on, as it is (zero_shot.py)

    def default_root(self) -> Path:
        if self.transfer_from:
            return PRESETS[self.transfer_from].default_root() / self.common["dataset"]
        return REPO / "artifacts" / self.name

    def init_from(self, kind: str, name: str, seed: int | None) -> dict[str, str]:
        """The `init_from` override of one run: the source run's best model, relative to the run
        folder (up to ROOT, then to its parent, the source's results folder); {} without transfer."""
        if not self.transfer_from:
            return {}
        source = artifacts.best_dir(artifacts.run_dir("..", kind, name, seed))
        return {"init_from": "../" * (2 if seed is None else 3) + source.as_posix()}


_FIELDS = {f.name for f in dataclasses.fields(Preset)} - {"name"}


def read_experiment(path: Path) -> dict[str, Any]:
    """The fields of one experiment file, checked as JSON (a duplicated key is an error at its line)."""
    try:
        values = loads_json(path.read_text(encoding="utf-8"), path)
    except json.JSONDecodeError as e:
        raise InputError(path, f"not valid JSON ({e.msg}); expected an object of Preset fields", line=e.lineno) from None
    if not isinstance(values, dict):
        raise InputError(path, "expected a JSON object of Preset fields")
    allowed = {"about", "transfer_from", "dataset", "teacher_changes"} if "transfer_from" in values else _FIELDS
    unknown = set(values) - allowed
    if unknown:
        raise InputError(path, f"unknown field(s) {sorted(unknown)}; expected some of {sorted(allowed)}")
    return values


def make_preset(name: str, values: dict[str, Any], known: dict[str, Preset], path: Path) -> Preset:
    """A Preset from an experiment's fields; a transfer experiment's source must be among `known`."""
    if "transfer_from" not in values:
        tuples = {k: tuple(values[k]) for k in ("ablation_head_layers", "zero_shot") if k in values}
        return Preset(name=name, **{**values, **tuples})
    source = known.get(values["transfer_from"])
    if source is None:
        raise InputError(path, f"transfer_from {values['transfer_from']!r} names no experiment; known: {sorted(known)}")
    changes = values.get("teacher_changes", {})
    return dataclasses.replace(source, name=name, about=values.get("about", ""),
                               common={**source.common, "dataset": values["dataset"]},
                               teachers={t: {**over, **changes} for t, over in source.teachers.items()},
                               sweep={}, sweep_base={}, transfer_from=source.name)


def load_presets(folder: Path = EXPERIMENTS) -> dict[str, Preset]:
    """Every experiment of `folder`, each transfer experiment after its source."""
    pending = {path.stem: (path, read_experiment(path)) for path in sorted(folder.glob("*.json"))}
    found: dict[str, Preset] = {}
    while pending:
        ready = [n for n, (_, v) in pending.items() if v.get("transfer_from") in (None, *found)]
        if not ready:  # a source that is missing or a cycle: make_preset names it
            ready = list(pending)[:1]
        for name in ready:
            path, values = pending.pop(name)
            found[name] = make_preset(name, values, found, path)
    return found


PRESETS: dict[str, Preset] = load_presets()


def teacher_config(preset: Preset, name: str, seed: int) -> TrainConfig:
    """A teacher trains at the programme's `seed` unless its overrides name its own (a seed ensemble)."""
    values = {"seed": seed, **preset.common, **preset.teachers[name], **preset.init_from("teachers", name, None)}
    return TrainConfig(**values, name=f"teacher-{name}", strategy="gold", num_heads=1)


def student_configs(preset: Preset, root: Path, best: str, seed: int) -> dict[str, TrainConfig]:
    """The comparison of the paper: gold, single-teacher KD, ensemble KD, replicated, CERBERUS."""
    names = list(preset.teachers)
    folders = [artifacts.teacher_scores_ref(t, preset.seed_folders) for t in names]
    base = {**preset.common, **preset.student, "seed": seed}
    runs = {"gold": dict(strategy="gold", num_heads=1)}
    for i, t in enumerate(names):
        runs[f"single-{t}"] = dict(strategy="single", num_heads=1, teachers=folders, teacher_index=i)
    runs["ensemble"] = dict(strategy="ensemble", num_heads=1, teachers=folders)
    runs[f"replicated-{best}"] = dict(strategy="replicated", num_heads=len(names), teachers=folders,
                                      teacher_index=names.index(best))
    runs["cerberus"] = dict(strategy="cerberus", num_heads=len(names), teachers=folders)
    # transferred, the replicated control starts from the source's, whichever teacher was best there
    source_best = best_teacher(PRESETS[preset.transfer_from], root.parent) if preset.transfer_from else None
    sources = {f"replicated-{best}": f"replicated-{source_best or best}"}
    return _configs(preset, "students", runs, base, seed, sources)


def _configs(preset: Preset, kind: str, runs: dict[str, dict[str, Any]], base: dict[str, Any],
             seed: int, sources: dict[str, str] | None = None) -> dict[str, TrainConfig]:
    """TrainConfigs of named runs; a transfer preset's run starts from the source run of the same
    name (or the name `sources` maps it to)."""
    folder_seed = seed if preset.seed_folders else None
    return {name: TrainConfig(name=name, **{**base, **over, **preset.init_from(kind, (sources or {}).get(name, name),
                                                                                folder_seed)})
            for name, over in runs.items()}


def best_teacher(preset: Preset, root: Path) -> str | None:
    """The preset's teacher with the best dev MAP under `root`; None until every teacher is finished."""
    return artifacts.best_on_dev({t: artifacts.run_dir(root, "teachers", t) for t in preset.teachers})


def ablation_configs(preset: Preset, root: Path, seed: int) -> dict[str, TrainConfig]:
    """CERBERUS on every teacher subset of 2..k-1 teachers (k = 1 is `single-<t>`, all k is the
    main run), and on other body/head splits of the same depth."""
    names = list(preset.teachers)
    folders = [artifacts.teacher_scores_ref(t, preset.seed_folders) for t in names]
    base = {**preset.common, **preset.student, "seed": seed, "strategy": "cerberus"}
    runs = {}
    for k in range(2, len(names)):
        for subset in itertools.combinations(range(len(names)), k):
            runs["cerberus-" + "+".join(names[i] for i in subset)] = dict(
                num_heads=k, teachers=[folders[i] for i in subset])
    depth = base["body_layers"] + base["head_layers"]
    for h in preset.ablation_head_layers:
        runs[f"cerberus-B{depth - h}H{h}"] = dict(num_heads=len(names), teachers=folders,
                                                  body_layers=depth - h, head_layers=h)
    return _configs(preset, "ablation", runs, base, seed)


def sweep_configs(preset: Preset, seed: int) -> dict[str, TrainConfig]:
    """CERBERUS under each recipe of the preset's sweep, in ROOT/sweep/<name> (one seed: the recipe
    is chosen there, on dev, before the seeds run)."""
    names = list(preset.teachers)
    base = {**preset.common, **preset.student, "seed": seed, "strategy": "cerberus", "num_heads": len(names),
            "teachers": [artifacts.teacher_scores_ref(t, seed_folders=False) for t in names]}
    return {name: TrainConfig(name=f"sweep-{name}", **{**base, **preset.sweep_base, **over})
            for name, over in preset.sweep.items()}
