"""Scan kernels for exact and quantised top-k similarity (pure Mojo, no Python).

Used by the `pattern_search` extension module and by the standalone benchmark program
`bench/search_bench.mojo`.

```mojo
from kernel_support.scan import topk_f32, topk_f32_batch, topk_u8_certified, topk_u8_rerank

var n = topk_f32(matrix, n_rows, dim, query, k, mask, has_mask, threads, out_rows, out_scores)
```

The strategies, one result order (higher score first, ties to the lower row):

* `topk_f32`: one query is a streaming problem (every row read once, two flops per four bytes),
  so the scan is organised for memory bandwidth: each worker owns a run of row chunks (the
  same run on every call, so it stays in that core's cache) and helps the others when done;
  the calling thread is one of the workers (`kernel_support.parallel.ChunkPlan`), so a worker
  slow to start or to get a core costs only what the others take over. With two workers the
  second is the pair helper (`kernel_support.parallel.run_pair`), which the call never waits
  for unless it started; more workers run on the task group. Eight rows in flight
  per step (eight independent accumulator chains cover the FMA latency on both FMA ports; the
  query vector is loaded once for all eight), the steps unrolled by two with a prefetch of the
  next block's rows; a bounded heap per worker whose admission bar is held in a register, so
  once the heap is full a block of eight rows costs one vector compare; heaps merged at the
  end. No score array is materialised.
* `topk_f32_cosine`: the same scan over the caller's raw rows (eight rows per block, sixteen
  chains); each row's dot product and squared norm come from one read, so no normalised copy of
  the data is needed.
* `topk_f32_batch`: many queries make the same scan compute-bound. Each worker copies a block of
  32 rows into a small transposed buffer (dimension-major, L1/L2 resident) and multiplies it with
  tiles of 8 queries: every step broadcasts one query value and does 16 FMAs per loaded vector,
  with 16 accumulators held in registers and no horizontal reductions. A running top-k per query
  replaces the (queries x rows) score matrix that a BLAS approach materialises.
* `topk_u8_rerank`: rows stored as uint8 codes (per-dimension scale/offset) are ranked by the
  exact integer dot product with an int8 query (the query folded into the scales and rounded
  to int8 by the caller), a quarter of the float32 bytes; the best `candidates` rows are then
  re-scored exactly from the float32 rows. The integer dot uses `vpdpbusd` (AVX-512 VNNI, 64
  multiply-adds per instruction) or `sdot` (Arm dot-product, on codes shifted to signed, which
  moves every score by the same constant) where the target has them, and widening integer
  arithmetic elsewhere: all three give the same integers, so every backend keeps the same
  candidates.
* `topk_u8_certified`: the exact top-k through the codes (`topk_u8_rerank`'s scan, then the
  error bound of `kernel_support.int8_query` proves that no unexamined row can enter, or the
  candidate set grows and the codes are scanned again).

Every row is reduced in one canonical operation order per strategy, whichever path handles it,
so identical rows get bit-identical scores and exact ties follow insertion order.
"""

from std.math import sqrt
from std.memory import bitcast
from std.sys import CompilationTarget, llvm_intrinsic, simd_width_of
from std.sys.intrinsics import PrefetchOptions, prefetch

from kernel_support.abi import F32Ptr, I8Ptr, I64Ptr, U8Ptr
from kernel_support.int8_query import F64Ptr, Int8Query
from kernel_support.parallel import ChunkPlan, next_scan_reversed, parallel_for, run_pair
from kernel_support.topk import TopK

comptime W = simd_width_of[DType.float32]()

# Batch kernel tiling: SIMD vectors of rows per transposed block, and queries per tile.
comptime ROW_VECTORS = 3
comptime BATCH_ROWS = ROW_VECTORS * W
comptime BATCH_QUERIES = 8


# ===----------------------------------------------------------------------=== #
# Dot products (canonical order: W-wide chunks, one reduction, scalar tail)
# ===----------------------------------------------------------------------=== #


@always_inline
def dot(row: F32Ptr, q: F32Ptr, d: Int) -> Float32:
    var acc = SIMD[DType.float32, W](0)
    var i = 0
    while i + W <= d:
        acc += row.unsafe_load[width=W](i) * q.unsafe_load[width=W](i)
        i += W
    var s = acc.reduce_add()
    while i < d:
        s += row.unsafe_load[width=1](i) * q.unsafe_load[width=1](i)
        i += 1
    return s


comptime F32_ROWS = 8
comptime _NEXT_BLOCK = PrefetchOptions().for_read().high_locality().to_data_cache()


