"""Which code produced an artifact: recorded beside every result, never used to invalidate caches."""
from __future__ import annotations

import subprocess
from pathlib import Path

from . import __version__

REPO = Path(__file__).resolve().parents[1]


def code_version() -> str:
    """`<git short hash>[+dirty]`, or the package version outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return __version__
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return __version__
