"""int8 scalar quantisation: per-dimension offset and scale, fitted on the data.

A float32 value ``x`` in dimension ``j`` is stored as the byte
``code = round((x - offset[j]) / scale[j])`` (0..255), so ``x ~ offset[j] + scale[j] * code``.
For a query ``q``, ``q . x ~ sum(q * offset) + sum((q * scale) * code)``; the first term is the
same for every row, so rows are ranked by the second alone. The folded query ``q * scale`` is
rounded to int8 (``quantize_query``), which makes the ranking score an exact integer dot
product of bytes: every backend (Mojo with VNNI / Arm dot-product / plain integer code, NumPy,
pure Python) computes the same integers and keeps the same candidates. The best
``k * rerank_factor`` rows by that approximation are then re-scored exactly from the float32
rows.

Ranges are fitted with headroom; a batch that falls outside them triggers a refit and a
re-encode of every row (rare: rows are unit vectors, so ranges settle quickly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Relative headroom added on each side of the fitted per-dimension range.
HEADROOM = 0.10
_MIN_SCALE = 1e-12
_BLOCK_ROWS = 65536


@dataclass(frozen=True)
class ScalarQuantizer:
    offset: np.ndarray  # (d,) float32
    scale: np.ndarray  # (d,) float32

    @classmethod
    def fit(cls, vectors: np.ndarray, headroom: float = HEADROOM) -> ScalarQuantizer:
        lo = vectors.min(axis=0).astype(np.float64)
        hi = vectors.max(axis=0).astype(np.float64)
        pad = (hi - lo) * headroom + 1e-6
        lo, hi = np.maximum(lo - pad, -1.0), np.minimum(hi + pad, 1.0)  # unit vectors
        scale = np.maximum((hi - lo) / 255.0, _MIN_SCALE)
        return cls(lo.astype(np.float32), scale.astype(np.float32))

    @property
    def upper(self) -> np.ndarray:
        return self.offset + 255.0 * self.scale

    def covers(self, vectors: np.ndarray) -> bool:
        """True when every value lies inside the encodable range (no clipping)."""
        if vectors.size == 0:
            return True
        return bool(np.all(vectors.min(axis=0) >= self.offset) and np.all(vectors.max(axis=0) <= self.upper))

    def merged_with(self, vectors: np.ndarray) -> ScalarQuantizer:
        """A quantizer whose ranges cover both the current ranges and ``vectors``."""
        lo = np.minimum(self.offset, vectors.min(axis=0))
        hi = np.maximum(self.upper, vectors.max(axis=0))
        return ScalarQuantizer.fit(np.stack([lo, hi]))

    def encode(self, vectors: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        out = np.empty(vectors.shape, dtype=np.uint8) if out is None else out
        for start in range(0, vectors.shape[0], _BLOCK_ROWS):
            block = vectors[start : start + _BLOCK_ROWS]
            codes = np.rint((block - self.offset) / self.scale)
            np.clip(codes, 0, 255, out=codes)
            out[start : start + block.shape[0]] = codes
        return out

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.offset + codes.astype(np.float32) * self.scale


def quantize_query(query: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The int8 ranking query: ``query * scale`` rescaled so its largest magnitude is 127."""
    folded = query.astype(np.float64) * scale
    peak = float(np.max(np.abs(folded)))
    if peak == 0.0:
        return np.zeros(query.shape, dtype=np.int8)
    return np.clip(np.rint(folded * (127.0 / peak)), -127, 127).astype(np.int8)


def approximate_scores(codes: np.ndarray, query_i8: np.ndarray) -> np.ndarray:
    """Exact integer scores ``codes @ query_i8`` (as float64), block by block.

    float64 BLAS is exact here: every partial sum is an integer below 2**53.
    """
    q = query_i8.astype(np.float64)
    out = np.empty(codes.shape[0], dtype=np.float64)
    for start in range(0, codes.shape[0], _BLOCK_ROWS):
        block = codes[start : start + _BLOCK_ROWS]
        out[start : start + block.shape[0]] = block.astype(np.float64) @ q
    return out
