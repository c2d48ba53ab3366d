"""Exact top-k cosine pattern search: the index and its backends."""

from .base import BatchTopK, SearchBackend, TopK, results_agree, score_tolerance
from .index import BatchResult, PatternIndex, SearchHit, SearchResult
from .mojo_backend import MojoSearchBackend
from .numpy_backend import NumpySearchBackend
from .reference import PythonSearchBackend

__all__ = [
    "BatchResult",
    "BatchTopK",
    "MojoSearchBackend",
    "NumpySearchBackend",
    "PatternIndex",
    "PythonSearchBackend",
    "SearchBackend",
    "SearchHit",
    "SearchResult",
    "TopK",
    "results_agree",
    "score_tolerance",
]
