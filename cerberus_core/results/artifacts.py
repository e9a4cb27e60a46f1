"""The layout of a results folder and of its run folders: the one module that spells their names.

    ROOT/teachers/<name>/                      a teacher's run folder
    ROOT/teacher_scores/<name>/<split>.tsv     its score tables (the students' KD targets)
    ROOT/students/<name>[/seed<s>]/            a student's run folder (seed<s>: multi-seed programmes)
    ROOT/ablation/<name>[/seed<s>]/            ablation runs
    ROOT/sweep/<name>/                         CERBERUS under each recipe of the sweep (one seed)
    ROOT/results.md, sweep.md, bench.json, claims.json, ablation_tests.json   the tables made from them

    RUN/config.json           the experiment (config.TrainConfig)
    RUN/checkpoint/           the resumable state (checkpoint.py)
    RUN/best/                 the model with the best dev MAP (save_pretrained)
    RUN/curve.tsv             the loss parts at every step
    RUN/trace/dev_step<N>.tsv every head's dev scores at each evaluation (step 0 included)
    RUN/scores/<role>.tsv     pooled and per-head dev/test scores of the best model
    RUN/metrics.json          P@1 / MAP / MRR with intervals, pooled and per head; head diversity

Writers (training, pipeline) and readers (analysis inputs, figures, notebooks, claims, bench)
go through the helpers here; `reader.Artifacts` reads a finished results folder.
"""
from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, write_text_atomic
from ..errors import InputError
from .scores import ScoreTable

CONFIG, METRICS, BEST, CHECKPOINT = "config.json", "metrics.json", "best", "checkpoint"
CURVE, TRACE, SCORES = "curve.tsv", "trace", "scores"
TIMING = "timing.json"  # wall time and machine: the one run file that differs between identical runs
RUN_ENTRIES = (CHECKPOINT, BEST, TRACE, SCORES, CURVE, METRICS, TIMING)  # what a run writes besides its config
TEACHER_SCORES = "teacher_scores"
BENCH, RESULTS, CLAIMS, SWEEP = "bench.json", "results.md", "claims.json", "sweep.md"  # tables made from a results folder
ABLATION_TESTS = "ablation_tests.json"  # the ablations as paired tests (ablation_tests.build_ablation_tests)
SPLIT = "test"  # figures describe the held-out split; dev is used only for the training traces
DATASET_NAMES = {"wikiqa": "WikiQA", "wikiqa-tsv": "WikiQA", "trecqa": "TREC-QA"}


# --------------------------------------------------------------------------- one run folder
def config_path(run: str | Path) -> Path:
    return Path(run) / CONFIG


def metrics_path(run: str | Path) -> Path:
    return Path(run) / METRICS


def best_dir(run: str | Path) -> Path:
    return Path(run) / BEST


def checkpoint_dir(run: str | Path) -> Path:
    return Path(run) / CHECKPOINT


def scores_path(run: str | Path, role: str) -> Path:
    return Path(run) / SCORES / f"{role}.tsv"


def trace_path(run: str | Path, step: int) -> Path:
    return Path(run) / TRACE / f"dev_step{step:06d}.tsv"


def read_traces(run: str | Path) -> list[tuple[int, ScoreTable]]:
    """(step, dev score table) at every evaluation of a run, in step order."""
    paths = sorted(Path(run, TRACE).glob("dev_step*.tsv"))
    return [(int(p.stem.removeprefix("dev_step")), ScoreTable.load(p)) for p in paths]


def read_json(path: Path) -> Any:
    """A JSON file's value, None when the file is absent."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def read_metrics(run: str | Path) -> dict[str, Any] | None:
    return read_json(metrics_path(run))


def write_metrics(run: str | Path, metrics: dict[str, Any]) -> None:
    write_text_atomic(metrics_path(run), json.dumps(metrics, indent=1) + "\n")


def is_finished(run: str | Path) -> bool:
    """A run is finished once its metrics are written (the last thing `train` does)."""
    return metrics_path(run).is_file()


def has_model(run: str | Path) -> bool:
    return (best_dir(run) / CONFIG).is_file()


def saved_model(path: str | Path) -> Path:
    """A run folder's best model, or a saved model folder itself."""
    folder = Path(path)
    if has_model(folder):
        folder = best_dir(folder)
    if not (folder / CONFIG).is_file():
        raise InputError(path, "expected a saved model folder (config.json + model.safetensors) or a run folder with best/")
    return folder


