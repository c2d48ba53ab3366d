"""The int8 recall benchmark: does quantised search find the exact top-k on realistic data?

    doc = run_recall_benchmark(datasets=("gaussian", "clustered", "docstrings"))

Gaussian unit vectors (the search benchmark's data) are the easy case for a fixed rerank
factor: scores are spread out. Real embeddings are clustered, with near-duplicates whose exact
scores differ by less than the int8 error. So three datasets:

* ``gaussian``: i.i.d. Gaussian unit vectors, Gaussian queries (``bench.search.make_dataset``);
* ``clustered``: tight clusters of near-duplicates, queries near cluster centres;
* ``docstrings``: MiniLM embeddings (the bundled local model, offline) of the first paragraph
  of docstrings found in the installed Python packages (read with ``ast``, nothing imported);
  held-out docstrings are the queries. Embeddings are cached under the user cache directory.

Per dataset and query, interleaved (so that the ratios compare like with like on a busy
machine): ``int8-fixed`` (one int8 scan, ``k * rerank_factor`` candidates re-scored: what the
index did before the certified search), ``int8-certified`` (``certified_topk_int8``: candidates
grown until the error bound proves the top-k, as ``PatternIndex`` does on NumPy; on Mojo the
index proves the same inequality in one kernel call, ``topk_int8_lists``, so its answers are
the same and its costs lower) and ``f32`` (the exact
float32 scan). Records give recall@k against a float64 ground truth, p50 latency, the
candidates the certified search needed and how often it fell back to the float32 scan.
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synapse_mojo.config import available_cores
from synapse_mojo.search.base import TopK, score_tolerance
from synapse_mojo.search.index import DEFAULT_RERANK_FACTOR
from synapse_mojo.search.numpy_backend import NumpySearchBackend
from synapse_mojo.search.quantization import (
    ScalarQuantizer,
    certified_topk_int8,
    next_start,
    quantize_query,
    rank_bound,
)
from synapse_mojo.search.validation import as_matrix, as_queries

from .machine import machine_info
from .report import new_document
from .search import ground_truth, make_dataset, percentile_ms, recall

DATASETS = ("gaussian", "clustered", "docstrings")
METHODS = ("int8-fixed", "int8-certified", "f32")


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


def clustered_dataset(
    n: int, dim: int, queries: int, seed: int, clusters: int | None = None, spread: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Near-duplicates: ``n`` unit vectors in tight clusters, queries near cluster centres."""
    rng = np.random.default_rng(seed)
    clusters = clusters or max(8, n // 1000)
    centres = rng.standard_normal((clusters, dim))
    matrix = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 65536):
        rows = min(65536, n - start)
        member = rng.integers(0, clusters, rows)
        noise = (
            rng.standard_normal((rows, dim))
            * np.linalg.norm(centres[member], axis=1, keepdims=True)
            / np.sqrt(dim)
        )
        matrix[start : start + rows] = as_matrix(centres[member] + spread * noise, dim)
    qs = centres[rng.integers(0, clusters, queries)] + spread * rng.standard_normal((queries, dim))
    return matrix, as_queries(qs, dim)


def iter_docstrings(roots: Sequence[str] | None = None) -> Iterator[str]:
    """First paragraphs (40-400 characters) of module, class and function docstrings of the
    ``.py`` files under ``roots`` (default: ``sys.path``), parsed with ``ast`` (no imports),
    in a stable order, without duplicates."""
    seen: set[str] = set()
    for root in roots if roots is not None else sorted(set(sys.path)):
        if not root or not os.path.isdir(root):
            continue
        for directory, subdirs, files in os.walk(root):
            subdirs.sort()
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                try:
                    tree = ast.parse(Path(directory, name).read_bytes())
                except (SyntaxError, ValueError, OSError, RecursionError):
                    continue
                for node in ast.walk(tree):
                    if not isinstance(
                        node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
                    ):
                        continue
                    doc = ast.get_docstring(node)
                    if not doc:
                        continue
                    text = " ".join(doc.split("\n\n")[0].split())
                    if 40 <= len(text) <= 400 and text not in seen:
                        seen.add(text)
                        yield text


def docstring_dataset(
    n: int, queries: int, seed: int, progress: Callable[[str], None]
) -> tuple[np.ndarray, np.ndarray]:
    """MiniLM embeddings of ``n + queries`` docstrings (cached); the last ``queries`` are the
    queries. Raises ``InvalidInputError`` when fewer docstrings are installed."""
    from synapse_mojo.embeddings import MiniLMEmbedder
    from synapse_mojo.errors import InvalidInputError

    texts: list[str] = []
    for text in iter_docstrings():
        texts.append(text)
        if len(texts) >= 50 * (n + queries):  # enough to sample from
            break
    if len(texts) < n + queries:
        raise InvalidInputError(
            f"only {len(texts)} docstrings found; asked for {n} + {queries} queries"
        )
    rng = np.random.default_rng(seed)
    picked = [texts[i] for i in sorted(rng.choice(len(texts), n + queries, replace=False))]
    rng.shuffle(picked)
    key = hashlib.sha256("\n".join(picked).encode()).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    cache = Path(base) / "synapse-mojo" / "bench" / f"docstrings-minilm-{key}.npy"
    if cache.is_file():
        vectors = np.load(cache)
    else:
        embedder = MiniLMEmbedder(batch_size=64)
        parts = []
        for start in range(0, len(picked), 256):
            progress(f"embedding docstrings with MiniLM: {start:,}/{len(picked):,}")
            parts.append(embedder.embed(picked[start : start + 256]))
        vectors = np.concatenate(parts).astype(np.float32)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    return as_matrix(vectors[:n], None), as_queries(vectors[n:], vectors.shape[1])


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------


