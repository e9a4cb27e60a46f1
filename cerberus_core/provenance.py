"""Which code produced an artifact: recorded beside every result, never used to invalidate caches."""
from __future__ import annotations

import subprocess
from pathlib import Path

from . import __version__



def _checkout() -> Path | None:
    """The source checkout this package runs from (pyproject.toml beside the package); None when it
    runs installed (from site-packages)."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").is_file() else None


CHECKOUT = _checkout()
# Where defaults such as artifacts/<preset> hang: the checkout, else the working folder, where the user works.
REPO = CHECKOUT or Path.cwd()
# What "the code" is. Outputs (artifacts/, figures/, notebooks/, README) are not: regenerating
# them, or committing only them, leaves the version alone, so `make figures` never stamps the
# figures it has just rewritten as "+dirty" and a rerun after committing them changes nothing.
CODE_PATHS = ("cerberus_core", "pyproject.toml", "requirements.txt", "requirements-models.txt")


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)


def code_version(repo: str | Path | None = CHECKOUT) -> str:
    """`<short hash>[+dirty]` of the last commit that changed CODE_PATHS, "+dirty" when they hold
    uncommitted changes (new untracked modules included); the package version outside a git checkout,
    and always when installed: the git repository the user works in is not this package's code."""
    if repo is None:
        return __version__
    try:
        last = _git(repo, "log", "-1", "--format=%h", "--", *CODE_PATHS)
        if last.returncode != 0 or not last.stdout.strip():
            return __version__
        dirty = _git(repo, "status", "--porcelain", "--", *CODE_PATHS).stdout.strip()
        return last.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return __version__


def device_name() -> str:
    """Where a run trained, in words: "cuda: <GPU name>" or "cpu: <model name>, <n> threads"."""
    import platform

    import torch

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name()}"
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.is_file() else []
    return f"cpu: {models[0] if models else platform.processor() or 'unknown'}, {torch.get_num_threads()} threads"
