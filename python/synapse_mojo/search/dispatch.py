"""Size-aware dispatch: where the Mojo scan needs its worker pool, and where NumPy wins.

A search call's work is ``rows x dimensions`` multiply-adds. The crossovers, in those units:

* ``inline_below``: below it the kernel runs on the calling thread alone. Starting the pool's
  tasks costs tens of microseconds (more when the workers sleep or the machine is busy), more
  than a cache-resident scan of a few megabytes takes on one core.
* ``numpy_ranges``: the work ranges ``[low, high)`` where the NumPy path (``M @ q`` +
  selection) answers faster than the kernel call; empty means the kernel is faster at every
  size. Ranges, not one threshold: on a 2-core machine NumPy's BLAS wins cache-resident scans
  of a few megabytes (both cores, threads kept spinning) while the kernel wins both the tiny
  calls and the large scans. ``cosine_numpy_ranges`` is the same for the cosine scan over raw
  rows (``compat.PatternSearch``).

Shipped values per architecture (``crossovers.json``) apply first. They come from a
measurement of the two paths exactly as the seam calls them, written by::

    uv run synapse-mojo bench crossovers --write     # see docs/search-latency.md

After the kernel's start-up self-check, ``calibrate`` re-measures a few small sizes on this
machine (interleaved medians, tens of milliseconds): the measured ``inline_below`` replaces the
shipped one (it never changes which runtime answers) and ``synapse-mojo doctor`` shows both.
``auto`` mode follows the crossovers (never knowingly the slower path); ``on``, ``canary`` and
``shadow`` always run the kernel when asked.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import platform
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .base import TopK

log = logging.getLogger("synapse_mojo.search")

#: Stands for "no upper end" in a range (JSON ``null``).
UNBOUNDED = 1 << 62

Ranges = tuple[tuple[int, int], ...]


def _flat(ranges: Ranges) -> tuple[int, ...]:
    return tuple(edge for pair in ranges for edge in pair)


@dataclass(frozen=True)
class Crossovers:
    """Where each path of a search call is the faster one (work = rows x dimensions)."""

    inline_below: int
    numpy_ranges: Ranges = ()
    cosine_numpy_ranges: Ranges = ()
    source: str = "shipped"
    # The ranges' edges, flattened: a work value lies inside a range when an odd number of
    # edges are <= it (one C-level bisect per call).
    _edges: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _cosine_edges: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("numpy_ranges", "cosine_numpy_ranges"):
            ranges = getattr(self, name)
            edges = _flat(ranges)
            if any(low >= high for low, high in ranges) or list(edges) != sorted(edges):
                raise ValueError(f"{name} must be ordered, disjoint [low, high) pairs: {ranges}")
        object.__setattr__(self, "_edges", _flat(self.numpy_ranges))
        object.__setattr__(self, "_cosine_edges", _flat(self.cosine_numpy_ranges))

    def numpy_faster(self, work: int) -> bool:
        """The NumPy path answers a ``topk`` of this work faster than the kernel."""
        return bisect_right(self._edges, work) & 1 == 1

    def cosine_numpy_faster(self, work: int) -> bool:
        """The same for ``topk_cosine`` over raw rows."""
        return bisect_right(self._cosine_edges, work) & 1 == 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "inline_below": self.inline_below,
            "numpy_ranges": _ranges_to_json(self.numpy_ranges),
            "cosine_numpy_ranges": _ranges_to_json(self.cosine_numpy_ranges),
            "source": self.source,
        }


def _ranges_to_json(ranges: Ranges) -> list[list[int | None]]:
    return [[low, None if high >= UNBOUNDED else high] for low, high in ranges]


def _ranges_from_json(value: Any) -> Ranges:
    return tuple((int(low), UNBOUNDED if high is None else int(high)) for low, high in value or ())


def format_ranges(ranges: Ranges) -> str:
    """``"1,000 - 50,000; 2,000,000 - ..."`` or ``"never"``."""
    if not ranges:
        return "never"
    return "; ".join(
        f"{low:,} - {'...' if high >= UNBOUNDED else f'{high:,}'}" for low, high in ranges
    )


_FALLBACK = Crossovers(inline_below=1 << 22, source="default")


def arch(machine: str | None = None) -> str:
    """This machine's (or ``machine``'s) architecture as ``crossovers.json`` names it."""
    machine = (machine or platform.machine()).lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def crossovers_from_entry(entry: dict[str, Any], source: str) -> Crossovers:
    """One architecture's entry of ``crossovers.json``."""
    return Crossovers(
        int(entry["inline_below"]),
        _ranges_from_json(entry.get("numpy_ranges")),
        _ranges_from_json(entry.get("cosine_numpy_ranges")),
        source=source,
    )


