"""What every notebook does before it narrates: open a results folder, say in one line what it reads,
and (notebook 08) find the timings to show. The notebooks call these; they compute nothing themselves.

    art = notebook.open_results(PRESET, SEED)   # the common preamble
    bench = notebook.committed_bench(art)        # notebook 08: a committed bench, or None
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..results import analysis as an
from ..results import artifacts, reader
from ..results.reader import Artifacts
from ..provenance import REPO

DEFAULT_PRESET = "v2"
PRESET_WORDS = {
    "v2": "the committed multi-seed programme (artifacts/v2: 5 student seeds, nothing is trained)",
    "full": "the committed one-seed programme (artifacts/full, the first full run; nothing is trained)",
    "quick": ("the quick chain, trained live on this machine the first time (a few minutes): "
              "8 training questions and 6 test questions, to watch it train; its numbers are not evidence"),
}
METHOD = "../docs/method.md"  # links in the notebooks are relative to notebooks/


def shown_path(path: str | Path) -> str:
    """A path as a reader should see it: relative to the repository when inside it, else its last two parts."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(Path(*path.parts[-2:]))


def seeds(root: str | Path) -> list[int]:
    """The student seeds a results folder holds (students/cerberus/seed<s>), or [0] for a one-seed folder."""
    found = sorted({s for name, s, _ in artifacts.finished_seed_runs(root, "students") if name == "cerberus"})
    return found or [0]


def open_results(preset: str = DEFAULT_PRESET, seed: int = 0, quiet: bool = False) -> Artifacts:
    """The preamble every notebook shares: the plotting theme, the results folder of `preset` at
    student seed `seed` (`notebook_cache.notebook_artifacts`: reads a committed folder; trains only the
    `quick` chain, once) and one line saying what is read. Returns the `reader.Artifacts` reader."""
    from ..reporting import plotting
    from .notebook_cache import notebook_artifacts

    plotting.set_theme()
    root = notebook_artifacts(preset, seed=seed)
    art = Artifacts(root, seed)
    if not quiet:
        available = seeds(root)
        which = (f"seed {seed} of {len(available)} ({', '.join(map(str, available))})" if len(available) > 1
                 else "one seed")
        print(f"Reading {PRESET_WORDS.get(preset, preset)}; student {which}.")
    return art


def run_data(run: Mapping[str, Any]) -> dict[str, Any]:
    """The very train/dev/test questions a run (as `Artifacts.run` returns it) trained and was scored on."""
    from ..training.config import TrainConfig
    from ..training.preflight import load_splits

    return load_splits(TrainConfig.from_file(artifacts.config_path(run["dir"])))


def train_live_student(art: Artifacts, run_dir: str | Path, epochs: int = 3, batch_size: int = 8) -> Path:
    """Notebook 04's live run on the quick chain: a small CERBERUS (MiniLM-L3 cut into a 2-layer body and
    one 1-layer head per teacher, alpha 0.5, T 2) trained on the very questions the chain's teachers
    scored, into `run_dir`. Minutes on a CPU; for watching the mechanics, not for evidence."""
    from ..training.config import TrainConfig
    from ..training.loop import train

    teacher_dirs = sorted(p for p in (art.root / artifacts.TEACHER_SCORES).iterdir() if p.is_dir())
    chain = TrainConfig.from_file(artifacts.config_path(artifacts.run_dir(art.root, "teachers", teacher_dirs[0].name)))
    cfg = TrainConfig(
        name="live-cerberus", strategy="cerberus", teachers=[str(p) for p in teacher_dirs], num_heads=len(teacher_dirs),
        backbone="minilm-l3", body_layers=2, head_layers=1, temperature=2.0, alpha=0.5,
        train_questions=chain.train_questions, eval_questions=chain.eval_questions, max_length=chain.max_length,
        epochs=epochs, batch_size=batch_size, lr=1e-4, evals_per_epoch=1, seed=art.seed)
    train(cfg, Path(run_dir))
    return Path(run_dir)


