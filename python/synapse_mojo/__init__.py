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

# Services with heavier dependencies (httpx, redis, neo4j, tokenizers) load on first use, so
# `import synapse_mojo` for PatternIndex alone stays fast.
_LAZY = {
    "Embedder": "embeddings",
    "embedder_from_env": "embeddings",
    "PatternMap": "patternmap",
    "Pattern": "stores",
    "PatternStore": "stores",
    "Relation": "stores",
    "open_store": "stores",
}


def __getattr__(name: str):  # PEP 562
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'synapse_mojo' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value

__version__ = "0.1.0"

__all__ = [
    "FEATURES",
    "BatchResult",
    "ConfigError",
    "DimensionMismatchError",
    "Embedder",
    "EmptyIndexError",
    "InvalidInputError",
    "InvalidTypeError",
    "KernelBuildError",
    "KernelError",
    "Mode",
    "Outcome",
    "Pattern",
    "PatternIndex",
    "PatternMap",
    "PatternStore",
    "Relation",
    "Runtime",
    "SearchHit",
    "SearchResult",
    "Settings",
    "SynapseError",
    "UnknownIdError",
    "__version__",
    "embedder_from_env",
    "get_runtime",
    "load_settings",
    "open_store",
    "set_runtime",
]
