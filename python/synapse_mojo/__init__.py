"""synapse-mojo: Mojo-accelerated pattern search and message routing, with Python fallback.

    from synapse_mojo import PatternIndex
    index = PatternIndex(dim=384)
    index.upsert(ids, vectors, metadata)
    index.search(query, top_k=5)

Configuration (modes, ``SYNAPSE_FORCE_PYTHON``) and how fallback works: docs/runtime.md.
"""

from .errors import (
    ConfigError,
    DamagedIndexError,
    DimensionMismatchError,
    EmbeddingError,
    EmbeddingServerError,
    EmbeddingUnavailableError,
    EmptyIndexError,
    ImportFormatError,
    InvalidInputError,
    InvalidTypeError,
    KernelBuildError,
    KernelError,
    MissingExtraError,
    PayloadTooLargeError,
    QueueFullError,
    ReadOnlyStoreError,
    RouterClosedError,
    RouterError,
    StoreAuthError,
    StoreError,
    StoreUnavailableError,
    SynapseError,
    TransportError,
    UnknownIdError,
    UnknownTractError,
    UnserializablePayloadError,
    UnsupportedStoreOperationError,
)

# Everything else loads on first use (NumPy, the runtime, httpx, redis, neo4j, tokenizers), so
# that `import synapse_mojo` (and the CLI's --help) stays fast.
_LAZY = {
    "FEATURES": "config",
    "Mode": "config",
    "Settings": "config",
    "load_settings": "config",
    "Outcome": "runtime",
    "Runtime": "runtime",
    "get_runtime": "runtime",
    "set_runtime": "runtime",
    "BatchResult": "search",
    "PatternIndex": "search",
    "SearchHit": "search",
    "SearchResult": "search",
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


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "FEATURES",
    "BatchResult",
    "ConfigError",
    "DamagedIndexError",
    "DimensionMismatchError",
    "Embedder",
    "EmbeddingError",
    "EmbeddingServerError",
    "EmbeddingUnavailableError",
    "EmptyIndexError",
    "ImportFormatError",
    "InvalidInputError",
    "InvalidTypeError",
    "KernelBuildError",
    "KernelError",
    "MissingExtraError",
    "Mode",
    "Outcome",
    "Pattern",
    "PatternIndex",
    "PatternMap",
    "PatternStore",
    "PayloadTooLargeError",
    "QueueFullError",
    "ReadOnlyStoreError",
    "Relation",
    "RouterClosedError",
    "RouterError",
    "Runtime",
    "SearchHit",
    "SearchResult",
    "Settings",
    "StoreAuthError",
    "StoreError",
    "StoreUnavailableError",
    "SynapseError",
    "TransportError",
    "UnknownIdError",
    "UnknownTractError",
    "UnserializablePayloadError",
    "UnsupportedStoreOperationError",
    "__version__",
    "embedder_from_env",
    "get_runtime",
    "load_settings",
    "open_store",
    "set_runtime",
]