def claims_outputs(art: Artifacts) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    """The `claims` command's two outputs for a results folder: claims.json and ablation_tests.json
    as committed, or, where the folder has none (the quick chain), the same tables computed by the
    same code (`claims.build_claims`, `ablation_tests.build_ablation_tests`). Returns (claims, ablation tests
    or None, where they come from)."""
    from ..reporting import claims
    from ..reporting.ablation_tests import build_ablation_tests

    saved = art.root / artifacts.CLAIMS
    if saved.is_file():
        tests = artifacts.read_json(art.root / artifacts.ABLATION_TESTS)
        return artifacts.read_json(saved), tests, f"read from {shown_path(saved)} (written by the claims command)"
    return (claims.build_claims(art.root), build_ablation_tests(art.root),
            "computed by the claims command's code: this folder has no claims.json")


# --------------------------------------------------------------------------- the committed bench
def _architecture_of_spec(spec: str) -> tuple[str, str] | None:
    """("minilm-l6", "B5 3H1") from a `building.load_model` architecture spec "minilm-l6:B5-3H1"."""
    if ":" not in spec:
        return None
    backbone, model = spec.rsplit(":", 1)
    return Path(backbone).name, model.replace("-", " ")


def _row_architecture(row: Mapping[str, Any], bench_art: Artifacts) -> Any:
    """What one bench row timed, as a key comparable across results folders: (backbone, "B_b kH_h") of
    a run or an architecture spec, ("ensemble", sorted member keys) for several models at once, or
    (backbone, None) for a bare backbone name (matched by its parameter count)."""
    spec = str(row["name"])
    if "+" in spec:
        members = [_row_architecture({"name": part}, bench_art) for part in spec.split("+")]
        return None if None in members else ("ensemble", tuple(sorted(members, key=str)))
    arch = _architecture_of_spec(spec)
    if arch:
        return arch
    name = reader.run_of(spec, bench_art.root)
    if name is not None and name != an.TEACHER_ENSEMBLE:
        kind = "students" if name in bench_art.names("students") else "teachers"
        run = artifacts.seed_run(bench_art.root, kind, name, bench_art.seed)
        backbone = artifacts.read_json(artifacts.config_path(run)).get("backbone", "")
        return Path(backbone).name, artifacts.read_metrics(run)["model"]
    return (Path(spec).name, None)


def _model_architectures(art: Artifacts) -> dict[str, tuple[tuple[str, str], int]]:
    """Every finished teacher and student of `art`: name -> ((backbone, "B_b kH_h"), parameters)."""
    out = {}
    for kind in ("teachers", "students"):
        for name in art.names(kind):
            run = artifacts.seed_run(art.root, kind, name, art.seed)
            config, metrics = artifacts.read_json(artifacts.config_path(run)), artifacts.read_metrics(run)
            out[name] = ((Path(config.get("backbone", "")).name, metrics["model"]), metrics["parameters"])
    return out


