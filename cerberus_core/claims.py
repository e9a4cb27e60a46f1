"""The claims of `method.md`, tested on every seed a results folder holds: one table, one command.

    python -m cerberus_core claims --root artifacts/full      # prints, writes ROOT/claims.json

A run is a finished run folder with test scores (artifacts.py); runs of one dataset and one
name (config fields `dataset`, `name`) are the seeds of one system, and must share every other
config field. A transfer preset's runs (artifacts/v2/trecqa) sit in a subfolder of the root, so
one command tests every dataset, and the Holm family spans them all.
A comparison pairs the seeds the two systems share (a teacher, trained once, pairs with
every seed); with none shared, or a side with no finished run, the row is "not tested". Per question, the test AP difference is averaged over those seeds; the mean of
that is the MAP difference, its 95% interval a bootstrap over questions, its p a two-sided
sign-flip permutation test over questions (seeds fixed, questions the sample: the test set is
what varies between papers). Claim 5 compares the specialization S of CERBERUS and of the
replicated control, with a bootstrap over questions. The p values of all comparisons are
Holm-corrected together; a p at the floor of its test (two-sided: 2/(N+1)) is a bound, reported
as "< bound".

Verdicts: "supported" (corrected p < alpha, difference in the claimed direction),
"contradicted" (corrected p < alpha, the other direction), "not supported" (otherwise);
claim 6 ("rivals the large models") is a non-inferiority claim: supported when the interval's
lower end is above -MARGIN and the cost ratios from bench.json are below 1.

The ablations (`build_ablation_tests`, ROOT/ablation_tests.json) are tested the same way, but as
a Holm family of their own: they are exploratory, not claims of method.md, and adding them to the
claims' family would move the claims' corrected p. Head count: CERBERUS on every teacher against
CERBERUS on each teacher subset, and the subset against KD from its best teacher on dev; body/head
split: each split against CERBERUS, on test MAP and on S. An ablation that cannot be paired with
CERBERUS (other teachers, no shared seed) gets a "not tested" row with the reason. Unlike the
claims, ablation_tests.json keeps no saved rows: it is rebuilt from the runs there are (the
ablations are WikiQA runs, whose tables a clean clone has).

`recompute` checks a saved claims.json on a machine that lacks some datasets' tables (a clean
clone has no TREC-QA tables: licence): what can be measured is measured again, the rest is taken
as saved, and the correction and verdicts are recomputed over the whole family.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import artifacts
from .analysis import MAIN_SCORES, mean_sd, own_teacher_is_closest, score_matrix, specialization
from .config import TrainConfig
from .errors import InputError
from .metrics import bootstrap_ci, paired_test, ranking_metrics
from .scores import ScoreTable

N_PERMUTATIONS = 10_000
N_BOOTSTRAP = 1000
ALPHA = 0.05
MARGIN = 0.01  # claim 6: "rivals" = test MAP no more than one point below the best teacher


@dataclass
class System:
    """All seeds of one named run: folder, config and test table per seed."""

    name: str
    runs: dict[int, Path]
    config: dict[str, Any]

    def table(self, seed: int) -> ScoreTable:
        return ScoreTable.load(artifacts.scores_path(self.runs[seed], "test"))


def find_systems(root: str | Path) -> dict[str, dict[str, System]]:
    """Every finished run under `root`, grouped by dataset (a transfer preset's runs sit in a
    subfolder), then by name; within a dataset, one name must be one experiment."""
    found: dict[str, dict[str, System]] = {}
    for run in artifacts.finished_run_folders(root):
        config = artifacts.read_json(artifacts.config_path(run))
        seed, rest = config.get("seed", 0), {k: v for k, v in config.items() if k not in ("seed",)}
        if isinstance(rest.get("init_from"), str):  # a transferred seed starts from the source's same seed
            rest["init_from"] = re.sub(rf"/seed{seed}(?=/|$)", "/seed<s>", rest["init_from"])
        systems = found.setdefault(config.get("dataset", TrainConfig().dataset), {})
        system = systems.setdefault(config["name"], System(config["name"], {}, rest))
        if rest != system.config:
            raise InputError(artifacts.config_path(run), f"run {config['name']!r} differs from {system.runs[min(system.runs)]} "
                                                  "in more than its seed; give different experiments different names")
        if seed in system.runs:
            raise InputError(artifacts.config_path(run), f"seed {seed} of {config['name']!r} is also in {system.runs[seed]}")
        system.runs[seed] = run
    return found


def _per_question_ap(table: ScoreTable) -> tuple[np.ndarray, np.ndarray]:
    """AP per question of the column that ranks (a student's "pooled", a teacher's "score")."""
    column = next(c for c in MAIN_SCORES if c in table.columns)
    m = ranking_metrics(table.qids, table.labels, table.columns[column], cand_idx=table.cand_idx)
    return m["per_question"]["qid"], m["per_question"]["ap"]


def _seeds(a: System, b: System) -> list[tuple[int, int]]:
    """(seed of a, seed of b) pairs: shared seeds, or every seed of a against a single-run b."""
    if len(b.runs) == 1 and b.name.startswith("teacher-"):
        return [(s, next(iter(b.runs))) for s in sorted(a.runs)]
    return [(s, s) for s in sorted(set(a.runs) & set(b.runs))]


def compare_map(a: System, b: System, seed: int = 0) -> dict[str, Any]:
    """Mean test MAP difference a - b over paired seeds, 95% interval and permutation p."""
    pairs = _seeds(a, b)
    if not pairs:
        raise InputError(None, f"{a.name!r} and {b.name!r} share no seed")
    diffs, maps_a, maps_b, qids = [], [], [], None
    for sa, sb in pairs:
        qa, ap_a = _per_question_ap(a.table(sa))
        qb, ap_b = _per_question_ap(b.table(sb))
        if not np.array_equal(qa, qb) or (qids is not None and not np.array_equal(qids, qa)):
            raise InputError(a.runs[sa], f"{a.name!r} and {b.name!r} were tested on different questions")
        qids = qa
        diffs.append(ap_a - ap_b)
        maps_a.append(ap_a.mean())
        maps_b.append(ap_b.mean())
    d = np.mean(diffs, axis=0)  # per question, averaged over seeds
    test = paired_test(d, np.zeros_like(d), n_resamples=N_PERMUTATIONS, seed=seed)
    return {"n_seeds": len(pairs), "n_questions": len(d), "delta_map": float(d.mean()),
            "ci95": list(bootstrap_ci(d, n_resamples=N_BOOTSTRAP, seed=seed)), "p": test["p_value"],
            "map_a": mean_sd(maps_a), "map_b": mean_sd(maps_b)}


def _specialization_samples(system: System, seed: int, teachers: list[ScoreTable],
                            samples: np.ndarray) -> np.ndarray:
    """S of one run on the full test set (first) and on each bootstrap resample of its questions."""
    table = system.table(seed)
    _, heads = score_matrix(table, table.head_columns())
    named = {f"t{j}": t for j, t in enumerate(teachers)}
    _, teach = score_matrix(named, "score", reference=table)
    _, group = np.unique(table.qids, return_inverse=True)
    rows_of = [np.flatnonzero(group == g) for g in range(group.max() + 1)]
    k = heads.shape[1]

    def agreement(rows: np.ndarray | slice) -> np.ndarray:  # Pearson head x teacher block of one corrcoef
        return np.corrcoef(heads[rows], teach[rows], rowvar=False)[:k, k:]

    values = [specialization(agreement(slice(None)))]
    values += [specialization(agreement(np.concatenate([rows_of[q] for q in questions]))) for questions in samples]
    return np.array(values), own_teacher_is_closest(agreement(slice(None)))


def compare_specialization(a: System, b: System, teachers: list[ScoreTable], seed: int = 0) -> dict[str, Any]:
    """S(a) - S(b) averaged over shared seeds; interval and two-sided p from one bootstrap over questions."""
    pairs = _seeds(a, b)
    if not pairs:
        raise InputError(None, f"{a.name!r} and {b.name!r} share no seed")
    n_questions = len(np.unique(a.table(pairs[0][0]).qids))
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, n_questions, size=(N_BOOTSTRAP, n_questions))
    runs_a = [_specialization_samples(a, sa, teachers, samples) for sa, _ in pairs]
    s_a = np.array([values for values, _ in runs_a])
    s_b = np.array([_specialization_samples(b, sb, teachers, samples)[0] for _, sb in pairs])
    closest = [c for _, own in runs_a for c in own]
    diff = (s_a - s_b).mean(axis=0)  # [full, resample 1..N]
    boot = diff[1:]
    p = min(1.0, 2 * (1 + min((boot <= 0).sum(), (boot >= 0).sum())) / (1 + len(boot)))
    return {"n_seeds": len(pairs), "n_questions": n_questions, "delta_specialization": float(diff[0]),
            "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))], "p": p,
            "specialization_a": mean_sd(s_a[:, 0]), "specialization_b": mean_sd(s_b[:, 0]),
            "own_teacher_closest": float(np.mean(closest))}  # share of (seed, head) of a closest to its teacher


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p values (same order as given)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def p_floor(test: str) -> float:
    """The smallest p a test can give: two-sided, twice the smaller one-sided (count + 1) / (N + 1),
    so 2 / (N + 1) for N permutations ("map") or bootstrap resamples ("specialization")."""
    return 2 / ((N_PERMUTATIONS if test == "map" else N_BOOTSTRAP) + 1)


def format_p(p_holm: float, raw: float, floor: float) -> str:
    """A raw p at the floor of its test (2/(N+1), two-sided) is a bound, not an estimate, and so
    is its corrected value: "< bound"."""
    return f"< {p_holm:.2g}" if raw <= floor * (1 + 1e-9) else f"{p_holm:.3g}"


def _cost(root: Path, best: str) -> dict[str, Any] | None:
    """CERBERUS's parameters and latency as fractions of the best teacher's, from the fp32 rows
    of bench.json (rows are named by the model folder they timed)."""
    bench = root / artifacts.BENCH
    if not bench.is_file():
        return None
    rows = [r for r in json.loads(bench.read_text())["rows"] if r.get("precision", "fp32") == "fp32"]
    ours = next((r for r in rows if artifacts.run_of(r["name"], root) == "cerberus"), None)
    big = next((r for r in rows if "teachers" in Path(r["name"]).parts and artifacts.run_of(r["name"], root) == best), None)
    if ours is None or big is None:
        return None
    return {"params_fraction": ours["parameters"] / big["parameters"],
            "latency_fraction": ours["latency_ms"] / big["latency_ms"], "vs": big["name"]}


COMPARISONS = (  # (claim id, statement template, system a, system b)
    ("1", "CERBERUS beats knowledge distillation from the single teacher {t}", "cerberus", "single-{t}"),
    ("1", "CERBERUS beats distillation of the averaged teacher ensemble into one head", "cerberus", "ensemble"),
    ("2", "k heads, one per teacher, beat one head taught by all teachers (ensemble KD) at the same teachers",
     "cerberus", "ensemble"),
    ("3", "k heads taught by k teachers beat k heads taught by one (the best teacher on dev, {best})",
     "cerberus", "replicated-{best}"),
)


def build_claims(root: str | Path, seed: int = 0) -> dict[str, Any]:
    """Every testable comparison of method.md's claims on the runs under `root`, per dataset; the
    comparisons of all datasets are one family for the Holm correction."""
    return correct_claims(root, measure_claims(root, seed))


def measure_claims(root: str | Path, seed: int = 0) -> list[dict[str, Any]]:
    """The rows of every dataset under `root` with a finished CERBERUS, before the correction:
    each comparison's difference, interval and raw p (each distinct comparison computed once)."""
    root = Path(root)
    datasets = {d: systems for d, systems in find_systems(root).items() if "cerberus" in systems}
    if not datasets:
        raise InputError(root, "no finished 'cerberus' run (its config, metrics and test scores) under it")
    rows: list[dict[str, Any]] = []
    done: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for dataset, systems in datasets.items():
        rows += _dataset_claims(root, dataset, systems, seed, done)
    return rows


