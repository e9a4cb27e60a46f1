"""The main job: teachers -> cached teacher scores -> students of every strategy -> results table.

`reproduce(preset)` runs the chain and skips every step whose output is up to date, so
it can be killed and re-run at any point. Small outputs live under
`artifacts/<preset>/` (committed); weights live in the same folders under `best/` and
`checkpoint/` (git-ignored).
"""
from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from ..errors import InputError
from ..model.modeling import CerberusForRanking
from ..provenance import code_version
from ..results import artifacts
from ..results.analysis import teacher_ensemble
from ..results.metrics import metrics_with_ci
from ..results.runlock import RunBusy, is_main_process, run_lock
from ..results.scores import ScoreTable, meta_path, model_fingerprint, teacher_table
from ..training.config import TrainConfig, init_from_folder
from ..training.loop import train
from ..training.preflight import check_same_experiment, load_splits
from ..training.zero_shot import ensure_zero_shot
from .presets import (PRESETS, Preset, ablation_configs, best_teacher, student_configs, sweep_configs,
                      teacher_config)
from .reports import (premise_markdown, result_row, results_markdown, seed_runs, seeds_markdown, separate_students,
                      sweep_markdown)


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
        check_same_experiment(cfg, run_dir)
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
        rows.append(result_row("teacher", name, metrics))
    ensemble = {role: {"pooled": ensemble_metrics(root, list(preset.teachers), role, seed)} for role in ("dev", "test")}
    rows.append(result_row("teacher", "ensemble (mean prob.)", {**ensemble, "parameters": sum(r[2] for r in rows)}))
    best = best_teacher(preset, root)
    premise = premise_markdown(root, list(preset.teachers), seed)
    if teachers_only:
        return results_markdown(rows, preset, best) + "\n" + premise
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
        ran = seed_runs(preset, root, best)
        summary = seeds_markdown(ran, separate_students(root, sorted({seed for *_, seed, _ in ran})))
    for role, name, student_seed, metrics in ran:
        label = f"{name} (seed {student_seed})" if preset.seed_folders else name
        if role == "ablation":
            rows.append(result_row(role, f"{label} ({metrics['model']})", metrics))
            continue
        rows.append(result_row(role, label, metrics))
        rows += [result_row("  head", f"{label} {head}", metrics, head) for head in metrics["test"] if head != "pooled"]
    table = results_markdown(rows, preset, best, summary) + "\n" + premise
    write_text_atomic(root / artifacts.RESULTS, table)
    return table


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