def timing_path(run: str | Path) -> Path:
    return Path(run) / TIMING


def check_run_folder(out_dir: Path) -> None:
    """A run writes into a new or empty folder, or into its own run folder (config.json there):
    never over a file, never among files that are not a run's, and never through a link: an entry
    of the run (checkpoint/, best/, ...) that is a symbolic link would take writing, checkpoint
    rotation and clearing out of the folder, into whatever it points to."""
    from .runlock import LOCK_NAME

    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "is a file; expected a run folder (created if missing)")
    if not out_dir.is_dir():
        return
    links = [name for name in (CONFIG, LOCK_NAME, *RUN_ENTRIES) if (out_dir / name).is_symlink()]
    if links:
        raise InputError(out_dir / links[0], f"is a symbolic link (to {os.readlink(out_dir / links[0])}); a run never "
                                             "writes or deletes through a link: remove the link or choose another folder")
    if not config_path(out_dir).is_file():
        clash = [name for name in RUN_ENTRIES if (out_dir / name).exists()]
        others = clash or sorted(p.name for p in out_dir.iterdir() if p.name != LOCK_NAME)
        if others:
            raise InputError(out_dir, f"holds {others[0]} but no config.json, so it is not a run folder of this tool "
                                      "and a run would write among files that are not its own; choose a new or "
                                      "empty folder")


def clear_results(run: str | Path) -> None:
    """Forget a finished run's results and resumable state, so it trains anew (its weights stay until
    the new best replaces them)."""
    import shutil

    shutil.rmtree(checkpoint_dir(run), ignore_errors=True)
    for stale in (METRICS, CURVE, TIMING):
        (Path(run) / stale).unlink(missing_ok=True)


INT_COLUMNS = ("step", "epoch")


def read_curve(run: str | Path, upto: int | None = None) -> list[dict[str, float]]:
    """The rows of RUN/curve.tsv (none if it is absent), up to step `upto` when given:
    a resumed run keeps only the rows its checkpoint had reached."""
    path = Path(run) / CURVE
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as f:
        rows = [{k: int(float(v)) if k in INT_COLUMNS else float(v) for k, v in row.items()}
                for row in csv.DictReader(f, delimiter="\t")]
    return rows if upto is None else [r for r in rows if r["step"] <= upto]


def write_curve(run: str | Path, rows: list[dict[str, float]]) -> None:
    """Write RUN/curve.tsv atomically: step and epoch first, then the loss parts by name."""
    names = sorted({k for r in rows for k in r}, key=lambda k: (k not in INT_COLUMNS, k))
    with atomic_path(Path(run) / CURVE) as tmp, tmp.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """What a training run left behind; a missing part is None (or [] for the curve).

    Keys: name, dir, config, metrics, curve, dev, test (the best model's ScoreTables).
    """
    run_dir = Path(run_dir)
    tables = {role: ScoreTable.load(scores_path(run_dir, role)) if scores_path(run_dir, role).is_file() else None
              for role in ("dev", "test")}
    return {"name": run_dir.name, "dir": run_dir, "config": read_json(config_path(run_dir)),
            "metrics": read_metrics(run_dir), "curve": read_curve(run_dir), **tables}


# --------------------------------------------------------------------------- a results folder
def run_dir(root: str | Path, kind: str, name: str, seed: int | None = None) -> Path:
    """ROOT/<kind>/<name>, or ROOT/<kind>/<name>/seed<s> in a multi-seed programme."""
    folder = Path(root) / kind / name
    return folder / f"seed{seed}" if seed is not None else folder


def is_seed_folder(folder: str | Path) -> bool:
    """Whether a folder is a run's seed<s> subfolder (run_dir with a seed)."""
    return re.fullmatch(r"seed[0-9]+", Path(folder).name) is not None


