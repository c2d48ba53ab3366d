"""The latency grid: every public search entry point against NumPy, from 10 patterns to 100,000.

    doc = run_latency_grid(ns=(10, 100, 1000, 10000, 100000), dims=(384, 1024), k=10)

Per cell (N x d), in interleaved rounds (each round runs every contender ``calls`` times in
turn, in a new seeded random order, so machine drift and the neighbour a contender follows
spread over all of them; each block opens with ``WARMUP_CALLS`` unrecorded calls, since the
contenders read different copies of the data):

* ``api-auto``, ``api-mojo``, ``api-python``: ``PatternIndex.search`` with the feature in
  ``auto``, ``on`` and ``off`` (``off`` is the path ``SYNAPSE_FORCE_PYTHON=1`` takes), on
  indexes made with the defaults (``quantization="auto"``: int8 codes once the rows take
  more than 2 MB, searched first while the kernel answers).
* ``api-f32``: the same call (feature ``auto``) on an index of float32 rows only
  (``quantization=None``).
* ``api-int8``: the same call on an index created with ``quantization="int8"`` (``auto``):
  the certified search, exact like the others, over a quarter of the bytes.
* ``api-removed``: the same call (``auto``, the defaults) on an index of the same N patterns
  after one more was added and removed: a liveness mask, as in a pattern map after any
  delete (until the index compacts).
* ``compat-array``, ``compat-list``: ``compat.PatternSearch.search(q, patterns)`` with the
  caller's raw (not normalised) rows as a 2-D array and as a list of 1-D arrays.
* ``numpy-raw``: ``M @ q`` + ``argpartition`` on a prepared, normalised float32 matrix.
* ``numpy-compat-array``, ``numpy-compat-list``: NumPy doing the compat job on the same
  input (stack if a list, squared norms, ``P @ q / norms``, ``argpartition``).
* ``kernel-f32``, ``kernel-cosine``: the bare kernel calls with addresses known, the floor
  under the public paths; ``overhead_us`` of an ``api-*`` / ``compat-*`` record is its p50
  minus the matching kernel p50.
* ``api-auto+numpy`` and ``numpy-matvec+api``: calls alternating one by one between
  ``PatternIndex.search`` and a NumPy ``M @ q`` over the index's own matrix (same memory, so
  the pair measures competing threads, not two copies sharing the cache; each side's own
  p50), next to ``numpy-matvec`` alone: living next to NumPy's worker threads.

Records use the ``synapse-mojo-bench/1`` search schema (``mode = "single"``) plus
``overhead_us`` and ``ratio_vs_numpy`` (the contender's p50 over its NumPy reference's p50
in the same run: above 1 means slower than NumPy).
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from synapse_mojo.config import available_cores
from synapse_mojo.errors import InvalidInputError
from synapse_mojo.runtime.adapter import Runtime

from .machine import machine_info
from .report import load_document, new_document
from .search import peak_rss_mb

GRID_NS = (10, 100, 1_000, 10_000, 100_000)
GRID_DIMS = (384, 1024)

#: The NumPy reference each contender is compared with (ratio_vs_numpy).
REFERENCE = {
    "api-auto": "numpy-raw",
    "api-mojo": "numpy-raw",
    "api-python": "numpy-raw",
    "api-int8": "numpy-raw",
    "api-f32": "numpy-raw",
    "api-removed": "numpy-raw",
    "kernel-f32": "numpy-raw",
    "compat-array": "numpy-compat-array",
    "compat-list": "numpy-compat-list",
    "kernel-cosine": "numpy-compat-array",
    "api-auto+numpy": "api-auto",
    "numpy-matvec+api": "numpy-matvec",
}
#: The kernel floor under each public path (overhead_us).
FLOOR = {
    "api-auto": "kernel-f32",
    "api-mojo": "kernel-f32",
    "compat-array": "kernel-cosine",
    "compat-list": "kernel-cosine",
}


def _topk_numpy(scores: np.ndarray, k: int) -> np.ndarray:
    n = scores.shape[0]
    if k >= n:
        return np.argsort(-scores)
    part = np.argpartition(scores, n - k)[n - k :]
    return part[np.argsort(-scores[part])]


_RUNTIMES: dict[str, Runtime] = {}


def _runtime(mode: str) -> Runtime:
    """One runtime per mode for the whole grid (kernels load and self-check once)."""
    runtime = _RUNTIMES.get(mode)
    if runtime is None:
        from synapse_mojo.config import load_settings

        runtime = _RUNTIMES[mode] = Runtime(load_settings())
        runtime.set_mode("pattern_search", mode)
    return runtime


def _contenders(
    n: int, d: int, k: int, seed: int
) -> tuple[dict[str, Callable[[int], Any]], dict[str, Any]]:
    """name -> fn(query_number); plus the shared data."""
    from synapse_mojo.compat.pattern_search import PatternSearch
    from synapse_mojo.search.index import PatternIndex

    rng = np.random.default_rng(seed + n * 7 + d)
    raw = (rng.standard_normal((n, d), dtype=np.float32) * rng.uniform(0.5, 2.0, (n, 1))).astype(
        np.float32
    )
    rows = list(raw)  # the pilot passes a list of 1-D arrays
    prepared = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    queries = rng.standard_normal((16, d), dtype=np.float32)
    ids = [f"p{i}" for i in range(n)]

    indexes = {}
    for mode in ("auto", "on", "off"):
        index = PatternIndex(d, runtime=_runtime(mode), capacity=n)
        index.upsert(ids, raw)
        index.search(queries[0], k)  # kernel load, self-check, first-call costs
        indexes[mode] = index
    int8 = PatternIndex(d, runtime=_runtime("auto"), capacity=n, quantization="int8")
    int8.upsert(ids, raw)
    int8.search(queries[0], k)
    f32 = PatternIndex(d, runtime=_runtime("auto"), capacity=n, quantization=None)
    f32.upsert(ids, raw)
    f32.search(queries[0], k)
    removed = PatternIndex(d, runtime=_runtime("auto"), capacity=n + 1)
    removed.upsert(["gone", *ids], np.concatenate([raw[:1], raw]))
    removed.remove("gone")
    removed.search(queries[0], k)
    compat = PatternSearch(_runtime("auto"))
    compat.search(queries[0], raw, k)

    backend = cast(Any, indexes["on"])._backend  # the index's private AdaptiveSearch
    mojo = backend._mojo
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    qn_addr = [q.ctypes.data for q in qn]
    view = indexes["on"]._prepare(None)[0]
    m_addr = view.ctypes.data
    # The alternating pair's NumPy side multiplies the auto index's own matrix: the same
    # memory, so the pair measures thread competition, not two copies fighting over the cache.
    auto_view = indexes["auto"]._prepare(None)[0]

    def numpy_compat(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        norms = np.sqrt(np.einsum("ij,ij->i", p, p))
        scores = (p @ q) / norms / np.sqrt(q @ q)
        return _topk_numpy(scores, k)

    def q_of(i: int) -> np.ndarray:
        return queries[i & 15]

    fns: dict[str, Callable[[int], Any]] = {
        "api-auto": lambda i: indexes["auto"].search(q_of(i), k),
        "api-mojo": lambda i: indexes["on"].search(q_of(i), k),
        "api-python": lambda i: indexes["off"].search(q_of(i), k),
        "api-int8": lambda i: int8.search(q_of(i), k),
        "api-f32": lambda i: f32.search(q_of(i), k),
        "api-removed": lambda i: removed.search(q_of(i), k),
        "compat-array": lambda i: compat.search(q_of(i), raw, k),
        "compat-list": lambda i: compat.search(q_of(i), rows, k),
        "numpy-raw": lambda i: _topk_numpy(prepared @ q_of(i), k),
        "numpy-compat-array": lambda i: numpy_compat(raw, q_of(i)),
        "numpy-compat-list": lambda i: numpy_compat(np.asarray(rows), q_of(i)),
        "numpy-matvec": lambda i: auto_view @ q_of(i),
    }
    if mojo is not None:
        fns["kernel-f32"] = lambda i: mojo.topk_with(
            0, view, qn[i & 15], k, None, m_addr, qn_addr[i & 15]
        )
        fns["kernel-cosine"] = lambda i: mojo.topk_cosine(raw, qn[i & 15], k)
    data = {
        "raw": raw,
        "prepared": prepared,
        "queries": queries,
        "index": indexes["auto"],
        "compat": compat,
    }
    return fns, data


def _agreement(
    fns: dict[str, Callable[[int], Any]], data: dict[str, Any], k: int
) -> dict[str, float]:
    """recall@k of each contender's first answer against float64 exact results."""
    q = data["queries"][0].astype(np.float64)
    p = data["raw"].astype(np.float64)
    scores = (p @ q) / np.linalg.norm(p, axis=1)
    truth = set(np.argsort(-scores, kind="stable")[:k].tolist())
    out: dict[str, float] = {}
    for name, fn in fns.items():
        result = fn(0)
        if name.startswith("api"):
            got = [int(h.id[1:]) for h in result]
        elif name.startswith("compat"):
            got = list(result[0])
        elif name.startswith("kernel"):
            got = result.rows.tolist()
        elif name == "numpy-matvec":
            continue
        else:
            got = np.asarray(result).tolist()
        out[name] = len(truth & set(got[:k])) / max(1, min(k, len(truth)))
    return out


