"""One error type for bad user input, so the CLI can print it as one line and exit 2."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any


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


def loads_json(text: str, path: str | Path | None) -> Any:
    """json.loads, but a key given twice in one object is an InputError at the line of its second
    occurrence: json would silently keep the last value, while a reader (and `_line_of`-style
    messages) sees the first. A JSONDecodeError passes through for the caller's message."""
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                places = [m.start() for m in re.finditer(rf'"{re.escape(key)}"\s*:', text)]
                line = text.count("\n", 0, places[1]) + 1 if len(places) > 1 else None
                raise InputError(path, f"key {key!r} is given twice in one object; give each key once", line=line)
            seen[key] = value
        return seen

    return json.loads(text, object_pairs_hook=unique)
