"""int8 scalar quantisation: per-dimension offset and scale, fitted on the data.

A float32 value ``x`` in dimension ``j`` is stored as the byte
``code = round((x - offset[j]) / scale[j])`` (0..255), so ``x ~ offset[j] + scale[j] * code``.
For a query ``q``, ``q . x ~ sum(q * offset) + sum((q * scale) * code)``; the first term is the
same for every row, so rows are ranked by the second alone. The folded query ``q * scale`` is
rounded to int8 (``quantize_query``), which makes the ranking score an exact integer dot
product of bytes: every backend (Mojo with VNNI / Arm dot-product / plain integer code, NumPy,
pure Python) computes the same integers and keeps the same candidates. The best candidates
by that approximation are then re-scored exactly from the float32 rows.

How many candidates: ``rank_bound`` gives, per query, a proven bound on the distance between
a row's integer score (rescaled) and its exact score; ``certified_topk_int8`` grows the
candidate set until the k-th exact score beats the best score any unexamined row could have,
so the result is the exact top-k on any data, not only on data the rerank factor was tuned on.
The Mojo kernel (``topk_int8_lists``: ``mojo/kernel_support/scan.mojo``,
``topk_u8_certified``, with ``quantize_query`` and ``rank_bound`` ported to
``mojo/kernel_support/int8_query.mojo``) proves the same inequality in one call, re-scoring
candidates best first and stopping at the first that cannot enter (so spare candidates cost
little), and growing fourfold when it must; ``ScalarQuantizer.kernel_parts`` is what it reads
of the quantizer.

Ranges are fitted with headroom; a batch that falls outside them triggers a refit and a
re-encode of every row (rare: rows are unit vectors, so ranges settle quickly).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .base import TopK

#: Relative headroom added on each side of the fitted per-dimension range.
HEADROOM = 0.10
_MIN_SCALE = 1e-12
_BLOCK_ROWS = 65536
_ENCODE_BLOCK_ROWS = 4096


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

    @cached_property
    def float64_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(scale, offset, dimensions by decreasing scale)`` in float64, for ``rank_bound``."""
        scale = self.scale.astype(np.float64)
        return scale, self.offset.astype(np.float64), np.argsort(-scale, kind="stable")

    @cached_property
    def kernel_parts(self) -> tuple[np.ndarray, int]:
        """What the kernel's certified search (``topk_int8_lists``) reads of the quantizer: one
        C-contiguous float64 (5, d) array, ``float64_parts`` (the order as float64 indices)
        then ``1 / scale`` and ``offset / scale``; and its address."""
        scale, offset, order = self.float64_parts
        rows = [scale, offset, order.astype(np.float64), 1.0 / scale, offset / scale]
        parts = np.ascontiguousarray(np.stack(rows))
        parts.flags.writeable = False
        return parts, parts.ctypes.data

    @property
    def upper(self) -> np.ndarray:
        return self.offset + 255.0 * self.scale

    def covers(self, vectors: np.ndarray) -> bool:
        """True when every value lies inside the encodable range (no clipping)."""
        if vectors.size == 0:
            return True
        return bool(
            np.all(vectors.min(axis=0) >= self.offset) and np.all(vectors.max(axis=0) <= self.upper)
        )

    def merged_with(self, vectors: np.ndarray) -> ScalarQuantizer:
        """A quantizer whose ranges cover both the current ranges and ``vectors``."""
        lo = np.minimum(self.offset, vectors.min(axis=0))
        hi = np.maximum(self.upper, vectors.max(axis=0))
        return ScalarQuantizer.fit(np.stack([lo, hi]))

    def encode(self, vectors: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``clip(rint((x - offset) / scale), 0, 255)`` as uint8, in float32 like the kernel's
        bound assumes; in blocks of at most ``_ENCODE_BLOCK_ROWS`` through one scratch buffer
        that stays in cache (2.7x faster than a temporary per step: 100,000 x 384 in 58 ms
        against 155, the same codes)."""
        out = np.empty(vectors.shape, dtype=np.uint8) if out is None else out
        rows = max(1, min(vectors.shape[0], _ENCODE_BLOCK_ROWS))
        scratch = np.empty((rows, vectors.shape[1]), dtype=np.float32)
        for start in range(0, vectors.shape[0], rows):
            block = vectors[start : start + rows]
            codes = scratch[: block.shape[0]]
            np.subtract(block, self.offset, out=codes)
            np.divide(codes, self.scale, out=codes)
            np.rint(codes, out=codes)
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


# ------------------------------------------------------------------ certified top-k


@dataclass(frozen=True)
class RankBound:
    """How far an integer ranking score can be from the exact score, for one query.

    For every row whose codes lie in the quantizer's range (always: ranges are refitted before
    a row would clip), ``|q . x - (base + approx / alpha)| <= slack`` where ``approx`` is the
    integer ``codes @ query_i8``. Derivation, with ``f = q * scale``, ``alpha = 127 / max|f|``,
    ``delta = f * alpha - query_i8`` (the query's rounding, known) and ``eps`` the row's code
    rounding (``|eps_j| <= 1/2``, unknown)::

        q.x - q.offset - approx/alpha = (1/alpha) sum_j (delta_j / scale_j) x_j
                                        - (1/alpha) sum_j delta_j offset_j / scale_j
                                        - (1/alpha) sum_j query_i8_j eps_j

    The last term is at most ``||query_i8||_1 / (2 alpha)``. The first is bounded per
    dimension either by Cauchy-Schwarz (rows are unit vectors) or by the dimension's range
    (``x_j`` within ``offset_j + [0, 255] scale_j``), whichever split of the dimensions is
    tighter.
    """

    alpha: float
    base: float
    slack: float

    def upper(self, approx: float) -> float:
        """Largest exact score a row with integer score ``approx`` can have."""
        return self.base + approx / self.alpha + self.slack


def rank_bound(
    query: np.ndarray, quantizer: ScalarQuantizer, query_i8: np.ndarray
) -> RankBound | None:
    """The ``RankBound`` of ``query`` (None for a zero folded query: nothing to bound)."""
    q = query.astype(np.float64)
    scale, offset, order = quantizer.float64_parts
    folded = q * scale
    peak = float(np.max(np.abs(folded)))
    if peak == 0.0:
        return None
    alpha = 127.0 / peak
    delta = folded * alpha - query_i8
    # Dimensions by decreasing scale (|w_j| / |delta_j| = 1 / scale_j): the first t are bounded
    # by Cauchy-Schwarz, the rest by their ranges; t minimises the sum of the two bounds.
    d_o = delta[order]
    cs = np.sqrt(np.cumsum((d_o / scale[order]) ** 2))
    ranged = np.cumsum(127.5 * np.abs(d_o))
    total = float(ranged[-1])
    objective = cs + (total - ranged)
    t = int(np.argmin(objective))
    bound = float(objective[t])
    if total <= bound:  # no dimension under Cauchy-Schwarz
        t, bound = -1, total
    shift = np.cumsum(d_o * (offset[order] / scale[order]))
    plain = np.cumsum(d_o)
    # The ranged dimensions are centred mid-range: offset + 127.5 scale.
    centre = (
        (-float(shift[t]) + 127.5 * (float(plain[-1]) - float(plain[t])))
        if t >= 0
        else 127.5 * float(plain[-1])
    )
    code_rounding = 0.5 + 1e-4  # float32 arithmetic in encode() adds far less than 1e-4 codes
    slack = (bound + code_rounding * float(np.abs(query_i8).sum(dtype=np.int64))) / alpha
    return RankBound(alpha, float(q @ offset) + centre / alpha, slack * (1 + 1e-6) + 1e-6)


#: The candidate set grows by this factor until the top-k is certified.
GROWTH = 8


def next_start(start: int, used: int) -> int:
    """Where the next query's candidate set starts, given this query's start and the candidates
    ``certified_topk_int8`` used: where it ended after a growth, else a little lower (so that
    the start follows the data down slowly; a re-scan costs more than a few extra re-scored
    rows). ``bench recall`` follows it; ``PatternIndex`` now follows the start its one-call
    search suggests (``PatternIndex._search_codes``)."""
    return used if used > start else used * 7 // 8


def certified_topk_int8(
    backend: Any,
    codes: np.ndarray,
    vectors: np.ndarray,
    query_i8: np.ndarray,
    query: np.ndarray,
    k: int,
    candidates: int,
    mask: np.ndarray | None,
    bound: RankBound | None,
    tolerance: float,
) -> tuple[TopK, int]:
    """The exact top-``k`` through the int8 scan: returns it and the candidates it took.

    Starts with ``candidates`` rows (best by integer score), re-scored exactly; when the
    ``k``-th exact score is below the best exact score an unexamined row could still have
    (``bound.upper`` of the smallest integer score examined, plus ``tolerance`` for float32
    rounding), the candidate set grows ``GROWTH``-fold and the scan runs again. Past a
    quarter of the eligible rows, an exact float32 scan answers instead (cheaper than
    re-scoring that many rows one by one). So the answer is the exact top-k on any data; the
    cost adapts: one scan on spread-out data, more candidates on near-duplicates.
    """
    n = codes.shape[0]
    eligible = n if mask is None else int(np.count_nonzero(mask))
    c = max(k, candidates)
    while True:
        if bound is None or 4 * c >= eligible:
            return backend.topk(vectors, query, k, mask), eligible
        top = backend.topk_int8(codes, vectors, query_i8, query, c, c, mask)
        if len(top.rows) < c:  # every eligible row was examined
            return TopK(top.rows[:k], top.scores[:k]), c
        # float64 BLAS is exact for these integer sums (below 2**53), and much faster than
        # NumPy's integer matmul.
        examined = np.sort(top.rows)
        lowest = float(np.min(codes[examined].astype(np.float64) @ query_i8.astype(np.float64)))
        if float(top.scores[k - 1]) >= bound.upper(lowest) + tolerance:
            return TopK(top.rows[:k], top.scores[:k]), c
        c *= GROWTH
