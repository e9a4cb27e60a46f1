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
go through the helpers here. `Artifacts` is the cached, torch-free reader the figures and the
notebooks share; everything it reads is data, never a model.
"""
from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from . import analysis as an
from .atomic import atomic_path, write_text_atomic
from .errors import InputError
from .metrics import ranking_metrics
from .scores import ScoreTable

CONFIG, METRICS, BEST, CHECKPOINT = "config.json", "metrics.json", "best", "checkpoint"
CURVE, TRACE, SCORES = "curve.tsv", "trace", "scores"
TIMING = "timing.json"  # wall time and machine: the one run file that differs between identical runs
RUN_ENTRIES = (CHECKPOINT, BEST, TRACE, SCORES, CURVE, METRICS, TIMING)  # what a run writes besides its config
TEACHER_SCORES = "teacher_scores"
BENCH, RESULTS, CLAIMS, SWEEP = "bench.json", "results.md", "claims.json", "sweep.md"  # tables made from a results folder
ABLATION_TESTS = "ablation_tests.json"  # the ablations as paired tests (claims.build_ablation_tests)
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
    from .zoo import resolve_model  # may unpack an embedded model: only when the saved config says nothing

    backbone = read_json(Path(resolve_model(run["config"]["backbone"])) / CONFIG)
    if backbone is None:
        raise ValueError(f"cannot tell the architecture of {run['dir']}: no best/config.json and no backbone config")
    return backbone["model_type"]


def run_of(spec: str, root: str | Path) -> str | None:
    """The model a benchmark row measured, by the name figures and notebooks give it: a students/ or
    teachers/ run under `root`, an.TEACHER_ENSEMBLE for an ensemble of exactly the finished teachers,
    or None when the row names none of them (an ablation run, an architecture spec like NAME:B5-3H1).

    A row is named by its `building.load_model` spec: a run folder (`.../students/cerberus/best`), a bare
    run name (students first), or members joined by "+". Kept in one place so the notebook and the
    Pareto figure read bench.json the same way.
    """
    root = Path(root)
    if spec == an.TEACHER_ENSEMBLE:
        return spec
    if "+" in spec:
        members = [run_of(part, root) for part in spec.split("+")]
        teachers = set(finished_runs(root, "teachers"))
        return an.TEACHER_ENSEMBLE if len(members) > 1 and set(members) == teachers else None
    parts = list(Path(spec).parts)
    if not parts:
        return None
    if len(parts) > 1 and parts[-1] == BEST:
        parts.pop()
    kinds = [i for i, part in enumerate(parts[:-1]) if part in ("students", "teachers")]
    candidates = ([(parts[kinds[-1]], parts[kinds[-1] + 1])] if kinds
                  else [(kind, parts[-1]) for kind in ("students", "teachers")])
    for kind, name in candidates:
        if name in finished_runs(root, kind):
            return name
    return None


# --------------------------------------------------------------------------- the shared reader
class Missing(Exception):
    """A figure's inputs are not (yet) in the artifacts."""


