"""The package installed anywhere: built as a wheel, installed (not editable) into a fresh virtualenv,
and run from an empty folder that is not the checkout. Whatever still assumes a checkout (a path
found from `__file__`, a file left out of the wheel, a default relative to the repository) fails here.

The heavy dependencies are not reinstalled: a .pth file in the new venv appends this venv's
site-packages to sys.path (a plain path line, so this venv's editable-install hook is not run, and
the installed copy comes first). Every cache is sent into the test's tmp folder, so "writes only
under --root / --out" can be checked by listing the working folder and the new site-packages."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import cerberus_core
from conftest import needs_wikiqa

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SOURCE = ("pyproject.toml", "README.md", "cerberus_core")  # what the wheel is built from


def run(*cmd, cwd: Path, env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    """One process, its output in the assertion message when it fails."""
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under `folder` with its size and mtime: what appeared, vanished or changed."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else (0, 0)
            for p in folder.rglob("*")}


def changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def build_wheel(tmp: Path, env: dict) -> Path:
    """A wheel of the working tree, built from a copy so the checkout gets no build/ or egg-info."""
    src = tmp / "src"
    src.mkdir()
    for name in SOURCE:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
        "-w", tmp / "dist", src, cwd=tmp, env=env)
    (wheel,) = (tmp / "dist").glob("cerberus_core-*.whl")
    return wheel


def isolated_env(tmp: Path, venv: Path) -> dict[str, str]:
    """This environment with the new venv first on PATH, and home, caches and temporary files in tmp
    (pip's, matplotlib's, Hugging Face's, the embedded models' unpacked by the installed package)."""
    home = tmp / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CERBERUS_CACHE"))}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), MPLCONFIGDIR=str(home / "matplotlib"),
               HF_HOME=str(home / "hf"), CERBERUS_CACHE=str(home / "cerberus"), TMPDIR=str(home / "tmp"),
               VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
               OMP_NUM_THREADS=str(max(1, min(2, os.cpu_count() or 1))))
    (home / "tmp").mkdir(parents=True)
    return env


def user_project(tmp: Path, env: dict) -> Path:
    """The user's own project, a git repository with a pyproject.toml, and an empty folder in it."""
    project = tmp / "project"
    (project / "work").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "pyproject.toml"], ["commit", "-q", "-m", "theirs"]):
        run(*git, *args, cwd=project, env=env)
    return project / "work"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the wheel installed and this venv's site-packages appended by a .pth (after
    the wheel is in, so pip never sees this venv's editable copy), and an empty working folder."""
    tmp = tmp_path_factory.mktemp("installed")
    venv = tmp / "venv"
    env = isolated_env(tmp, venv)
    run(sys.executable, "-m", "venv", venv, cwd=tmp, env=env)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", build_wheel(tmp, env), cwd=tmp, env=env)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp, env=env).stdout.strip())
    (site / "zz_dev_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return {"bin": venv / "bin", "site": site, "env": env, "work": user_project(tmp, env)}


def test_the_installed_copy_is_imported_and_its_command_runs(installed):
    """`import cerberus_core` finds the wheel's copy; installed, defaults hang off the working folder
    and the recorded code version is the package's, even inside the user's own git repository."""
    work, site = installed["work"], installed["site"]
    probe = ("import cerberus_core, torch, transformers\n"
             "from cerberus_core import provenance\n"
             "print(cerberus_core.__file__); print(provenance.REPO); print(provenance.code_version())")
    file, repo, _ = run(installed["bin"] / "python", "-c", probe, cwd=work, env=installed["env"]).stdout.split()
    assert Path(file).is_relative_to(site), f"imported {file}, not the copy installed in {site}"
    assert Path(repo) == work
    *_, version = run(installed["bin"] / "python", "-c", probe, cwd=work.parent, env=installed["env"]).stdout.split()
    assert version == cerberus_core.__version__, f"recorded {version}: the hash of the user's repository"
    helped = run(installed["bin"] / "cerberus", "--help", cwd=work, env=installed["env"])
    assert "reproduce" in helped.stdout and "evaluate" in helped.stdout
    assert not any(work.iterdir())


@pytest.fixture(scope="module")
def quick(installed):
    """`cerberus reproduce --preset quick --root results` from the empty folder (a few minutes): it
    writes under results/ only; the venv is untouched (caches went to the tmp home)."""
    work, site = installed["work"], installed["site"]
    before_work, before_site = listing(work), listing(site)
    run(installed["bin"] / "cerberus", "reproduce", "--preset", "quick", "--root", "results",
        cwd=work, env=installed["env"])
    assert {p.split("/")[0] for p in changed(before_work, listing(work))} == {"results"}
    assert changed(before_site, listing(site)) == []
    return work / "results"


@needs_wikiqa
def test_reproduce_quick_writes_only_under_its_root(quick):
    assert (quick / "results.md").is_file()
    metrics = json.loads((quick / "students" / "cerberus" / "metrics.json").read_text())
    assert set(metrics["test"]) == {"pooled", "head0", "head1"}
    assert metrics["code_version"] == cerberus_core.__version__


@needs_wikiqa
def test_evaluate_a_saved_model_writes_nothing_without_out(installed, quick):
    """`cerberus evaluate` on the quick run's saved student, from the working folder."""
    work = installed["work"]
    before = listing(work)
    done = run(installed["bin"] / "cerberus", "evaluate", "--model", quick / "students" / "cerberus" / "best",
               "--data", "wikiqa", "--split", "dev", "--max-length", "32", cwd=work, env=installed["env"])
    assert "MAP" in done.stdout and "pooled" in done.stdout
    assert changed(before, listing(work)) == []


@needs_wikiqa
@pytest.mark.parametrize("results", ["quick", "committed v2"])
def test_figures_write_only_under_out(installed, quick, results):
    """The figures of the quick run above and of a committed results folder, which is only read."""
    work, site = installed["work"], installed["site"]
    artifacts = quick if results == "quick" else REPO / "artifacts" / "v2"
    before_work, before_site, before_read = listing(work), listing(site), listing(artifacts)
    out = f"figures-{results.replace(' ', '-')}"
    run(installed["bin"] / "python", "-m", "cerberus_core.reporting.figures", "--artifacts", artifacts, "--out", out,
        cwd=work, env=installed["env"])
    assert {p.split("/")[0] for p in changed(before_work, listing(work))} == {out}
    assert (work / out / "results.png").is_file() and (work / out / "README.md").is_file()
    assert changed(before_site, listing(site)) == [] and changed(before_read, listing(artifacts)) == []
