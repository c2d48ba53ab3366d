"""A 64-bit content fingerprint of a buffer, at memory speed (pure Mojo, no Python).

Change detection for callers that pass their data on every call: the `pattern_search` extension
module exposes it as `content_fingerprint`, and the Python fallback computes the same value.

```mojo
from kernel_support.fingerprint import fingerprint

var h = fingerprint(words, n_words, threads)
```

The value is a sum over words (see `_fingerprint_range`), so shares can be hashed by separate
workers and added in any order; buffers under 64Ki words stay on the calling thread.
"""

from kernel_support.abi import U64Ptr
from kernel_support.parallel import parallel_for


comptime FP_POS: UInt64 = 0x9E3779B97F4A7C15
comptime FP_C1: UInt64 = 0xFF51AFD7ED558CCD
comptime FP_C2: UInt64 = 0xC4CEB9FE1A85EC53
comptime FP_LANES = 8


@always_inline
def _fmix64[w: Int](x0: SIMD[DType.uint64, w]) -> SIMD[DType.uint64, w]:
    """MurmurHash3's 64-bit finaliser: every input bit affects every output bit."""
    var x = x0 ^ (x0 >> 33)
    x *= FP_C1
    x ^= x >> 33
    x *= FP_C2
    return x ^ (x >> 33)


def _fingerprint_range(p: U64Ptr, start: Int, end: Int) -> UInt64:
    """sum over words i of fmix64(w[i] xor (i * FP_POS)), modulo 2**64: position-sensitive,
    non-linear in every bit, and without a dependency chain between words."""
    var acc = SIMD[DType.uint64, FP_LANES](0)
    var idx = SIMD[DType.uint64, FP_LANES](0, 1, 2, 3, 4, 5, 6, 7) + UInt64(start)
    var step = SIMD[DType.uint64, FP_LANES](FP_LANES)
    var i = start
    while i + FP_LANES <= end:
        acc += _fmix64[FP_LANES](p.unsafe_load[width=FP_LANES](i) ^ (idx * FP_POS))
        idx += step
        i += FP_LANES
    var total = acc.reduce_add()
    while i < end:
        total += _fmix64[1](p.unsafe_load[width=1](i) ^ (UInt64(i) * FP_POS))
        i += 1
    return total


def fingerprint(p: U64Ptr, n_words: Int, threads: Int) -> UInt64:
    """The fingerprint of n_words 64-bit words (see `_fingerprint_range`), at memory speed."""
    var workers = max(1, min(threads, (n_words + 65535) // 65536))
    var parts = List[UInt64](length=workers, fill=0)
    var pp = parts.unsafe_ptr()
    var chunk = (n_words + workers - 1) // workers

    @__parameter
    def work(w: Int):
        var s = w * chunk
        var e = min(n_words, s + chunk)
        if s < e:
            pp[unsafe_offset=w] = _fingerprint_range(p, s, e)

    parallel_for[work](workers)
    var total: UInt64 = 0
    for i in range(workers):
        total += parts[i]
    return total
