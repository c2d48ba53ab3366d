"""A streaming read of a float32 buffer: the memory-bandwidth yardstick (pure Mojo, no Python).

The `pattern_search` extension module exposes it as `stream_read`, and the standalone benchmark
`bench/search_bench.mojo` runs it beside the scans: a single-query scan can at best match it.

```mojo
from kernel_support.stream import stream_sum

var total = stream_sum(data, n_floats, threads)
```

Each worker sums one contiguous share with four independent accumulator chains (so the adds
never wait on each other and the loop is limited by loads alone); the shares' sums are added
by the caller's thread at the end.
"""

from std.sys import simd_width_of

from kernel_support.abi import F32Ptr
from kernel_support.parallel import parallel_for

comptime W = simd_width_of[DType.float32]()


def _sum_range(p: F32Ptr, start: Int, end: Int) -> Float32:
    var a0 = SIMD[DType.float32, W](0)
    var a1 = SIMD[DType.float32, W](0)
    var a2 = SIMD[DType.float32, W](0)
    var a3 = SIMD[DType.float32, W](0)
    var i = start
    while i + 4 * W <= end:
        a0 += p.unsafe_load[width=W](i)
        a1 += p.unsafe_load[width=W](i + W)
        a2 += p.unsafe_load[width=W](i + 2 * W)
        a3 += p.unsafe_load[width=W](i + 3 * W)
        i += 4 * W
    var s = (a0 + a1 + a2 + a3).reduce_add()
    while i < end:
        s += p.unsafe_load[width=1](i)
        i += 1
    return s


def stream_sum(p: F32Ptr, n: Int, threads: Int) -> Float32:
    """Sums n floats with `threads` workers: a pure streaming read at the memory bandwidth."""
    var workers = max(1, threads)
    var parts = List[Float32](length=workers, fill=0)
    var pp = parts.unsafe_ptr()
    var chunk = (n + workers - 1) // workers

    @__parameter
    def work(w: Int):
        var s = w * chunk
        var e = min(n, s + chunk)
        if s < e:
            pp[unsafe_offset=w] = _sum_range(p, s, e)

    parallel_for[work](workers)
    var total: Float32 = 0
    for i in range(workers):
        total += parts[i]
    return total