class Artifacts:
    """Lazy, cached access to one artifacts root; every getter raises Missing when its input is absent.
    In a multi-seed programme (students/<name>/seed<s>) it reads the runs of one student seed."""

    def __init__(self, root: str | Path, seed: int = 0):
        self.root = Path(root)
        self.seed = seed
        self._runs: dict[Path, dict[str, Any]] = {}

    def run(self, kind: str, name: str) -> dict[str, Any]:
        path = seed_run(self.root, kind, name, self.seed)
        if path not in self._runs:
            self._runs[path] = {**load_run(path), "name": name}  # a seed folder is named after its run
        run = self._runs[path]
        if run["metrics"] is None:
            raise Missing(f"{kind}/{name} has no {METRICS} (not trained yet)")
        return run

    def table(self, run: dict[str, Any], split: str = SPLIT) -> ScoreTable:
        if run[split] is None:
            raise Missing(f"{run['dir']} has no scores/{split}.tsv")
        return run[split]

    def teacher_tables(self, split: str = SPLIT) -> dict[str, ScoreTable]:
        tables = load_teacher_tables(self.root, split)
        if not tables:
            raise Missing(f"no teacher_scores/*/{split}.tsv")
        return tables

    def names(self, kind: str, pattern: str = "*") -> list[str]:
        """Run folders of a kind that finished (at the reader's seed, where runs have seeds), sorted."""
        return finished_runs(self.root, kind, pattern, self.seed)

    def teacher_names(self, run: dict[str, Any]) -> list[str]:
        """The teachers a student learned from, in head order (folder names of its config)."""
        return [Path(t).name for t in run["config"].get("teachers", [])]

    def head_labels(self, run: dict[str, Any], heads: list[str]) -> list[str]:
        """"head0 ← teacher" for the strategies that give each head a teacher, else the bare names."""
        taught, cfg = self.teacher_names(run), run["config"]
        if cfg["strategy"] == "cerberus" and len(taught) == len(heads):
            return [f"{h} ← {t}" for h, t in zip(heads, taught)]
        if cfg["strategy"] == "replicated" and cfg.get("teacher_index") is not None:
            return [f"{h} ← {taught[cfg['teacher_index']]}" for h in heads]
        return heads

    def taught_by(self, run: dict[str, Any]) -> str:
        """Who a student learned from, in words: one teacher (single, replicated), all of them joined by
        "+" (cerberus, ensemble), or the gold labels only."""
        names, cfg = self.teacher_names(run), run["config"]
        if cfg["strategy"] == "gold":
            return "gold labels only"
        return names[cfg["teacher_index"]] if cfg["strategy"] in ("single", "replicated") else "+".join(names)

    def separate_students(self, split: str = SPLIT) -> dict[str, float]:
        """The single-teacher KD students taken together as if they were one student's heads, each
        with its own teacher (`analysis.head_diversity`, S included): how far the same student follows
        each teacher when it has a body of its own. The reference for CERBERUS's heads, which share one:
        one student per CERBERUS teacher, in head order; Missing until CERBERUS and all of them have
        finished at the reader's seed."""
        cerberus = self.run("students", "cerberus")
        names = self.teacher_names(cerberus)
        runs = [self.run("students", f"single-{t}") for t in names]
        if len({r["dir"].name == f"seed{self.seed}" for r in [cerberus, *runs]}) > 1:  # a flat run beside seed folders
            raise Missing(f"students/cerberus and single-* are not all runs of seed {self.seed}")
        teachers, students = {}, {}
        for t, r in zip(names, runs):
            folder = r["config"]["teachers"][r["config"]["teacher_index"]]
            if Path(folder).name != t:
                raise InputError(config_path(r["dir"]), f"single-{t} learned from {folder}; expected teacher {t}")
            teachers[t] = ScoreTable.load(from_run(r["dir"], folder) / f"{split}.tsv")
            students[t] = self.table(r, split)
        reference = students[names[0]]
        _, heads = an.score_matrix(students, "head0", reference=reference)  # logit margins, as for heads
        _, teacher_margins = an.score_matrix(teachers, reference=reference)
        return an.head_diversity(reference.qids, reference.cand_idx, heads, teacher_margins)

    def teacher_ensemble(self, split: str = SPLIT) -> tuple[ScoreTable, np.ndarray]:
        """The finished teachers' mean positive probability per pair (`analysis.teacher_ensemble` of
        their cached scores), with the table whose qids and labels it follows."""
        tables, teachers = self.teacher_tables(split), self.names("teachers")
        if len(teachers) < 2 or not set(teachers) <= set(tables):
            raise Missing(f"the teacher ensemble needs at least two teachers with scores ({teachers})")
        return an.teacher_ensemble({t: tables[t] for t in teachers})

    def quality(self, name: str, metric: str = "map", split: str = SPLIT) -> float:
        """`metric` of a student run, a teacher run or `an.TEACHER_ENSEMBLE` (what `run_of` names)."""
        if name == an.TEACHER_ENSEMBLE:
            ref, probs = self.teacher_ensemble(split)
            return ranking_metrics(ref.qids, ref.labels, probs)[metric]
        kind = "students" if name in self.names("students") else "teachers"
        return self.run(kind, name)["metrics"][split]["pooled"][metric]

    def replicated(self) -> str:
        names = self.names("students", "replicated-*")
        if not names:
            raise Missing("no students/replicated-* run")
        return names[0]

    def correct_rank(self, table: ScoreTable, qid: str, column: str = "score") -> int:
        """Where a scorer puts a question's first correct candidate (1 = on top; ties by index, as
        the metrics break them), or 0 when the question has none."""
        rows = np.flatnonzero(np.asarray(table.qids) == qid)
        order = rows[np.lexsort((table.cand_idx[rows], -table.columns[column][rows]))]
        hits = np.flatnonzero(table.labels[order])
        return int(hits[0]) + 1 if len(hits) else 0

    def example_question(self, split: str = "dev", fewest: int = 4, most: int = 8) -> dict[str, Any]:
        """A question to teach with: one correct candidate among `fewest`..`most` that every teacher
        ranks first (else as many as possible), the fewest candidates first, then by qid; and the
        teacher to show (the best on dev). Returns {"qid", "teacher", "ranks": teacher -> rank of the
        correct candidate, "candidates"}."""
        tables = self.teacher_tables(split)
        ref = next(iter(tables.values()))
        qids = np.asarray(ref.qids)
        options = []
        for qid in dict.fromkeys(ref.qids):
            labels = ref.labels[qids == qid]
            if labels.sum() != 1:
                continue
            ranks = {t: self.correct_rank(table, qid) for t, table in tables.items()}
            fits = fewest <= len(labels) <= most
            options.append((-sum(r == 1 for r in ranks.values()), not fits, len(labels), qid, ranks))
        if not options:
            raise Missing(f"no {split} question with exactly one correct candidate")
        _, _, n, qid, ranks = min(options, key=lambda o: o[:4])
        dev = {t: self.run("teachers", t)["metrics"].get("dev", {}).get("pooled", {}).get("map") for t in tables
               if t in self.names("teachers")}
        dev = {t: v for t, v in dev.items() if v is not None}
        teacher = max(dev, key=dev.get) if dev else next(iter(tables))
        return {"qid": qid, "teacher": teacher, "ranks": ranks, "candidates": n}

    def where(self, split: str = SPLIT, with_seed: bool = True) -> str:
        """The dataset and split every figure title names: "WikiQA test, 237 questions" (the clean
        questions the metrics count), read from the first finished run."""
        for kind in ("students", "teachers"):
            for name in self.names(kind):
                run = self.run(kind, name)
                dataset = DATASET_NAMES.get(run["config"].get("dataset"), run["config"].get("dataset", "?"))
                n = (run["metrics"].get(split) or {}).get("pooled", {}).get("n_questions")
                seeded = with_seed and kind == "students" and run["dir"].name == f"seed{self.seed}"
                return f"{dataset} {split}" + (f", {n} questions" if n else "") + (f", seed {self.seed}" if seeded else "")
        raise Missing("no finished run")

    def label(self, kind: str, name: str) -> str:
        """A run in words, so the student distilled from the averaged teachers ("ensemble") is never
        read as the teacher ensemble: "teacher minilm-l3", "KD from the teachers' mean (B5 1H1)"."""
        if name == an.TEACHER_ENSEMBLE:
            return "teacher ensemble (mean prob.)"
        if kind == "teachers":
            return f"teacher {name}"
        run = self.run(kind, name)
        cfg, model = run["config"], run["metrics"]["model"]
        taught = self.teacher_names(run)
        what = {"gold": "gold labels only",
                "single": f"KD from {self.taught_by(run)}",
                "ensemble": "KD from the teachers' mean",
                "replicated": f"replicated: every head ← {self.taught_by(run)}",
                "cerberus": f"CERBERUS: {len(taught)} heads ← {len(taught)} teachers"}.get(cfg["strategy"], name)
        return f"{what} ({model})"

    def architecture(self, kind: str, name: str) -> tuple[str, str]:
        """(backbone, "B_b kH_h") of a finished run: runs that share it cost the same to run."""
        run = self.run(kind, name)
        return Path(run["config"].get("backbone", "")).name, run["metrics"]["model"]

    def architectures(self) -> dict[str, list[str]]:
        """Finished students grouped by architecture (backbone and B_b kH_h): they cost the same, so
        their timings differ only by noise. Label -> student names; CERBERUS's group first; a group of
        one is labelled by its student."""
        groups: dict[tuple[str, str], list[str]] = {}
        for name in sorted(self.names("students"), key=lambda n: (n != "cerberus", n)):
            groups.setdefault(self.architecture("students", name), []).append(name)
        models = [m for _, m in groups]
        return {(members[0] if len(members) == 1 else
                 f"{model} students" + (f" on {backbone}" if models.count(model) > 1 else "")): members
                for (backbone, model), members in groups.items()}

    def architecture_points(self, latency: dict[str, float], metric: str = "map", split: str = SPLIT) -> dict[str, Any]:
        """One point per teacher, for the teacher ensemble and per student architecture, for the
        quality-cost plot. `latency` maps a model (a run_of name) to its measured latency. Models of
        one architecture (a teacher included: teacher minilm-l6 is the gold student's architecture)
        take the median latency of the timed ones, since their timings differ only by noise, which
        made the front zigzag; a student architecture's quality is the median over its students,
        with their range and every member kept. Models of an architecture nobody timed are left out."""
        kinds = {**{t: "teachers" for t in self.names("teachers")}, **{s: "students" for s in self.names("students")}}
        timed: dict[tuple[str, str], list[float]] = {}
        for model, ms in latency.items():
            if model in kinds:
                timed.setdefault(self.architecture(kinds[model], model), []).append(ms)
        cost = {arch: float(np.median(values)) for arch, values in timed.items()}

        def point(label: str, members: list[str], ms: float | None) -> dict[str, Any] | None:
            if ms is None:
                return None
            quality = {m: self.quality(m, metric, split) for m in members}
            return {"name": label, "latency_ms": ms, metric: float(np.median(list(quality.values()))),
                    "range": [min(quality.values()), max(quality.values())],
                    "members": [[m, q] for m, q in quality.items()]}

        points = [point(self.label("teachers", t), [t], cost.get(self.architecture("teachers", t)))
                  for t in self.names("teachers")]
        points.append(point(self.label("teachers", an.TEACHER_ENSEMBLE), [an.TEACHER_ENSEMBLE],
                            latency.get(an.TEACHER_ENSEMBLE)))
        for label, members in self.architectures().items():
            points.append(point(label if len(members) > 1 else self.label("students", members[0]), members,
                                cost.get(self.architecture("students", members[0]))))
        points = [p for p in points if p is not None]
        if not points:
            raise Missing("no model with both a latency and a quality")
        front = an.pareto_front([(p["latency_ms"], p[metric]) for p in points])
        return {"points": points, "front": [points[i]["name"] for i in front], "front_index": front}

    def sweep_points(self, split: str = "dev") -> dict[str, Any]:
        """The recipe sweep (ROOT/sweep) on `split` (dev: where a recipe is chosen): per run its pooled
        MAP and its heads' diversity against its own teachers' tables (S, head-head r, top-1
        disagreement); and the teachers' own head-head r and top-1 disagreement."""
        points, teachers, loaded = [], {}, {}
        for name in self.names("sweep"):
            run = self.run("sweep", name)
            paths = [from_run(run["dir"], f) / f"{split}.tsv" for f in run["config"]["teachers"]]
            for path in paths:  # runs share their teachers: each table is read once
                if path not in loaded:
                    loaded[path] = ScoreTable.load(path)
            tables = [loaded[path] for path in paths]
            found = an.run_head_diversity(self.table(run, split), tables)
            points.append({"name": name, "map": run["metrics"][split]["pooled"]["map"],
                           **{k: found[k] for k in ("specialization", "head_head_r", "head_top1_disagreement")}})
            teachers = {k: found[k] for k in ("teacher_teacher_r", "teacher_top1_disagreement")}
        if not points:
            raise Missing("no finished sweep/ run")
        return {"points": points, "teachers": teachers}
