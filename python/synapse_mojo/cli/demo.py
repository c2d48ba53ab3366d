"""``synapse-mojo demo``: the main job, end to end on the embedded default.

Part 1, the pattern map: imports the sample pattern set shipped with the package
(``synapse_mojo/data/sample_patterns.json``, a PATTERN_MAP.json of a few hundred software
patterns) into an embedded SQLite store, embeds it with the local MiniLM model (progress bar;
the embeddings are kept in the store, so later runs only embed what changed) and answers real
text queries, showing which runtime answered (mojo or python) and how long embedding and
search took. Part 2, the kernel at scale: a synthetic index of ``--n`` vectors, searched by
the Mojo, NumPy and pure-Python backends side by side. Both work offline.
"""

from __future__ import annotations

import tempfile
import time
from importlib import resources
from pathlib import Path

import click
import numpy as np
from rich.table import Table

from ..patternmap import PatternMap
from ..runtime.adapter import get_runtime
from ..runtime.metrics import percentile
from ..search.base import eligible_count
from ..search.index import PatternIndex
from ..search.mojo_backend import MojoSearchBackend
from ..search.numpy_backend import NumpySearchBackend
from ..search.reference import PythonSearchBackend
from ..search.validation import as_matrix, as_queries
from ..stores import default_data_dir
from . import console, err_console, main
from .patterns import nonempty_store_url

_LANGS = ("python", "rust", "go", "typescript", "mojo")
_KINDS = ("refactor", "compression", "routing", "caching", "validation")


