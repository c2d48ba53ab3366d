"""synapse-mojo: Mojo-accelerated pattern search and message routing, with Python fallback.

    from synapse_mojo import PatternIndex
    index = PatternIndex(dim=384)
    index.upsert(ids, vectors, metadata)
    index.search(query, top_k=5)

See the README for configuration (modes, ``SYNAPSE_FORCE_PYTHON``) and how fallback works.
"""

from .config import FEATURES, Mode, Settings, load_settings
from .errors import (
    ConfigError,
    DimensionMismatchError,
    EmptyIndexError,
    InvalidInputError,
    InvalidTypeError,
    KernelBuildError,
    KernelError,
    SynapseError,
    UnknownIdError,
)
from .runtime import Outcome, Runtime, get_runtime, set_runtime
from .search import BatchResult, PatternIndex, SearchHit, SearchResult

__version__ = "0.1.0"

__all__ = [
    "FEATURES",
    "BatchResult",
    "ConfigError",
    "DimensionMismatchError",
    "EmptyIndexError",
    "InvalidInputError",
    "InvalidTypeError",
    "KernelBuildError",
    "KernelError",
    "Mode",
    "Outcome",
    "PatternIndex",
    "Runtime",
    "SearchHit",
    "SearchResult",
    "Settings",
    "SynapseError",
    "UnknownIdError",
    "__version__",
    "get_runtime",
    "load_settings",
    "set_runtime",
]
