"""The pilot's ``PatternSearch().search(query_vector, pattern_vectors, top_k)`` and
``create_pattern_search()``.

As in the pilot: ``(indices, scores, RuntimeResult)`` with Python lists, best first;
``result.runtime_used`` is ``Runtime.MOJO`` or ``Runtime.PYTHON``; a query of zeros scores 0
against every pattern (the first ``min(top_k, n)`` patterns, in order); no patterns give empty
lists; ``adapter``, ``mojo_enabled`` and ``get_runtime_status()`` are there.

Differences from the pilot, on purpose:

* The pattern matrix is normalised once and reused while the caller passes the same data.
  Sameness is decided by content (a position-sensitive 64-bit fingerprint computed at memory
  speed, see ``search.fingerprint``), never by ``id()``: an array edited in place, or a new
  list with equal contents, is handled correctly. Callers that version their data can pass
  ``version=`` to skip even that pass.
* ``top_k > n`` returns ``n`` results (the pilot padded with index -1 and score 0).
* Ties rank the earlier pattern first, identically on Mojo and Python.
* A pattern vector of zeros scores 0 (cosine is undefined for it); NaN/inf, a query whose
  dimension differs from the patterns' and ``top_k < 1`` raise a clear error (the pilot
  returned ``success=False`` and empty lists, or padded).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError
from ..runtime.adapter import Runtime as EngineRuntime
from ..search.base import results_agree
from ..search.fingerprint import fingerprint
from ..search.mojo_backend import MojoSearchBackend
from ..search.numpy_backend import NumpySearchBackend
from ..search.validation import as_matrix, as_query, as_top_k
from .config import get_mojo_feature_enabled, pilot_runtime
from .runtime_adapter import Runtime, RuntimeAdapter, RuntimeResult, get_runtime_adapter


def _pattern_matrix(pattern_vectors: Any) -> np.ndarray:
    try:
        array = np.asarray(pattern_vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"pattern_vectors must be a 2-D array or a list of equal-length vectors: {exc}") from None
    if array.ndim == 1 and array.size == 0:
        return array.reshape(0, 0)
    if array.ndim != 2:
        raise InvalidInputError(f"pattern_vectors must be 2-D (n, d), got shape {array.shape}")
    return array


class PatternSearch:
    """Exact cosine top-k over caller-supplied vectors, Mojo-accelerated with fallback."""

    def __init__(self, runtime: EngineRuntime | None = None) -> None:
        self._runtime = runtime
        self.adapter: RuntimeAdapter = get_runtime_adapter() if runtime is None else RuntimeAdapter(runtime)
        #: The pilot's ``pattern_search`` flag when this searcher was made.
        self.mojo_enabled: bool = get_mojo_feature_enabled("pattern_search") if runtime is None else (
            runtime.feature("pattern_search").mode.kind != "off"
        )
        self._key: Hashable | None = None
        self._matrix: np.ndarray | None = None
        self._numpy = NumpySearchBackend()
        self._lock = threading.Lock()

    @property
    def runtime(self) -> EngineRuntime:
        """The synapse-mojo runtime (the process-wide one, with the pilot's defaults, unless given)."""
        return self._runtime if self._runtime is not None else pilot_runtime()

    def get_runtime_status(self) -> dict[str, Any]:
        """The pilot's status: ``mojo_available``, ``mojo_enabled``, ``current_runtime``,
        ``force_python``, ``mojo_module_exists`` (the kernel's Mojo source ships here)."""
        from ..runtime.kernels import kernel_names, source_dir

        try:
            module_exists = "pattern_search" in kernel_names(source_dir(self.runtime.settings))
        except Exception:
            module_exists = False
        return {
            "mojo_available": self.adapter.mojo_available,
            "mojo_enabled": self.mojo_enabled,
            "current_runtime": self.adapter.runtime.value,
            "force_python": self.adapter.force_python,
            "mojo_module_exists": module_exists,
        }

    def _prepared(self, pattern_vectors: Any, version: Hashable | None) -> np.ndarray:
        raw = _pattern_matrix(pattern_vectors)
        if version is not None:
            key: Hashable = ("version", version, raw.shape)
        else:
            kernel = self.runtime.feature("pattern_search").kernel()
            try:
                key = fingerprint(raw, kernel)
            except Exception:  # the kernel path failed: the NumPy fingerprint is the same value
                key = fingerprint(raw)
        with self._lock:
            if key != self._key or self._matrix is None:
                self._matrix = (
                    as_matrix(raw, None, "pattern vectors", allow_zero_rows=True)
                    if raw.size
                    else raw.astype(np.float32)
                )
                self._key = key
            return self._matrix

    def search(
        self,
        query_vector: Any,
        pattern_vectors: Any,
        top_k: int = 10,
        *,
        version: Hashable | None = None,
    ) -> tuple[list[int], list[float], RuntimeResult]:
        """``(indices, scores, RuntimeResult)`` as lists, best first; ``min(top_k, n)`` results."""
        started = time.perf_counter()
        k = as_top_k(top_k)
        matrix = self._prepared(pattern_vectors, version)
        n = matrix.shape[0]
        if n == 0:
            return [], [], RuntimeResult(True, Runtime.PYTHON, ([], []), (time.perf_counter() - started) * 1e3)
        dim = matrix.shape[1]
        q_raw = np.asarray(query_vector, dtype=np.float64).reshape(-1)
        if q_raw.shape[0] != dim:
            raise DimensionMismatchError(f"query has dimension {q_raw.shape[0]}, the patterns have {dim}")
        k = min(k, n)
        if np.isfinite(q_raw).all() and not q_raw.any():
            # The pilot's rule: cosine with a zero vector is 0, so every pattern ties at 0.
            rows, scores = list(range(k)), [0.0] * k
            return rows, scores, RuntimeResult(True, Runtime.PYTHON, (rows, scores), (time.perf_counter() - started) * 1e3)
        q = as_query(q_raw, dim)
        feature = self.runtime.feature("pattern_search")
        threads = self.runtime.settings.threads
        outcome = feature.run(
            "topk",
            mojo=lambda kernel, fault: MojoSearchBackend(kernel, threads, fault).topk(matrix, q, k),
            python=lambda: self._numpy.topk(matrix, q, k),
            same=lambda a, b: results_agree(a, b, dim),
        )
        rows, scores = outcome.value.rows.tolist(), outcome.value.scores.tolist()
        result = RuntimeResult(True, Runtime(outcome.runtime), (rows, scores), outcome.elapsed_ms, outcome.error)
        return rows, scores, result


def create_pattern_search() -> PatternSearch:
    """The pilot's factory: a searcher over the process-wide runtime."""
    return PatternSearch()
