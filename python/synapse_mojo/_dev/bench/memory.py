"""Memory of a PatternIndex, measured in fresh processes (RSS from /proc/self/statm).

Two phases, each in its own interpreter so that nothing else inflates the numbers:

* ``build``: fill an index chunk by chunk (no full copy of the source data is ever held),
  report the RSS it added over the interpreter's baseline, then save it;
* ``load``: open the saved index memory-mapped, report the time to open, and the RSS after
  one search (vectors or codes paged in) and after ``queries`` searches (for int8: plus the
  float32 rows the reranks touched, file-backed and shared).

    python -m synapse_mojo._dev.bench.memory build --n 1000000 --dim 384 --quantization int8 DIR
    python -m synapse_mojo._dev.bench.memory load DIR
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _build(n: int, dim: int, quantization: str | None, path: str) -> dict[str, Any]:
    from synapse_mojo import PatternIndex

    index = PatternIndex(dim, capacity=n, quantization=quantization)
    rng = np.random.default_rng(1)
    baseline = _rss_mb()
    for start in range(0, n, 50_000):
        rows = min(50_000, n - start)
        index.upsert(
            [f"p_{i:07d}" for i in range(start, start + rows)],
            rng.standard_normal((rows, dim), dtype=np.float32),
        )
    built = _rss_mb()
    index.save(path)
    return {"phase": "build", "rss_baseline_mb": baseline, "index_rss_mb": built - baseline}


def _load(path: str, queries: int) -> dict[str, Any]:
    from synapse_mojo import PatternIndex
    from synapse_mojo.runtime import get_runtime

    get_runtime().feature("pattern_search").kernel()  # not part of the index's memory
    baseline = _rss_mb()
    started = time.perf_counter()
    index = PatternIndex.load(path)
    open_s = time.perf_counter() - started
    after_open = _rss_mb() - baseline
    rng = np.random.default_rng(2)
    index.search(rng.standard_normal(index.dim), top_k=10)
    after_one = _rss_mb() - baseline
    for q in rng.standard_normal((queries, index.dim)):
        index.search(q, top_k=10)
    after_many = _rss_mb() - baseline
    return {
        "phase": "load",
        "open_seconds": open_s,
        "rss_after_open_mb": after_open,
        "rss_after_first_search_mb": after_one,
        f"rss_after_{queries}_searches_mb": after_many,
        "quantization": index.quantization,
    }


def measure(
    n: int, dim: int, quantization: str | None, workdir: str, queries: int = 200
) -> dict[str, Any]:
    """Runs both phases in subprocesses; returns one record for the benchmark document."""
    path = os.path.join(workdir, f"index-{n}-{dim}-{quantization or 'f32'}")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def run(*args: str) -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, "-m", "synapse_mojo._dev.bench.memory", *args],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    build = run(
        "build", "--n", str(n), "--dim", str(dim), "--quantization", quantization or "none", path
    )
    load = run("load", "--queries", str(queries), path)
    raw = n * dim * 4 / 1e6
    record = {
        "n": n,
        "dim": dim,
        "quantization": quantization or "f32",
        "raw_f32_mb": round(raw, 1),
        "built_index_rss_mb": round(build["index_rss_mb"], 1),
        "built_ratio": round(build["index_rss_mb"] / raw, 3),
        "open_seconds": round(load["open_seconds"], 3),
        "mapped_rss_after_open_mb": round(load["rss_after_open_mb"], 1),
        "mapped_rss_after_first_search_mb": round(load["rss_after_first_search_mb"], 1),
        "mapped_ratio_after_first_search": round(load["rss_after_first_search_mb"] / raw, 3),
        f"mapped_rss_after_{queries}_searches_mb": round(
            load[f"rss_after_{queries}_searches_mb"], 1
        ),
    }
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m synapse_mojo._dev.bench.memory")
    sub = parser.add_subparsers(dest="phase", required=True)
    b = sub.add_parser("build")
    b.add_argument("--n", type=int, required=True)
    b.add_argument("--dim", type=int, required=True)
    b.add_argument("--quantization", choices=["none", "int8"], default="none")
    b.add_argument("path")
    ld = sub.add_parser("load")
    ld.add_argument("--queries", type=int, default=200)
    ld.add_argument("path")
    args = parser.parse_args(argv)
    if args.phase == "build":
        result = _build(
            args.n, args.dim, None if args.quantization == "none" else "int8", args.path
        )
    else:
        result = _load(args.path, args.queries)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