def measure_dataset(
    name: str,
    matrix: np.ndarray,
    queries: np.ndarray,
    k: int,
    backend: Any,
    rerank_factor: int = DEFAULT_RERANK_FACTOR,
) -> list[dict[str, Any]]:
    n, dim = matrix.shape
    quantizer = ScalarQuantizer.fit(matrix)
    codes = quantizer.encode(matrix)
    truth = ground_truth(matrix, queries, k)
    tolerance = score_tolerance(dim)
    found: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    used: list[int] = []
    hint = 0

    def fixed(q: np.ndarray, qi: np.ndarray) -> TopK:
        return backend.topk_int8(codes, matrix, qi, q, k, k * rerank_factor)

    def certified(q: np.ndarray, qi: np.ndarray) -> TopK:
        nonlocal hint
        start = max(k * rerank_factor, hint)
        top, c = certified_topk_int8(
            backend, codes, matrix, qi, q, k, start, None, rank_bound(q, quantizer, qi), tolerance
        )
        hint = next_start(start, c)  # as PatternIndex did before its one-call search
        used.append(c)
        return top

    def exact(q: np.ndarray, qi: np.ndarray) -> TopK:
        return backend.topk(matrix, q, k)

    runs = {"int8-fixed": fixed, "int8-certified": certified, "f32": exact}
    for i, q in enumerate(queries):
        qi = quantize_query(q, quantizer.scale)
        order = METHODS[i % 3 :] + METHODS[: i % 3]  # rotate: no method always runs first
        for method in order:
            started = time.perf_counter()
            top = runs[method](q, qi)
            times[method].append(time.perf_counter() - started)
            found[method].append(top.rows)
    records = []
    for method in METHODS:
        record: dict[str, Any] = {
            "dataset": name,
            "backend": backend.name,
            "method": method,
            "n": n,
            "dim": dim,
            "k": k,
            "queries": len(queries),
            "recall_at_k": recall(found[method], truth),
            "p50_ms": percentile_ms(times[method], 50),
            "p99_ms": percentile_ms(times[method], 99),
        }
        if method == "int8-certified":
            record.update(
                mean_candidates=float(np.mean(used)),
                max_candidates=int(max(used)),
                exact_fallbacks=int(sum(1 for c in used if c >= n)),
                rerank_factor=rerank_factor,
            )
        if method == "int8-fixed":
            record["rerank_factor"] = rerank_factor
        records.append(record)
    fixed_p50 = next(r["p50_ms"] for r in records if r["method"] == "int8-fixed")
    for r in records:
        r["p50_vs_int8_fixed"] = r["p50_ms"] / fixed_p50 if fixed_p50 else None
    return records


def run_recall_benchmark(
    datasets: Sequence[str] = DATASETS,
    *,
    n: int = 100_000,
    dim: int = 384,
    docstrings: int = 5_000,
    queries: int = 100,
    k: int = 10,
    seed: int = 20261125,
    command: str = "synapse-mojo bench recall",
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Runs the datasets and returns a ``synapse-mojo-bench/1`` document (suite "recall")."""
    from synapse_mojo.runtime.adapter import get_runtime
    from synapse_mojo.search.mojo_backend import MojoSearchBackend

    kernel = get_runtime().feature("pattern_search").kernel()
    threads = available_cores()
    backend = MojoSearchBackend(kernel, threads) if kernel is not None else NumpySearchBackend()
    doc = new_document("recall", command, machine_info())
    for name in datasets:
        progress(f"{name}: building the data")
        if name == "gaussian":
            matrix, qs = make_dataset(n, dim, queries, seed)
        elif name == "clustered":
            matrix, qs = clustered_dataset(n, dim, queries, seed)
        elif name == "docstrings":
            matrix, qs = docstring_dataset(docstrings, queries, seed, progress)
        else:
            raise ValueError(f"unknown dataset {name!r}; choose from {DATASETS}")
        progress(f"{name}: measuring {len(qs)} queries")
        doc["records"].extend(measure_dataset(name, matrix, qs, k, backend))
    doc["parameters"] = {
        "n": n,
        "dim": dim,
        "docstrings": docstrings,
        "queries": queries,
        "k": k,
        "seed": seed,
        "threads": threads,
    }
    doc["notes"] = [] if kernel is not None else ["the Mojo kernel was unavailable: NumPy backend"]
    return doc
