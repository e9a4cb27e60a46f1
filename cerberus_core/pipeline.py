"""The main job: teachers -> cached teacher scores -> students of every strategy -> results table.

`reproduce(preset)` runs the chain and skips every step whose output is up to date, so
it can be killed and re-run at any point. Small outputs live under
`artifacts/<preset>/` (committed); weights live in the same folders under `best/` and
`checkpoint/` (git-ignored).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import artifacts
from .analysis import format_mean_sd, teacher_ensemble
from .atomic import write_text_atomic
from .errors import InputError
from .metrics import metrics_with_ci, with_interval
from .model import CerberusForRanking
from .provenance import code_version
from .runlock import RunBusy, is_main_process, run_lock
from .scores import ScoreTable, meta_path, model_fingerprint
from .config import TrainConfig, init_from_folder
from .scores import teacher_table
from .zero_shot import ensure_zero_shot
from .training import load_splits, train

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Preset:
    """What `reproduce` trains; every field is an ordinary TrainConfig value."""

    name: str
    teachers: dict[str, dict[str, Any]]  # teacher name -> TrainConfig overrides (backbone, epochs, lr)
    student: dict[str, Any]  # shared TrainConfig overrides for students (backbone, split, epochs)
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


# The recipe sweep of the multi-seed programme: CERBERUS under other losses and
# heads, each a change from the default (V2_SWEEP_BASE: alpha 0.5, T 2, KL, 1-layer copied heads, summed
# head losses), chosen on dev MAP and dev head diversity before the seeds run. The base is spelled out
# so the sweep's runs stay what they were once the chosen recipe is set in the preset's students.
V2_SWEEP_BASE = {"alpha": 0.5, "temperature": 2.0, "kd": "kl", "body_layers": 5, "head_layers": 1, "head_init": "copy",
                 "head_loss": "sum"}
V2_SWEEP: dict[str, dict[str, Any]] = {
    "default": {},
    **{f"alpha{a:g}-T{t:g}": {"alpha": a, "temperature": t}
       for a in (0.5, 0.9, 1.0) for t in (1.0, 2.0, 4.0) if (a, t) != (0.5, 2.0)},
    "kd-mse": {"kd": "mse"},
    "alpha1-kd-mse": {"alpha": 1.0, "kd": "mse"},
    "heads-2layers": {"head_layers": 2, "body_layers": 4},
    "heads-independent": {"head_init": "independent"},
    "head-loss-mean": {"head_loss": "mean"},
}


PRESETS: dict[str, Preset] = {
    # `quick`: the chain the tests and the notebooks' quick preset train in a few minutes on 2 cores:
    # two small teachers (the same encoder, different learning rates) and a 2-head student
    "quick": Preset(
        "quick",
        teachers={"l3-fast": {"backbone": "minilm-l3", "lr": 1e-4}, "l3-slow": {"backbone": "minilm-l3", "lr": 3e-5}},
        student={"backbone": "minilm-l3", "body_layers": 2, "head_layers": 1, "lr": 1e-4},
        common={"train_questions": 8, "eval_questions": 6, "max_length": 32, "batch_size": 16, "epochs": 1},
        sweep={"alpha1-T1": {"alpha": 1.0, "temperature": 1.0}},
    ),
    # The multi-seed programme (artifacts/v2, docs/experiment-log.md): teachers trained until dev MAP
    # stops improving (the best epoch on dev is kept), bf16 autocast on a GPU (fp32 on a CPU until
    # step 0 of the plan decides), length-grouped batches; the recipe sweep (ROOT/sweep, chosen on
    # dev); students at several seeds, each in students/<name>/seed<s>
    "v2": Preset(
        "v2",
        teachers={"minilm-l3": {"backbone": "minilm-l3", "epochs": 4},
                  "minilm-l6": {"backbone": "minilm-l6", "epochs": 4},
                  "mpnet-base": {"backbone": "mpnet-base", "lr": 2e-5, "epochs": 3}},
        # alpha 1, T 2: the recipe sweep's choice (artifacts/v2/sweep.md, docs/experiment-log.md)
        student={"backbone": "minilm-l6", "body_layers": 5, "head_layers": 1, "epochs": 2, "evals_per_epoch": 2,
                 "alpha": 1.0, "temperature": 2.0},
        common={"max_length": 128, "batch_size": 32, "lr": 5e-5, "evals_per_epoch": 1, "length_grouping": 50},
        ablation_head_layers=(2, 3, 4, 6), seed_folders=True, sweep=V2_SWEEP, sweep_base=V2_SWEEP_BASE,
    ),
    # The programme where the premise can hold: teachers of equal standing that share no encoder with
    # the student (MPNet-base at several seeds, same recipe), bf16 autocast and length-grouped batches for
    # every run so the programme fits 2 CPU cores; the student's epochs are chosen on dev before the seeds run
    "v3": Preset(
        "v3",
        teachers={f"mpnet-base-seed{s}": {"backbone": "mpnet-base", "lr": 2e-5, "epochs": 3, "seed": s}
                  for s in (1, 2)},
        student={"backbone": "minilm-l6", "body_layers": 5, "head_layers": 1, "epochs": 6, "evals_per_epoch": 2,
                 "alpha": 1.0, "temperature": 2.0},
        common={"max_length": 128, "batch_size": 32, "lr": 5e-5, "evals_per_epoch": 1, "length_grouping": 50,
                "mixed_precision": "bf16"},
        seed_folders=True, sweep={f"epochs{e}": {"epochs": e} for e in (4, 6, 8)}, zero_shot=("trecqa",),
    ),
    # The full WikiQA run reported in the README (one seed; cheap teachers first so a partial run is useful)
    "full": Preset(
        "full",
        teachers={"minilm-l3": {"backbone": "minilm-l3", "epochs": 2},
                  "minilm-l6": {"backbone": "minilm-l6", "epochs": 2},
                  "mpnet-base": {"backbone": "mpnet-base", "lr": 2e-5, "epochs": 1}},
        student={"backbone": "minilm-l6", "body_layers": 5, "head_layers": 1, "epochs": 2},
        common={"max_length": 128, "batch_size": 32, "lr": 5e-5, "evals_per_epoch": 2},
        ablation_head_layers=(2, 3),
    ),
}


def transfer_preset(source: str, dataset: str, **changes: Any) -> Preset:
    """`source` on another dataset, every run starting from its run of the same name and seed
    (transfer, then adapt): its teachers, students and settings, so a change there (the recipe the
    sweep chose) carries over."""
    base = PRESETS[source]
    return dataclasses.replace(base, name=f"{source}-{dataset}", common={**base.common, "dataset": dataset}, sweep={},
                               sweep_base={}, transfer_from=source, **changes)


# the quick chain on TREC-QA (tests); the v2 comparison on TREC-QA (artifacts/v2/trecqa),
# adapted on its 94-question train split, teachers for 3 epochs (best on TREC-QA dev kept)
PRESETS["quick-trecqa"] = transfer_preset("quick", "trecqa")
PRESETS["v2-trecqa"] = transfer_preset("v2", "trecqa", teachers={t: {**over, "epochs": 3}
                                                                 for t, over in PRESETS["v2"].teachers.items()})


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


def _done(run_dir: Path, cfg: TrainConfig) -> bool:
    """Finished with this config, the same teacher tables (a retrained teacher rescored into them
    makes every student that learned from it stale) and the same `init_from` model (a retrained
    source makes its transferred runs stale)."""
    saved = artifacts.config_path(run_dir)
    if not (artifacts.is_finished(run_dir) and saved.is_file() and TrainConfig.from_file(saved) == cfg):
        return False
    metrics = artifacts.read_metrics(run_dir)
    source = init_from_fingerprint(cfg, run_dir)  # None where the source's weights are not here: trust the record
    return (metrics.get("teacher_tables", {}) == teacher_fingerprints(cfg, run_dir)
            and (source is None or metrics.get("init_from_model") == source))


def init_from_fingerprint(cfg: TrainConfig, run_dir: Path) -> str | None:
    """The fingerprint of the model a run started from (None: a fresh backbone, or weights not here)."""
    folder = init_from_folder(cfg, run_dir) if cfg.init_from else None
    return model_fingerprint(folder) if folder is not None and (folder / "config.json").is_file() else None


def teacher_fingerprints(cfg: TrainConfig, run_dir: Path) -> dict[str, Any]:
    """What a student learned from: each teacher table's model and data fingerprints (from sidecars)."""
    found = {}
    for folder in cfg.teachers if cfg.strategy != "gold" else []:
        sidecar = meta_path(artifacts.from_run(run_dir, folder) / f"{cfg.train_split}.tsv")
        meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        found[folder] = [meta.get("model_fingerprint"), meta.get("data_fingerprint")]
    return found