def _synthetic_patterns(n: int, dim: int, seed: int) -> tuple[list[str], np.ndarray, list[dict]]:
    """Clustered vectors, like embeddings of related patterns, with metadata to filter on."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(8, n // 500), dim), dtype=np.float32)
    assignment = rng.integers(0, centres.shape[0], n)
    vectors = centres[assignment] + 0.6 * rng.standard_normal((n, dim), dtype=np.float32)
    ids = [f"p_{i:06d}" for i in range(n)]
    meta = [
        {"name": f"pattern {i}", "language": _LANGS[i % 5], "type": _KINDS[(i // 5) % 5]}
        for i in range(n)
    ]
    return ids, vectors, meta


#: Questions an engineer might ask the pattern map; answered from the sample set.
DEFAULT_QUESTIONS = (
    "how do I stop retries from hammering a service that is already down?",
    "clients retry payment requests and we charge twice",
    "speed up cosine similarity over thousands of embeddings",
    "messages get lost when a worker crashes halfway through",
)


def sample_patterns_path() -> Path:
    """The sample PATTERN_MAP.json shipped inside the package."""
    return Path(str(resources.files("synapse_mojo") / "data" / "sample_patterns.json"))


def _pattern_map_demo(
    store_url: str | None, fresh: bool, top_k: int, questions: tuple[str, ...]
) -> None:
    console.rule("[bold]pattern map: the sample set, embedded locally, searched by text")
    tmp = tempfile.TemporaryDirectory(prefix="synapse-demo-") if fresh else None
    try:
        url = (
            store_url
            if store_url is not None
            else (
                f"sqlite:///{Path(tmp.name) / 'demo.db'}"
                if tmp
                else f"sqlite:///{default_data_dir() / 'demo.db'}"
            )
        )
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
            for question in questions:
                result = pmap.search_detailed(question, top_k=top_k)
                table = Table(
                    title=f"[bold]{question}[/bold]\nanswered by [bold]{result.runtime}[/bold]: "
                    f"search {result.search_ms:.3f} ms, embedding the question {result.embed_ms:.1f} ms",
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


def _time_backend(backend, matrix, queries, k, repeat: int) -> list[float]:
    times = []
    for i in range(repeat):
        q = queries[i % len(queries)]
        started = time.perf_counter()
        backend.topk(matrix, q, k)
        times.append(time.perf_counter() - started)
    return times


@main.command()
# Bounds are checked by click before anything runs (--n -1 used to run the whole demo first).
@click.option(
    "--n",
    "n",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=3),
    help="Patterns in the demo index (at least 3: three of them are queried).",
)
@click.option(
    "--dim", default=384, show_default=True, type=click.IntRange(min=1), help="Embedding dimension."
)
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--queries",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="Timed queries for Mojo and NumPy.",
)
@click.option(
    "--python-queries",
    default=3,
    show_default=True,
    type=click.IntRange(min=0),
    help="Timed queries for the pure-Python baseline (slow).",
)
@click.option("--seed", default=42, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    callback=nonempty_store_url,
    help="Store for the sample pattern map [default: demo.db in the user data directory].",
)
@click.option(
    "--fresh", is_flag=True, help="Use a temporary store: embed the sample set from scratch."
)
@click.option(
    "--ask",
    "questions",
    multiple=True,
    metavar="TEXT",
    help="A question for the pattern map (repeatable) [default: four built-in ones].",
)
@click.option(
    "--skip-synthetic", is_flag=True, help="Skip the synthetic latency comparison at scale."
)
@click.option("--skip-router", is_flag=True, help="Skip the message-router part.")
@click.option(
    "--router-messages",
    default=20_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Messages the router part routes per transport.",
)
def demo(
    n: int,
    dim: int,
    top_k: int,
    queries: int,
    python_queries: int,
    seed: int,
    store_url: str | None,
    fresh: bool,
    questions: tuple[str, ...],
    skip_synthetic: bool,
    skip_router: bool,
    router_messages: int,
) -> None:
    """The main job on the embedded default: import, embed and search the sample pattern map;
    route messages between the tracts in-process and over Redis Streams; then compare Mojo,
    NumPy and Python search at scale."""
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
    _pattern_map_demo(store_url, fresh, top_k, questions or DEFAULT_QUESTIONS)
    if not skip_router:
        from ..router.demo import run_router_demo

        run_router_demo(console, messages=router_messages)
    if skip_synthetic:
        return

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
    matrix = as_matrix(vectors, dim)
    timed_queries = as_queries(rng.standard_normal((32, dim)), dim)
    rows = []
    kernel = feature.kernel()
    with console.status("timing backends ..."):
        if kernel is not None:
            mojo = MojoSearchBackend(kernel, runtime.settings.threads)
            mojo.topk(matrix, timed_queries[0], top_k)  # warm-up
            rows.append(("mojo", _time_backend(mojo, matrix, timed_queries, top_k, queries)))
        numpy_backend = NumpySearchBackend()
        numpy_backend.topk(matrix, timed_queries[0], top_k)
        rows.append(("numpy", _time_backend(numpy_backend, matrix, timed_queries, top_k, queries)))
        if python_queries > 0:
            rows.append(
                (
                    "python",
                    _time_backend(
                        PythonSearchBackend(), matrix, timed_queries, top_k, python_queries
                    ),
                )
            )
    numpy_p50 = percentile(sorted(rows[-2 if python_queries > 0 else -1][1]), 50)
    table = Table(title=f"single-query latency, N={eligible_count(n, None):,}, d={dim}, k={top_k}")
    for col in ("backend", "queries", "p50 ms", "p95 ms", "p99 ms", "GB/s", "speed-up vs numpy"):
        table.add_column(col, justify="right")
    for name, times in rows:
        values = sorted(times)
        p50 = percentile(values, 50)
        table.add_row(
            name,
            str(len(values)),
            f"{p50 * 1e3:.2f}",
            f"{percentile(values, 95) * 1e3:.2f}",
            f"{percentile(values, 99) * 1e3:.2f}",
            f"{matrix.nbytes / p50 / 1e9:.1f}",
            f"{numpy_p50 / p50:.2f}x" if numpy_p50 / p50 >= 0.1 else f"1/{p50 / numpy_p50:,.0f}",
        )
    console.print(table)
    if kernel is None:
        console.print(
            f"[yellow]Mojo kernel unavailable ({status['kernel_error'] or status['self_check']}); "
            "searches ran on NumPy.[/yellow]"
        )
