"""The pattern store interface and its records.

    from synapse_mojo.stores import Pattern, Relation, open_store
    with open_store("sqlite:///patterns.db") as store:
        store.upsert([Pattern("p_001", "retry with backoff", {"lang": "py"}, vector)],
                     [Relation("p_001", "p_002", "refines", 0.8)])
        store.get("p_001").metadata
        for batch in store.iter_batches(1000):      # e.g. to build a PatternIndex
            ...

A store holds patterns (id, text, JSON metadata, an optional float32 embedding, created and
updated times), directed weighted relations between them, and a few store-wide ``info``
values (the embedding dimension and model, the source document's header). Backends:
``SQLiteStore`` (embedded default), ``Neo4jStore`` (the pattern graph), ``RedisStore`` (a
shared read path), and ``ReadThroughStore`` (a cache such as Redis over any of them).

Guarantees every backend keeps:

* ``upsert`` is all or nothing. The whole batch (patterns and relations) is validated before
  anything is written: ids, JSON-serialisable metadata, one embedding dimension per store,
  relation endpoints that exist in the store or in the same batch. Then it is written in one
  transaction where the server has them.
* Strings are stored literally (ids and text that look like SQL or Cypher included): every
  query is parameterised.
* Driver errors never leak: they become ``StoreError`` subclasses (``StoreUnavailableError``,
  ``StoreAuthError``, ``ReadOnlyStoreError``, ...), raised ``from`` the driver's error.
"""

from __future__ import annotations

import json
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, NamedTuple

import numpy as np

from ..errors import (
    DimensionMismatchError,
    InvalidInputError,
    InvalidTypeError,
    UnknownIdError,
    UnsupportedStoreOperationError,
)
from ..vectors import as_embedding

#: Relation type used when none is given.
DEFAULT_RELATION_TYPE = "related_to"

#: ``info`` keys the library itself maintains.
INFO_EMBEDDING_DIM = "embedding_dim"
INFO_EMBEDDING_MODEL = "embedding_model"


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Pattern:
    """One pattern. ``embedding`` is a float32 vector or None (not embedded yet).

    ``created_at``/``updated_at`` are set by the store (UTC). A ``created_at`` given on write
    is kept (useful when copying between stores); otherwise the first write's time is used.
    """

    id: str
    text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    embedding: np.ndarray | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str):
            raise InvalidTypeError(f"pattern id must be a string, got {type(self.id).__name__}")
        if not self.id:
            raise InvalidInputError("pattern id must be a non-empty string")
        if not isinstance(self.text, str):
            raise InvalidTypeError(
                f"pattern {self.id!r}: text must be a string, got {type(self.text).__name__}"
            )
        if self.metadata is None:
            self.metadata = {}
        if not isinstance(self.metadata, Mapping):
            raise InvalidTypeError(
                f"pattern {self.id!r}: metadata must be a dict, got {type(self.metadata).__name__}"
            )
        self.metadata = dict(self.metadata)
        for key in self.metadata:
            if not isinstance(key, str):
                raise InvalidTypeError(
                    f"pattern {self.id!r}: metadata keys must be strings, got {key!r}"
                )
        if self.embedding is not None:
            self.embedding = as_embedding(self.embedding, f"pattern {self.id!r}")
        for name in ("created_at", "updated_at"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, datetime):
                raise InvalidTypeError(f"pattern {self.id!r}: {name} must be a datetime or None")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pattern):
            return NotImplemented
        same_vectors = (self.embedding is None and other.embedding is None) or (
            self.embedding is not None
            and other.embedding is not None
            and np.array_equal(self.embedding, other.embedding)
        )
        return (
            self.id == other.id
            and self.text == other.text
            and self.metadata == other.metadata
            and same_vectors
            and self.created_at == other.created_at
            and self.updated_at == other.updated_at
        )

    def __repr__(self) -> str:
        dim = None if self.embedding is None else self.embedding.shape[0]
        text = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return (
            f"Pattern(id={self.id!r}, text={text!r}, metadata={len(self.metadata)} keys, dim={dim})"
        )


