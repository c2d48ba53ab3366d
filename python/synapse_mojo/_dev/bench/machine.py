"""What machine a benchmark ran on, and its streaming read bandwidth.

The bandwidth is the physical limit of exact search (every query reads all N x d values once),
so every search record is also reported as a share of it.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
import time
from typing import Any

import numpy as np

from synapse_mojo.config import available_cores
from synapse_mojo.runtime.host import is_emulated


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name") or line.startswith("Model"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    from synapse_mojo.runtime.kernels import find_compiler

    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "mojo": find_compiler().version,
        "synapse_mojo": _version("synapse-mojo"),
        "faiss": _version("faiss-cpu"),
        "usearch": _version("usearch"),
        "redis_py": _version("redis"),
    }


def measure_read_bandwidth(
    threads: int | None = None, megabytes: int = 1024, repeat: int = 5
) -> float:
    """Streaming read bandwidth in GB/s (best of ``repeat`` passes over a buffer >> cache).

    Uses the Mojo kernel's multi-threaded SIMD read-sum when it is available (it is what the
    search kernels themselves can reach), else NumPy's single-threaded sum.
    """
    threads = threads or available_cores()
    data = np.ones(megabytes * 1024 * 1024 // 4, dtype=np.float32)
    kernel = None
    try:
        from synapse_mojo.runtime.adapter import get_runtime

        kernel = get_runtime().feature("pattern_search").kernel()
    except Exception:  # the measurement must work without Mojo
        kernel = None
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        if kernel is not None and hasattr(kernel, "stream_read"):
            kernel.stream_read((data.ctypes.data, data.shape[0], threads))
        else:
            float(data.sum())
        best = min(best, time.perf_counter() - started)
    return data.nbytes / best / 1e9


def machine_info(
    bandwidth_gbps: float | None = None, bandwidth_gbps_1thread: float | None = None
) -> dict[str, Any]:
    flags = cpu_flags()
    simd = [f for f in ("avx512f", "avx2", "fma", "asimd", "sve", "neon") if f in flags]
    return {
        "arch": platform.machine(),
        "cpu_model": cpu_model(),
        "cores": available_cores(),
        "simd": simd,
        "bandwidth_gbps": bandwidth_gbps,
        "bandwidth_gbps_1thread": bandwidth_gbps_1thread,
        "emulated": is_emulated(),
        "os": platform.platform(),
        "versions": versions(),
    }
