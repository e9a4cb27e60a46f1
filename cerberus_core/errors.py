"""One error type for bad user input, so the CLI can print it as one line and exit 2."""
from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input: says which file (and line or element) and what was expected."""

    def __init__(self, path: str | Path | None, message: str, line: int | str | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.message = message
        where = self.path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")