@always_inline
def dotn[R: Int](base: F32Ptr, d: Int, q: F32Ptr) -> SIMD[DType.float32, R]:
    """R consecutive rows (row r at base + r * d) with the per-row operation order of `dot`:
    R independent accumulator chains (enough to cover the FMA latency on both FMA ports), the
    query vector loaded once per step for all R rows, the steps unrolled by two."""
    var acc = Array[SIMD[DType.float32, W], R](fill=SIMD[DType.float32, W](0))
    var i = 0
    while i + 2 * W <= d:
        var qa = q.unsafe_load[width=W](i)
        var qb = q.unsafe_load[width=W](i + W)
        comptime for r in range(R):
            acc[r] += base.unsafe_load[width=W](r * d + i) * qa
        comptime for r in range(R):
            acc[r] += base.unsafe_load[width=W](r * d + i + W) * qb
        # The next block's rows at the same offsets (past the last row these are hints to
        # addresses that are never read: prefetches do not fault).
        comptime for r in range(R):
            prefetch[_NEXT_BLOCK](base.unsafe_offset((R + r) * d + i))
            prefetch[_NEXT_BLOCK](base.unsafe_offset((R + r) * d + i + W))
        i += 2 * W
    if i + W <= d:
        var qv = q.unsafe_load[width=W](i)
        comptime for r in range(R):
            acc[r] += base.unsafe_load[width=W](r * d + i) * qv
        i += W
    var out = SIMD[DType.float32, R](0)
    comptime for r in range(R):
        out[r] = acc[r].reduce_add()
    while i < d:
        var qs = q.unsafe_load[width=1](i)
        comptime for r in range(R):
            out[r] += base.unsafe_load[width=1](r * d + i) * qs
        i += 1
    return out


comptime I8_CHUNK = 64


@always_inline
def _dot_i8_chunk(
    acc: SIMD[DType.int32, 16], c: SIMD[DType.uint8, I8_CHUNK], qv: SIMD[DType.int8, I8_CHUNK]
) -> SIMD[DType.int32, 16]:
    """acc + per-lane partial sums of the 64 products c * qv (exact int32)."""
    comptime if CompilationTarget.has_vnni():
        # vpdpbusd: unsigned bytes x signed bytes, groups of four summed into int32 lanes.
        return llvm_intrinsic["llvm.x86.avx512.vpdpbusd.512", SIMD[DType.int32, 16]](
            acc, bitcast[DType.int8, I8_CHUNK](c), qv
        )
    elif CompilationTarget.has_neon_int8_dotprod():
        # sdot on (code - 128): shifts every row's score by -128 * sum(q), a per-query constant.
        var shifted = bitcast[DType.int8, I8_CHUNK](c ^ SIMD[DType.uint8, I8_CHUNK](0x80))
        var out = acc
        comptime for part in range(4):
            var lanes = out.slice[4, offset = 4 * part]()
            lanes = llvm_intrinsic["llvm.aarch64.neon.sdot.v4i32.v16i8", SIMD[DType.int32, 4]](
                lanes, shifted.slice[16, offset = 16 * part](), qv.slice[16, offset = 16 * part]()
            )
            out = out.insert[offset = 4 * part](lanes)
        return out
    else:
        var prod = c.cast[DType.int32]() * qv.cast[DType.int32]()
        var out = acc
        comptime for part in range(4):
            out += prod.slice[16, offset = 16 * part]()
        return out


@always_inline
def _tail_i8(codes: U8Ptr, q: I8Ptr, start: Int, d: Int) -> Int32:
    var s: Int32 = 0
    for i in range(start, d):
        var c = Int32(codes.unsafe_load[width=1](i))
        comptime if CompilationTarget.has_neon_int8_dotprod() and not CompilationTarget.has_vnni():
            c -= 128  # the same shift as the sdot chunks, so head and tail agree
        s += c * Int32(q.unsafe_load[width=1](i))
    return s


@always_inline
def dot_i8(codes: U8Ptr, q: I8Ptr, d: Int) -> Int32:
    """Exact integer dot product of uint8 codes with int8 query values (up to a per-query
    constant on Arm dot-product targets)."""
    var acc = SIMD[DType.int32, 16](0)
    var i = 0
    while i + I8_CHUNK <= d:
        acc = _dot_i8_chunk(acc, codes.unsafe_load[width=I8_CHUNK](i), q.unsafe_load[width=I8_CHUNK](i))
        i += I8_CHUNK
    return acc.reduce_add() + _tail_i8(codes, q, i, d)


comptime I8_ROWS = 8


@always_inline
def dotn_i8[R: Int](base: U8Ptr, d: Int, q: I8Ptr) -> SIMD[DType.int32, R]:
    """R consecutive rows at once (R independent accumulator chains, the query chunk loaded
    once per step), each with the per-row operation order of `dot_i8`."""
    var acc = Array[SIMD[DType.int32, 16], R](fill=SIMD[DType.int32, 16](0))
    var i = 0
    while i + I8_CHUNK <= d:
        var qv = q.unsafe_load[width=I8_CHUNK](i)
        comptime for r in range(R):
            acc[r] = _dot_i8_chunk(acc[r], base.unsafe_load[width=I8_CHUNK](r * d + i), qv)
        i += I8_CHUNK
    var out = SIMD[DType.int32, R](0)
    comptime for r in range(R):
        out[r] = acc[r].reduce_add() + _tail_i8(base.unsafe_offset(r * d), q, i, d)
    return out