def _key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    return row["dataset"], row["a"], row["b"], row["test"]


def correct_claims(root: str | Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Holm over the distinct comparisons of all `rows` (a comparison listed under two claims is one
    test of the family), then each tested row's verdict. Reads nothing but the rows."""
    rows = [dict(r) for r in rows]
    tested = [r for r in rows if "p" in r]
    unique = list(dict.fromkeys(_key(r) for r in tested))
    raw = {_key(r): r["p"] for r in tested}
    corrected = dict(zip(unique, holm([raw[key] for key in unique])))
    for row in tested:
        row["p_holm"] = p_holm = corrected[_key(row)]
        row["p_holm_display"] = format_p(p_holm, row["p"], p_floor(row["test"]))
        delta = row.get("delta_map", row.get("delta_specialization"))
        if row["id"] == "6":  # non-inferiority at a fraction of the cost
            cost = row["cost"]
            cheap = cost is not None and cost["params_fraction"] < 1 and cost["latency_fraction"] < 1
            row["verdict"] = ("supported" if row["ci95"][0] > -MARGIN and cheap else
                              "contradicted" if p_holm < ALPHA and delta < 0 else "not supported")
        else:
            row["verdict"] = ("not supported" if p_holm >= ALPHA else "supported" if delta > 0 else "contradicted")
        if row["id"] == "5" and row["verdict"] == "supported" and row["own_teacher_closest"] < 1:
            row["verdict"] = "not supported"  # S above the control, yet not every head is closest to its own teacher
            row["reason"] = (f"only {row['own_teacher_closest']:.0%} of the heads (over seeds) are closest to their "
                             "own teacher")
    return {"root": str(root), "alpha": ALPHA, "correction": f"Holm over the {len(unique)} distinct comparisons",
            "permutations": N_PERMUTATIONS, "bootstrap_resamples": N_BOOTSTRAP, "claims": rows}


def _measured(row: dict[str, Any]) -> dict[str, Any]:
    """A saved row as measure_claims made it: a tested row's verdict (and its reason) is the correction's."""
    dropped = ("p_holm", "p_holm_display", "verdict", "reason") if "p" in row else ()
    return {k: v for k, v in row.items() if k not in dropped}


def recompute(saved: dict[str, Any], root: str | Path | None = None,
              seed: int = 0) -> tuple[dict[str, Any], list[str]]:
    """A saved claims.json rebuilt from the runs that are here (under `root`, default the one it was
    made from), and the datasets that were.

    A dataset whose test tables are not here (TREC-QA's are never committed: licence) keeps its saved
    measured rows; the Holm correction and every verdict are recomputed over the whole family all the
    same. So on a clean clone the result equals `saved` only if every dataset that can be measured
    measures the same and the correction follows from the rows."""
    root = saved["root"] if root is None else str(root)
    here = measure_claims(root, seed)
    measured = {r["dataset"] for r in here}
    kept = [_measured(r) for r in saved["claims"] if r["dataset"] not in measured]
    datasets = list(dict.fromkeys(r["dataset"] for r in [*saved["claims"], *here]))
    rows = [r for d in datasets for r in (here if d in measured else kept) if r["dataset"] == d]
    return correct_claims(root, rows), sorted(measured)


def update_claims(root: str | Path, seed: int = 0) -> tuple[dict[str, Any], list[str]]:
    """What `claims --root ROOT` writes, and the datasets it kept as saved: build_claims, except that
    a dataset of an existing ROOT/claims.json whose runs are not here keeps its rows (recompute), so
    a clone without the TREC-QA tables does not drop them and change every corrected p."""
    saved = artifacts.read_json(Path(root) / artifacts.CLAIMS)
    if saved:
        result, measured = recompute(saved, root, seed)
        kept = sorted({r["dataset"] for r in saved["claims"]} - set(measured))
        if kept:
            return result, kept
    return build_claims(root, seed), []


def _compare_row(systems: dict[str, System], dataset: str, done: dict[tuple[str, str, str, str], dict[str, Any]],
                 seed: int, claim: str, statement: str, a: str, b: str, kind: str = "map",
                 teachers: list[ScoreTable] | None = None) -> dict[str, Any]:
    """One row: a against b on test MAP (or S, against `teachers`), computed once per distinct
    comparison (into `done`); "not tested" when a side has no finished run or the sides share no seed
    (a not-tested row has no p and stays out of the Holm family)."""
    if a not in systems or b not in systems:
        missing = [n for n in (a, b) if n not in systems]
        return _not_tested(claim, dataset, statement, f"no finished run named {', '.join(map(repr, missing))}")
    pairs = _seeds(systems[a], systems[b])
    if not pairs:
        return _not_tested(claim, dataset, statement, f"{a!r} (seeds {sorted(systems[a].runs)}) and {b!r} "
                                                      f"(seeds {sorted(systems[b].runs)}) share no seed")
    key = (dataset, a, b, kind)
    if key not in done:
        done[key] = (compare_map(systems[a], systems[b], seed) if kind == "map" else
                     compare_specialization(systems[a], systems[b], teachers, seed))
    return {"id": claim, "dataset": dataset, "statement": statement, "a": a, "b": b,
            "runs": {"a": [str(systems[a].runs[s]) for s, _ in pairs],
                     "b": sorted({str(systems[b].runs[s]) for _, s in pairs})},
            "test": kind, **done[key]}


def _not_tested(claim: str, dataset: str, statement: str, reason: str) -> dict[str, Any]:
    return {"id": claim, "dataset": dataset, "statement": statement, "runs": {"a": [], "b": []},
            "verdict": "not tested", "reason": reason}


def _best_teacher(systems: dict[str, System], teacher_names: Sequence[str]) -> str:
    """The teacher with the best dev MAP among `teacher_names` ("" while any has no metrics)."""
    return artifacts.best_on_dev({t: systems[f"teacher-{t}"].runs[min(systems[f"teacher-{t}"].runs)]
                                  for t in teacher_names if f"teacher-{t}" in systems}) or ""


def _dataset_claims(root: Path, dataset: str, systems: dict[str, System], seed: int,
                    done: dict[tuple[str, str, str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of one dataset; each distinct comparison is computed once, into `done`."""
    teacher_names = [Path(t).name for t in systems["cerberus"].config["teachers"]]
    best = _best_teacher(systems, teacher_names)
    rows: list[dict[str, Any]] = []

    def add(claim: str, statement: str, a: str, b: str, kind: str = "map", **extra: Any) -> None:
        rows.append(_compare_row(systems, dataset, done, seed, claim, statement, a, b, kind, extra.get("teachers")))

    for claim, template, a, b in COMPARISONS:
        for t in teacher_names if "{t}" in template else [None]:
            add(claim, template.format(t=t, best=best), a, b.format(t=t, best=best))
    rows.append(_not_tested("4", dataset, "heterogeneous teachers beat homogeneous ones",
                            "the embedded teachers differ in family and in strength at once, so no pair of "
                            "teacher sets isolates heterogeneity"))
    teacher_tables = [_teacher_table(systems, t) for t in systems["cerberus"].config["teachers"]]
    add("5", "the heads stay diverse, each closest to its own teacher: specialization S of CERBERUS above "
             f"that of the replicated control (replicated-{best})", "cerberus", f"replicated-{best}",
        kind="specialization", teachers=teacher_tables)
    add("6", f"CERBERUS rivals the best teacher on dev ({best}) in test MAP (at most {MARGIN} below) at a "
             "fraction of its parameters and latency", "cerberus", f"teacher-{best}")
    for row in rows:
        if row["id"] == "6" and "p" in row:  # the cost of the same architectures, timed on the root's runs
            row["cost"] = _cost(root, best)
    return rows


SUBSET_RUN = re.compile(r"cerberus-.+\+.+")  # the head-count ablation: CERBERUS on a teacher subset
SPLIT_RUN = re.compile(r"cerberus-B\d+H\d+")  # the body/head-split ablation


def build_ablation_tests(root: str | Path, seed: int = 0) -> dict[str, Any] | None:
    """The ablations as paired tests, in the claims' format (ROOT/ablation_tests.json): exploratory,
    not claims of method.md, so Holm-corrected as a family of their own (adding them to the claims'
    family would change the claims' corrected p). Per dataset with ablation runs:
    - head count: CERBERUS on all k teachers against CERBERUS on each subset, and each subset run
      against KD (one head) from the best of its teachers on dev;
    - body/head split: each B<n> kH<h> against CERBERUS, on test MAP and on S.
    None where there are no ablation runs (cerberus-A+B, cerberus-B<n>H<h>) beside a finished CERBERUS."""
    root = Path(root)
    rows: list[dict[str, Any]] = []
    done: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for dataset, systems in find_systems(root).items():
        subsets = sorted(n for n in systems if SUBSET_RUN.fullmatch(n))
        splits = sorted(n for n in systems if SPLIT_RUN.fullmatch(n))
        if "cerberus" in systems:  # (TREC-QA has no ablations, and no teacher tables on a clean clone)
            rows += _subset_rows(systems, dataset, done, seed, subsets) + _split_rows(systems, dataset, done, seed, splits)
    if not rows:
        return None
    result = correct_claims(root, rows)
    result["correction"] += " of the ablations (exploratory: a family of their own, apart from the claims)"
    return result


def _subset_rows(systems: dict[str, System], dataset: str, done: dict[tuple[str, str, str, str], dict[str, Any]],
                 seed: int, subsets: list[str]) -> list[dict[str, Any]]:
    """Head count: CERBERUS on every teacher against each subset run, the subset run against KD from its
    best teacher on dev (not tested until every teacher of the subset has a finished run). Runs taught
    by a teacher CERBERUS does not have, by all of its teachers or by one teacher twice are not subsets,
    and are not tested."""
    main = systems["cerberus"]
    k = len(main.config["teachers"])
    rows = []
    for name in subsets:
        subset = [Path(t).name for t in systems[name].config["teachers"]]
        named = " + ".join(subset)
        statements = (f"CERBERUS on all {k} teachers beats CERBERUS on {named}",
                      f"CERBERUS on {named} beats KD from the best of them on dev")
        folders = _teacher_folders(systems[name])
        if len(set(folders)) < len(folders) or not set(folders) < set(_teacher_folders(main)):
            rows += [_not_tested("k", dataset, s, "its teachers are not a subset of CERBERUS's (fewer, each once)")
                     for s in statements]
            continue
        rows.append(_compare_row(systems, dataset, done, seed, "k", statements[0], "cerberus", name))
        missing = [t for t in subset if f"teacher-{t}" not in systems]
        best = "" if missing else _best_teacher(systems, subset)
        statement = f"{statements[1]} ({best or '?'})"
        reason = (f"no finished teacher run of {', '.join(missing)}" if missing else
                  f"no dev MAP in the metrics of a teacher of {named}")
        rows.append(_compare_row(systems, dataset, done, seed, "k", statement, name, f"single-{best}") if best else
                    _not_tested("k", dataset, statement, reason))
    return rows


def _split_rows(systems: dict[str, System], dataset: str, done: dict[tuple[str, str, str, str], dict[str, Any]],
                seed: int, splits: list[str]) -> list[dict[str, Any]]:
    """Body/head split: each split run against CERBERUS on test MAP and on S; a split run taught by
    other teachers than CERBERUS is not comparable and is not tested."""
    main = systems["cerberus"]
    teachers: list[ScoreTable] = []  # loaded at the first split that is tested
    rows = []
    for name in splits:
        split, main_model = _architecture(systems[name]), _architecture(main)
        statements = (f"{split} beats {main_model} (CERBERUS) in test MAP",
                      f"{split} has a higher specialization S than {main_model} (CERBERUS)")
        if _teacher_folders(systems[name]) != _teacher_folders(main):
            rows += [_not_tested("split", dataset, s, "its teachers are not CERBERUS's") for s in statements]
            continue
        teachers = teachers or [_teacher_table(systems, t) for t in main.config["teachers"]]
        rows.append(_compare_row(systems, dataset, done, seed, "split", statements[0], name, "cerberus"))
        rows.append(_compare_row(systems, dataset, done, seed, "split", statements[1], name, "cerberus",
                                 "specialization", teachers))
    return rows


def _teacher_folders(system: System) -> list[Path]:
    """The teacher folders a run's config names, resolved from its folder (configs name them relative
    to the run, so the same teacher is spelt differently at different depths)."""
    run = system.runs[min(system.runs)]
    return [artifacts.from_run(run, t).resolve() for t in system.config["teachers"]]


def _architecture(system: System) -> str:
    """B<body> <k>H<head>, as the run's metrics.json names its model."""
    return artifacts.read_metrics(system.runs[min(system.runs)])["model"]


def _teacher_table(systems: dict[str, System], folder: str) -> ScoreTable:
    """The test margins CERBERUS's teacher `folder` (a `teachers` entry of its config) gave: the
    cached table the student was trained from."""
    student = systems["cerberus"]
    run = student.runs[min(student.runs)]
    return ScoreTable.load(artifacts.from_run(run, folder) / f"{student.config.get('test_split', 'test')}.tsv")


def format_claims_table(result: dict[str, Any]) -> str:
    """Markdown: one row per comparison, as the README shows it."""
    lines = ["| claim | dataset | statement | seeds | difference [95% CI] | p (Holm) | verdict |",
             "|---|---|---|---|---|---|---|"]
    for r in result["claims"]:
        if "p" not in r:
            lines.append(f"| {r['id']} | {r['dataset']} | {r['statement']} | - | - | - | {r['verdict']}: {r['reason']} |")
            continue
        what = "S" if r["test"] == "specialization" else "MAP"
        delta = r.get("delta_map", r.get("delta_specialization"))
        verdict = r["verdict"] + (f" ({r['reason']})" if "reason" in r else "")
        lines.append(f"| {r['id']} | {r['dataset']} | {r['statement']} | {r['n_seeds']} | {what} {delta:+.3f} "
                     f"[{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}] | {r['p_holm_display']} | {verdict} |")
    return "\n".join(lines) + "\n"
