"""`patterns search --search store` (Neo4j's vector index) vs the in-process index, in one run.

    uv run python benchmarks/store_search.py --n 10000,100000 --dim 384 --json neo4j-search.json

For each N: one seeded dataset (unit vectors with i.i.d. Gaussian components, the hard case for
approximate indexes) and query set; the patterns are bulk-loaded into Neo4j (UNWIND batches,
a transaction per chunk, the vector index built once after the load), and the same vectors into
an in-process ``PatternIndex`` (Mojo kernel when it loads, else NumPy). Then every query runs
on both, interleaved (Neo4j, in-process, Neo4j, ...), so machine noise hits both alike. Timed:
``Neo4jStore.search`` (what ``--search store`` calls: a Bolt round trip to
``db.index.vector.queryNodes`` or the ``SEARCH`` clause) and ``PatternIndex.search`` (what
``--search memory`` calls). Both commands then fetch the hits' texts from the store alike.
recall@10 is against exact float64 results.

Neo4j is the launcher from tests/neo4j-launcher (``--release``, started and stopped here; its
dependencies come from ``python -m tests.servers prepare``), or ``--url`` for a server you run
(credentials from NEO4J_USER / NEO4J_PASSWORD; its default database is CLEARED).
``--candidates 100,400`` times the store with each number of neighbours asked of the index
(its ``candidates`` URL option; recall rises with it), interleaved with the rest.
Writes a ``synapse-mojo-bench/1`` document (suite ``search``; comparable with
``synapse-mojo bench compare``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.servers (the launcher)

from synapse_mojo._dev.bench.machine import machine_info  # noqa: E402
from synapse_mojo._dev.bench.report import markdown_table, new_document, write_document  # noqa: E402
from synapse_mojo._dev.bench.search import ground_truth, make_dataset, peak_rss_mb, recall  # noqa: E402
from synapse_mojo.search.index import PatternIndex  # noqa: E402
from synapse_mojo.stores import Pattern, open_store  # noqa: E402
from synapse_mojo.stores.neo4j import Neo4jStore, env_credentials  # noqa: E402

K = 10


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {f"p{p}_ms": float(np.percentile(ms, p)) for p in (50, 95, 99)}


def load(store: Neo4jStore, matrix: np.ndarray, chunk: int) -> float:
    """Bulk load: ``chunk`` patterns per upsert (one transaction each, UNWIND batches inside)."""
    started = time.perf_counter()
    for start in range(0, len(matrix), chunk):
        rows = range(start, min(start + chunk, len(matrix)))
        store.upsert([Pattern(f"p{i:07d}", f"pattern {i}", {"i": i}, matrix[i]) for i in rows])
    return time.perf_counter() - started


def run_case(url: str, environ: dict[str, str], n: int, dim: int, queries: int, seed: int,
             chunk: int, label: str, candidates: list[int]) -> tuple[list[dict], dict]:  # fmt: skip
    matrix, qs = make_dataset(n, dim, queries + 5, seed)
    warm, qs = qs[:5], qs[5:]
    truth = ground_truth(matrix, qs, K)
    # Load without the vector index (no per-write HNSW updates), then build it once.
    with open_store(
        f"{url}{'&' if '?' in url else '?'}vector_index=0&timeout=600", environ=environ
    ) as loader:
        loader.clear()
        load_seconds = load(loader, matrix, chunk)
    started = time.perf_counter()
    store = open_store(
        f"{url}{'&' if '?' in url else '?'}timeout=600", environ=environ
    )  # builds the index
    index_seconds = time.perf_counter() - started
    assert isinstance(store, Neo4jStore) and store.supports_search
    index = PatternIndex(dim, capacity=n)
    index.upsert([f"p{i:07d}" for i in range(n)], matrix)
    backend_runtime = index.search_detailed(warm[0], K).runtime
    for q in warm:  # warm both: JIT, page cache, kernel load
        store.search(q, K)
        index.search(q, K)
    # One timed series per candidates value (the store's URL option), and the in-process index.
    names = [f"c{c}" for c in candidates] + ["memory"]
    times: dict[str, list[float]] = {name: [] for name in names}
    found: dict[str, list[np.ndarray]] = {name: [] for name in names}
    errors = dict.fromkeys(names, 0)
    for q in qs:
        for name in names:
            if name != "memory":
                store.candidates = int(name[1:])
            t0 = time.perf_counter()
            try:
                ids = (
                    [pid for pid, _ in store.search(q, K)]
                    if name != "memory"
                    else [h.id for h in index.search(q, K)]
                )
            except Exception:  # noqa: BLE001 - counted, the run goes on
                errors[name] += 1
                ids = []
            times[name].append(time.perf_counter() - t0)
            found[name].append(np.asarray([int(i[1:]) for i in ids], dtype=np.int64))
    flavour = store._vector_search_flavour()
    v = store.version
    version = f"{v[0]}.{v[1]:02d}.{v[2]}" if v[0] >= 2025 else ".".join(map(str, v))
    store.close()
    records = []
    backends = [(f"c{c}", f"neo4j-{version}-{flavour}-c{c}") for c in candidates]
    for name, backend in [*backends, ("memory", f"in-process-{backend_runtime}-vs-{version}")]:
        lat = _percentiles(times[name])
        records.append({
            "backend": backend, "n": n, "dim": dim, "k": K, "mode": "single", "batch_size": 1,
            "queries": len(qs), "threads": os.cpu_count(), **lat,
            "qps": 1e3 / lat["p50_ms"],
            "gbps": (n * dim * 4 / 1e9) / (lat["p50_ms"] / 1e3) if name == "memory" else 0.0,
            "recall_at_k": recall(found[name], truth), "errors": errors[name],
            "peak_rss_mb": peak_rss_mb(),
            "note": (f"{label}; {name[1:]} candidates; Bolt round trip included"
                     if name != "memory" else "exact scan, same process"),
        })  # fmt: skip
    load_info = {
        "n": n, "dim": dim, "load_seconds": load_seconds, "patterns_per_s": n / load_seconds,
        "index_build_seconds": index_seconds, "chunk": chunk,
    }  # fmt: skip
    return records, load_info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="10000,100000", help="comma-separated pattern counts")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=5000, help="patterns per upsert (transaction)")
    parser.add_argument(
        "--candidates",
        default="100,400",
        help="comma-separated neighbours asked of the index (the store's candidates option)",
    )
    parser.add_argument(
        "--release", action="append", help="launcher release(s): 5.26, 2026.08 [default: 5.26]"
    )
    parser.add_argument(
        "--url", help="an existing Neo4j instead of the launcher (its data is cleared)"
    )
    parser.add_argument("--heap", default="2g", help="launcher JVM heap")
    parser.add_argument("--pagecache", default="1g", help="launcher page cache")
    parser.add_argument("--json", dest="json_path", default="neo4j-store-search.json")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.n.split(",") if x.strip()]
    doc = new_document(
        "search",
        " ".join(["python benchmarks/store_search.py", *(argv or sys.argv[1:])]),
        machine_info(),
    )
    doc["parameters"] = {
        "queries": args.queries,
        "seed": args.seed,
        "chunk": args.chunk,
        "k": K,
        "candidates": args.candidates,
    }
    doc["loads"] = []
    targets: list[tuple[str, object]] = []
    if args.url:
        targets.append((args.url, None))
    else:
        from tests.servers import NEO4J_RELEASES, Neo4jServer

        for name in args.release or ["5.26"]:
            targets.append(
                (name, Neo4jServer(NEO4J_RELEASES[name], heap=args.heap, pagecache=args.pagecache))
            )
    for target, server in targets:
        if server is None:
            url, environ, label = target, dict(os.environ), "external server"
        else:
            server.start()  # type: ignore[attr-defined]
            print(
                f"Neo4j {server.version}: ready in {server.startup_seconds:.1f} s", file=sys.stderr
            )  # type: ignore[attr-defined]
            url, label = server.url, f"launcher, heap {args.heap}, page cache {args.pagecache}"  # type: ignore[attr-defined]
            environ = {"NEO4J_USER": server.user, "NEO4J_PASSWORD": server.password}  # type: ignore[attr-defined]
        if env_credentials(environ) is None:
            environ.setdefault("NEO4J_USER", "neo4j")
        try:
            for n in sizes:
                print(f"N={n:,} d={args.dim}: loading ...", file=sys.stderr)
                records, load_info = run_case(
                    url,
                    environ,
                    n,
                    args.dim,
                    args.queries,
                    args.seed,
                    args.chunk,
                    label,
                    [int(c) for c in args.candidates.split(",") if c.strip()],
                )
                if server is not None:
                    load_info["server_rss_mb"] = server.rss() / 1e6  # type: ignore[attr-defined]
                doc["records"].extend(records)
                doc["loads"].append(load_info)
                print(f"  loaded in {load_info['load_seconds']:.1f} s "
                      f"({load_info['patterns_per_s']:,.0f}/s), "
                      f"index built in {load_info['index_build_seconds']:.1f} s",
                      file=sys.stderr)  # fmt: skip
        finally:
            if server is not None:
                server.cleanup()  # type: ignore[attr-defined]
    write_document(doc, args.json_path)
    print(markdown_table(doc))
    print(f"\nwritten: {args.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