def shipped_path() -> Path:
    """``crossovers.json`` beside this module (what ``bench crossovers --write`` updates)."""
    return Path(str(resources.files(__package__).joinpath("crossovers.json")))


@lru_cache(maxsize=1)
def shipped_crossovers() -> Crossovers:
    """The crossovers shipped for this architecture (a default for unknown ones)."""
    try:
        data = json.loads(resources.files(__package__).joinpath("crossovers.json").read_text())
        return crossovers_from_entry(data[arch()], f"shipped ({arch()})")
    except (OSError, KeyError, TypeError, ValueError):
        return _FALLBACK


def write_shipped(
    crossovers: Crossovers,
    measurement: dict[str, Any],
    path: Path | None = None,
    architecture: str | None = None,
) -> Path:
    """Replaces one architecture's entry (default: this machine's) of ``crossovers.json``,
    keeping the others; ``measurement`` (machine, command, per-size medians) is stored beside
    it for review."""
    path = path or shipped_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    entry = crossovers.as_dict()
    del entry["source"]
    entry["measured"] = measurement
    data[architecture or arch()] = entry
    path.write_text(json.dumps(data, indent=1) + "\n")
    shipped_crossovers.cache_clear()
    return path


# -------------------------------------------------------------------------------- measurement


class _Kernel(Protocol):
    inline_below: int

    def topk_with(
        self,
        fault: int,
        matrix: np.ndarray,
        query: np.ndarray,
        k: int,
        mask: np.ndarray | None = None,
        matrix_addr: int = 0,
        query_addr: int = 0,
    ) -> TopK: ...

    def topk_cosine(self, rows: np.ndarray, query: np.ndarray, k: int) -> TopK | None: ...


