"""Size-aware dispatch: where the Mojo scan needs its worker pool, and where NumPy wins.

A search call's work is ``rows x dimensions`` multiply-adds. Two crossovers, in those units:

* ``inline_below``: below it the kernel runs on the calling thread alone. Starting the pool's
  tasks costs tens of microseconds (more when the workers sleep or the machine is busy), more
  than a cache-resident scan of a few megabytes takes on one core.
* ``numpy_below``: below it the NumPy path (``M @ q`` + selection) answers faster than the
  kernel call; 0 means the kernel is faster at every size. ``cosine_numpy_below`` is the same
  for the cosine scan over raw rows (``compat.PatternSearch``).

Shipped values per architecture (``crossovers.json``, from ``synapse-mojo bench search --grid
latency`` on the CI machines) apply first; after the kernel's start-up self-check,
``calibrate`` re-measures them on this machine (interleaved, medians of several rounds, tens
of milliseconds), the measured ``inline_below`` replaces the shipped one (it never changes
which runtime answers) and ``synapse-mojo doctor`` shows both. ``auto`` mode follows the crossovers (never knowingly
the slower path); ``on``, ``canary`` and ``shadow`` always run the kernel when asked.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Crossovers:
    inline_below: int
    numpy_below: int
    cosine_numpy_below: int
    source: str = "shipped"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_FALLBACK = Crossovers(inline_below=1 << 22, numpy_below=0, cosine_numpy_below=0, source="default")


def _arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


@lru_cache(maxsize=1)
def shipped_crossovers() -> Crossovers:
    """The crossovers shipped for this architecture (a default for unknown ones)."""
    try:
        data = json.loads(resources.files(__package__).joinpath("crossovers.json").read_text())
        entry = data[_arch()]
    except (OSError, KeyError, ValueError):
        return _FALLBACK
    return Crossovers(
        int(entry["inline_below"]),
        int(entry["numpy_below"]),
        int(entry["cosine_numpy_below"]),
        source=f"shipped ({_arch()})",
    )


# -------------------------------------------------------------------------------- calibration

#: (rows, dim) probes, by increasing work; d = 256 sits between the common 384 and 128.
_PROBES = ((8, 256), (64, 256), (512, 256), (4096, 256), (16384, 256))
_ROUNDS = 9


def _time(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


#: A side must be this much faster to count as the winner of a probe (timing noise).
_MARGIN = 1.15


def _crossing(probes: list[tuple[int, float, float]]) -> int | None:
    """The smallest probe work from which the second timing is never clearly beaten by the
    first (by more than ``_MARGIN``) at any larger probe; None when the largest probe is
    clearly won by the first."""
    edge = None
    for work, first, second in reversed(probes):
        if first * _MARGIN < second:  # the first side clearly wins here
            break
        edge = work
    return edge


def calibrate(backend: Any, numpy_backend: Any, seed: int = 11) -> Crossovers:
    """Measures this machine's crossovers for ``backend`` (a ``MojoSearchBackend``) against
    ``numpy_backend``: the calls as the seam makes them (addresses known), interleaved,
    medians of several rounds at a few sizes; some tens of milliseconds in all."""
    rng = np.random.default_rng(seed)
    inline_probes: list[tuple[int, float, float]] = []
    numpy_probes: list[tuple[int, float, float]] = []
    cosine_probes: list[tuple[int, float, float]] = []
    saved = backend.inline_below
    never = 1 << 62
    try:
        for n, d in _PROBES:
            matrix = rng.standard_normal((n, d), dtype=np.float32)
            matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
            query = matrix[n // 2].copy()
            maddr, qaddr = matrix.ctypes.data, query.ctypes.data

            def mojo() -> Any:
                return backend.topk_with(0, matrix, query, 10, None, maddr, qaddr)

            samples: dict[str, list[float]] = {
                k: [] for k in ("inline", "pool", "numpy", "cos", "npcos")
            }
            for _ in range(_ROUNDS):
                backend.inline_below = never
                samples["inline"].append(_time(mojo))
                backend.inline_below = 0
                samples["pool"].append(_time(mojo))
                samples["numpy"].append(_time(lambda: numpy_backend.topk(matrix, query, 10)))
                samples["npcos"].append(_time(lambda: numpy_backend.topk_cosine(matrix, query, 10)))
                backend.inline_below = saved
                samples["cos"].append(_time(lambda: backend.topk_cosine(matrix, query, 10)))
            t = {name: _median(values) for name, values in samples.items()}
            work = n * d
            inline_probes.append((work, t["inline"], t["pool"]))
            numpy_probes.append((work, t["numpy"], min(t["inline"], t["pool"])))
            cosine_probes.append((work, t["npcos"], t["cos"]))
    finally:
        backend.inline_below = saved
    # Beyond the largest probe the scan is bandwidth-bound and the kernel's pool wins: the
    # largest probe bounds every crossover.
    smallest, largest = _PROBES[0][0] * _PROBES[0][1], _PROBES[-1][0] * _PROBES[-1][1]

    def edge(probes: list[tuple[int, float, float]]) -> int:
        found = _crossing(probes)
        if found is None:
            return largest
        return 0 if found == smallest else found

    return Crossovers(
        inline_below=edge(inline_probes),
        numpy_below=edge(numpy_probes),
        cosine_numpy_below=edge(cosine_probes),
        source="measured at start-up",
    )


def with_source(crossovers: Crossovers, source: str) -> Crossovers:
    return replace(crossovers, source=source)