# ===----------------------------------------------------------------------=== #
# Work split
# ===----------------------------------------------------------------------=== #


@always_inline
def _chunk(n: Int, workers: Int) -> Int:
    # Chunks are rounded to whole 64-row groups so that workers never share a cache line
    # of the mask and every worker but the last scans full 4-row steps.
    var c = (n + workers - 1) // workers
    return ((c + 63) // 64) * 64


#: Scans alternate direction (`ChunkPlan`'s `reverse`) while each participant reads at most
#: this much: a part within a few times the L2 finds its last lines there. In the latency
#: grid's process (NumPy calls in between, OpenBLAS's thread spinning on the helper's core)
#: alternating was 8-11% faster at 1,000 x 1,024 (2 MB a participant) but up to 1.25x slower
#: at 10,000 x 384 (7.7 MB; 14% faster on a quiet machine) and at 10,000 x 1,024 (20 MB).
comptime ALTERNATE_MAX_BYTES = 4 << 20


@always_inline
def _alternate(bytes: Int, workers: Int) -> Bool:
    """Whether this scan runs its chunks last to first: every other call (process-wide,
    `next_scan_reversed`) while each participant's part is within ALTERNATE_MAX_BYTES."""
    return bytes <= ALTERNATE_MAX_BYTES * workers and next_scan_reversed()


@always_inline
def _address[T: AnyType](ref value: T) -> Int:
    return Int(Pointer(to=value))


def _merge_write(mut tops: List[TopK], k: Int, out_rows: I64Ptr, out_scores: F32Ptr) -> Int:
    if len(tops) == 1:
        return tops[0].write_sorted(out_scores, out_rows)
    var merged = TopK(k)
    for w in range(len(tops)):
        merged.merge_from(tops[w])
    return merged.write_sorted(out_scores, out_rows)


# ===----------------------------------------------------------------------=== #
# Exact float32, one query
# ===----------------------------------------------------------------------=== #


def _eligible_count(mask: U8Ptr, n: Int) -> Int:
    """How many of the `n` mask bytes are nonzero (64 at a time)."""
    var count = 0
    var r = 0
    while r + 64 <= n:
        count += Int(mask.unsafe_load[width=64](r).ne(0).cast[DType.uint8]().reduce_add())
        r += 64
    while r < n:
        if mask.unsafe_load[width=1](r) != 0:
            count += 1
        r += 1
    return count


@always_inline
def _eligible_from(mask: U8Ptr, start: Int, end: Int) -> Int:
    """The first row at or after `start` whose mask byte is nonzero (`end` if none)."""
    var r = start
    while r + 8 <= end and mask.unsafe_load[width=8](r).eq(0).reduce_and():
        r += 8
    while r < end and mask.unsafe_load[width=1](r) == 0:
        r += 1
    return r


@always_inline
def _eligible_until(mask: U8Ptr, start: Int, end: Int) -> Int:
    """The end of the run of rows with nonzero mask bytes that starts at `start`."""
    var r = start
    while r + 8 <= end and mask.unsafe_load[width=8](r).ne(0).reduce_and():
        r += 8
    while r < end and mask.unsafe_load[width=1](r) != 0:
        r += 1
    return r


def _scan_f32(
    matrix: F32Ptr, d: Int, q: F32Ptr, mask: U8Ptr, has_mask: Bool, start: Int, end: Int, mut top: TopK
):
    if not has_mask:
        _scan_f32_rows(matrix, d, q, start, end, top)
        return
    # Filtered scan: each run of eligible rows as an unfiltered scan (the same code and
    # speed: an index's few removed rows cost a run boundary each); rows whose mask byte is
    # zero are skipped without being read.
    var r = _eligible_from(mask, start, end)
    while r < end:
        var run_end = _eligible_until(mask, r, end)
        _scan_f32_rows(matrix, d, q, r, run_end, top)
        r = _eligible_from(mask, run_end, end)


@always_inline
def _scan_f32_rows(matrix: F32Ptr, d: Int, q: F32Ptr, start: Int, end: Int, mut top: TopK):
    # The heap's state kept in registers: once it is full, a block of rows costs one vector
    # compare against the worst kept score unless one of its rows can enter.
    var r = start
    var filling = not top.full()
    var bar = top.worst_score() if not filling else Float32(0)
    while r + F32_ROWS <= end:
        var s = dotn[F32_ROWS](matrix.unsafe_offset(r * d), d, q)
        if filling or s.ge(SIMD[DType.float32, F32_ROWS](bar)).reduce_or():
            comptime for j in range(F32_ROWS):
                if top.accepts(s[j]):
                    top.push(s[j], r + j)
            filling = not top.full()
            bar = top.worst_score()
        r += F32_ROWS
    while r < end:  # `dot` keeps `dotn`'s per-row order: the same scores
        var s = dot(matrix.unsafe_offset(r * d), q, d)
        if top.accepts(s):
            top.push(s, r)
        r += 1


comptime _SCAN_F32 = 0
comptime _SCAN_COSINE = 1
comptime _SCAN_U8 = 2


@fieldwise_init
struct _SingleQueryScan(Movable):
    """One single-query scan's arguments, shared by its participants (`run(w)`): the exact
    scan of normalised rows (`_SCAN_F32`), the fused cosine scan of raw rows (`_SCAN_COSINE`)
    or the uint8-code scan (`_SCAN_U8`: `matrix` holds the codes, `q` the int8 query).
    Addresses as integers: the caller owns every buffer for the duration of the call."""

    var matrix: Int
    var n: Int
    var d: Int
    var q: Int
    var mask: Int
    var has_mask: Bool
    var kind: Int
    var plan: Int  # a ChunkPlan
    var tops: Int  # one TopK per participant
    var flags: Int  # cosine: one Bool per participant, set when a row's norm is not finite

    def run(self, w: Int):
        var plan = Pointer[ChunkPlan, MutAnyOrigin](unsafe_from_address=self.plan)
        var top = Pointer[TopK, MutAnyOrigin](unsafe_from_address=self.tops)
        var matrix = F32Ptr(unsafe_from_address=self.matrix)
        var q = F32Ptr(unsafe_from_address=self.q)
        var mask = U8Ptr(unsafe_from_address=self.mask)
        var bad = False
        while True:
            var c = plan[].take(w)
            if c < 0:
                break
            var start = c * plan[].chunk
            var end = min(self.n, start + plan[].chunk)
            if self.kind == _SCAN_COSINE:
                _scan_cosine(matrix, self.d, q, start, end, top[unsafe_offset=w], bad)
            elif self.kind == _SCAN_U8:
                _scan_u8(
                    U8Ptr(unsafe_from_address=self.matrix),
                    self.d,
                    I8Ptr(unsafe_from_address=self.q),
                    mask,
                    self.has_mask,
                    start,
                    end,
                    top[unsafe_offset=w],
                )
            else:
                _scan_f32(matrix, self.d, q, mask, self.has_mask, start, end, top[unsafe_offset=w])
        if self.kind == _SCAN_COSINE:
            Pointer[Bool, MutAnyOrigin](unsafe_from_address=self.flags)[unsafe_offset=w] = bad


def _single_query_pair_job(ctx: Int, w: Int):
    Pointer[_SingleQueryScan, MutAnyOrigin](unsafe_from_address=ctx)[].run(w)


def _run_single_query(scan: _SingleQueryScan, workers: Int):
    """Two participants: the calling thread and the pair helper, which takes part only if it
    starts before the caller is done (`kernel_support.parallel.run_pair`); more: the task
    group, the calling thread being participant 0."""

    @__parameter
    def work(w: Int):
        scan.run(w)

    if workers == 2:
        run_pair(_single_query_pair_job, _address(scan))
    else:
        parallel_for[work](workers)


def topk_f32(
    matrix: F32Ptr,
    n: Int,
    d: Int,
    q: F32Ptr,
    k: Int,
    mask: U8Ptr,
    has_mask: Bool,
    threads: Int,
    out_rows: I64Ptr,
    out_scores: F32Ptr,
) -> Int:
    """Best `k` rows of `matrix` (n x d) for query `q`; returns how many were written."""
    if n <= 0 or k <= 0:
        return 0
    var workers = max(1, min(threads, (n + 63) // 64))
    var plan = ChunkPlan(n, workers, reverse=_alternate(n * d * 4, workers))
    var tops = List[TopK]()
    for _ in range(workers):
        tops.append(TopK(k))
    var scan = _SingleQueryScan(
        matrix=Int(matrix),
        n=n,
        d=d,
        q=Int(q),
        mask=Int(mask),
        has_mask=has_mask,
        kind=_SCAN_F32,
        plan=_address(plan),
        tops=Int(tops.unsafe_ptr()),
        flags=0,
    )
    _run_single_query(scan, workers)
    _ = scan^
    _ = plan^
    return _merge_write(tops, k, out_rows, out_scores)


# ===----------------------------------------------------------------------=== #
# Cosine over raw (not normalised) rows, one query
# ===----------------------------------------------------------------------=== #

comptime F32_MAX_FINITE = Float32(3.4028234663852886e38)


@always_inline
def _cosine(dot_: Float32, sq: Float32) -> Float32:
    """dot / |row| for a normalised query; a zero row scores 0 (cosine is undefined there)."""
    return dot_ / sqrt(sq) if sq > 0 else Float32(0)


@always_inline
def cosn[R: Int](
    base: F32Ptr, d: Int, q: F32Ptr, mut bad: Bool
) -> SIMD[DType.float32, R]:
    """R consecutive rows' dot products with `q` and squared norms in one pass over the rows
    (2R chains in flight, the query vector loaded once per step for all R rows), per row in
    the canonical order of `cos1`. Sets `bad` when a squared norm is not finite (NaN/inf in
    the row, or a norm beyond float32's range)."""
    var acc = Array[SIMD[DType.float32, W], R](fill=SIMD[DType.float32, W](0))
    var sq = Array[SIMD[DType.float32, W], R](fill=SIMD[DType.float32, W](0))
    var i = 0
    while i + W <= d:
        var qv = q.unsafe_load[width=W](i)
        comptime for r in range(R):
            var v = base.unsafe_load[width=W](r * d + i)
            acc[r] += v * qv
            sq[r] += v * v
        comptime for r in range(R):
            prefetch[_NEXT_BLOCK](base.unsafe_offset((R + r) * d + i))
        i += W
    var s = SIMD[DType.float32, R](0)
    var nn = SIMD[DType.float32, R](0)
    comptime for r in range(R):
        s[r] = acc[r].reduce_add()
        nn[r] = sq[r].reduce_add()
    while i < d:
        var qs = q.unsafe_load[width=1](i)
        comptime for r in range(R):
            var x = base.unsafe_load[width=1](r * d + i)
            s[r] += x * qs
            nn[r] += x * x
        i += 1
    if not nn.le(SIMD[DType.float32, R](F32_MAX_FINITE)).reduce_and():
        bad = True
    var out = SIMD[DType.float32, R](0)
    comptime for r in range(R):
        out[r] = _cosine(s[r], nn[r])
    return out


@always_inline
def cos1(row: F32Ptr, q: F32Ptr, d: Int, mut bad: Bool) -> Float32:
    var acc = SIMD[DType.float32, W](0)
    var sq = SIMD[DType.float32, W](0)
    var i = 0
    while i + W <= d:
        var v = row.unsafe_load[width=W](i)
        acc += v * q.unsafe_load[width=W](i)
        sq += v * v
        i += W
    var s = acc.reduce_add()
    var nn = sq.reduce_add()
    while i < d:
        var x = row.unsafe_load[width=1](i)
        s += x * q.unsafe_load[width=1](i)
        nn += x * x
        i += 1
    if not nn <= F32_MAX_FINITE:
        bad = True
    return _cosine(s, nn)


def _scan_cosine(
    matrix: F32Ptr, d: Int, q: F32Ptr, start: Int, end: Int, mut top: TopK, mut bad: Bool
):
    var r = start
    var filling = not top.full()
    var bar = top.worst_score() if not filling else Float32(0)
    while r + F32_ROWS <= end:
        var s = cosn[F32_ROWS](matrix.unsafe_offset(r * d), d, q, bad)
        if filling or s.ge(SIMD[DType.float32, F32_ROWS](bar)).reduce_or():
            comptime for j in range(F32_ROWS):
                if top.accepts(s[j]):
                    top.push(s[j], r + j)
            filling = not top.full()
            bar = top.worst_score()
        r += F32_ROWS
    while r < end:
        var s = cos1(matrix.unsafe_offset(r * d), q, d, bad)
        if top.accepts(s):
            top.push(s, r)
        r += 1


def topk_f32_cosine(
    matrix: F32Ptr,
    n: Int,
    d: Int,
    q: F32Ptr,
    k: Int,
    threads: Int,
    out_rows: I64Ptr,
    out_scores: F32Ptr,
) -> Int:
    """Best `k` rows of a raw (not normalised) `matrix` by cosine with the normalised `q`:
    each row's dot product and squared norm come from one read of the row, so the caller's
    data needs no normalised copy. Zero rows score 0. Returns the count written, or -1 when a
    row's squared norm is not finite (NaN/inf, or beyond float32's range): the caller then
    decides (an error, or a float64 path)."""
    if n <= 0 or k <= 0:
        return 0
    var workers = max(1, min(threads, (n + 63) // 64))
    var plan = ChunkPlan(n, workers, reverse=_alternate(n * d * 4, workers))
    var tops = List[TopK]()
    for _ in range(workers):
        tops.append(TopK(k))
    var flags = List[Bool](length=workers, fill=False)
    var scan = _SingleQueryScan(
        matrix=Int(matrix),
        n=n,
        d=d,
        q=Int(q),
        mask=0,
        has_mask=False,
        kind=_SCAN_COSINE,
        plan=_address(plan),
        tops=Int(tops.unsafe_ptr()),
        flags=Int(flags.unsafe_ptr()),
    )
    _run_single_query(scan, workers)
    _ = scan^
    _ = plan^
    for w in range(workers):
        if flags[w]:
            return -1
    return _merge_write(tops, k, out_rows, out_scores)


# ===----------------------------------------------------------------------=== #
# Exact float32, a batch of queries (blocked, compute-bound)
# ===----------------------------------------------------------------------=== #


@always_inline
def _transpose_block(matrix: F32Ptr, d: Int, r0: Int, rows: Int, buf: F32Ptr):
    """Copies rows [r0, r0 + rows) into buf[j * BATCH_ROWS + r]; missing rows are zero."""
    for r in range(rows):
        var src = matrix.unsafe_offset((r0 + r) * d)
        for j in range(d):
            buf.unsafe_store(j * BATCH_ROWS + r, src.unsafe_load[width=1](j))
    for r in range(rows, BATCH_ROWS):
        for j in range(d):
            buf.unsafe_store(j * BATCH_ROWS + r, Float32(0))


@always_inline
def _push_block(
    scores: SIMD[DType.float32, W],
    base_row: Int,
    valid: Int,
    mask: U8Ptr,
    has_mask: Bool,
    mut top: TopK,
):
    """Offers W consecutive rows' scores to a heap (rows beyond `valid` are padding)."""
    if top.full() and not scores.gt(SIMD[DType.float32, W](top.worst_score())).reduce_or():
        return
    for lane in range(min(W, valid)):
        var row = base_row + lane
        if has_mask and mask.unsafe_load[width=1](row) == 0:
            continue
        var s = scores[lane]
        if top.accepts_in_order(s):
            top.push(s, row)


def _batch_tile_full(
    buf: F32Ptr,
    d: Int,
    queries: F32Ptr,
    q0: Int,
    r0: Int,
    rows: Int,
    mask: U8Ptr,
    has_mask: Bool,
    tops: Pointer[TopK, MutAnyOrigin],
):
    """BATCH_QUERIES queries x BATCH_ROWS rows with BATCH_QUERIES * ROW_VECTORS register
    accumulators: per dimension, ROW_VECTORS loads and one broadcast per query feed
    ROW_VECTORS FMAs each."""
    var acc = Array[SIMD[DType.float32, W], ROW_VECTORS * BATCH_QUERIES](
        fill=SIMD[DType.float32, W](0)
    )
    for j in range(d):
        var row_vec = Array[SIMD[DType.float32, W], ROW_VECTORS](fill=SIMD[DType.float32, W](0))
        comptime for v in range(ROW_VECTORS):
            row_vec[v] = buf.unsafe_load[width=W](j * BATCH_ROWS + v * W)
        comptime for t in range(BATCH_QUERIES):
            var qv = SIMD[DType.float32, W](queries.unsafe_load[width=1]((q0 + t) * d + j))
            comptime for v in range(ROW_VECTORS):
                acc[t * ROW_VECTORS + v] += row_vec[v] * qv
    comptime for t in range(BATCH_QUERIES):
        comptime for v in range(ROW_VECTORS):
            _push_block(
                acc[t * ROW_VECTORS + v], r0 + v * W, rows - v * W, mask, has_mask, tops[unsafe_offset=q0 + t]
            )


def _batch_tile_one(
    buf: F32Ptr,
    d: Int,
    queries: F32Ptr,
    qi: Int,
    r0: Int,
    rows: Int,
    mask: U8Ptr,
    has_mask: Bool,
    tops: Pointer[TopK, MutAnyOrigin],
):
    """One query x BATCH_ROWS rows: the remainder of a batch that is not a multiple of the tile.
    Same per-lane operation order as the full tile, so scores do not depend on the tiling."""
    var acc = Array[SIMD[DType.float32, W], ROW_VECTORS](fill=SIMD[DType.float32, W](0))
    for j in range(d):
        var qv = SIMD[DType.float32, W](queries.unsafe_load[width=1](qi * d + j))
        comptime for v in range(ROW_VECTORS):
            acc[v] += buf.unsafe_load[width=W](j * BATCH_ROWS + v * W) * qv
    comptime for v in range(ROW_VECTORS):
        _push_block(acc[v], r0 + v * W, rows - v * W, mask, has_mask, tops[unsafe_offset=qi])


def topk_f32_batch(
    matrix: F32Ptr,
    n: Int,
    d: Int,
    queries: F32Ptr,
    b: Int,
    k: Int,
    mask: U8Ptr,
    has_mask: Bool,
    threads: Int,
    out_rows: I64Ptr,
    out_scores: F32Ptr,
) -> Int:
    """Best `k` rows for each of `b` queries; outputs are row-major (b, k). Returns the count
    written per query (the same for every query)."""
    if n <= 0 or k <= 0 or b <= 0:
        return 0
    var workers = max(1, min(threads, (n + BATCH_ROWS - 1) // BATCH_ROWS))
    var chunk = _chunk(n, workers)
    # tops[w * b + qi]: worker w's heap for query qi.
    var tops = List[TopK]()
    for _ in range(workers * b):
        tops.append(TopK(k))
    var tops_ptr = Pointer[TopK, MutAnyOrigin](unsafe_from_address=Int(tops.unsafe_ptr()))

    @__parameter
    def work(w: Int):
        var start = w * chunk
        var end = min(n, start + chunk)
        if start >= end:
            return
        var buffer = List[Float32](length=d * BATCH_ROWS, fill=0)
        var buf = F32Ptr(unsafe_from_address=Int(buffer.unsafe_ptr()))
        var my_tops = tops_ptr.unsafe_offset(w * b)
        var r0 = start
        while r0 < end:
            var rows = min(BATCH_ROWS, end - r0)
            _transpose_block(matrix, d, r0, rows, buf)
            var q0 = 0
            while q0 + BATCH_QUERIES <= b:
                _batch_tile_full(buf, d, queries, q0, r0, rows, mask, has_mask, my_tops)
                q0 += BATCH_QUERIES
            while q0 < b:
                _batch_tile_one(buf, d, queries, q0, r0, rows, mask, has_mask, my_tops)
                q0 += 1
            r0 += BATCH_ROWS
        _ = buffer^

    parallel_for[work](workers)

    var count = 0
    for qi in range(b):
        var merged = TopK(k)
        for w in range(workers):
            merged.merge_from(tops[w * b + qi])
        count = merged.write_sorted(out_scores.unsafe_offset(qi * k), out_rows.unsafe_offset(qi * k))
    return count


# ===----------------------------------------------------------------------=== #
# Quantised uint8 scan + exact float32 rerank
# ===----------------------------------------------------------------------=== #


def _scan_u8(
    codes: U8Ptr, d: Int, qi: I8Ptr, mask: U8Ptr, has_mask: Bool, start: Int, end: Int, mut top: TopK
):
    if not has_mask:
        _scan_u8_rows(codes, d, qi, start, end, top)
        return
    # As `_scan_f32`: each run of eligible rows as an unfiltered scan.
    var r = _eligible_from(mask, start, end)
    while r < end:
        var run_end = _eligible_until(mask, r, end)
        _scan_u8_rows(codes, d, qi, r, run_end, top)
        r = _eligible_from(mask, run_end, end)


@always_inline
def _scan_u8_rows(codes: U8Ptr, d: Int, qi: I8Ptr, start: Int, end: Int, mut top: TopK):
    # Integer scores are exact; as float32 they stay exact below 2**24 (|score| <= d * 255 * 127
    # is 12.4M for d = 384) and keep their order above it, which is all the heap needs.
    var r = start
    while r + I8_ROWS <= end:
        var s = dotn_i8[I8_ROWS](codes.unsafe_offset(r * d), d, qi).cast[DType.float32]()
        # One vector compare decides whether any of the rows can enter the heap.
        if not top.full() or s.ge(SIMD[DType.float32, I8_ROWS](top.worst_score())).reduce_or():
            comptime for j in range(I8_ROWS):
                if top.accepts(s[j]):
                    top.push(s[j], r + j)
        r += I8_ROWS
    while r < end:
        var s = Float32(dot_i8(codes.unsafe_offset(r * d), qi, d))
        if top.accepts(s):
            top.push(s, r)
        r += 1


def _u8_candidates(
    codes: U8Ptr,
    n: Int,
    d: Int,
    qi: I8Ptr,
    candidates: Int,
    mask: U8Ptr,
    has_mask: Bool,
    threads: Int,
) -> TopK:
    """The best `candidates` rows by the integer dot product of their codes with `qi` (a
    heap: its root is the worst kept)."""
    var workers = max(1, min(threads, (n + 63) // 64))
    var plan = ChunkPlan(n, workers, reverse=_alternate(n * d, workers))
    var tops = List[TopK]()
    for _ in range(workers):
        tops.append(TopK(candidates))
    var scan = _SingleQueryScan(
        matrix=Int(codes),
        n=n,
        d=d,
        q=Int(qi),
        mask=Int(mask),
        has_mask=has_mask,
        kind=_SCAN_U8,
        plan=_address(plan),
        tops=Int(tops.unsafe_ptr()),
        flags=0,
    )
    _run_single_query(scan, workers)
    _ = scan^
    _ = plan^
    if workers == 1:
        return tops.pop()
    var merged = TopK(candidates)
    for w in range(workers):
        merged.merge_from(tops[w])
    return merged^


def _rerank(merged: TopK, vectors: F32Ptr, d: Int, q: F32Ptr, k: Int) -> TopK:
    """Exact float32 scores of the candidates, in the canonical `dot` order so that they
    equal what `topk_f32` computes for the same rows; the best `k` kept."""
    var final = TopK(k)
    for i in range(merged.size):
        var row = merged.rows[i]
        final.push(dot(vectors.unsafe_offset(row * d), q, d), row)
    return final^


def topk_u8_rerank(
    codes: U8Ptr,
    vectors: F32Ptr,
    n: Int,
    d: Int,
    q: F32Ptr,
    qi: I8Ptr,
    k: Int,
    candidates: Int,
    mask: U8Ptr,
    has_mask: Bool,
    threads: Int,
    out_rows: I64Ptr,
    out_scores: F32Ptr,
) -> Int:
    """Ranks rows by the integer dot product of their uint8 codes with the int8 query `qi`,
    keeps `candidates` rows, re-scores those exactly with the float32 query `q`; writes the
    best `k`."""
    if n <= 0 or k <= 0:
        return 0
    var merged = _u8_candidates(codes, n, d, qi, max(k, candidates), mask, has_mask, threads)
    var final = _rerank(merged, vectors, d, q, k)
    return final.write_sorted(out_scores, out_rows)


# The certified search grows its candidate set by this factor when it cannot prove the answer.
comptime GROWTH = 4


@always_inline
def _u8_score_shift(qi: I8Ptr, d: Int) -> Int:
    """What to add to a kernel integer score to get the true `codes . qi`: 0, except on Arm
    dot-product targets, where every score is shifted by -128 * sum(qi) (`_dot_i8_chunk`)."""
    comptime if CompilationTarget.has_neon_int8_dotprod() and not CompilationTarget.has_vnni():
        var total = 0
        for j in range(d):
            total += Int(qi.unsafe_load[width=1](j))
        return 128 * total
    else:
        return 0


def topk_u8_certified(
    codes: U8Ptr,
    vectors: F32Ptr,
    n: Int,
    d: Int,
    q: F32Ptr,
    parts: F64Ptr,
    k: Int,
    candidates: Int,
    mask: U8Ptr,
    has_mask: Bool,
    threads_u8: Int,
    threads_f32: Int,
    out_rows: I64Ptr,
    out_scores: F32Ptr,
    mut used: Int,
) -> Int:
    """The exact top-`k` through the uint8 codes (what `quantization.certified_topk_int8`
    proves, in one call).

    The best `candidates` rows by integer score are re-scored exactly, best first, until one
    cannot enter: a row can enter only if `query.upper` of its integer score, plus the
    float32 rounding of two scores, exceeds the `k`-th exact score so far (which only rises),
    and every later candidate and every unexamined row scores no higher than that one. That
    proves the answer. When every candidate could still be beaten by an unexamined row, the
    candidate set grows `GROWTH`-fold (at most to just below a quarter of the eligible rows)
    and the codes are scanned again. When the candidates reach a quarter of the eligible rows,
    or the folded query is zero (nothing to bound), the float32 scan answers.

    Writes the best `k`; `used` is where the next query's candidate set should start:
    `_next_start` of the rows re-scored, or, when the float32 scan answered, the candidate
    count that made it answer (the index lowers its start from there). `parts` is the
    quantizer's (`kernel_support.int8_query.Int8Query`)."""
    if n <= 0 or k <= 0:
        used = 0
        return 0
    var eligible = _eligible_count(mask, n) if has_mask else n
    var c = max(k, candidates)
    if 4 * c >= eligible:  # re-scoring that many rows one by one costs more than a scan
        used = c
        return topk_f32(vectors, n, d, q, k, mask, has_mask, threads_f32, out_rows, out_scores)
    var query = Int8Query(q, d, parts)
    if not query.bounded:
        used = c
        return topk_f32(vectors, n, d, q, k, mask, has_mask, threads_f32, out_rows, out_scores)
    var qi = query.pointer()
    var shift = Float64(_u8_score_shift(qi, d))
    var tolerance = 2.0 * Float64(d) * 2.0**-24 + 1e-7  # `base.score_tolerance`
    while 4 * c < eligible:
        var merged = _u8_candidates(codes, n, d, qi, c, mask, has_mask, threads_u8)
        var all_examined = merged.size < c
        var size = merged.size
        var cand_scores = List[Float32](length=size, fill=0)
        var cand_rows = List[Int64](length=size, fill=0)
        _ = merged.write_sorted(
            F32Ptr(unsafe_from_address=Int(cand_scores.unsafe_ptr())),
            I64Ptr(unsafe_from_address=Int(cand_rows.unsafe_ptr())),
        )
        var final = TopK(k)
        var reached = size
        for i in range(size):
            # Heap scores are the integers as float32: exact below 2**24, rounded
            # (monotonically) above, so the true integer score of any row ranked after this
            # one is at most one float32 step above this one's.
            var score = Float64(cand_scores[i])
            var ceiling = score + max(1.0, abs(score) * 2.0**-23) + shift
            if final.full() and Float64(final.worst_score()) >= query.upper(ceiling) + tolerance:
                reached = i
                break
            var row = Int(cand_rows[i])
            final.push(dot(vectors.unsafe_offset(row * d), q, d), row)
        if reached < size or all_examined:  # proven
            used = _next_start(reached, k)
            return final.write_sorted(out_scores, out_rows)
        # Grown, but kept below a quarter of the rows while it can be: one more code scan
        # costs a quarter of a float32 scan.
        var largest = (eligible - 1) // 4
        c = c * GROWTH if c * GROWTH <= largest or c >= largest else largest
    used = c
    return topk_f32(vectors, n, d, q, k, mask, has_mask, threads_f32, out_rows, out_scores)


@always_inline
def _next_start(reached: Int, k: Int) -> Int:
    """Where the next query's candidate set should start: above the `reached` rows this one
    had to re-score (one pass proves the answer only with more candidates than that), with a
    margin (the need varies from query to query, a second scan costs a whole pass, and spare
    candidates cost a heap slot each, not a re-score); never below `k`."""
    return max(k, 2 * reached + k)
