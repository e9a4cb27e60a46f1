"""One error type for bad user input, so the CLI can print it as one line and exit 2."""
from __future__ import annotations

import re
from pathlib import Path


def one_line(text: object) -> str:
    """`text` with every line break (and the blanks around it) folded into one space."""
    return re.sub(r"\s*[\r\n]+\s*", " ", str(text)).strip()


class InputError(ValueError):
    """Bad input: says which file (and line or element) and what was expected."""

    def __init__(self, path: str | Path | None, message: str, line: int | str | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.message = one_line(message)
        where = self.path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {self.message}")


class CerberusWarning(UserWarning):
    """Something was wrong but could be worked around (e.g. a damaged checkpoint set aside);
    the command line prints it as one `warning:` line."""