def teacher_scores_dir(root: str | Path, teacher: str) -> Path:
    return Path(root) / TEACHER_SCORES / teacher


def teacher_scores_ref(teacher: str, seed_folders: bool) -> str:
    """A `teachers` entry of a student's config: the teacher's tables relative to the run folder,
    so a results folder can move as a whole."""
    return f"{'../../../' if seed_folders else '../../'}{TEACHER_SCORES}/{teacher}"


def from_run(run: str | Path, ref: str) -> Path:
    """A path of a run's config (a `teachers` entry, `init_from`) resolved against the run folder,
    lexically (the run folder may not exist yet); an absolute path stays as it is."""
    return Path(os.path.normpath(Path(run) / ref))


def seed_run(root: str | Path, kind: str, name: str, seed: int = 0) -> Path:
    """The folder a reader opens for a run: ROOT/<kind>/<name>, or its seed<seed> subfolder where
    the run has one (a multi-seed programme's students; teachers train once)."""
    seeded = run_dir(root, kind, name, seed)
    return seeded if seeded.is_dir() else run_dir(root, kind, name)


def finished_runs(root: str | Path, kind: str, pattern: str = "*", seed: int = 0) -> list[str]:
    """Names of the finished runs of a kind (ROOT/<kind>/<name>, or its seed<seed> subfolder, with
    metrics), sorted."""
    folder = Path(root, kind)
    found = {p.parent.name for p in folder.glob(f"{pattern}/{METRICS}")}
    found |= {p.parent.parent.name for p in folder.glob(f"{pattern}/seed{seed}/{METRICS}")}
    return sorted(found)


def finished_seed_runs(root: str | Path, kind: str) -> list[tuple[str, int, Path]]:
    """(name, seed, folder) of every finished ROOT/<kind>/<name>/seed<s>, sorted."""
    found = []
    for path in Path(root, kind).glob(f"*/seed*/{METRICS}"):
        if is_seed_folder(path.parent):
            found.append((path.parent.parent.name, int(path.parent.name.removeprefix("seed")), path.parent))
    return sorted(found)


def finished_run_folders(root: str | Path) -> list[Path]:
    """Every finished run folder with a test score table anywhere under `root`, sorted."""
    found = (path.parent.parent for path in sorted(Path(root).rglob(f"{SCORES}/test.tsv")))
    return [run for run in found if config_path(run).is_file() and is_finished(run)]


def best_on_dev(runs: dict[str, Path]) -> str | None:
    """The run (by name) with the best pooled dev MAP, the one rule by which a teacher is chosen
    (never on test); None while any of them has no metrics."""
    dev = {}
    for name, run in runs.items():
        metrics = read_metrics(run)
        if not metrics:
            return None
        dev[name] = metrics["dev"]["pooled"]["map"]
    return max(dev, key=dev.get) if dev else None


def load_teacher_tables(root: str | Path, split: str) -> dict[str, ScoreTable]:
    """Every teacher's score table for `split` under ROOT/teacher_scores, by teacher name (sorted)."""
    folder = Path(root) / TEACHER_SCORES
    paths = sorted(folder.glob(f"*/{split}.tsv")) if folder.is_dir() else []
    return {p.parent.name: ScoreTable.load(p) for p in paths}


def teacher_architecture(run: dict[str, Any]) -> str:
    """The `model_type` of a teacher run's encoder (`load_run` output): what claim 4 calls its architecture.

    The saved model's config (best/config.json, `backbone.model_type`) answers without touching the
    model zoo; only a run without one falls back to the backbone named in its config.json.
    """
    saved = read_json(best_dir(run["dir"]) / CONFIG)
    if saved and isinstance(saved.get("backbone"), dict) and "model_type" in saved["backbone"]:
        return saved["backbone"]["model_type"]
    from ..model.zoo import resolve_model  # may unpack an embedded model: only when the saved config says nothing

    backbone = read_json(Path(resolve_model(run["config"]["backbone"])) / CONFIG)
    if backbone is None:
        raise ValueError(f"cannot tell the architecture of {run['dir']}: no best/config.json and no backbone config")
    return backbone["model_type"]
