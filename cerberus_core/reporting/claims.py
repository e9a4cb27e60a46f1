"""The claims of `method.md`, tested on every seed a results folder holds: one table, one command.

    python -m cerberus_core claims --root artifacts/v2      # prints, writes ROOT/claims.json

A run is a finished run folder with test scores (artifacts.py); runs of one dataset and one
name (config fields `dataset`, `name`) are the seeds of one system, and must share every other
config field. A transfer preset's runs (artifacts/v2/trecqa) sit in a subfolder of the root, so
one command tests every dataset, and the Holm family spans them all.
A comparison pairs the seeds the two systems share (a teacher, trained once, pairs with
every seed); with none shared, or a side with no finished run, the row is "not tested".

Each comparison is tested twice; the verdict is the seed-aware test's.
- **Seed-aware** (`seed_aware`, `verdict`): the systems are trained at several seeds and every seed
  is scored on the same test questions, so the per-seed, per-question differences form a crossed
  seeds x questions design. The difference's variance is estimated from both sources (two-way mean
  squares: the spread of the per-seed differences, plus the questions' part) and tested with a
  two-sided t test on n_seeds - 1 degrees of freedom; the 95% interval is the t interval. When the
  seeds carry the variance it is the paired t test over the per-seed differences; when the questions
  do, it is conservative; its p is never below that paired t test's (`stats.py` has the estimator,
  and why the larger Welch-Satterthwaite df are not used: with 3 seeds they reject too often in the
  tail where the Holm correction works). Claim 5's S is not a mean over
  questions, so its question part comes from the same bootstrap resamples of the questions at every
  seed. Why a t test: with 3-5 seeds a resampling test over seeds cannot work (a sign-flip test's
  two-sided floor is 2/8 for 3 seeds and 2/32 for 5, never below 0.05; a bootstrap over 3 seeds has
  10 distinct resamples and calls any three same-signed differences significant), and a bootstrap
  over seeds then over questions within each seed treats the shared questions as if each seed had
  its own, which shrinks their variance S-fold. The price is an assumption 3-5 seeds cannot check:
  per-seed differences roughly normal. The t test's p has no resampling floor. Beside it, in the
  same dict: the per-seed differences and the paired t test over them alone (`p_seeds_only`,
  questions fixed; not used for a verdict). With one seed there is no training variance to
  estimate: `seed_aware` is null, `seed_aware_reason` says so, and the verdict is "not tested over
  seeds" (a one-seed gap is a gap between two training runs, not between two recipes; the pooled
  verdict stays beside it).
- **Question-pooled** (`delta_map`, `ci95`, `p`, `p_holm`, `verdict_pooled`): per question, the test
  AP difference averaged over the seeds; its 95% interval a bootstrap over questions, its p a
  two-sided sign-flip permutation test over questions (seeds fixed, questions the sample). For
  claim 5, S of CERBERUS against the replicated control with a bootstrap over questions. It holds
  the trained models fixed, so it says whether a gap is larger than the test set's noise for these
  runs, not whether one recipe beats another. A p at the floor of its test (two-sided: 2/(N+1)) is
  a bound, reported as "< bound".
Each test's p values are Holm-corrected over the distinct comparisons it tests (the seed-aware one
over those with two or more seeds, since a one-seed row gets no seed-aware verdict).

Verdicts: "supported" (corrected p < alpha, difference in the claimed direction),
"contradicted" (corrected p < alpha, the other direction), "not supported" (otherwise);
claim 6 ("rivals the large models") is a non-inferiority claim: supported when the interval's
lower end is above -MARGIN and the cost ratios from bench.json are below 1. Claim 5 also needs
every head closest to its own teacher.

The ablations (`ablation_tests.py`, ROOT/ablation_tests.json) are tested the same way, but as a
Holm family of their own: they are exploratory, and adding them to the claims' family would move
the claims' corrected p.

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

from ..results import artifacts, reader
from ..results.analysis import MAIN_SCORES, mean_sd, own_teacher_is_closest, score_matrix, specialization
from ..training.config import TrainConfig
from ..errors import InputError
from ..results.metrics import bootstrap_ci, paired_test, ranking_metrics
from ..results.scores import ScoreTable
from ..results.stats import METHOD, crossed_from_bootstrap, crossed_from_matrix

N_PERMUTATIONS = 10_000
N_BOOTSTRAP = 1000
ALPHA = 0.05
MARGIN = 0.01  # claim 6: "rivals" = test MAP no more than one point below the best teacher
ONE_SEED = "one seed: training variance cannot be estimated from it"
NOT_OVER_SEEDS = "not tested over seeds"


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
            "map_a": mean_sd(maps_a), "map_b": mean_sd(maps_b),
            **_seed_aware(lambda: crossed_from_matrix(np.array(diffs)), len(pairs), "delta_map")}


def _seed_aware(test, n_seeds: int, delta: str) -> dict[str, Any]:
    """The seed-aware test's fields (before the correction), or None and why with one seed."""
    if n_seeds < 2:
        return {"seed_aware": None, "seed_aware_reason": ONE_SEED}
    found = test()
    return {"seed_aware": {"method": found.pop("method"), delta: found.pop("delta"), **found}}


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
    per_seed = s_a - s_b  # seed x [full, resample 1..N]
    diff = per_seed.mean(axis=0)
    boot = diff[1:]
    p = min(1.0, 2 * (1 + min((boot <= 0).sum(), (boot >= 0).sum())) / (1 + len(boot)))
    return {"n_seeds": len(pairs), "n_questions": n_questions, "delta_specialization": float(diff[0]),
            "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))], "p": p,
            "specialization_a": mean_sd(s_a[:, 0]), "specialization_b": mean_sd(s_b[:, 0]),
            "own_teacher_closest": float(np.mean(closest)),  # share of (seed, head) of a closest to its teacher
            **_seed_aware(lambda: crossed_from_bootstrap(per_seed[:, 0], per_seed[:, 1:], n_questions),
                          len(pairs), "delta_specialization")}


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
    ours = next((r for r in rows if reader.run_of(r["name"], root) == "cerberus"), None)
    big = next((r for r in rows if "teachers" in Path(r["name"]).parts and reader.run_of(r["name"], root) == best), None)
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
    test of the family), once for the question-pooled p and once for the seed-aware p (over the
    comparisons with two or more seeds), then each tested row's verdicts: `verdict` from the
    seed-aware test, `verdict_pooled` from the pooled one. Reads nothing but the rows."""
    rows = [dict(r) for r in rows]
    tested = [r for r in rows if "p" in r]
    for row in tested:
        if row.get("seed_aware") is not None:
            row["seed_aware"] = dict(row["seed_aware"])
        elif "seed_aware" not in row:  # a row saved before the seed-aware test
            row["seed_aware"] = None
            row["seed_aware_reason"] = ONE_SEED if row["n_seeds"] < 2 else "saved without a seed-aware test"
    pooled = _holm_by_comparison(tested, lambda r: r["p"])
    over_seeds = _holm_by_comparison([r for r in tested if r["seed_aware"]], lambda r: r["seed_aware"]["p"])
    for row in tested:
        row["p_holm"] = p_holm = pooled[_key(row)]
        row["p_holm_display"] = format_p(p_holm, row["p"], p_floor(row["test"]))
        delta = row.get("delta_map", row.get("delta_specialization"))
        row["verdict_pooled"] = _verdict(row, delta, row["ci95"], p_holm)
        seeds = row["seed_aware"]
        if seeds:
            seeds["p_holm"] = over_seeds[_key(row)]
            seeds["p_holm_display"] = f"{seeds['p_holm']:.3g}"  # a t test's p: no resampling floor
            row["verdict"] = _verdict(row, delta, seeds["ci95"], seeds["p_holm"])
        else:
            row["verdict"] = NOT_OVER_SEEDS
        if row["id"] == "5" and row["own_teacher_closest"] < 1 and "supported" in (row["verdict"], row["verdict_pooled"]):
            row["verdict"], row["verdict_pooled"] = (  # S above the control, yet not every head closest to its teacher
                "not supported" if v == "supported" else v for v in (row["verdict"], row["verdict_pooled"]))
            row["reason"] = (f"only {row['own_teacher_closest']:.0%} of the heads (over seeds) are closest to their "
                             "own teacher")
    return {"root": str(root), "alpha": ALPHA, "verdict_from": "seed_aware",
            "seed_aware_method": METHOD,
            "seed_aware_correction": f"Holm over the {len(over_seeds)} distinct comparisons with two or more seeds",
            "correction": f"Holm over the {len(pooled)} distinct comparisons",
            "permutations": N_PERMUTATIONS, "bootstrap_resamples": N_BOOTSTRAP, "claims": rows}


def _holm_by_comparison(rows: list[dict[str, Any]], p_of) -> dict[tuple[str, str, str, str], float]:
    """Holm-corrected p per distinct comparison of `rows` (the same comparison under two claims once)."""
    raw = {_key(r): p_of(r) for r in rows}
    return dict(zip(raw, holm(list(raw.values()))))


def _verdict(row: dict[str, Any], delta: float, ci95: Sequence[float], p_holm: float) -> str:
    """Claim 6 is non-inferiority at a fraction of the cost (the interval's lower end above -MARGIN);
    every other row a two-sided test of a difference in the claimed direction."""
    if row["id"] == "6":
        cost = row["cost"]
        cheap = cost is not None and cost["params_fraction"] < 1 and cost["latency_fraction"] < 1
        return ("supported" if ci95[0] > -MARGIN and cheap else
                "contradicted" if p_holm < ALPHA and delta < 0 else "not supported")
    return "not supported" if p_holm >= ALPHA else "supported" if delta > 0 else "contradicted"


def _measured(row: dict[str, Any]) -> dict[str, Any]:
    """A saved row as measure_claims made it: a tested row's verdicts (and reason) and corrected p are
    the correction's."""
    if "p" not in row:
        return dict(row)
    kept = {k: v for k, v in row.items() if k not in ("p_holm", "p_holm_display", "verdict", "verdict_pooled", "reason")}
    if kept.get("seed_aware"):
        kept["seed_aware"] = {k: v for k, v in kept["seed_aware"].items() if k not in ("p_holm", "p_holm_display")}
    return kept


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


def _teacher_table(systems: dict[str, System], folder: str) -> ScoreTable:
    """The test margins CERBERUS's teacher `folder` (a `teachers` entry of its config) gave: the
    cached table the student was trained from."""
    student = systems["cerberus"]
    run = student.runs[min(student.runs)]
    return ScoreTable.load(artifacts.from_run(run, folder) / f"{student.config.get('test_split', 'test')}.tsv")


def format_claims_table(result: dict[str, Any]) -> str:
    """Markdown: one row per comparison. The verdict and the first interval and p are the seed-aware
    test's (seeds and questions); beside them the per-seed differences and the question-pooled test
    (questions only, seeds fixed) with its own verdict."""
    lines = ["| claim | dataset | statement | seeds | difference [95% CI], seeds and questions | p (Holm) | verdict "
             "| per-seed differences | pooled over seeds: [95% CI], questions only | p (Holm) | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["claims"]:
        head = f"| {r['id']} | {r['dataset']} | {r['statement']} |"
        if "p" not in r:
            lines.append(f"{head} - | - | - | {r['verdict']}: {r['reason']} | - | - | - | - |")
            continue
        what = "S" if r["test"] == "specialization" else "MAP"
        delta = r.get("delta_map", r.get("delta_specialization"))
        reason = f" ({r['reason']})" if "reason" in r else ""
        seeds = r.get("seed_aware")
        if seeds:
            aware = (f"{what} {delta:+.3f} [{seeds['ci95'][0]:+.3f}, {seeds['ci95'][1]:+.3f}] | "
                     f"{seeds['p_holm_display']} | {r['verdict']}{reason} | "
                     + ", ".join(f"{x:+.4f}" for x in seeds["per_seed_delta"]))
        else:
            why = r.get("seed_aware_reason", ONE_SEED)
            aware = f"{what} {delta:+.3f} | - | {r['verdict']} ({'one seed' if why == ONE_SEED else why}) | -"
        lines.append(f"{head} {r['n_seeds']} | {aware} | [{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}] | "
                     f"{r['p_holm_display']} | {r.get('verdict_pooled', r['verdict'])}{reason} |")
    return "\n".join(lines) + "\n"
