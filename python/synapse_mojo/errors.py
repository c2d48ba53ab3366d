"""The library's exception tree.

Errors of underlying drivers (sqlite3, redis, neo4j, httpx, the Mojo compiler) never leak: they
are translated at the boundary into one of these, raised ``from`` the original. Input errors
also derive from the matching builtin (``ValueError``, ``TypeError``, ``KeyError``) so that
ordinary ``except ValueError`` code keeps working.

    SynapseError
    ├── ConfigError (ValueError)             bad settings file, env var or URL
    ├── MissingExtraError (ImportError)      a feature whose extra is not installed (names it)
    ├── KernelError                          a Mojo kernel could not be built or loaded
    │   └── KernelBuildError                   the compiler failed (message holds its output)
    ├── InvalidInputError (ValueError)       a bad argument caught before any kernel call
    │   ├── DimensionMismatchError             vector length differs from the index's
    │   ├── ImportFormatError                  a malformed import file (names the file and line)
    │   └── DamagedIndexError                  a saved index that fails its checks (names the file)
    ├── InvalidTypeError (TypeError)         an argument of the wrong type
    ├── EmptyIndexError                      search on an index with no (eligible) patterns
    ├── UnknownIdError (KeyError)            an id that the index or store does not hold
    ├── StoreError                           a pattern store operation failed
    │   ├── StoreUnavailableError              the server is down or unreachable
    │   ├── StoreAuthError                     the server rejected the credentials
    │   ├── ReadOnlyStoreError                 a write on a store opened read-only
    │   └── UnsupportedStoreOperationError     e.g. search push-down without a vector index
    ├── EmbeddingError                       an embedder failed
    │   ├── EmbeddingServerError               the embeddings server answered with an error status
    │   └── EmbeddingUnavailableError          the embeddings server is down, or timed out
    └── RouterError                          the message router could not do what was asked
        ├── RouterClosedError                  publish/consume/subscribe on a closed router
        ├── QueueFullError                     backpressure: no room within the timeout
        └── TransportError                     the transport (Redis) failed and retries ran out

    Bad messages are input errors (nothing is queued when they are raised):

    InvalidInputError (ValueError)
    ├── UnknownTractError                    a tract the router does not know
    └── PayloadTooLargeError                 serialised payload over the router's limit
    InvalidTypeError (TypeError)
    └── UnserializablePayloadError           a payload msgpack cannot encode (never pickled)
"""

from __future__ import annotations


class SynapseError(Exception):
    """Base class of every error raised by synapse-mojo."""


class ConfigError(SynapseError, ValueError):
    """A settings file, environment variable or URL is invalid."""


class MissingExtraError(SynapseError, ImportError):
    """A feature needs an optional dependency group (an extra) that is not installed.

    ``extra`` names it (``pip install 'synapse-mojo[<extra>]'``); ``missing`` lists the
    modules that were not found. Raised by ``synapse_mojo._extras.require`` where the feature
    is asked for (opening a redis:// store, the local embedder, ``synapse-mojo bench``, ...).
    """

    def __init__(self, message: str, extra: str = "", missing: tuple[str, ...] = ()) -> None:
        super().__init__(message, name=missing[0] if missing else None)
        self.extra = extra
        self.missing = missing


class KernelError(SynapseError):
    """A Mojo kernel could not be built, loaded or verified."""


class KernelBuildError(KernelError):
    """The Mojo compiler failed; ``compiler_output`` holds what it printed."""

    def __init__(self, message: str, compiler_output: str = "") -> None:
        super().__init__(message)
        self.compiler_output = compiler_output


class InvalidInputError(SynapseError, ValueError):
    """An argument was rejected before any kernel saw it."""


class DimensionMismatchError(InvalidInputError):
    """A vector's length differs from the dimension of the index."""


class InvalidTypeError(SynapseError, TypeError):
    """An argument has the wrong type."""


class EmptyIndexError(SynapseError):
    """Search on an index that holds no patterns, or none passing the filter."""


class UnknownIdError(SynapseError, KeyError):
    """An id that the index or store does not hold."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else "unknown id"


# --------------------------------------------------------------------------------------------
# Import files, pattern stores and embedders
# --------------------------------------------------------------------------------------------


class ImportFormatError(InvalidInputError):
    """An import file is malformed; the message names the file and, where known, the line."""


class DamagedIndexError(InvalidInputError):
    """A saved index directory failed to load or verify; the message names the file."""


class StoreError(SynapseError):
    """A pattern store operation failed (the driver's error is chained as ``__cause__``)."""


class StoreUnavailableError(StoreError):
    """The store's server is down, unreachable or stopped answering."""


class StoreAuthError(StoreError):
    """The store's server rejected the credentials."""


class ReadOnlyStoreError(StoreError):
    """A write was attempted on a store opened read-only."""


class UnsupportedStoreOperationError(StoreError):
    """The store (or its server version) cannot do this, e.g. vector search push-down."""


class EmbeddingError(SynapseError):
    """An embedder failed to turn text into vectors."""


class EmbeddingServerError(EmbeddingError):
    """The embeddings server answered with an error status (``status_code``)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class EmbeddingUnavailableError(EmbeddingError):
    """The embeddings server could not be reached, or timed out, after all retries."""


# --------------------------------------------------------------------------------------------
# Message router
# --------------------------------------------------------------------------------------------


class UnknownTractError(InvalidInputError):
    """A source or destination tract that the router does not know."""


class PayloadTooLargeError(InvalidInputError):
    """A payload whose serialised size exceeds the router's ``max_payload_bytes``."""

    def __init__(self, message: str, size: int = 0, limit: int = 0) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class UnserializablePayloadError(InvalidTypeError):
    """A payload that msgpack cannot encode (payloads are never pickled)."""


class RouterError(SynapseError):
    """The message router could not do what was asked."""


class RouterClosedError(RouterError):
    """Publish, consume or subscribe on a router that was closed."""


class QueueFullError(RouterError):
    """Backpressure: the destination had no room for the message(s) within the timeout.

    ``published`` is how many messages of a batch were queued before the failure (0 for a
    single message; batches to one destination are all-or-nothing, so it is also 0 there).
    Nothing is lost: every message that was not queued is still the caller's.
    """

    def __init__(
        self, message: str, destination: str = "", capacity: int = 0, published: int = 0
    ) -> None:
        super().__init__(message)
        self.destination = destination
        self.capacity = capacity
        self.published = published


class TransportError(RouterError):
    """The transport (e.g. Redis) failed and its retries ran out; the driver error is chained."""
