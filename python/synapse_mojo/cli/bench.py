"""``synapse-mojo bench``: the benchmark suites (see docs/benchmark-schema.md).

The harness lives in ``synapse_mojo._dev.bench`` and needs the ``bench`` extra; without it every
subcommand says so in one line and exits 2 (``bench --help`` still lists them).
"""

from __future__ import annotations

from .._extras import require
from . import main
from .lazy import LazyGroup

#: subcommand -> (module, its line in ``bench --help``)
SUBCOMMANDS = {
    "compare": (
        "synapse_mojo.cli.bench_compare",
        "Compare two benchmark JSON documents of one suite (e.g. x86_64 vs aarch64).",
    ),
    "crossovers": (
        "synapse_mojo.cli.bench_crossovers",
        "Search dispatch crossovers: Mojo vs NumPy (and inline vs pool) per size, measured here.",
    ),
    "recall": (
        "synapse_mojo.cli.bench_recall",
        "int8 recall@k: one scan with a fixed rerank factor vs the certified search vs float32.",
    ),
    "router": (
        "synapse_mojo.cli.bench_router",
        "In-process router (Mojo, heapq) vs a queue.PriorityQueue router, and the Redis Streams "
        "transport vs raw redis-py pipelines: throughput, p50/p95/p99, lost messages, one run.",
    ),
    "serve": (
        "synapse_mojo.cli.bench_serve",
        "MCP tool calls (HTTP, stdio; 1/4/16 clients) vs in-process PatternMap.search vs the "
        "pilot's CLI process per query, one run.",
    ),
    "search": (
        "synapse_mojo.cli.bench_search",
        "Exact top-k search: Mojo vs NumPy vs pure Python vs FAISS/usearch, one run, same data.",
    ),
}


@main.group(cls=LazyGroup, lazy=SUBCOMMANDS)
def bench() -> None:
    """Run benchmarks and compare results across machines.

    Every subcommand writes a JSON document (schema synapse-mojo-bench/1), a markdown table and
    PNG plots. Needs the `bench` extra: pip install 'synapse-mojo[bench]'. Never run two
    benchmarks at once.
    """
    require("bench", "synapse-mojo bench")