def _read_bench(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    stored = json.loads(path.read_text(encoding="utf-8"))
    rows = stored["rows"] if isinstance(stored, dict) else stored
    return rows, (stored.get("conditions", {}) if isinstance(stored, dict) else {})


def match_bench(art: Artifacts, rows: Sequence[Mapping[str, Any]], bench_root: str | Path) -> dict[str, Any]:
    """Which models of `art` each bench row stands for, by architecture: a forward pass costs the same
    whatever the weights, so a row timed on one results folder's model covers every model of another
    folder with the same backbone, body/head split and parameter count.

    Returns {"latency": model name -> ms (an.TEACHER_ENSEMBLE for the teachers' ensemble),
    "parameters": model name -> parameter count as the row measured it,
    "covers": row name -> [model names], "unmatched": [row names]}."""
    bench_art = Artifacts(bench_root, art.seed)
    models = _model_architectures(art)
    teachers = art.names("teachers")
    teacher_keys = tuple(sorted((models[t][0] for t in teachers), key=str))
    latency: dict[str, float] = {}
    parameters: dict[str, int] = {}
    covers: dict[str, list[str]] = {}
    unmatched: list[str] = []
    for row in rows:
        key = _row_architecture(row, bench_art)
        found = []
        if key and key[0] == "ensemble":
            members = tuple(sorted(((m[0], m[1]) if m[1] else next((models[t][0] for t in teachers
                                                                    if models[t][0][0] == m[0]), m)
                                    for m in key[1]), key=str))
            if len(teachers) > 1 and members == teacher_keys:
                found = [an.TEACHER_ENSEMBLE]
        elif key:
            found = [name for name, (arch, params) in models.items()
                     if arch[0] == key[0] and (key[1] == arch[1] if key[1] else params == row.get("parameters"))
                     and params == row.get("parameters", params)]
        for name in found:
            latency.setdefault(name, float(row["latency_ms"]))
            parameters.setdefault(name, int(row["parameters"]))
        (covers.__setitem__(str(row["name"]), found) if found else unmatched.append(str(row["name"])))
    return {"latency": latency, "parameters": parameters, "covers": covers, "unmatched": unmatched}


def committed_bench(art: Artifacts, path: str | Path | None = None) -> dict[str, Any] | None:
    """The timings notebook 08 shows without timing anything: `path`, else the results folder's own
    bench.json, else the bench.json of another committed results folder (artifacts/*/bench.json)
    that timed models of the same architectures as CERBERUS and every teacher here. None when
    there is none.

    Returns {"path", "rows", "conditions", "latency", "parameters", "covers", "unmatched", "note"}: `note` says in
    a sentence which models were timed and why they stand for this folder's."""
    own = art.root / artifacts.BENCH
    candidates = ([Path(path)] if path else
                  [own, *sorted(p for p in (REPO / "artifacts").glob(f"*/{artifacts.BENCH}") if p != own)])
    needed = {"cerberus", *art.names("teachers")}
    for candidate in candidates:
        if not candidate.is_file():
            continue
        rows, conditions = _read_bench(candidate)
        found = match_bench(art, rows, candidate.parent)
        if not needed <= set(found["latency"]) and not path:
            continue
        specs = any(_architecture_of_spec(str(r["name"])) for r in rows)
        if candidate.parent.resolve() == art.root.resolve():
            note = f"Timings read from {shown_path(candidate)}, " + (
                "measured on each model's architecture (backbone and body/head split) built from its pretrained "
                "backbone: a forward pass costs the same whatever the weights." if specs
                else "measured on this folder's own models.")
        else:
            note = (f"Timings read from {shown_path(candidate)}, measured on the models of "
                    f"{shown_path(candidate.parent)}: each has the backbone, body/head split and parameter "
                    f"count of a model here, and a forward pass costs the same whatever the weights.")
        return {"path": candidate, "rows": rows, "conditions": conditions, "note": note, **found}
    return None


def bench_table(bench: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The bench rows named for readers (names.model_name of the model each row timed; a row that
    timed an architecture spec is named by the models here it stands for), numbers and ratios as
    measured. Rows that stand for no model here are left out."""
    from ..reporting.names import model_name

    def shown(name: str) -> str:
        return "teacher ensemble" if name == an.TEACHER_ENSEMBLE else model_name(name)

    out = []
    for row in bench["rows"]:
        covered = bench["covers"].get(str(row["name"]))
        if not covered:
            continue
        own = reader.run_of(str(row["name"]), Path(bench["path"]).parent)
        if own is not None:
            label = shown(own)
        else:
            names = [shown(m) for m in covered]
            label = ", ".join(names) if len(names) <= 2 else f"{names[0]} (and {len(names) - 1} more of its architecture)"
        out.append({**row, "name": label})
    return out