class _NumpyPaths(Protocol):
    def topk(
        self, matrix: np.ndarray, query: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> TopK: ...

    def topk_cosine(self, rows: np.ndarray, query: np.ndarray, k: int) -> TopK | None: ...


#: Start-up re-check: (rows, dim) by increasing work; d = 256 sits between 384 and 128.
STARTUP_PROBES = ((8, 256), (64, 256), (512, 256), (2048, 256), (4096, 256), (16384, 256))
#: ``bench crossovers``: the latency grid's sizes and the points between them.
SHIPPING_PROBES = tuple(
    (n, d) for d in (384, 1024) for n in (10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000)
)

#: A side must be this much faster to count as the winner of a probe (timing noise); ties
#: stay with the kernel.
STARTUP_MARGIN = 1.15
SHIPPING_MARGIN = 1.05


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _sample(fn: Callable[[], Any], repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def _edge_between(lower_work: int, upper_work: int) -> int:
    """Where one winner's territory ends and the next one's begins: the geometric midpoint."""
    return max(lower_work + 1, int(math.sqrt(lower_work * upper_work)))


def winner_ranges(probes: Sequence[tuple[int, bool]]) -> Ranges:
    """Work ranges where the second side wins, from ``(work, second_wins)`` probes: each run
    of wins extends halfway (geometrically) to its neighbours, to 0 before the first probe and
    without end after the last."""
    ordered = sorted(probes)
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    for i, (work, wins) in enumerate(ordered):
        if wins and start is None:
            start = 0 if i == 0 else _edge_between(ordered[i - 1][0], work)
        if start is not None and (not wins or i == len(ordered) - 1):
            if wins:  # the last probe: no upper end
                ranges.append((start, UNBOUNDED))
            else:
                ranges.append((start, _edge_between(ordered[i - 1][0], work)))
            start = None
    merged: list[tuple[int, int]] = []
    for low, high in ranges:
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return tuple(merged)


def inline_edge(probes: Sequence[tuple[int, float, float]], margin: float) -> int:
    """``inline_below`` from ``(work, inline_s, pool_s)`` probes: from the smallest probe at
    which the pool is never clearly beaten by the calling thread alone at any larger probe,
    back to the geometric midpoint with the probe below it (where the calling thread won).
    The crossover lies somewhere between the two; the midpoint is the same estimate as the
    Mojo/NumPy edges', where the probe itself would hand the whole gap to the calling thread
    (a gap of 8x in work at start-up: a 4 MB scan, which two cores answer 2-3x faster when
    calls come back to back, fell just below such an edge)."""
    ordered = sorted(probes)
    edge = None
    for i in range(len(ordered) - 1, -1, -1):
        work, inline, pool = ordered[i]
        if inline * margin < pool:  # the calling thread alone clearly wins here
            break
        edge = i
    if edge is None:  # inline wins even the largest probe
        return ordered[-1][0]
    return 0 if edge == 0 else _edge_between(ordered[edge - 1][0], ordered[edge][0])


#: In a start-up measurement's source when its inline edge was not used (``second_core_busy``).
BUSY_NOTE = "the second core was busy at start-up: inline edge as shipped"


def second_core_busy(probes: Sequence[tuple[int, float, float]], margin: float) -> bool:
    """Whether the calling thread alone clearly beat the pool at the largest
    ``(work, inline_s, pool_s)`` probe. At start-up that probe is several times a core's
    cache, where two cores read faster than one unless the second is taken: OpenBLAS's
    thread spins there for about 0.1 s after every NumPy call (the measurement's own NumPy
    probes included), or another process runs on it. Usually the pool still wins there
    (16,384 x 256 on the Intel Xeon: 380-530 us against 640-760 alone), but in one start of
    about fifteen observed, and in one of eight measurements repeated right after one, it
    lost (650-765 us against 630-690): the edge that gives, the largest probe, put 1,000 x
    1,024 and 10,000 x 384 on one core for the life of the process (1.2-1.45x slower there).
    Such a measurement describes that moment, not the machine.

    Measuring the pool apart from the NumPy probes (no spinning thread from the measurement
    itself) was tried: the pool then tied the calling thread at 2,048 x 256 and the edge
    fell to 0 or 5,792 in half the starts, where every agent process, which calls NumPy too,
    meets the spinning thread; the interleaved measurement gave 741,455 in most starts."""
    work, inline, pool = max(probes)
    return inline * margin < pool


def _time_probe(
    kernel: _Kernel,
    numpy_backend: _NumpyPaths,
    raw: np.ndarray,
    k: int,
    rounds: int,
    min_sample_s: float,
) -> dict[str, float]:
    """Median seconds per call of each path over ``raw`` rows (and their normalised copy)."""
    matrix = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    query = matrix[raw.shape[0] // 2].copy()
    maddr, qaddr = matrix.ctypes.data, query.ctypes.data
    saved = kernel.inline_below

    def inline() -> Any:
        kernel.inline_below = UNBOUNDED
        return kernel.topk_with(0, matrix, query, k, None, maddr, qaddr)

    def pool() -> Any:
        kernel.inline_below = 0
        return kernel.topk_with(0, matrix, query, k, None, maddr, qaddr)

    def cosine() -> Any:
        kernel.inline_below = saved
        return kernel.topk_cosine(raw, query, k)

    calls: dict[str, Callable[[], Any]] = {
        "inline": inline,
        "pool": pool,
        "numpy": lambda: numpy_backend.topk(matrix, query, k),
        "cosine": cosine,
        "numpy_cosine": lambda: numpy_backend.topk_cosine(raw, query, k),
    }
    try:
        repeat = dict.fromkeys(calls, 1)
        if min_sample_s > 0:
            for name, fn in calls.items():
                once = max(_sample(fn, 1), _sample(fn, 1), 1e-7)
                repeat[name] = max(1, min(10_000, int(min_sample_s / once)))
        samples: dict[str, list[float]] = {name: [] for name in calls}
        for r in range(rounds):
            order = list(calls) if r % 2 == 0 else list(reversed(calls))
            for name in order:
                samples[name].append(_sample(calls[name], repeat[name]))
    finally:
        kernel.inline_below = saved
    return {name: _median(values) for name, values in samples.items()}


def measure(
    kernel: _Kernel,
    numpy_backend: _NumpyPaths,
    probes: Iterable[tuple[int, int]],
    *,
    rounds: int,
    margin: float,
    k: int = 10,
    seed: int = 11,
    min_sample_s: float = 0.0,
    source: str = "measured",
    progress: Callable[[str], None] = lambda _: None,
    busy_fallback: int | None = None,
) -> tuple[Crossovers, list[dict[str, Any]]]:
    """Times the calls as the seam makes them (Mojo with addresses known, inline and on the
    pool; NumPy's ``topk``; both cosine scans over raw rows), interleaved, medians of
    ``rounds``; each sample repeats a call until it lasts ``min_sample_s``. Returns the
    crossovers and one record of medians (microseconds) per probe. ``busy_fallback``: the
    inline edge to use instead when ``second_core_busy`` (noted in the source)."""
    rng = np.random.default_rng(seed)
    timings: list[tuple[int, int, dict[str, float]]] = []
    for n, d in probes:
        progress(f"{n:,} x {d}")
        raw = rng.standard_normal((n, d), dtype=np.float32)
        raw *= rng.uniform(0.5, 2.0, (n, 1)).astype(np.float32)
        timings.append((n, d, _time_probe(kernel, numpy_backend, raw, k, rounds, min_sample_s)))
    inline_probes = [(n * d, t["inline"], t["pool"]) for n, d, t in timings]
    inline_below = inline_edge(inline_probes, margin)
    if busy_fallback is not None and second_core_busy(inline_probes, margin):
        work, inline, pool = max(inline_probes)
        log.info(
            "search start-up measurement: one core beat two at %s multiply-adds (%.0f vs "
            "%.0f us), so the second core was busy; keeping the shipped inline edge %s "
            "instead of the measured %s",
            f"{work:,}",
            inline * 1e6,
            pool * 1e6,
            f"{busy_fallback:,}",
            f"{inline_below:,}",
        )
        inline_below = busy_fallback
        source = f"{source}; {BUSY_NOTE}"

    def mojo_time(work: int, t: dict[str, float]) -> float:
        return t["inline"] if work < inline_below else t["pool"]

    crossovers = Crossovers(
        inline_below=inline_below,
        numpy_ranges=winner_ranges(
            [(n * d, t["numpy"] * margin < mojo_time(n * d, t)) for n, d, t in timings]
        ),
        cosine_numpy_ranges=winner_ranges(
            [(n * d, t["numpy_cosine"] * margin < t["cosine"]) for n, d, t in timings]
        ),
        source=source,
    )
    records = [
        {
            "n": n,
            "dim": d,
            "work": n * d,
            **{f"{name}_us": round(v * 1e6, 2) for name, v in t.items()},
        }
        for n, d, t in timings
    ]
    return crossovers, records


def grid_crossovers(
    doc: dict[str, Any], inline_below: int, margin: float = SHIPPING_MARGIN
) -> tuple[Crossovers, list[dict[str, Any]]]:
    """Crossovers from a latency-grid document (``bench search --grid latency``): ``topk``
    from the public call in mode ``on`` vs ``off`` (``api-mojo`` vs ``api-python``: the same
    index, validation and result objects around either path), the cosine scan from the bare
    kernel call vs NumPy doing the same job (``kernel-cosine`` vs ``numpy-compat-array``).
    ``inline_below`` is kept (the grid runs one dispatch)."""
    p50: dict[tuple[str, int, int], float] = {
        (r["backend"], r["n"], r["dim"]): r["p50_ms"] for r in doc["records"]
    }
    cells = sorted({(n, d) for _, n, d in p50})
    topk: list[tuple[int, bool]] = []
    cosine: list[tuple[int, bool]] = []
    records = []
    for n, d in cells:
        mojo, python = p50.get(("api-mojo", n, d)), p50.get(("api-python", n, d))
        kernel, job = p50.get(("kernel-cosine", n, d)), p50.get(("numpy-compat-array", n, d))
        if mojo is not None and python is not None:
            topk.append((n * d, python * margin < mojo))
        if kernel is not None and job is not None:
            cosine.append((n * d, job * margin < kernel))
        records.append(
            {
                "n": n,
                "dim": d,
                "work": n * d,
                **{
                    f"{name}_us": round(p50[(name, n, d)] * 1e3, 2)
                    for name in ("api-mojo", "api-python", "kernel-cosine", "numpy-compat-array")
                    if (name, n, d) in p50
                },
            }
        )
    crossovers = Crossovers(
        inline_below,
        winner_ranges(topk),
        winner_ranges(cosine),
        source=f"latency grid ({doc.get('machine', {}).get('arch', arch())})",
    )
    return crossovers, records


def calibrate(backend: _Kernel, numpy_backend: _NumpyPaths, seed: int = 11) -> Crossovers:
    """The start-up re-check: this machine's crossovers at a few small sizes (some tens of
    milliseconds). Beyond the largest probe the scan is bandwidth-bound: the largest probe's
    winner extends to every larger size."""
    crossovers, _ = measure(
        backend,
        numpy_backend,
        STARTUP_PROBES,
        rounds=9,
        margin=STARTUP_MARGIN,
        seed=seed,
        source="measured at start-up",
        busy_fallback=shipped_crossovers().inline_below,
    )
    return crossovers


def measurement_note(records: list[dict[str, Any]], command: str, machine: str) -> dict[str, Any]:
    """What ``write_shipped`` stores beside the values it writes."""
    return {
        "command": command,
        "machine": machine,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
        "medians_us": records,
    }


def with_source(crossovers: Crossovers, source: str) -> Crossovers:
    return replace(crossovers, source=source)


#: Latencies kept per path of a ``PathRace`` (their median decides).
RACE_WINDOW = 8
#: Samples each path needs before the race picks the faster one.
RACE_FIRST_SAMPLES = 3
#: Every this many calls the path currently slower runs once, so its latency stays known
#: (data and machine change): a few percent of the calls at most.
RACE_PROBE_EVERY = 32


class PathRace:
    """Chooses between two exact ways of answering the same call from their measured
    latencies: ``True`` or ``False`` per call (``choose``), each call's time reported back
    (``record``). Both paths run alternately until each has ``RACE_FIRST_SAMPLES``; then the
    one whose median over its last ``RACE_WINDOW`` calls is lower answers, and every
    ``RACE_PROBE_EVERY``-th call the other one does, to stay measured.

    For ``PatternIndex``: its certified int8 search re-scores candidates one by one, about
    twenty times a scanned row's cost each (10,000 x 384, Intel Xeon), so on data full of
    near-duplicates (which need thousands of candidates) it is slower than the float32 scan;
    on ordinary data it is two to five times faster. Only latencies tell which data this is.
    Unsynchronised on purpose: concurrent callers may lose a sample or probe twice, never
    more (the state is a counter and two short lists)."""

    __slots__ = ("_calls", "_times")

    def __init__(self) -> None:
        self._calls = 0
        self._times: tuple[list[float], list[float]] = ([], [])  # False, True

    def choose(self) -> bool:
        self._calls = calls = self._calls + 1
        off, on = self._times
        if len(on) < RACE_FIRST_SAMPLES or len(off) < RACE_FIRST_SAMPLES:
            return len(on) <= len(off)
        faster = _median(on) <= _median(off)
        return (not faster) if calls % RACE_PROBE_EVERY == 0 else faster

    def record(self, choice: bool, seconds: float) -> None:
        times = self._times[1 if choice else 0]
        times.append(seconds)
        if len(times) > RACE_WINDOW:
            del times[0]

    def reset(self) -> None:
        self._calls = 0
        self._times = ([], [])

    def state(self) -> dict[str, Any]:
        """Medians in microseconds (None: not measured yet), for ``PatternIndex.info``."""
        off, on = self._times
        return {
            "true_us": round(_median(on) * 1e6, 1) if on else None,
            "false_us": round(_median(off) * 1e6, 1) if off else None,
        }