#: Calls that open every block of a contender's calls unrecorded. The contenders of a cell
#: read different copies of the data (three indexes, the prepared and the raw matrix), so the
#: first calls after a switch reload it into the caches and wake the kernel's helper: a cost
#: of the interleaving, not of the contender in a run of calls. Measured at 1,000 x 1,024
#: (`api-auto` after 30 calls of another contender, p50 of 15 switches): call 1 145 us,
#: calls 2-3 104 us, calls 4-10 46 us, then 39-41 us. Calls after a pause are measured apart
#: (docs/search-latency.md, "Searches at an agent's pace are cold").
WARMUP_CALLS = 3
#: Timed calls of each contender that set its block length (their median: one call, often
#: the cold first one, once gave blocks from 3 to 400 calls to contenders on the same path).
ESTIMATE_CALLS = 5


def _time_calls(fn: Callable[[int], Any], calls: int, start: int, sink: list[float]) -> None:
    for i in range(start - WARMUP_CALLS, start):
        fn(i)
    clock = time.perf_counter
    for i in range(start, start + calls):
        t0 = clock()
        fn(i)
        sink.append(clock() - t0)


def _alternate(
    api: Callable[[int], Any],
    numpy_fn: Callable[[int], Any],
    calls: int,
    start: int,
    api_sink: list[float],
    numpy_sink: list[float],
) -> None:
    for i in range(start - WARMUP_CALLS, start):
        api(i)
        numpy_fn(i)
    clock = time.perf_counter
    for i in range(start, start + calls):
        t0 = clock()
        api(i)
        t1 = clock()
        numpy_fn(i)
        t2 = clock()
        api_sink.append(t1 - t0)
        numpy_sink.append(t2 - t1)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def measure_cell(
    n: int,
    d: int,
    k: int,
    *,
    rounds: int,
    budget_s: float,
    seed: int,
    progress: Callable[[str], None],
) -> list[dict[str, Any]]:
    fns, data = _contenders(n, d, k, seed)
    recall = _agreement(fns, data, k)
    # Calls per round per contender from a quick estimate (the median of a few calls after
    # a first untimed one), so that a cell takes ~budget_s.
    estimate = {}
    for name, fn in fns.items():
        fn(0)
        times = []
        for i in range(ESTIMATE_CALLS):
            t0 = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - t0)
        estimate[name] = max(sorted(times)[ESTIMATE_CALLS // 2], 1e-6)
    per_round = budget_s / rounds / (len(fns) + 2)
    calls = {name: int(min(400, max(3, per_round / est))) for name, est in estimate.items()}
    alt_calls = int(min(400, max(3, per_round / (estimate["api-auto"] + estimate["numpy-matvec"]))))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    samples["api-auto+numpy"] = []
    samples["numpy-matvec+api"] = []
    shuffler = random.Random(seed + n * 7 + d)
    gc.disable()
    try:
        for r in range(rounds):
            progress(f"N={n:,} d={d}: round {r + 1}/{rounds}")
            # A new order every round: a contender that runs right after a NumPy call meets
            # OpenBLAS's threads still spinning (see docs/search-latency.md), so no contender
            # may always follow the same one.
            order = list(fns)
            shuffler.shuffle(order)
            for name in order:
                _time_calls(fns[name], calls[name], r * 1000, samples[name])
            _alternate(
                fns["api-auto"],
                fns["numpy-matvec"],
                alt_calls,
                r * 1000,
                samples["api-auto+numpy"],
                samples["numpy-matvec+api"],
            )
    finally:
        gc.enable()
    index_runtime = data["index"]._backend.feature
    threads = available_cores()
    p50 = {name: _p(values, 50) for name, values in samples.items() if values}
    records = []
    for name, values in samples.items():
        if not values:
            continue
        med = p50[name]
        ref = REFERENCE.get(name)
        floor = FLOOR.get(name)
        records.append(
            {
                "backend": name,
                "n": n,
                "dim": d,
                "k": k,
                "mode": "single",
                "batch_size": 1,
                "queries": len(values),
                "threads": threads,
                "p50_ms": round(med * 1e3, 5),
                "p95_ms": round(_p(values, 95) * 1e3, 5),
                "p99_ms": round(_p(values, 99) * 1e3, 5),
                "qps": round(1 / med, 1),
                "gbps": round(n * d * 4 / med / 1e9, 2),
                "pct_bandwidth": None,
                "recall_at_k": recall.get(name, recall.get(name.split("+")[0], 1.0)),
                "errors": 0,
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "extrapolated": False,
                "overhead_us": round((med - p50[floor]) * 1e6, 2) if floor in p50 else None,
                "ratio_vs_numpy": round(med / p50[ref], 3) if ref in p50 else None,
                "note": "",
            }
        )
    auto = data["index"].search_detailed(data["queries"][0], k)
    for record in records:
        if record["backend"] == "api-auto":
            scanned = "int8 codes first" if data["index"]._codes is not None else "float32"
            record["note"] = f"auto answered on {auto.runtime} ({scanned})"
    del index_runtime
    return records


def run_latency_grid(
    ns: Sequence[int] = GRID_NS,
    dims: Sequence[int] = GRID_DIMS,
    k: int = 10,
    *,
    rounds: int = 5,
    budget_s: float = 8.0,
    seed: int = 20261129,
    command: str = "synapse-mojo bench search --grid latency",
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Runs the grid and returns a ``synapse-mojo-bench/1`` search document."""
    from synapse_mojo.search.adaptive import measured_crossovers
    from synapse_mojo.search.dispatch import shipped_crossovers

    doc = new_document("search", command, machine_info())
    for d in dims:
        for n in ns:
            doc["records"].extend(
                measure_cell(
                    n, d, k, rounds=rounds, budget_s=budget_s, seed=seed, progress=progress
                )
            )
            gc.collect()
    measured = measured_crossovers()
    doc["parameters"] = {
        "grid": "latency",
        "rounds": rounds,
        "budget_s_per_cell": budget_s,
        "seed": seed,
        "k": k,
        "threads": available_cores(),
        "warmup_calls_per_block": WARMUP_CALLS,
    }
    doc["crossovers"] = {
        "shipped": shipped_crossovers().as_dict(),
        "measured": measured.as_dict() if measured else None,
    }
    doc["notes"] = [
        "interleaved rounds; p50 per call; ratio_vs_numpy = p50 / p50 of the NumPy reference in "
        "the same run",
        f"every block of a contender's calls opens with {WARMUP_CALLS} unrecorded calls (the "
        "contenders read different copies of the data)",
        "overhead_us = p50 of the public path minus p50 of the bare kernel call under it",
    ]
    return doc


# ------------------------------------------------------------------------------ reporting

_TABLE = (
    ("api-auto", "numpy-raw"),
    ("api-mojo", "numpy-raw"),
    ("api-python", "numpy-raw"),
    ("compat-array", "numpy-compat-array"),
    ("compat-list", "numpy-compat-list"),
)


def load_latency_grid(path: str | Path) -> dict[str, Any]:
    """A ``bench search --grid latency`` document read from ``path``: any other benchmark
    document (or file) raises ``InvalidInputError`` naming it."""
    doc = load_document(path)
    parameters = doc.get("parameters")
    if (
        doc.get("suite") != "search"
        or not isinstance(parameters, dict)
        or parameters.get("grid") != "latency"
        or not isinstance(parameters.get("k"), int)
    ):
        raise InvalidInputError(
            f"{path}: not a latency-grid document (written by `synapse-mojo bench search "
            "--grid latency`)"
        )
    return doc


def latency_markdown(doc: dict[str, Any]) -> str:
    """One row per cell: p50 in microseconds of every contender, and the ratios that the
    targets are about (NumPy p50 / contender p50: >= 1.0 means at least as fast as NumPy)."""
    by = {(r["backend"], r["n"], r["dim"]): r for r in doc["records"]}
    cells = sorted({(r["dim"], r["n"]) for r in doc["records"]})
    head = [
        "N x d",
        "NumPy raw",
        "api auto",
        "api mojo",
        "api python",
        "api int8",
        "api float32 only",
        "api, one removed",
        "compat array",
        "NumPy job (array)",
        "compat list",
        "NumPy job (list)",
        "auto vs NumPy",
        "int8 vs NumPy",
        "float32 only vs NumPy",
        "one removed vs NumPy",
        "compat array vs NumPy",
        "compat list vs NumPy",
        "alternating: api / alone",
        "alternating: NumPy / alone",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def us(name: str, n: int, d: int) -> str:
        r = by.get((name, n, d))
        return f"{r['p50_ms'] * 1e3:,.1f}" if r else "-"

    def speedup(name: str, ref: str, n: int, d: int) -> str:
        a, b = by.get((name, n, d)), by.get((ref, n, d))
        return f"{b['p50_ms'] / a['p50_ms']:.2f}x" if a and b else "-"

    for d, n in cells:
        alt_api = by.get(("api-auto+numpy", n, d))
        alone_api = by.get(("api-auto", n, d))
        alt_np = by.get(("numpy-matvec+api", n, d))
        alone_np = by.get(("numpy-matvec", n, d))
        lines.append(
            "| "
            + " | ".join(
                [
                    f"{n:,} x {d}",
                    us("numpy-raw", n, d),
                    us("api-auto", n, d),
                    us("api-mojo", n, d),
                    us("api-python", n, d),
                    us("api-int8", n, d),
                    us("api-f32", n, d),
                    us("api-removed", n, d),
                    us("compat-array", n, d),
                    us("numpy-compat-array", n, d),
                    us("compat-list", n, d),
                    us("numpy-compat-list", n, d),
                    speedup("api-auto", "numpy-raw", n, d),
                    speedup("api-int8", "numpy-raw", n, d),
                    speedup("api-f32", "numpy-raw", n, d),
                    speedup("api-removed", "numpy-raw", n, d),
                    speedup("compat-array", "numpy-compat-array", n, d),
                    speedup("compat-list", "numpy-compat-list", n, d),
                    f"{alt_api['p50_ms'] / alone_api['p50_ms']:.2f}"
                    if alt_api and alone_api
                    else "-",
                    f"{alt_np['p50_ms'] / alone_np['p50_ms']:.2f}" if alt_np and alone_np else "-",
                ]
            )
            + " |"
        )
    return (
        "p50 per call in microseconds; speed-ups are NumPy p50 / contender p50 (same run).\n\n"
        + "\n".join(lines)
        + "\n"
    )


def plot_latency(doc: dict[str, Any], out_dir: str | Path) -> Path:
    """Latency vs N, log-log, one panel per dimension."""
    from .plots import _pyplot

    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dims = sorted({r["dim"] for r in doc["records"]})
    names = [
        "numpy-raw",
        "api-auto",
        "api-mojo",
        "api-python",
        "api-int8",
        "api-f32",
        "api-removed",
        "kernel-f32",
        "numpy-compat-array",
        "compat-array",
        "numpy-compat-list",
        "compat-list",
    ]
    styles = {"numpy": "--", "kernel": ":"}
    fig, axes = plt.subplots(
        1, max(1, len(dims)), figsize=(6.5 * max(1, len(dims)), 4.8), squeeze=False
    )
    for ax, d in zip(axes[0], dims, strict=False):  # one empty panel when there are no dims
        for name in names:
            pts = sorted(
                (r["n"], r["p50_ms"] * 1e3)
                for r in doc["records"]
                if r["backend"] == name and r["dim"] == d
            )
            if pts:
                style = next((s for prefix, s in styles.items() if name.startswith(prefix)), "-")
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    marker="o",
                    linestyle=style,
                    label=name,
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("patterns (N)")
        ax.set_ylabel("p50 latency per call (µs)")
        ax.set_title(f"d = {d}, k = {doc['parameters']['k']}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    machine = doc["machine"]
    fig.suptitle(
        f"Search latency vs N — {machine.get('arch')} · {machine.get('cpu_model')} · "
        f"{machine.get('cores')} cores",
        fontsize=10,
    )
    fig.tight_layout()
    path = out / "search-latency-grid.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
