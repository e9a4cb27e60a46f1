"""`Artifacts`: the cached, torch-free reader of a finished results folder that the figures, the
notebooks, the claims and the benchmarks share; everything it reads is data, never a model."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import analysis as an
from ..errors import InputError
from .artifacts import (BEST, DATASET_NAMES, METRICS, SPLIT, config_path, finished_runs, from_run, load_run,
                        load_teacher_tables, seed_run)
from .metrics import ranking_metrics
from .scores import ScoreTable


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
