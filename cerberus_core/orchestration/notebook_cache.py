"""What a notebook reads: the committed results of a preset, or the quick chain trained once into a
cache keyed by the training code; and a committed run's weights, retrained on request (load-or-train)."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from ..errors import InputError
from ..provenance import REPO
from ..results import artifacts
from ..training.config import TrainConfig
from .pipeline import ensure_trained, reproduce
from .presets import PRESETS, ablation_configs, best_teacher, student_configs

TRAINING_CODE = ("data", "model", "training", "results/artifacts.py", "results/scores.py", "orchestration/pipeline.py")


def training_code_hash() -> str:
    """A short hash of the modules that produce runs, so a cached quick chain made by other
    code is never reused (load-or-train must not hide a regression)."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for name in TRAINING_CODE:
        path = package / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(package).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:10]


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
