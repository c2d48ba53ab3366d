"""Standalone pattern-search benchmark: a pure Mojo program (no Python).

Usage: `search_bench [N] [DIM] [QUERIES]` (defaults 100000 384 50).
Smoke: 2000 64 5

Prints one JSON document in
the `synapse-mojo-bench/1` schema (suite "search") on stdout, so that the Nix build and the
aarch64 cross-build can run the kernels with no Python at all, and `synapse-mojo bench compare`
can read the result. Machine fields it cannot know from Mojo alone (CPU model) are left for the
caller; `emulated` is false unless SYNAPSE_EMULATED is set.
"""

from std.os import getenv
from std.sys import CompilationTarget, argv, num_logical_cores, simd_width_of
from std.time import perf_counter_ns

from kernel_support.abi import F32Ptr, I8Ptr, I64Ptr, U8Ptr
from kernel_support.scan import topk_f32, topk_f32_batch, topk_u8_rerank
from kernel_support.stream import stream_sum


struct Rng:
    """A xorshift64* generator with a Box-Muller transform: reproducible Gaussian data, no dependencies."""

    var state: UInt64

    def __init__(out self, seed: UInt64):
        self.state = seed * 2685821657736338717 + 1

    def next_u64(mut self) -> UInt64:
        self.state ^= self.state >> 12
        self.state ^= self.state << 25
        self.state ^= self.state >> 27
        return self.state * 2685821657736338717

    def uniform(mut self) -> Float64:
        return (Float64(self.next_u64() >> 11) + 0.5) / 9007199254740992.0

    def gaussian(mut self) -> Float32:
        var u1 = self.uniform()
        var u2 = self.uniform()
        from std.math import cos, log, sqrt

        return Float32(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2))


def _normalise(p: F32Ptr, rows: Int, d: Int):
    from std.math import sqrt

    for r in range(rows):
        var s: Float32 = 0
        for j in range(d):
            var v = p.unsafe_load[width=1](r * d + j)
            s += v * v
        var inv = 1 / sqrt(s)
        for j in range(d):
            p.unsafe_store(r * d + j, p.unsafe_load[width=1](r * d + j) * inv)