@dataclass(frozen=True)
class Relation:
    """A directed, typed, weighted edge between two patterns."""

    source: str
    target: str
    type: str = DEFAULT_RELATION_TYPE
    weight: float = 1.0

    def __post_init__(self) -> None:
        for name in ("source", "target", "type"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise InvalidInputError(
                    f"relation {name} must be a non-empty string, got {value!r}"
                )
        if isinstance(self.weight, bool) or not isinstance(self.weight, numbers.Real):
            raise InvalidTypeError(f"relation weight must be a number, got {self.weight!r}")
        if not math.isfinite(float(self.weight)):
            raise InvalidInputError(f"relation weight must be finite, got {self.weight!r}")
        object.__setattr__(self, "weight", float(self.weight))

    @property
    def key(self) -> tuple[str, str, str]:
        """(source, target, type): at most one relation per key; a new write replaces the weight."""
        return (self.source, self.target, self.type)


class WriteResult(NamedTuple):
    """What an ``upsert`` did."""

    added: int
    updated: int
    relations: int


class ChangeFeed(NamedTuple):
    """What changed in a store since a token (``PatternStore.changes``).

    ``token``: pass it to the next call (None: this store keeps no change feed). ``ids``: the
    patterns written or deleted since the token given, each once; None when the store cannot
    tell (the feed was trimmed past the token, or the store was cleared): rebuild from scratch.
    """

    token: Any
    ids: list[str] | None


# --------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------


class PatternStore(ABC):
    """Where patterns live. Use as a context manager, or call ``close()``."""

    #: Backend name (``sqlite``, ``neo4j``, ``redis``).
    backend: str = ""
    #: True when every write raises ``ReadOnlyStoreError``.
    read_only: bool = False

    @property
    @abstractmethod
    def url(self) -> str:
        """Where the store is, with any password removed (safe to print and log)."""

    @abstractmethod
    def upsert(
        self, patterns: Iterable[Pattern], relations: Iterable[Relation] = ()
    ) -> WriteResult:
        """Inserts or replaces ``patterns`` and ``relations`` together, all or nothing.

        A pattern with an existing id replaces it (text, metadata and embedding; ``created_at``
        is kept). A relation with an existing (source, target, type) replaces its weight.
        Validation happens before any write: duplicate ids in the batch, metadata that is not
        JSON (NaN included), embeddings whose dimension differs from each other or from the
        store's (``DimensionMismatchError``), relations whose endpoints are neither in the
        store nor in the batch (``InvalidInputError``). Records the embedding dimension in
        ``info`` on the first write that carries embeddings.
        """

    @abstractmethod
    def get_many(self, ids: Iterable[str]) -> dict[str, Pattern]:
        """The patterns with these ids that exist, keyed by id (missing ids are left out)."""

    def get(self, pattern_id: str) -> Pattern:
        """One pattern; ``UnknownIdError`` if the store does not hold it."""
        found = self.get_many([pattern_id])
        if pattern_id not in found:
            raise UnknownIdError(f"unknown pattern id {pattern_id!r} in {self.url}")
        return found[pattern_id]

    @abstractmethod
    def delete(self, ids: Iterable[str]) -> int:
        """Removes patterns and every relation touching them; returns how many existed."""

    @abstractmethod
    def iter_batches(self, batch_size: int = 1000) -> Iterator[list[Pattern]]:
        """Every pattern, in batches of at most ``batch_size``, in a stable backend order.

        Meant for building an in-memory index: memory stays bounded by one batch. Patterns
        written while iterating may or may not be seen.
        """

    def iter_patterns(self, batch_size: int = 1000) -> Iterator[Pattern]:
        """Every pattern, one at a time (see ``iter_batches``)."""
        for batch in self.iter_batches(batch_size):
            yield from batch

    @abstractmethod
    def count(self) -> int:
        """How many patterns the store holds."""

    @abstractmethod
    def relations(self, ids: Iterable[str] | None = None) -> list[Relation]:
        """All relations, or those with a source or target among ``ids``."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Store-wide values (JSON): ``embedding_dim``, ``embedding_model``, document headers."""

    @abstractmethod
    def set_info(self, values: Mapping[str, Any]) -> None:
        """Sets store-wide values (JSON-serialisable); a value of None removes the key."""

    @abstractmethod
    def clear(self) -> None:
        """Removes every pattern, relation and info value."""

    @property
    def supports_search(self) -> bool:
        """True when ``search`` can push a vector query down to the server."""
        return False

    def search(self, query: Any, top_k: int = 10) -> list[tuple[str, float]]:
        """(id, cosine similarity) of the ``top_k`` nearest patterns, from the server's index.

        Approximate (HNSW) on Neo4j and Redis vector sets; only where ``supports_search``.
        """
        raise UnsupportedStoreOperationError(
            f"{self.backend} store {self.url} cannot search on the server; "
            "use the in-memory index (PatternMap with search='memory')"
        )

    def vectors_out_of_step(self) -> bool:
        """True when a vector index the store keeps apart from its patterns (a Redis vector
        set) misses some of them, so that ``sync_vectors`` should run before searching on the
        server. False for stores whose index follows every write by itself, or that have none."""
        return False

    def sync_vectors(
        self, progress: Callable[[int], None] | None = None, batch_size: int = 1000
    ) -> int:
        """Rebuilds that vector index from the patterns; returns the vectors added.

        ``progress(n)`` is called after each batch of ``n`` patterns. Patterns without an
        embedding are left out. ``ReadOnlyStoreError`` on a read-only store that keeps such
        an index; 0 (nothing to do) on stores that keep none.
        """
        return 0

    def changes(self, since: Any = None) -> ChangeFeed:
        """The patterns written or deleted (by any process) since ``since``, a token from an
        earlier call; ``changes()`` gives the current token and no ids. Cheap when nothing
        changed (one small read), so that a server can poll it to keep its index live.

        Stores without a change feed return ``ChangeFeed(None, [])``.
        """
        return ChangeFeed(None, [])

    @abstractmethod
    def close(self) -> None:
        """Releases connections. Idempotent."""

    def __enter__(self) -> PatternStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


# --------------------------------------------------------------------------------------------
# Helpers shared by the backends
# --------------------------------------------------------------------------------------------


def metadata_json(pattern: Pattern) -> str:
    """The metadata as compact JSON; NaN/inf and non-JSON values are an ``InvalidInputError``."""
    try:
        return json.dumps(
            pattern.metadata, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"pattern {pattern.id!r}: metadata is not JSON-serialisable ({exc})"
        ) from None


def info_json(key: str, value: Any) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"info keys must be non-empty strings, got {key!r}")
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"info {key!r} is not JSON-serialisable ({exc})") from None


