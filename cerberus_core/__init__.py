"""CERBERUS for answer sentence selection: one shared body, several heads, each taught by a different teacher.

The public names are imported lazily, so `import cerberus_core.data` or the CLI's
`--help` do not pay for importing torch and transformers.
"""
from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "AS2Dataset": "data", "Question": "data", "load_as2": "data",
    "ranking_metrics": "results.metrics",
    "CerberusConfig": "model.modeling", "CerberusForRanking": "model.modeling",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module 'cerberus_core' has no attribute {name!r}")