def _percentile(mut values: List[Float64], q: Int) -> Float64:
    # insertion sort: a few hundred values
    for i in range(1, len(values)):
        var v = values[i]
        var j = i - 1
        while j >= 0 and values[j] > v:
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = v
    var rank = max(1, (q * len(values) + 99) // 100)
    return values[min(rank, len(values)) - 1]


def _record(
    backend: String, n: Int, d: Int, mode: String, batch: Int, mut times_ms: List[Float64],
    bytes_per_call: Float64, bw: Float64, threads: Int,
) -> String:
    var count = len(times_ms)
    var p50 = _percentile(times_ms, 50)
    var p95 = _percentile(times_ms, 95)
    var p99 = _percentile(times_ms, 99)
    var gbps = bytes_per_call / (p50 / 1000.0) / 1e9
    return String(
        '{"backend": "', backend, '", "n": ', n, ', "dim": ', d, ', "k": 10, "mode": "', mode,
        '", "batch_size": ', batch, ', "queries": ', count * batch, ', "threads": ', threads,
        ', "p50_ms": ', p50, ', "p95_ms": ', p95, ', "p99_ms": ', p99,
        ', "qps": ', Float64(batch) / (p50 / 1000.0), ', "gbps": ', gbps,
        ', "pct_bandwidth": ', 100.0 * gbps / bw, ', "recall_at_k": null, "errors": 0',
        ', "extrapolated": false, "note": "standalone Mojo program"}',
    )


def main() raises:
    var args = argv()
    var n = Int(args[1]) if len(args) > 1 else 100000
    var d = Int(args[2]) if len(args) > 2 else 384
    var nq = Int(args[3]) if len(args) > 3 else 50
    var threads = num_logical_cores()
    var k = 10

    var data = List[Float32](length=n * d, fill=0)
    var queries = List[Float32](length=64 * d, fill=0)
    var rng = Rng(20261125)
    for i in range(n * d):
        data[i] = rng.gaussian()
    for i in range(64 * d):
        queries[i] = rng.gaussian()
    var m = F32Ptr(unsafe_from_address=Int(data.unsafe_ptr()))
    var qp = F32Ptr(unsafe_from_address=Int(queries.unsafe_ptr()))
    _normalise(m, n, d)
    _normalise(qp, 64, d)

    # int8 codes with a per-dimension fit (the same recipe as the Python quantizer).
    var lo = List[Float32](length=d, fill=1)
    var hi = List[Float32](length=d, fill=-1)
    for r in range(n):
        for j in range(d):
            var v = data[r * d + j]
            lo[j] = min(lo[j], v)
            hi[j] = max(hi[j], v)
    var scale = List[Float32](length=d, fill=0)
    for j in range(d):
        scale[j] = max((hi[j] - lo[j]) / 255, Float32(1e-12))
    var codes = List[UInt8](length=n * d, fill=0)
    for r in range(n):
        for j in range(d):
            var c = (data[r * d + j] - lo[j]) / scale[j] + 0.5
            codes[r * d + j] = UInt8(Int(max(Float32(0), min(Float32(255), c))))
    var cp = U8Ptr(unsafe_from_address=Int(codes.unsafe_ptr()))
    # int8 ranking queries: query * scale rounded to int8 with its peak at 127 (the recipe of
    # synapse_mojo.search.quantization.quantize_query).
    var queries_i8 = List[Int8](length=64 * d, fill=0)
    for qi in range(64):
        var peak: Float32 = 0
        for j in range(d):
            peak = max(peak, abs(queries[qi * d + j] * scale[j]))
        for j in range(d):
            var v = queries[qi * d + j] * scale[j] * 127 / peak
            var r = Int(v + 0.5) if v >= 0 else -Int(-v + 0.5)
            queries_i8[qi * d + j] = Int8(max(-127, min(127, r)))
    var qip = I8Ptr(unsafe_from_address=Int(queries_i8.unsafe_ptr()))

    var rows = List[Int64](length=64 * k, fill=0)
    var scores = List[Float32](length=64 * k, fill=0)
    var rp = I64Ptr(unsafe_from_address=Int(rows.unsafe_ptr()))
    var sc = F32Ptr(unsafe_from_address=Int(scores.unsafe_ptr()))
    var no_mask = U8Ptr(unsafe_from_address=Int(codes.unsafe_ptr()))

    # Bandwidth: best of five streaming passes over the float32 data.
    var best_ns = 0
    for i in range(5):
        var t0 = perf_counter_ns()
        var s = stream_sum(m, n * d, threads)
        var dt = Int(perf_counter_ns() - t0)
        if i == 0 or dt < best_ns:
            best_ns = dt
        if s == 12345.678:  # keep the sum alive
            print("")
    var bw = Float64(n * d * 4) / Float64(best_ns)  # bytes/ns == GB/s

    var records = List[String]()
    var times = List[Float64]()
    for i in range(nq + 3):
        var t0 = perf_counter_ns()
        _ = topk_f32(m, n, d, qp.unsafe_offset((i % 64) * d), k, no_mask, False, threads, rp, sc)
        if i >= 3:
            times.append(Float64(perf_counter_ns() - t0) / 1e6)
    records.append(_record("mojo-f32", n, d, "single", 1, times, Float64(n * d * 4), bw, threads))

    times = List[Float64]()
    for i in range(nq + 3):
        var t0 = perf_counter_ns()
        _ = topk_u8_rerank(
            cp, m, n, d, qp.unsafe_offset((i % 64) * d), qip.unsafe_offset((i % 64) * d), k, 4 * k,
            no_mask, False, threads, rp, sc,
        )
        if i >= 3:
            times.append(Float64(perf_counter_ns() - t0) / 1e6)
    records.append(_record("mojo-int8", n, d, "single", 1, times, Float64(n * d), bw, threads))

    times = List[Float64]()
    for i in range(4):
        var t0 = perf_counter_ns()
        _ = topk_f32_batch(m, n, d, qp, 64, k, no_mask, False, threads, rp, sc)
        if i >= 1:
            times.append(Float64(perf_counter_ns() - t0) / 1e6)
    records.append(_record("mojo-f32", n, d, "batch", 64, times, Float64(n * d * 4), bw, threads))

    var emulated = "true" if getenv("SYNAPSE_EMULATED") != "" else "false"
    var arch = "aarch64" if CompilationTarget.has_neon() else "x86_64"
    var out = String(
        '{"schema": "synapse-mojo-bench/1", "suite": "search", "created_at": null, ',
        '"command": "search_bench ', n, " ", d, " ", nq, '", "machine": {"arch": "', arch, '", ',
        '"cpu_model": null, "cores": ', threads, ', "simd_width_f32": ', simd_width_of[DType.float32](),
        ', "bandwidth_gbps": ', bw, ', "emulated": ', emulated, '}, "records": [',
    )
    for i in range(len(records)):
        if i > 0:
            out += ", "
        out += records[i]
    out += "]}"
    print(out)
    _ = data^
    _ = queries^
    _ = codes^
    _ = queries_i8^
    _ = scale^
    _ = lo^
    _ = hi^
    _ = rows^
    _ = scores^