class PreparedBatch(NamedTuple):
    """A validated upsert batch."""

    patterns: list[Pattern]
    metadata: list[str]  # JSON, one per pattern
    relations: list[Relation]
    dim: int | None  # the batch's embedding dimension, if any pattern has one


def prepare_batch(
    patterns: Iterable[Pattern], relations: Iterable[Relation], store_dim: int | None
) -> PreparedBatch:
    """Validates what can be checked without the server (relation endpoints come later)."""
    pattern_list = list(patterns)
    relation_list = list(relations)
    seen: set[str] = set()
    dim = store_dim
    for pattern in pattern_list:
        if not isinstance(pattern, Pattern):
            raise InvalidTypeError(f"expected Pattern objects, got {type(pattern).__name__}")
        if pattern.id in seen:
            raise InvalidInputError(f"duplicate pattern id {pattern.id!r} in one batch")
        seen.add(pattern.id)
        if pattern.embedding is not None:
            size = int(pattern.embedding.shape[0])
            if dim is None:
                dim = size
            elif size != dim:
                where = "the store's" if store_dim is not None else "the batch's"
                raise DimensionMismatchError(
                    f"pattern {pattern.id!r} has a {size}-dimensional embedding; "
                    f"{where} embeddings have dimension {dim}"
                )
    metadata = [metadata_json(p) for p in pattern_list]
    keys: dict[tuple[str, str, str], Relation] = {}
    for relation in relation_list:
        if not isinstance(relation, Relation):
            raise InvalidTypeError(f"expected Relation objects, got {type(relation).__name__}")
        keys[relation.key] = relation  # the last write of a key wins, as in the store
    batch_dim = dim if any(p.embedding is not None for p in pattern_list) else None
    return PreparedBatch(pattern_list, metadata, list(keys.values()), batch_dim)


def missing_endpoints(relations: Sequence[Relation], known: set[str]) -> list[str]:
    """Endpoint ids of ``relations`` not in ``known``, in first-seen order."""
    missing: dict[str, None] = {}
    for relation in relations:
        for end in (relation.source, relation.target):
            if end not in known:
                missing[end] = None
    return list(missing)


def endpoint_error(missing: Sequence[str]) -> InvalidInputError:
    shown = ", ".join(repr(m) for m in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return InvalidInputError(
        f"relations refer to pattern id(s) {shown}{more} that are neither in the store nor in "
        "this batch; nothing was written"
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    """UTC microseconds since the epoch (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int | None) -> datetime | None:
    if micros is None:
        return None
    return _EPOCH + timedelta(microseconds=int(micros))


def now_micros() -> int:
    return to_micros(datetime.now(UTC))


def check_batch_size(batch_size: int) -> int:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def id_list(ids: Iterable[str], what: str = "ids") -> list[str]:
    if isinstance(ids, str):
        ids = [ids]
    out = list(ids)
    for item in out:
        if not isinstance(item, str):
            raise InvalidTypeError(f"{what} must be strings, got {item!r}")
    return list(dict.fromkeys(out))
