"""The Redis key schema of ``RedisStore``: every key it reads or writes, in one place.

All keys start with a prefix (default ``synapse:pm``; ``?prefix=`` in the store URL), so
several pattern maps can share one Redis database. ``<id>`` is the pattern id as given (keys
are binary-safe; the prefix and the fixed middle part keep them unambiguous).

=====================================  ==========  =============================================
key                                    type        content
=====================================  ==========  =============================================
``<prefix>:pattern:<id>``              hash        ``text`` (UTF-8), ``metadata`` (JSON),
                                                   ``embedding`` (float32 little-endian bytes,
                                                   absent when not embedded), ``dim``,
                                                   ``created_at``, ``updated_at`` (UTC
                                                   microseconds). A cache entry in cache mode
                                                   (with a TTL when ``ttl`` > 0).
``<prefix>:ids``                       sorted set  member = pattern id, score = insertion
                                                   sequence (iteration order, count).
                                                   Store-of-record mode only.
``<prefix>:seq``                       string      the last insertion sequence number (INCRBY).
``<prefix>:rel:out:<id>``              hash        outgoing relations of ``<id>``: field =
                                                   JSON ``[target, type]``, value = weight.
``<prefix>:rel:in:<id>``               set         incoming relations of ``<id>``: members =
                                                   JSON ``[source, type]``.
``<prefix>:info``                      hash        store-wide values: key -> JSON
                                                   (``embedding_dim``, ``embedding_model``, ...).
``<prefix>:vectors``                   vector set  Redis 8 vector set: element = pattern id,
                                                   FP32 vector (``VADD``/``VSIM``), for search
                                                   push-down shared by many processes.
``<prefix>:changes``                   stream      change feed: one entry per write transaction,
                                                   field ``ids`` = JSON list of the pattern ids
                                                   written or deleted (trimmed to ~10,000);
                                                   ``clear`` = 1 for a cleared store (kept by
                                                   ``clear``, so entry ids never go back).
=====================================  ==========  =============================================

In cache mode (a ``backing`` store of record) only ``pattern:<id>`` entries and ``vectors``
are written; ids, relations and info are read from the backing store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError

DEFAULT_PREFIX = "synapse:pm"

#: Hash fields of a pattern entry.
FIELD_TEXT = b"text"
FIELD_METADATA = b"metadata"
FIELD_EMBEDDING = b"embedding"
FIELD_DIM = b"dim"
FIELD_CREATED = b"created_at"
FIELD_UPDATED = b"updated_at"

_PREFIX_OK = re.compile(r"^[A-Za-z0-9_.\-:]{1,100}$")


@dataclass(frozen=True)
class RedisKeys:
    """Builds the keys above for one prefix."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        # Glob-safe characters only: ``clear`` scans ``<prefix>:*``.
        if not _PREFIX_OK.match(self.prefix):
            raise ConfigError(f"Redis key prefix {self.prefix!r}: use 1-100 of A-Z a-z 0-9 _ . - :")

    def pattern(self, pattern_id: str) -> str:
        return f"{self.prefix}:pattern:{pattern_id}"

    @property
    def ids(self) -> str:
        return f"{self.prefix}:ids"

    @property
    def seq(self) -> str:
        return f"{self.prefix}:seq"

    def relations_out(self, pattern_id: str) -> str:
        return f"{self.prefix}:rel:out:{pattern_id}"

    def relations_in(self, pattern_id: str) -> str:
        return f"{self.prefix}:rel:in:{pattern_id}"

    @property
    def info(self) -> str:
        return f"{self.prefix}:info"

    @property
    def vectors(self) -> str:
        return f"{self.prefix}:vectors"

    @property
    def changes(self) -> str:
        return f"{self.prefix}:changes"

    @property
    def all_keys_glob(self) -> str:
        """SCAN pattern matching every key of this prefix."""
        return f"{self.prefix}:*"
