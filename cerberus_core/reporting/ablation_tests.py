"""The ablations as paired tests (ROOT/ablation_tests.json), in the claims' format and with the
claims' two tests (the seed-aware one gives the verdict; see `claims`), but a Holm family of their
own: they are exploratory, not claims of method.md.

Head count: CERBERUS on every teacher against CERBERUS on each teacher subset, and the subset
against KD from its best teacher on dev; body/head split: each split against CERBERUS, on test MAP
and on S. An ablation that cannot be paired with CERBERUS (other teachers, no shared seed) gets a
"not tested" row with the reason.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..results import artifacts
from .claims import System, _best_teacher, _compare_row, _not_tested, _teacher_table, correct_claims, find_systems
from ..results.scores import ScoreTable

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
    result["seed_aware_correction"] += " of the ablations"
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
