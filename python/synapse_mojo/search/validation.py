"""Input validation at the Python boundary, before any kernel sees the data.

The vector checks (``as_matrix``, ``as_query``, ``as_queries``, ``as_top_k``, ``unusable_rows``)
live in ``synapse_mojo.vectors``, below both search and stores, and are re-exported here. This
module adds what only the index takes: pattern ids and their JSON metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError, InvalidTypeError
from ..vectors import as_matrix, as_queries, as_query, as_top_k, unusable_rows

__all__ = [
    "as_ids",
    "as_matrix",
    "as_metadata",
    "as_queries",
    "as_query",
    "as_top_k",
    "unusable_rows",
]


def as_ids(ids: Any, count: int | None = None) -> list[str]:
    if isinstance(ids, (str, bytes)):
        ids = [ids]
    try:
        items = list(ids)
    except TypeError:
        raise InvalidTypeError(
            f"ids must be a string or a sequence of strings, got {ids!r}"
        ) from None
    for item in items:
        if not isinstance(item, str):
            raise InvalidTypeError(f"pattern ids must be strings, got {item!r}")
        if not item:
            raise InvalidInputError("pattern ids must be non-empty strings")
    if count is not None and len(items) != count:
        raise InvalidInputError(f"{len(items)} ids for {count} embeddings")
    if len(set(items)) != len(items):
        seen: set[str] = set()
        dup = next(i for i in items if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise InvalidInputError(f"duplicate id {dup!r} in one batch")
    return items


def as_metadata(metadata: Any, count: int) -> list[dict[str, Any]]:
    if metadata is None:
        return [{} for _ in range(count)]
    if isinstance(metadata, dict):
        if count != 1:
            raise InvalidInputError("one metadata mapping given for several ids; pass a list")
        metadata = [metadata]
    items: Sequence[Any] = list(metadata)
    if len(items) != count:
        raise InvalidInputError(f"{len(items)} metadata entries for {count} ids")
    out: list[dict[str, Any]] = []
    for row, item in enumerate(items):
        if item is None:
            out.append({})
        elif isinstance(item, dict):
            for key, value in item.items():
                if not isinstance(key, str):
                    raise InvalidTypeError(f"metadata row {row}: keys must be strings, got {key!r}")
                _check_json(value, key, row)
            out.append(dict(item))
        else:
            raise InvalidTypeError(f"metadata must be a dict or None, got {type(item).__name__}")
    return out


def _check_json(value: Any, path: Any, row: int) -> None:
    """Metadata must survive a JSON round trip unchanged (save/load, stores): str keys; str,
    int, finite float, bool, None, lists and dicts of those. Tuples, sets, bytes, NumPy scalars
    and other objects would come back as something else, so they are rejected here."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidInputError(
                f"metadata row {row}: {_where(path)} is {value}, not representable in JSON"
            )
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, (*_as_tuple(path), i), row)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidTypeError(
                    f"metadata row {row}: {_where(path)} has a non-string key {key!r}"
                )
            _check_json(item, (*_as_tuple(path), key), row)
        return
    hint = " (use a list)" if isinstance(value, (tuple, set, frozenset)) else ""
    if isinstance(value, np.generic):
        hint = " (convert it with .item())"
    raise InvalidTypeError(
        f"metadata row {row}: {_where(path)} is a {type(value).__name__}, which does not survive a "
        f"JSON round trip{hint}; metadata holds str, int, float, bool, None, lists and dicts"
    )


def _as_tuple(path: Any) -> tuple[Any, ...]:
    return path if isinstance(path, tuple) else (path,)


def _where(path: Any) -> str:
    parts = _as_tuple(path)
    return repr(parts[0]) + "".join(f"[{p!r}]" for p in parts[1:])
