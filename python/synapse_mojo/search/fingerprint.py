"""Content fingerprints of arrays: detect that data changed without keeping a copy of it.

``fingerprint(array)`` is a position-sensitive 64-bit hash of the array's bytes (plus its shape
and dtype): ``sum_i fmix64(w[i] xor (i * P))  mod 2**64`` over its 64-bit words, where fmix64
is MurmurHash3's finaliser (so flipping any bits, e.g. negating a row, changes the sum). The
Mojo kernel computes it at memory bandwidth; the NumPy fallback computes the same value. It
detects edits, row swaps and appended rows; it is a change detector, not a cryptographic hash.
"""

from __future__ import annotations

import numpy as np

from ..config import available_cores
from ..runtime.kernel_types import PatternSearchKernel

FP_POS = np.uint64(0x9E3779B97F4A7C15)
FP_C1 = np.uint64(0xFF51AFD7ED558CCD)
FP_C2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_MASK = (1 << 64) - 1
_CHUNK_WORDS = 1 << 20


def _words(array: np.ndarray) -> np.ndarray:
    data = np.ascontiguousarray(array)
    raw = data.reshape(-1).view(np.uint8)
    if raw.size % 8:
        raw = np.concatenate([raw, np.zeros(8 - raw.size % 8, dtype=np.uint8)])
    return raw.view(np.uint64)


def fingerprint_numpy(words: np.ndarray) -> int:
    total = 0
    with np.errstate(over="ignore"):
        for start in range(0, words.size, _CHUNK_WORDS):
            block = words[start : start + _CHUNK_WORDS]
            idx = np.arange(start, start + block.size, dtype=np.uint64)
            x = block ^ (idx * FP_POS)
            x ^= x >> _S33
            x *= FP_C1
            x ^= x >> _S33
            x *= FP_C2
            x ^= x >> _S33
            total += int(x.sum(dtype=np.uint64))
    return total & _MASK


def fingerprint(array: np.ndarray, kernel: PatternSearchKernel | None = None) -> tuple:
    """``(shape, dtype, hash)``: equal for equal contents, different after any change."""
    words = _words(array)
    if kernel is not None and words.size:
        h = (
            int(kernel.content_fingerprint((words.ctypes.data, words.size, available_cores())))
            & _MASK
        )
    else:
        h = fingerprint_numpy(words)
    return (tuple(array.shape), str(array.dtype), h)
