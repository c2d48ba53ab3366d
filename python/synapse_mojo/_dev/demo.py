"""The body of ``synapse-mojo demo``: the main job, end to end on the embedded default.

Part 1, the pattern map: imports the sample pattern set shipped with the package
(``synapse_mojo/data/sample_patterns.json``, a PATTERN_MAP.json of a few hundred software
patterns) into an embedded SQLite store, embeds it with the local MiniLM model (progress bar;
the embeddings are kept in the store, so later runs only embed what changed) and answers real
text queries, showing which runtime answered (mojo or python) and how long embedding and
search took. Part 2, the router (``router_demo.py``). Part 3, the kernel at scale: a synthetic
index of ``n`` vectors, searched by the Mojo, NumPy and pure-Python backends side by side. All
of it works offline.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from synapse_mojo.data import sample_patterns_path
from synapse_mojo.patternmap import PatternMap
from synapse_mojo.runtime.adapter import get_runtime
from synapse_mojo.runtime.metrics import percentile
from synapse_mojo.search.base import SearchBackend, eligible_count
from synapse_mojo.search.index import PatternIndex
from synapse_mojo.search.mojo_backend import MojoSearchBackend
from synapse_mojo.search.numpy_backend import NumpySearchBackend
from synapse_mojo.search.reference import PythonSearchBackend
from synapse_mojo.search.validation import as_matrix, as_queries
from synapse_mojo.stores import default_data_dir

_LANGS = ("python", "rust", "go", "typescript", "mojo")
_KINDS = ("refactor", "compression", "routing", "caching", "validation")

#: Questions an engineer might ask the pattern map; answered from the sample set.
DEFAULT_QUESTIONS = (
    "how do I stop retries from hammering a service that is already down?",
    "clients retry payment requests and we charge twice",
    "speed up cosine similarity over thousands of embeddings",
    "messages get lost when a worker crashes halfway through",
)


@dataclass(frozen=True)
class DemoOptions:
    """What ``synapse-mojo demo`` was asked for (its command-line options)."""

    n: int = 100_000
    dim: int = 384
    top_k: int = 5
    queries: int = 100
    python_queries: int = 3
    seed: int = 42
    store_url: str | None = None
    fresh: bool = False
    questions: tuple[str, ...] = DEFAULT_QUESTIONS
    skip_synthetic: bool = False
    skip_router: bool = False
    router_messages: int = 20_000


def run_demo(console: Console, err_console: Console, options: DemoOptions) -> None:
    """Runs the three parts, printing to ``console`` (progress goes to ``err_console``)."""
    runtime = get_runtime()
    feature = runtime.feature("pattern_search")
    with console.status("loading the Mojo kernel (compiles once, then cached) ..."):
        feature.kernel()
    status = feature.status(load=False)
    console.rule("[bold]synapse-mojo demo: exact pattern search")
    console.print(
        f"kernel: {status['kernel_origin']} {status['kernel_path'] or ''}  "
        f"self-check: {status['self_check']}  mode: {status['mode']}  "
        f"force-python: {status['force_python']}"
    )
    _pattern_map_demo(console, err_console, options)
    if not options.skip_router:
        from .router_demo import run_router_demo

        run_router_demo(console, messages=options.router_messages)
    if not options.skip_synthetic:
        _synthetic_demo(console, options, status)


# --------------------------------------------------------------------------------------------
# Part 1: the sample pattern map
# --------------------------------------------------------------------------------------------


def _pattern_map_demo(console: Console, err_console: Console, options: DemoOptions) -> None:
    console.rule("[bold]pattern map: the sample set, embedded locally, searched by text")
    tmp = tempfile.TemporaryDirectory(prefix="synapse-demo-") if options.fresh else None
    try:
        if options.store_url is not None:
            url = options.store_url
        elif tmp is not None:
            url = f"sqlite:///{Path(tmp.name) / 'demo.db'}"
        else:
            url = f"sqlite:///{default_data_dir() / 'demo.db'}"
        with PatternMap.open(url, start=False) as pmap:
            sample = sample_patterns_path()
            started = time.perf_counter()
            report = pmap.import_file(sample, progress=err_console.is_terminal)
            elapsed = time.perf_counter() - started
            console.print(
                f"imported {report.patterns} patterns and {report.relations} relations from "
                f"{sample.name} into {pmap.store.url} in {elapsed:.1f} s "
                f"({report.embedded} embedded with {pmap.embedder.model}, {report.reused} reused "
                "from earlier runs)"
            )
            pmap.start(progress=err_console.is_terminal)
            for question in options.questions:
                result = pmap.search_detailed(question, top_k=options.top_k)
                table = Table(
                    title=f"[bold]{question}[/bold]\nanswered by [bold]{result.runtime}[/bold]: "
                    f"search {result.search_ms:.3f} ms, "
                    f"embedding the question {result.embed_ms:.1f} ms",
                    title_justify="left",
                )
                table.add_column("rank", justify="right")
                table.add_column("id")
                table.add_column("cosine", justify="right")
                table.add_column("pattern", overflow="fold")
                table.add_column("category")
                for rank, hit in enumerate(result.hits, 1):
                    table.add_row(
                        str(rank),
                        hit.id,
                        f"{hit.score:.3f}",
                        str(hit.metadata.get("name", hit.text.splitlines()[0])),
                        str(hit.metadata.get("category", "")),
                    )
                console.print(table)
                if result.fallback_reason:
                    console.print(f"[yellow]answered by Python: {result.fallback_reason}[/yellow]")
    finally:
        if tmp is not None:
            tmp.cleanup()


# --------------------------------------------------------------------------------------------
# Part 3: the kernel at scale, on synthetic vectors
# --------------------------------------------------------------------------------------------


def _synthetic_patterns(
    n: int, dim: int, seed: int
) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    """Clustered vectors, like embeddings of related patterns, with metadata to filter on."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(8, n // 500), dim), dtype=np.float32)
    assignment = rng.integers(0, centres.shape[0], n)
    vectors = centres[assignment] + 0.6 * rng.standard_normal((n, dim), dtype=np.float32)
    ids = [f"p_{i:06d}" for i in range(n)]
    meta: list[dict[str, Any]] = [
        {"name": f"pattern {i}", "language": _LANGS[i % 5], "type": _KINDS[(i // 5) % 5]}
        for i in range(n)
    ]
    return ids, vectors, meta


def _time_backend(
    backend: SearchBackend, matrix: np.ndarray, queries: np.ndarray, k: int, repeat: int
) -> list[float]:
    times = []
    for i in range(repeat):
        q = queries[i % len(queries)]
        started = time.perf_counter()
        backend.topk(matrix, q, k)
        times.append(time.perf_counter() - started)
    return times


def _p(sorted_times: list[float], q: float) -> float:
    """Percentile of a non-empty sample (every timed backend ran at least one query)."""
    value = percentile(sorted_times, q)
    assert value is not None
    return value


def _synthetic_demo(console: Console, options: DemoOptions, status: dict[str, Any]) -> None:
    n, dim, top_k, seed = options.n, options.dim, options.top_k, options.seed
    console.rule(f"[bold]the kernel at scale: a synthetic index of {n:,} vectors")
    with console.status(f"building an index of {n:,} patterns x {dim} dims ..."):
        ids, vectors, meta = _synthetic_patterns(n, dim, seed)
        index = PatternIndex(dim, capacity=n)
        index.upsert(ids, vectors, meta)
    console.print(f"index: {len(index):,} patterns, {index.nbytes / 1e6:.0f} MB of vectors")

    rng = np.random.default_rng(seed + 1)
    probes = rng.choice(n, size=3, replace=False)
    for probe in probes:
        query = vectors[probe] + 0.3 * rng.standard_normal(dim, dtype=np.float32)
        result = index.search_detailed(query, top_k=top_k)
        table = Table(
            title=f"query: a noisy copy of {ids[probe]}  ->  answered by "
            f"[bold]{result.runtime}[/bold] in {result.elapsed_ms:.2f} ms"
        )
        table.add_column("rank", justify="right")
        table.add_column("id")
        table.add_column("cosine", justify="right")
        table.add_column("language")
        table.add_column("type")
        for rank, hit in enumerate(result.hits, 1):
            table.add_row(
                str(rank),
                hit.id,
                f"{hit.score:.4f}",
                hit.metadata["language"],
                hit.metadata["type"],
            )
        console.print(table)

    filtered = index.search_detailed(vectors[probes[0]], top_k=3, filter={"language": "mojo"})
    console.print(
        "filter {'language': 'mojo'} -> "
        + ", ".join(f"{h.id} ({h.score:.3f})" for h in filtered.hits)
        + f"  (answered by {filtered.runtime})"
    )

    # Side-by-side latency of the three backends on the same matrix and queries.
    runtime = get_runtime()
    matrix = as_matrix(vectors, dim)
    timed_queries = as_queries(rng.standard_normal((32, dim)), dim)
    rows: list[tuple[str, list[float]]] = []
    kernel = runtime.feature("pattern_search").kernel()
    with console.status("timing backends ..."):
        if kernel is not None:
            mojo = MojoSearchBackend(kernel, runtime.settings.threads)
            mojo.topk(matrix, timed_queries[0], top_k)  # warm-up
            rows.append(
                ("mojo", _time_backend(mojo, matrix, timed_queries, top_k, options.queries))
            )
        numpy_backend = NumpySearchBackend()
        numpy_backend.topk(matrix, timed_queries[0], top_k)
        numpy_times = _time_backend(numpy_backend, matrix, timed_queries, top_k, options.queries)
        rows.append(("numpy", numpy_times))
        if options.python_queries > 0:
            python_times = _time_backend(
                PythonSearchBackend(), matrix, timed_queries, top_k, options.python_queries
            )
            rows.append(("python", python_times))
    numpy_p50 = _p(sorted(numpy_times), 50)
    table = Table(title=f"single-query latency, N={eligible_count(n, None):,}, d={dim}, k={top_k}")
    for col in ("backend", "queries", "p50 ms", "p95 ms", "p99 ms", "GB/s", "speed-up vs numpy"):
        table.add_column(col, justify="right")
    for name, times in rows:
        values = sorted(times)
        p50 = _p(values, 50)
        table.add_row(
            name,
            str(len(values)),
            f"{p50 * 1e3:.2f}",
            f"{_p(values, 95) * 1e3:.2f}",
            f"{_p(values, 99) * 1e3:.2f}",
            f"{matrix.nbytes / p50 / 1e9:.1f}",
            f"{numpy_p50 / p50:.2f}x" if numpy_p50 / p50 >= 0.1 else f"1/{p50 / numpy_p50:,.0f}",
        )
    console.print(table)
    if kernel is None:
        console.print(
            f"[yellow]Mojo kernel unavailable ({status['kernel_error'] or status['self_check']}); "
            "searches ran on NumPy.[/yellow]"
        )
