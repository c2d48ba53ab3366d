"""Checks and normal forms for embedding vectors, shared by every layer that takes one.

    from synapse_mojo.vectors import as_matrix, as_query
    matrix = as_matrix(rows, dim=384)       # (m, 384) float32, C-contiguous, unit rows
    query = as_query([0.1, 0.2, ...], 384)  # (384,) float32, unit length

Every function returns data in the exact form the search backends and stores trust
(C-contiguous float32, L2-normalised, finite, within float32 range, the expected dimension) or
raises one of the library's errors (``InvalidInputError``, ``InvalidTypeError``,
``DimensionMismatchError``) with a message that says what was wrong. This module sits below
``search`` and ``stores`` (both import it) and imports nothing of the package but ``errors``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .errors import DimensionMismatchError, InvalidInputError, InvalidTypeError

__all__ = [
    "as_embedding",
    "as_matrix",
    "as_queries",
    "as_query",
    "as_top_k",
    "normalised_common",
    "unusable_rows",
]


def as_matrix(
    embeddings: Any, dim: int | None, what: str = "embeddings", *, allow_zero_rows: bool = False
) -> np.ndarray:
    """A (m, d) float32 C-contiguous copy with L2-normalised rows.

    Accepts any array-like of real numbers (lists, float64 arrays, non-contiguous views; a
    single 1-D vector counts as one row). Rejects NaN/inf and wrong dimensions, and zero
    vectors unless ``allow_zero_rows`` (they then stay zero: cosine 0 with everything).
    """
    array = _as_float_array(embeddings, what)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise InvalidInputError(f"{what} must be 1-D or 2-D, got shape {array.shape}")
    if array.shape[1] == 0:
        raise InvalidInputError(f"{what} have dimension 0")
    if dim is not None and array.shape[1] != dim:
        raise DimensionMismatchError(
            f"{what} have dimension {array.shape[1]}, the index has dimension {dim}"
        )
    return _normalise_rows(array, what, allow_zero_rows)


def as_embedding(value: Any, what: str) -> np.ndarray:
    """A 1-D C-contiguous float32 copy with finite values (not normalised: a stored embedding
    keeps its length). A component beyond float32's range becomes infinity and is rejected."""
    try:
        with np.errstate(over="ignore"):
            array = np.array(value, dtype=np.float32, copy=True)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(f"{what}: embedding is not a numeric vector ({exc})") from None
    if array.ndim != 1 or array.shape[0] == 0:
        raise InvalidInputError(
            f"{what}: embedding must be a non-empty 1-D vector, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise InvalidInputError(f"{what}: embedding contains NaN or infinity")
    return np.ascontiguousarray(array)


def unusable_rows(matrix: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Rows of a (m, d) array that cannot be indexed, and why: ``(rows, reasons)``.

    A row is unusable when it holds NaN or infinity (also after conversion to float32, so a
    component above ~3.4e38 counts) or is all zeros (cosine is undefined).
    """
    array = np.asarray(matrix)
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.all(np.isfinite(array.astype(np.float32, copy=False)), axis=1)
    nonzero = np.any(array != 0, axis=1)
    bad = np.flatnonzero(~(finite & nonzero))
    reasons = ["contains NaN or infinity" if not finite[r] else "is all zeros" for r in bad]
    return bad, reasons


_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
#: Sums of squares inside this range need no float64 pass: no overflow, no underflow.
_SAFE_SQUARES = (1e-30, 1e30)


def normalised_common(query: Any, dim: int, out: np.ndarray | None = None) -> np.ndarray | None:
    """``as_query``'s common case alone: a float32 or float64 ndarray of shape (dim,) whose
    sum of squares lies in (1e-30, 1e30), normalised (into ``out`` when given); None for
    anything else (lists, zero, NaN/inf, extreme magnitudes, wrong shapes), which
    ``as_query`` checks and explains. The Mojo kernels apply the same rule."""
    if type(query) is np.ndarray and query.ndim == 1 and query.shape[0] == dim:
        dtype = query.dtype
        if dtype in (_F32, _F64):  # identity first, then equality
            # One pass for both checks: NaN or inf anywhere makes the sum of squares
            # non-finite, so a sum inside the safe range proves the vector finite and non-zero.
            squares = float(np.dot(query, query))
            if _SAFE_SQUARES[0] < squares < _SAFE_SQUARES[1]:
                scale = 1.0 / math.sqrt(squares)
                if out is not None:
                    return np.multiply(query, scale, out=out, casting="same_kind")
                if dtype == _F32:
                    return query * np.float32(scale)
                return (query * scale).astype(np.float32)
    return None


def as_query(query: Any, dim: int, out: np.ndarray | None = None) -> np.ndarray:
    """A (d,) float32 contiguous, L2-normalised copy of one query vector.

    ``out``: a float32 (d,) buffer to write the common case into (a caller's scratch whose
    address it already knows); the result may or may not be ``out``.
    """
    common = normalised_common(query, dim, out)
    if common is not None:
        return common
    array = _as_float_array(query, "query")
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1:
        raise InvalidInputError(
            f"query must be one vector of shape ({dim},), got shape {array.shape}; "
            "use search_batch for several queries"
        )
    if array.shape[0] != dim:
        raise DimensionMismatchError(
            f"query has dimension {array.shape[0]}, the index has dimension {dim}"
        )
    return _normalise_rows(array.reshape(1, -1), "query")[0]


def as_queries(queries: Any, dim: int) -> np.ndarray:
    array = _as_float_array(queries, "queries")
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise InvalidInputError(f"queries must have shape (b, {dim}), got {array.shape}")
    if array.shape[0] == 0:
        raise InvalidInputError("queries is empty")
    if array.shape[1] != dim:
        raise DimensionMismatchError(
            f"queries have dimension {array.shape[1]}, the index has dimension {dim}"
        )
    return _normalise_rows(array, "queries")


def as_top_k(top_k: Any) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral):
        raise InvalidTypeError(f"top_k must be an integer, got {type(top_k).__name__}")
    if top_k < 1:
        raise InvalidInputError(f"top_k must be >= 1, got {top_k}")
    return int(top_k)


def _as_float_array(value: Any, what: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{what} is not a numeric array: {exc}") from None
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise InvalidTypeError(f"{what} must hold real numbers, got dtype {array.dtype}")
    if array.size == 0:
        raise InvalidInputError(f"{what} is empty")
    return array


_BLOCK_ROWS = 16384


def _normalise_rows(array: np.ndarray, what: str, allow_zero_rows: bool = False) -> np.ndarray:
    """Checks and normalises block by block, so a large input costs one float32 copy."""
    out = np.empty(array.shape, dtype=np.float32)
    for start in range(0, array.shape[0], _BLOCK_ROWS):
        block = np.asarray(array[start : start + _BLOCK_ROWS], dtype=np.float64)
        if not np.all(np.isfinite(block)):
            bad = start + int(np.argwhere(~np.isfinite(block))[0][0])
            raise InvalidInputError(f"{what} row {bad} contains NaN or infinity")
        # Scaled by each row's largest magnitude before squaring: components above ~1e154
        # would overflow the squares (and below ~1e-154 underflow them) even in float64.
        peaks = np.max(np.abs(block), axis=1, keepdims=True)
        if np.any(peaks == 0):
            if not allow_zero_rows:
                bad = start + int(np.flatnonzero(peaks[:, 0] == 0)[0])
                raise InvalidInputError(f"{what} row {bad} is a zero vector; cosine is undefined")
            peaks[peaks == 0] = 1.0
        block = block / peaks
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        norms[norms == 0] = 1.0  # an allowed zero row stays zero (not 0/0 = NaN)
        out[start : start + block.shape[0]] = block / norms
    return out
