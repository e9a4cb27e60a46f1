"""CERBERUS for answer sentence selection: one shared body, several heads, each taught by a different teacher."""
from .data import AS2Dataset, Question, load_as2
from .metrics import ranking_metrics
from .model import CerberusConfig, CerberusForRanking

__all__ = ["AS2Dataset", "CerberusConfig", "CerberusForRanking", "Question", "load_as2", "ranking_metrics"]
__version__ = "0.1.0"