def ensure_trained(cfg: TrainConfig, run_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Load-or-train: reuse metrics of an identical finished run, else train (resuming).

    A finished run is only read. Otherwise the re-check, clearing and training happen under the
    run lock (of the main process of a distributed run), so a run another process is training
    raises `RunBusy` before anything is cleared or trained."""
    if _done(run_dir, cfg):
        return artifacts.read_metrics(run_dir)
    with run_lock(run_dir) if is_main_process() else contextlib.nullcontext():
        if _done(run_dir, cfg):  # another process finished it meanwhile
            return artifacts.read_metrics(run_dir)
        saved = artifacts.config_path(run_dir)
        if saved.is_file() and TrainConfig.from_file(saved) != cfg:
            raise InputError(saved, "a different experiment already lives here; delete the folder to retrain")
        if artifacts.is_finished(run_dir):  # finished, but its teachers changed since: train anew
            artifacts.clear_results(run_dir)
        metrics = train(cfg, run_dir, progress=progress)
        if metrics:  # the main process records what the run learned from, before letting go of the lock
            metrics["teacher_tables"] = teacher_fingerprints(cfg, run_dir)
            if cfg.init_from:
                metrics["init_from_model"] = init_from_fingerprint(cfg, run_dir)
            artifacts.write_metrics(run_dir, metrics)
    return metrics


class LeftToOthers(Exception):
    """Some runs of this queue are still being trained by other processes: their last worker
    writes the table (the command line prints this as a `note:` and exits with code 3)."""


def train_all(runs: list[tuple[TrainConfig, Path]], table: str, progress: bool = True) -> list[dict[str, Any]]:
    """`ensure_trained` on each (config, run folder), in order, and their metrics. A run that another
    process is training is left to it, so several processes can share one queue (the same `reproduce`
    command once per worker). Left runs are tried once more at the end (a worker killed meanwhile left
    its run unfinished: it resumes here), then, with no training in between, checked for having finished,
    so the worker that ends last always finds them all. Else `LeftToOthers` (naming `table`)."""
    found: dict[int, dict[str, Any]] = {}
    left = list(range(len(runs)))
    for _ in range(2):
        busy = []
        for i in left:
            try:
                found[i] = ensure_trained(*runs[i], progress)
            except RunBusy as err:
                busy.append(i)
                print(f"left to another process for now: {err.path} ({err.holder} is training it)", file=sys.stderr)
        left = busy
    for i in left:
        if _done(runs[i][1], runs[i][0]):
            found[i] = artifacts.read_metrics(runs[i][1])
    left = [runs[i][1] for i in left if i not in found]
    if left:
        raise LeftToOthers(f"{table} not written: {len(left)} run(s) still being trained by another process "
                           f"({left[0]} first); the worker that finishes last writes it")
    return [found[i] for i in range(len(runs))]


def ensure_teacher_scores(cfg: TrainConfig, model_dir: Path, out_dir: Path, progress: bool = True) -> None:
    """Score the train/dev/test questions the students use, once per teacher; skip when fresh."""
    data = load_splits(cfg)
    best = artifacts.best_dir(model_dir)
    fingerprint = model_fingerprint(best) if best.is_dir() else None
    model = None
    for role, ds in data.items():
        path = out_dir / f"{role}.tsv"
        expect = {"data_fingerprint": ds.fingerprint(), "max_length": cfg.max_length}
        if fingerprint:
            expect["model_fingerprint"] = fingerprint
        try:
            ScoreTable.load(path, expect=expect)
            continue
        except InputError:
            if fingerprint is None:
                raise InputError(path, "teacher scores are missing or stale and the teacher's weights "
                                       f"({best}) are not here to recompute them") from None
        model = model or CerberusForRanking.from_pretrained(best)
        teacher_table(model, ds, cfg.eval_batch_size, cfg.max_length, progress=progress,
                      meta={"model_fingerprint": fingerprint, "teacher": cfg.name,
                            "code_version": code_version()}).save(path)


def ensemble_metrics(root: Path, teachers: list[str], role: str, seed: int) -> dict[str, Any]:
    """The teacher ensemble (mean of the teachers' positive probabilities) from cached scores."""
    ref, probs = teacher_ensemble({t: ScoreTable.load(artifacts.teacher_scores_dir(root, t) / f"{role}.tsv")
                                   for t in teachers})
    m = metrics_with_ci(ref.qids, ref.labels, probs, seed=seed)
    return {k: v for k, v in m.items() if k != "per_question"}


def reproduce(preset_name: str, root: str | Path | None = None, seed: int = 0, progress: bool = True,
              ablation: bool = False, seeds: Sequence[int] | None = None, teachers_only: bool = False,
              sweep: bool = False, ablation_seeds: Sequence[int] | None = None) -> str:
    """Run (or resume) the whole chain and return the results table as Markdown.

    Teachers train once (at `seed`); students train at every seed of `seeds` (default: `seed`).
    With `ablation`, also train the head-count and body/head-split ablations (ROOT/ablation/), at
    `ablation_seeds` (default: the student seeds);
    with `teachers_only`, stop after the teachers and their score tables; with `sweep`, train the
    preset's recipe sweep after the teachers (ROOT/sweep/, at `seed`) and return its dev table.
    Several processes may run the same call at once, one per worker (`train_all`): once the teachers
    are trained, each leaves the runs another is training to it, and the last to finish writes the
    table (the others raise `LeftToOthers`)."""
    if preset_name not in PRESETS:
        raise InputError(None, f"unknown preset {preset_name!r}; choose from {sorted(PRESETS)}")
    preset = PRESETS[preset_name]
    if sweep and not preset.sweep:
        raise InputError(None, f"preset {preset_name!r} has no recipe sweep; presets with one: "
                               f"{sorted(n for n, p in PRESETS.items() if p.sweep)}")
    seeds = list(seeds) if seeds is not None else [seed]
    ablation_seeds = (list(ablation_seeds) if ablation_seeds is not None else seeds) if ablation else []
    if len({*seeds, *ablation_seeds}) > 1 and not preset.seed_folders:
        raise InputError(None, f"preset {preset_name!r} keeps one seed per student folder; use a preset with seed_folders")
    root = Path(root) if root else preset.default_root()
    missing = _missing_sources(preset, root, seed, seeds, ablation_seeds, teachers_only)
    if missing:
        raise InputError(missing[0], f"the model this {preset_name} run starts from is not here ({len(missing)} such "
                                     f"source run(s)); weights are never committed: first run `python -m cerberus_core "
                                     f"reproduce --preset {preset.transfer_from} --root {root.parent}` with the same "
                                     "seeds (and ablation seeds)")
    rows = []
    for name in preset.teachers:
        cfg = teacher_config(preset, name, seed)
        run_dir = artifacts.run_dir(root, "teachers", name)
        metrics = ensure_trained(cfg, run_dir, progress)
        ensure_teacher_scores(cfg, run_dir, artifacts.teacher_scores_dir(root, name), progress)
        rows.append(_row("teacher", name, metrics))
    ensemble = {role: {"pooled": ensemble_metrics(root, list(preset.teachers), role, seed)} for role in ("dev", "test")}
    rows.append(_row("teacher", "ensemble (mean prob.)", {**ensemble, "parameters": sum(r[2] for r in rows)}))
    best = best_teacher(preset, root)
    if teachers_only:
        return results_markdown(rows, preset, best)
    if sweep:
        train_all([(cfg, artifacts.run_dir(root, "sweep", name)) for name, cfg in sweep_configs(preset, seed).items()],
                  artifacts.SWEEP, progress)
        table = sweep_markdown(root, preset)
        write_text_atomic(root / artifacts.SWEEP, table)
        return table
    runs = _student_runs(preset, root, best, seeds, ablation_seeds)
    found = train_all([(cfg, run_dir) for *_, cfg, run_dir in runs], artifacts.RESULTS, progress)
    for *_, cfg, run_dir in runs if preset.zero_shot else []:
        ensure_zero_shot(cfg, run_dir, preset.zero_shot, progress)
    ran = [(role, name, student_seed, metrics) for (role, name, student_seed, *_), metrics in zip(runs, found)]
    summary = ""
    if preset.seed_folders:  # every finished seed on disk, not only this call's
        ran = _seed_runs(preset, root, best)
        summary = seeds_markdown(ran, separate_students(root, sorted({seed for *_, seed, _ in ran})))
    for role, name, student_seed, metrics in ran:
        label = f"{name} (seed {student_seed})" if preset.seed_folders else name
        if role == "ablation":
            rows.append(_row(role, f"{label} ({metrics['model']})", metrics))
            continue
        rows.append(_row(role, label, metrics))
        rows += [_row("  head", f"{label} {head}", metrics, head) for head in metrics["test"] if head != "pooled"]
    table = results_markdown(rows, preset, best, summary)
    write_text_atomic(root / artifacts.RESULTS, table)
    return table


def _seed_runs(preset: Preset, root: Path, best: str) -> list[tuple[str, str, int, dict[str, Any]]]:
    """(role, name, seed, metrics) of every finished student and ablation seed under `root`, in the
    order of the preset's comparison, then by seed."""
    order = [*student_configs(preset, root, best, 0), *ablation_configs(preset, root, 0)]
    found = [(role, name, seed, artifacts.read_metrics(run)) for kind, role in (("students", "student"), ("ablation", "ablation"))
             for name, seed, run in artifacts.finished_seed_runs(root, kind)]
    return sorted(found, key=lambda r: (r[0] != "student", order.index(r[1]) if r[1] in order else len(order), r[1], r[2]))


def separate_students(root: Path, seeds: list[int]) -> dict[int, dict[str, float]]:
    """Seed -> `Artifacts.separate_students` on test, for the seeds where CERBERUS and every one of
    its single-teacher students have finished."""
    found = {}
    for seed in seeds:
        try:
            found[seed] = artifacts.Artifacts(root, seed).separate_students("test")
        except artifacts.Missing:
            continue
    return found


def seeds_markdown(runs: list[tuple[str, str, int, dict[str, Any]]],
                   separate: dict[int, dict[str, float]] | None = None) -> str:
    """Every student over its seeds (mean ± sample sd; per-seed rows follow in results.md), and the
    head diversity on test of every multi-head student at every seed, with, as their reference, the
    single-teacher students of each seed taken together as heads (`separate`, by seed). The claims,
    with paired tests across seeds, come from the `claims` command."""
    groups: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for role, name, seed, metrics in runs:
        groups.setdefault((role, name), []).append((seed, metrics))
    lines = ["## Over seeds (mean ± sd)", "",
             "| role | model | seeds | dev MAP | test P@1 | test MAP | test MRR |", "|---|---|---|---|---|---|---|"]
    for (role, name), found in groups.items():
        test = [m["test"]["pooled"] for _, m in found]
        lines.append(f"| {role} | {name} | {len(found)} | {format_mean_sd([m['dev']['pooled']['map'] for _, m in found], 4)} | "
                     + " | ".join(format_mean_sd([t[k] for t in test], 4) for k in ("p@1", "map", "mrr")) + " |")
    lines += ["", "## Head diversity on test, every seed", "",
              "S: specialization (each head's r with its own teacher minus its mean r with the others); r: mean "
              "head-head Pearson r of the logit margins; top-1: mean head-head top-1 disagreement.", "",
              "| role | model | seed | S | head-head r | top-1 disagreement |", "|---|---|---|---|---|---|"]
    for (role, name), found in groups.items():
        for seed, metrics in found:
            if "head_diversity" in metrics:
                d = metrics["head_diversity"]
                s = f"{d['specialization']:.4f}" if d.get("specialization") is not None else "-"
                lines.append(f"| {role} | {name} | {seed} | {s} | {d['head_head_r']:.4f} | "
                             f"{d['head_top1_disagreement']:.3f} |")
    for seed, d in (separate or {}).items():
        lines.append(f"| reference | single-teacher students as heads (a body each) | {seed} | {d['specialization']:.4f} | "
                     f"{d['head_head_r']:.4f} | {d['head_top1_disagreement']:.3f} |")
    return "\n".join(lines) + "\n"


def _missing_sources(preset: Preset, root: Path, seed: int, seeds: list[int], ablation_seeds: list[int],
                     teachers_only: bool) -> list[Path]:
    """The source models (init_from) that the runs still to train need and that are not here."""
    if not preset.transfer_from:
        return []
    best = best_teacher(preset, root) or next(iter(preset.teachers))  # the source of replicated does not depend on it
    runs = [(teacher_config(preset, t, seed), artifacts.run_dir(root, "teachers", t)) for t in preset.teachers]
    if not teachers_only:
        runs += [(cfg, run) for *_, cfg, run in _student_runs(preset, root, best, seeds, ablation_seeds)]
    # a finished run needs no source (were it stale, its source would be here to tell): no weights are hashed here
    sources = [init_from_folder(cfg, run) for cfg, run in runs if not artifacts.is_finished(run)]
    return [folder for folder in sources if not (folder / "config.json").is_file()]


def _student_runs(preset: Preset, root: Path, best: str, seeds: list[int],
                  ablation_seeds: list[int]) -> list[tuple[str, str, int, TrainConfig, Path]]:
    """(role, name, seed, config, run folder) of the students at `seeds`, then the ablations at
    `ablation_seeds`, in training order."""
    folder_seed = (lambda s: s) if preset.seed_folders else (lambda s: None)
    return ([("student", n, s, cfg, artifacts.run_dir(root, "students", n, folder_seed(s)))
             for s in seeds for n, cfg in student_configs(preset, root, best, s).items()]
            + [("ablation", n, s, cfg, artifacts.run_dir(root, "ablation", n, folder_seed(s)))
               for s in ablation_seeds for n, cfg in ablation_configs(preset, root, s).items()])


def _row(role: str, name: str, metrics: dict[str, Any], column: str = "pooled") -> tuple:
    """(role, name, parameters, test metrics, dev MAP) of one scorer: a run's pooled score or a head."""
    params = metrics.get("parameters") if column == "pooled" else None
    return role, name, params, metrics["test"][column], metrics["dev"][column]["map"]


def results_markdown(rows: list[tuple], preset: Preset, best: str, summary: str = "") -> str:
    """The header, the summary over seeds of a multi-seed preset, then one row per run (and head)."""
    n = rows[0][3]["n_questions"]
    lines = [
        f"Preset `{preset.name}`: test, {n} questions (dev MAP: where models are chosen), metric policy `none` on the "
        f"`{preset.common.get('eval_filter', 'clean')}`-filtered split; "
        f"95% bootstrap intervals over questions. Replicated teacher (best on dev): {best}. "
        f"Code {code_version()}.",
        "",
        *([summary, "## Every run", ""] if summary else []),
        "| role | model | params (M) | dev MAP | test P@1 | test MAP | test MRR |",
        "|---|---|---|---|---|---|---|",
    ]
    for role, name, params, m, dev_map in rows:
        p = f"{params / 1e6:.1f}" if params else ""
        lines.append(f"| {role} | {name} | {p} | {dev_map:.4f} | {with_interval(m, 'p@1')} | {with_interval(m, 'map')} | "
                     f"{with_interval(m, 'mrr')} |")
    return "\n".join(lines) + "\n"


def sweep_markdown(root: Path, preset: Preset) -> str:
    """The sweep on dev, where the recipe is chosen: pooled MAP and the heads' diversity."""
    found = artifacts.Artifacts(root).sweep_points("dev")
    teachers = found["teachers"]
    lines = [f"Recipe sweep of preset `{preset.name}` on dev (the recipe is chosen here, never on test): "
             "CERBERUS, one seed. S: specialization; r: mean head-head Pearson r of the logit margins; "
             f"top-1: mean head-head top-1 disagreement. The teachers' own r is {teachers['teacher_teacher_r']:.3f} "
             f"(S = {1 - teachers['teacher_teacher_r']:.3f} if each head equalled its teacher), their top-1 "
             f"disagreement {teachers['teacher_top1_disagreement']:.3f}. Code {code_version()}.", "",
             "| recipe | changes | dev MAP | S | head-head r | top-1 disagreement |", "|---|---|---|---|---|---|"]
    for p in found["points"]:
        changes = (", ".join(f"{k}={v}" for k, v in preset.sweep[p["name"]].items()) or "(default)"
                   if p["name"] in preset.sweep else "(not in the preset's sweep)")
        lines.append(f"| {p['name']} | {changes} | {p['map']:.4f} | {p['specialization']:.4f} | "
                     f"{p['head_head_r']:.4f} | {p['head_top1_disagreement']:.3f} |")
    return "\n".join(lines) + "\n"


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


TRAINING_CODE = ("artifacts.py", "batched_heads.py", "batching.py", "building.py", "checkpoint.py", "config.py", "data.py",
                 "filters.py", "losses.py", "model.py", "pipeline.py", "scores.py", "teacher_targets.py", "training.py",
                 "zoo.py")


def training_code_hash() -> str:
    """A short hash of the modules that produce runs, so a cached quick chain made by other
    code is never reused (load-or-train must not hide a regression)."""
    digest = hashlib.sha256()
    for name in TRAINING_CODE:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:10]


# --------------------------------------------------------------------------- notebooks
NOTEBOOK_CACHE = REPO / ".cache" / "notebooks"  # git-ignored; holds the quick chain of the current code only
QUICK_MINUTES = 3  # the quick chain, trained once, on 2 CPU cores
RETRAIN_MINUTES = {"teachers": 45, "students": 13, "ablation": 15}  # one full-preset run on 2 CPU cores, at most
# notebook presets read from the committed artifacts/<preset> as they are (nothing trained): the
# command that rebuilds each, and how long it takes
COMMITTED_PRESETS = {
    "full": ("python -m cerberus_core reproduce --preset full --ablation", "about 4 h on 2 CPU cores"),
    "v2": ("python -m cerberus_core reproduce --preset v2 --seeds 0 1 2 3 4 --ablation --ablation-seeds 0 1 2",
           "about 10 h on 2 CPU cores, 1 h with a GPU for the students"),
}


def expected_runs(preset_name: str, root: str | Path, seed: int = 0, ablation: bool = True) -> list[str]:
    """The run folders (relative to `root`) that `reproduce(preset_name, root, ablation=ablation)` fills
    at student seed `seed` (its seed<seed> subfolders in a multi-seed preset). The replicated student
    is named after the best teacher on dev; until every teacher is finished the first one stands in
    (the count is right, the name may not be)."""
    preset, root = PRESETS[preset_name], Path(root)
    best = best_teacher(preset, root) or next(iter(preset.teachers))
    folder = seed if preset.seed_folders else None
    students = [("students", n) for n in student_configs(preset, root, best, seed)]
    students += [("ablation", n) for n in ablation_configs(preset, root, seed)] if ablation else []
    return ([f"teachers/{t}" for t in preset.teachers]
            + [artifacts.run_dir(root, kind, n, folder).relative_to(root).as_posix() for kind, n in students])


def _missing(preset_name: str, root: Path, seed: int = 0, ablation: bool = True) -> list[str]:
    return [r for r in expected_runs(preset_name, root, seed, ablation) if not artifacts.is_finished(root / r)]


def _prune_notebook_cache(keep: Path) -> None:
    """The bound of the notebook cache: only the quick chain of the current training code stays.
    A folder whose training is in progress in a live process (its `training.pid`) is left alone."""
    import os

    for old in NOTEBOOK_CACHE.glob("quick-*"):
        if old == keep or not old.is_dir():
            continue
        try:
            os.kill(int((old / "training.pid").read_text()), 0)
            continue  # being trained right now
        except (OSError, ValueError):
            shutil.rmtree(old, ignore_errors=True)


def _reproduce_with_one_bar(root: Path, preset_name: str, enabled: bool) -> None:
    """`reproduce(..., ablation=True)` under one bar for the whole chain: runs finished out of all,
    with tqdm's time estimate, polled from the files it writes (its per-run bars stay off)."""
    import threading

    from tqdm.auto import tqdm

    bar = tqdm(total=len(expected_runs(preset_name, root)), desc=f"training the {preset_name} chain (once)",
               unit="run", disable=not enabled)
    done = threading.Event()

    def poll() -> None:
        while not done.wait(1.0):
            runs = expected_runs(preset_name, root)
            bar.n = sum(artifacts.is_finished(root / r) for r in runs)
            busy = [r for r in runs if artifacts.config_path(root / r).is_file() and not artifacts.is_finished(root / r)]
            bar.set_postfix_str(busy[0] if busy else "", refresh=False)
            bar.refresh()

    thread = threading.Thread(target=poll, daemon=True)
    if enabled:
        thread.start()
    try:
        reproduce(preset_name, root=root, progress=False, ablation=True)
        bar.n = bar.total
    finally:
        done.set()
        if enabled:
            thread.join()
        bar.close()


def notebook_artifacts(preset: str = "quick", progress: bool = True, seed: int = 0) -> Path:
    """The artifacts folder a notebook reads; never writes a tracked file.

    `full`, `v2` (COMMITTED_PRESETS): the committed `artifacts/<preset>`, read as it is (nothing is
    trained or rewritten); a teacher or student run missing from it at student seed `seed` is an
    error that names the command rebuilding it. An unfinished ablation is not: a notebook shows the
    ablation runs there are (a multi-seed programme fills them last).
    `quick`: the `quick` chain (with its ablation), trained once into NOTEBOOK_CACHE/quick-<hash of
    the training code> (about QUICK_MINUTES min on 2 CPU cores, one progress bar) and reused after;
    caches made by other training code are deleted, and so are the finished runs' resumable
    checkpoints, so the cache holds one chain's scores and best weights (~0.6 GB).
    Transformers' per-file loading bars are switched off: a notebook shows one bar at most.
    """
    import os

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if preset not in ("quick", *COMMITTED_PRESETS):
        raise InputError(None, f"unknown notebook preset {preset!r}; choose from {sorted(['quick', *COMMITTED_PRESETS])}")
    if preset in COMMITTED_PRESETS:
        root = REPO / "artifacts" / preset
        if seed != 0 and not PRESETS[preset].seed_folders:
            raise InputError(root, f"preset {preset!r} trained one seed (0), so SEED = {seed} has no runs; "
                                   f"the multi-seed runs are in {[p for p in COMMITTED_PRESETS if PRESETS[p].seed_folders]}")
        missing = _missing(preset, root, seed, ablation=False)
        if missing:
            raise InputError(root, f"{len(missing)} run(s) are missing ({', '.join(missing[:3])}"
                                   f"{', ...' if len(missing) > 3 else ''}); `{COMMITTED_PRESETS[preset][0]}` "
                                   f"trains what is missing ({COMMITTED_PRESETS[preset][1]} for everything)")
        return root
    root = NOTEBOOK_CACHE / f"quick-{training_code_hash()}"
    _prune_notebook_cache(keep=root)
    first = bool(_missing("quick", root))
    if first and progress:
        print(f"Training the quick chain once (about {QUICK_MINUTES} min on 2 CPU cores) into {root}; "
              "later runs reuse it.")
    root.mkdir(parents=True, exist_ok=True)
    (root / "training.pid").write_text(str(os.getpid()))
    try:
        _reproduce_with_one_bar(root, "quick", enabled=first and progress)
    finally:
        (root / "training.pid").unlink(missing_ok=True)
    for checkpoint in root.glob(f"*/*/{artifacts.CHECKPOINT}"):  # resumable state of finished runs: no longer needed
        shutil.rmtree(checkpoint, ignore_errors=True)
    return root


def _mirror_name(root: Path) -> Path:
    """Where a results folder's retrained runs go under NOTEBOOK_CACHE/retrained: its path in the
    repository (artifacts/v2/trecqa), or its name and a hash of its path, so two roots never share one."""
    if root.is_relative_to(REPO):
        return root.relative_to(REPO)
    return Path(f"{root.name}-{hashlib.sha256(str(root).encode()).hexdigest()[:8]}")


def run_weights(run_dir: str | Path, train_missing: bool = False, progress: bool = True) -> Path | None:
    """A run's saved model (RUN/best), load-or-train. Weights are git-ignored, so a committed run
    has none: then, with `train_missing`, its exact config is trained again into
    NOTEBOOK_CACHE/retrained/<root>/<kind>/<name>[/seed<s>] (_mirror_name) (its teacher tables are the committed
    ones), otherwise one line says so and how to get them, and the result is None."""
    run_dir = Path(run_dir).resolve()
    if artifacts.has_model(run_dir):
        return artifacts.best_dir(run_dir)
    root = run_dir.parents[2 if artifacts.is_seed_folder(run_dir) else 1]  # students/<name>[/seed<s>]
    kind = run_dir.relative_to(root).parts[0]
    mirror = NOTEBOOK_CACHE / "retrained" / _mirror_name(root)
    target = mirror / run_dir.relative_to(root)
    if artifacts.has_model(target) and artifacts.is_finished(target):
        return artifacts.best_dir(target)
    minutes = RETRAIN_MINUTES.get(kind, 15)
    if not train_missing:
        shown = run_dir.relative_to(REPO) if run_dir.is_relative_to(REPO) else run_dir
        print(f"{shown} has no weights (best/ is never committed): set TRAIN_MISSING = True to retrain it "
              f"here, about {minutes} min on 2 CPU cores, once.")
        return None
    mirror.mkdir(parents=True, exist_ok=True)
    scores = mirror / artifacts.TEACHER_SCORES  # the run's relative teacher paths resolve to the committed tables
    if not scores.exists():
        scores.symlink_to(root / artifacts.TEACHER_SCORES, target_is_directory=True)
    ensure_trained(TrainConfig.from_file(artifacts.config_path(run_dir)), target, progress)
    return artifacts.best_dir(target)
