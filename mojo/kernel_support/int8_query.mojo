"""The int8 ranking query and its proven error bound, computed in the kernel.

The same arithmetic as `synapse_mojo.search.quantization.quantize_query` and `rank_bound`
(read the derivation there), in float64, so that the certified int8 search
(`kernel_support.scan.topk_u8_certified`) needs no Python between the raw query and the
result:

```mojo
from kernel_support.int8_query import Int8Query

var query = Int8Query(q, d, parts)   # parts: float64 (5, d), `ScalarQuantizer.kernel_parts`
if query.bounded:
    var upper = query.upper(integer_score)   # largest exact score such a row can have
```
"""

from std.math import floor, sqrt

from kernel_support.abi import F32Ptr, I8Ptr

comptime F64Ptr = Pointer[Float64, MutAnyOrigin]

# How many float64 values `parts` holds per dimension.
comptime PARTS_PER_DIMENSION = 5

# Python's `code_rounding` (0.5 plus what float32 arithmetic in `encode()` can add).
comptime CODE_ROUNDING = 0.5 + 1e-4


@always_inline
def _round_half_even(x: Float64) -> Float64:
    """`numpy.rint`: to the nearest integer, ties to even."""
    var r = floor(x + 0.5)
    if r - x == 0.5 and floor(r * 0.5) * 2.0 != r:
        r -= 1.0
    return r


struct Int8Query(Movable):
    """The int8 query `round(q * scale * alpha)` and, when the folded query is not zero, the
    `RankBound` of `q`: `|q . x - (base + approx / alpha)| <= slack` for every row whose
    codes are in range (`approx` the integer dot product of its codes with `codes`)."""

    var codes: List[Int8]
    var bounded: Bool
    var alpha: Float64
    var base: Float64
    var slack: Float64

    def __init__(out self, q: F32Ptr, d: Int, parts: F64Ptr):
        """`q` the normalised float32 query; `parts` the quantizer's float64 scale, offset,
        dimensions by decreasing scale (indices as float64), 1 / scale and offset / scale,
        each `d` long (`ScalarQuantizer.kernel_parts`)."""
        self.codes = List[Int8](length=d, fill=0)
        self.bounded = False
        self.alpha = 1.0
        self.base = 0.0
        self.slack = 0.0
        var scale = parts
        var offset = parts.unsafe_offset(d)
        var order = parts.unsafe_offset(2 * d)
        var inverse = parts.unsafe_offset(3 * d)
        var offset_ratio = parts.unsafe_offset(4 * d)
        var folded = List[Float64](length=d, fill=0)
        var peak: Float64 = 0
        for j in range(d):
            var f = Float64(q.unsafe_load[width=1](j)) * scale.unsafe_load[width=1](j)
            folded[j] = f
            peak = max(peak, abs(f))
        if peak == 0:
            return
        var alpha = 127.0 / peak
        var delta = List[Float64](length=d, fill=0)
        var l1: Float64 = 0
        var total: Float64 = 0  # sum of 127.5 |delta_j| over all dimensions (in `order`)
        for j in range(d):
            var x = folded[j] * alpha
            var c = min(max(_round_half_even(x), -127.0), 127.0)
            self.codes[j] = Int8(Int(c))
            delta[j] = x - c
            l1 += abs(c)
        for t in range(d):
            total += 127.5 * abs(delta[Int(order.unsafe_load[width=1](t))])
        # The first t dimensions (by decreasing scale) under Cauchy-Schwarz, the rest by their
        # ranges: the split with the smallest sum (the first one on ties, like numpy.argmin).
        var cs2: Float64 = 0
        var ranged: Float64 = 0
        var shift: Float64 = 0
        var plain: Float64 = 0
        var best = Float64.MAX
        var best_t = -1
        var shift_at: Float64 = 0
        var plain_at: Float64 = 0
        for t in range(d):
            var j = Int(order.unsafe_load[width=1](t))
            var dj = delta[j]
            var w = dj * inverse.unsafe_load[width=1](j)
            cs2 += w * w
            ranged += 127.5 * abs(dj)
            shift += dj * offset_ratio.unsafe_load[width=1](j)
            plain += dj
            var objective = sqrt(cs2) + (total - ranged)
            if objective < best:
                best, best_t, shift_at, plain_at = objective, t, shift, plain
        var bound = best
        if total <= bound:  # no dimension under Cauchy-Schwarz
            best_t, bound = -1, total
        var centre = (
            -shift_at + 127.5 * (plain - plain_at) if best_t >= 0 else 127.5 * plain
        )
        var q_offset: Float64 = 0
        for j in range(d):
            q_offset += Float64(q.unsafe_load[width=1](j)) * offset.unsafe_load[width=1](j)
        var slack = (bound + CODE_ROUNDING * l1) / alpha
        self.bounded = True
        self.alpha = alpha
        self.base = q_offset + centre / alpha
        self.slack = slack * (1 + 1e-6) + 1e-6

    @always_inline
    def upper(self, approx: Float64) -> Float64:
        """Largest exact score a row with integer score `approx` can have."""
        return self.base + approx / self.alpha + self.slack

    def pointer(self) -> I8Ptr:
        return I8Ptr(unsafe_from_address=Int(self.codes.unsafe_ptr()))
