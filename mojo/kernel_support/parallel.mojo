"""A parallel-for over the Mojo async runtime's worker pool, with the caller taking part.

Mojo 1.2's `std.algorithm` ships `vectorize` but no `parallelize`; the one in `max.algorithm`
needs the MAX device runtime (`max-core`), which the compiler-only wheel does not carry. The
compiler runtime (`libKGENCompilerRTShared`) does carry a worker pool and task groups, which is
what `parallelize` used before it moved, so this module builds the same primitive on it.

```mojo
from kernel_support.parallel import parallel_for

@__parameter
def body(i: Int):
    ...
parallel_for[body](4)   # body(1) .. body(3) on the worker pool, body(0) on the calling thread
```

The calling thread runs item 0 itself instead of sleeping until the pool is done: a call
never waits for a worker to wake up before work starts, and when the pool's threads are slow
to get a core (another library's spinning threads, a busy machine) the caller's share is
still done at full speed. Kernels that split work with a `ChunkPlan` let the caller take
over whatever the pool has not started.

`run_pair(job, ctx)` is the two-participant variant on a persistent helper thread that is
offered participant 1 and never waited for unless it started (see "The pair helper" below).
"""

from std.atomic import Atomic
from std.ffi import _Global, external_call
from std.runtime import initialize_runtime
from std.runtime._asyncrt import TaskGroup
from std.sys import CompilationTarget, llvm_intrinsic
from std.time import perf_counter_ns


def parallel_for[func: def(Int) capturing[_] -> None](num_work_items: Int):
    """Runs `func(0) ... func(num_work_items - 1)` and returns when all are done: item 0 on
    the calling thread, the others as tasks on the worker pool.

    One work item runs inline without touching the task runtime, so single-threaded callers
    pay nothing for the abstraction.
    """
    if num_work_items <= 0:
        return
    if num_work_items == 1:
        func(0)
        return

    # Extension modules have no Mojo `main()`, so the runtime must be started explicitly.
    # The call is idempotent and cheap once the runtime exists.
    initialize_runtime()

    @__parameter
    __async def task(i: Int):
        func(i)

    var tg = TaskGroup()
    for i in range(1, num_work_items):
        tg.create_task(task(i))
    func(0)
    tg.wait()


struct _RangeCounter(Movable):
    var next: Atomic[Int64]  # next chunk number of this range
    var first: Int  # its first chunk number
    var end: Int  # one past its last chunk number

    def __init__(out self, start: Int, end: Int):
        self.next = Atomic[Int64](Int64(start))
        self.first = start
        self.end = end


struct ChunkPlan(Movable):
    """Rows split into chunks; each participant owns a contiguous run of chunks and, when its
    own run is done, helps the participants above it.

    Owning a fixed run means repeated scans of the same data find each participant's part in
    its own core's cache (a 4 MB matrix fits in two 2 MB L2 caches, not in one). Helping means
    a participant that starts late (a worker waking up, a core taken by another library's
    spinning threads) costs only the chunks it did not get to: the calling thread is
    participant 0 and helps everyone.

    `reverse`: every run hands out its chunks last to first. Scans that alternate direction
    from call to call (`next_scan_reversed`) start where the previous scan of the same data
    ended, on the lines still in cache. A part slightly larger than what a cache holds of it
    then misses only the excess, where a scan in one direction misses nearly everything (each
    line is evicted just before it is read again: least-recently-used replacement under a
    cyclic scan). On a VM the usable share of a 2 MB L2 for a scan is about 1.4 MB: the host's
    4 KB pages land on cache sets at random, so some sets are oversubscribed. Measured: 1,000
    x 1,024 on two cores from 52 to 41-45 us, 2,000 x 1,024 from 166 to 127 us, 600 x 1,024
    on one core from 74 to 51 us (docs/search-latency.md). Rows within a chunk stay in
    increasing order; a participant's rows are not, so scans over a reversible plan use the
    order-free admission test (`TopK.accepts`). One participant still gets about 8 chunks when
    `reverse` is asked for, so that it too can alternate. The scans alternate only while each
    participant's part is within `scan.ALTERNATE_MAX_BYTES` (larger parts gain nothing).
    """

    var chunk: Int  # rows per chunk
    var workers: Int
    var ranges: List[_RangeCounter]
    var reverse: Bool  # each range hands out its chunks last to first

    def __init__(out self, n: Int, workers: Int, align: Int = 64, reverse: Bool = False):
        self.workers = max(1, workers)
        self.reverse = reverse
        if self.workers == 1 and not reverse:
            self.chunk = max(n, 1)
        else:
            # About 8 chunks per participant: small enough to share out a late one's run.
            var c = (n + self.workers * 8 - 1) // (self.workers * 8)
            self.chunk = max(align, ((c + align - 1) // align) * align)
        var chunks = (n + self.chunk - 1) // self.chunk
        var per = (chunks + self.workers - 1) // self.workers
        self.ranges = List[_RangeCounter]()
        for w in range(self.workers):
            self.ranges.append(_RangeCounter(min(chunks, w * per), min(chunks, (w + 1) * per)))

    @always_inline
    def take(mut self, participant: Int) -> Int:
        """The next chunk number for `participant`, or -1 when none is left for it."""
        var ranges = self.ranges.unsafe_ptr()
        for v in range(participant, self.workers):
            var end = ranges[unsafe_offset=v].end
            if Int(ranges[unsafe_offset=v].next.load()) >= end:
                continue
            var c = Int(ranges[unsafe_offset=v].next.fetch_add(1))
            if c < end:
                if self.reverse:
                    return ranges[unsafe_offset=v].first + end - 1 - c
                return c
        return -1


# ===----------------------------------------------------------------------=== #
# The pair helper: one persistent thread for two-participant scans
# ===----------------------------------------------------------------------=== #

# Why not the task group for two participants: a task group's `wait` blocks until its task
# has run, even when the caller has already done all the work. When the pool's thread sleeps
# (the usual case between an agent's searches) or its core is busy, that wait is a wake-up
# (tens to hundreds of microseconds on a VM) or a scheduler time slice (milliseconds), for a
# scan that takes tens of microseconds. The helper below is instead *offered* a share: it
# claims the job or, if the caller finishes first, the caller withdraws the offer and returns
# at once. A call never waits for a thread that has not started.
#
# The helper is one detached thread per process, started on first use. After a job it waits
# until the call that offered it has returned, then for at most HELPER_SPIN_NS more (so
# back-to-back calls find it awake), and then parks on a condition variable: an idle process
# costs no CPU. Waiting is a pause loop for SPIN_PAUSE_NS, then sched_yield between checks,
# which hands the core to any other runnable thread (the caller itself, on a busy machine);
# a thread on the same CPU as the one it waits for yields at once, and a helper woken onto
# its caller's CPU (where the scheduler often puts a thread its waker signalled) leaves the
# job to the caller: a pause loop there delayed every call that woke a parked helper by tens
# of microseconds (1,000 x 384 with 2 ms between calls: 95-158 us, 52-56 us without it).
# So a caller that signals the parked helper first takes its own CPU out of the helper's
# affinity mask (`_wake_elsewhere`; the helper restores its mask as soon as it runs): the
# wake-up then lands on another CPU and the pair really has two. With 2 ms between calls
# (an agent's pace), 10,000 x 384 went from 560-570 to 348-362 us, 100,000 x 384 from 10.8
# to 7.5 ms in a process that also calls NumPy, its int8 index from 3.1 to 1.7 ms.
# The pause phase is long because a yield is slow to come back on a VM: with 2 us of pausing,
# a helper that yielded while the caller finished a 4 MB scan (1,000 x 1,024) missed the next
# call's offer often enough that the pair took 120-135 us a scan, from Python; with the pause
# phase covering the call it takes 40-49 us, as a pure Mojo loop does. One caller at a time owns it
# (a lock taken with one compare-and-swap, never waited for): concurrent callers run alone.
# Process exit: the thread holds no locks a caller needs and touches no Python state; exit
# ends it wherever it is. fork(): the child has no helper thread; its offers are never
# claimed, so each call withdraws its offer and runs alone (correct, without the second core),
# and it never changes the affinity of the thread it inherited the name of (the parent's).

comptime HELPER_SPIN_NS = 20_000
comptime SPIN_PAUSE_NS = 50_000  # then yield the core between checks (see above)
comptime _LINE = 64  # one field per cache line: the caller and the helper write different ones
comptime _LOCK = 0  # 1 while a caller owns the helper
comptime _TICKET = 1  # number of the latest offered job (0: none yet)
comptime _CLAIM = 2  # t: job t offered, -t: claimed by the helper, 0: withdrawn or none
comptime _DONE = 3  # number of the latest job the helper finished
comptime _SLEEPING = 4  # 1 while the helper is parked (or about to park) on the condition
comptime _JOB_FN = 5
comptime _JOB_CTX = 6
comptime _MUTEX = 7  # pthread_mutex_t (two lines reserved: 40 bytes on Linux, 64 on macOS)
comptime _COND = 9  # pthread_cond_t (48 bytes on Linux and macOS)
comptime _CALLER_CPU = 11  # the CPU the caller was on when it offered the latest job
comptime _HELPER_CPU = 12  # the CPU the helper was on when it claimed the latest job
comptime _THREAD = 13  # the helper's pthread_t
comptime _MASK = 14  # the CPUs the helper may run on (cpu_set_t, 128 bytes: two lines)
comptime _MASK_BYTES = 128
comptime _PID = 16  # the process the helper thread belongs to (a fork's child has none)
comptime _HELPER_BYTES = 17 * _LINE

comptime PairJob = def(Int, Int) thin -> None
"""`job(ctx, participant)`: participant 0 runs on the calling thread; participant 1 runs on
the helper at most once and possibly never, so participant 0 must be able to do all the
work (a `ChunkPlan` gives that)."""


@always_inline
def _field(h: Int, i: Int) -> Pointer[Atomic[Int64], MutAnyOrigin]:
    return Pointer[Atomic[Int64], MutAnyOrigin](unsafe_from_address=h + i * _LINE)


@always_inline
def _pause():
    comptime if CompilationTarget.is_x86():
        llvm_intrinsic["llvm.x86.sse2.pause", NoneType]()


@always_inline
def _cpu() -> Int64:
    """The CPU the calling thread runs on (-1 where unknown)."""
    comptime if CompilationTarget.is_linux():
        return Int64(external_call["sched_getcpu", Int32]())
    else:
        return -1


@always_inline
def _pause_or_yield(h: Int, other_cpu: Int, waited_ns: Int):
    """One step of every wait here: `pause` for the first SPIN_PAUSE_NS of the wait, then
    `sched_yield`, so a thread sharing this core (the one being waited for, on a busy machine)
    gets to run. On the CPU the other party last reported (`other_cpu`: the field that holds
    it), yield at once: pausing there would only delay the thread this one waits for (a woken
    helper is often placed on its waker's CPU)."""
    if waited_ns < SPIN_PAUSE_NS and _cpu() != _field(h, other_cpu)[].load():
        _pause()
    else:
        _ = external_call["sched_yield", Int32]()


def _wait_while_equal(h: Int, field: Int, value: Int64, limit_ns: Int, other_cpu: Int):
    """Returns once `field` differs from `value` or after about `limit_ns` (`other_cpu`: as
    in `_pause_or_yield`)."""
    var start = perf_counter_ns()
    while _field(h, field)[].load() == value:
        var waited = Int(perf_counter_ns() - start)
        if waited >= limit_ns:
            return
        _pause_or_yield(h, other_cpu, waited)


def _wait_until_equal(h: Int, field: Int, value: Int64, other_cpu: Int):
    """Returns once `field` equals `value` (no time limit)."""
    var start = perf_counter_ns()
    while _field(h, field)[].load() != value:
        _pause_or_yield(h, other_cpu, Int(perf_counter_ns() - start))


def _wait_while_caller_runs(h: Int, seen: Int64):
    """Returns once no caller owns the helper (`_LOCK` 0) or a new job is offered (no time
    limit: the wait ends with the call)."""
    var start = perf_counter_ns()
    while _field(h, _LOCK)[].load() != 0 and _field(h, _TICKET)[].load() == seen:
        _pause_or_yield(h, _CALLER_CPU, Int(perf_counter_ns() - start))


def _helper_main(h: Int) abi("C") -> Int:
    var seen = Int64(0)
    while True:
        var t = _field(h, _TICKET)[].load()
        if t == seen:
            # The caller of the job just done may still be scanning (its own share, or the
            # chunks it took over) and its next call usually follows at once: the idle window
            # starts when that call returns, not when this share ended. (Parked during the
            # call, the helper would sleep through the next one: a wake-up costs tens of
            # microseconds on a VM, so the next caller would scan alone, slower, and the
            # helper would park again before it returned.)
            _wait_while_caller_runs(h, seen)
            _wait_while_equal(h, _TICKET, seen, HELPER_SPIN_NS, _CALLER_CPU)
            if _field(h, _TICKET)[].load() == seen:
                _ = external_call["pthread_mutex_lock", Int32](h + _MUTEX * _LINE)
                # Announce, then re-check: a caller publishes its ticket before reading
                # _SLEEPING, so either it sees 1 and signals or this re-check sees its ticket.
                _field(h, _SLEEPING)[].store(1)
                while _field(h, _TICKET)[].load() == seen:
                    _ = external_call["pthread_cond_wait", Int32](h + _COND * _LINE, h + _MUTEX * _LINE)
                _field(h, _SLEEPING)[].store(0)
                _ = external_call["pthread_mutex_unlock", Int32](h + _MUTEX * _LINE)
                _restore_mask(h)
            continue
        seen = t
        var offered = t
        # Woken onto the caller's own CPU, a share would only take turns with the caller:
        # leave the job to it.
        var cpu = _cpu()
        if cpu != _field(h, _CALLER_CPU)[].load() and _field(h, _CLAIM)[].compare_exchange(
            offered, -t
        ):
            _field(h, _HELPER_CPU)[].store(cpu)
            var fn_addr = Int(_field(h, _JOB_FN)[].load())
            var job = Pointer(to=fn_addr).unsafe_bitcast[PairJob]()[]
            job(Int(_field(h, _JOB_CTX)[].load()), 1)
            _field(h, _DONE)[].store(t)


def _restore_mask(h: Int):
    """The helper back on every CPU it started with (its waker kept it off its own)."""
    comptime if CompilationTarget.is_linux():
        _ = external_call["pthread_setaffinity_np", Int32](
            external_call["pthread_self", UInt64](), _MASK_BYTES, h + _MASK * _LINE
        )


def _wake_elsewhere(h: Int, cpu: Int64):
    """Before signalling the parked helper: its CPUs without the caller's `cpu`, so that the
    wake-up places it on another CPU (by default the scheduler often puts a thread on its
    waker's CPU, where it would only take turns with the caller). Nothing when no other CPU
    is allowed or the CPU is unknown."""
    comptime if CompilationTarget.is_linux():
        if cpu < 0 or Int(cpu) >= _MASK_BYTES * 8:
            return
        # In a fork's child the thread named here is the parent's: leave it alone.
        if Int64(external_call["getpid", Int32]()) != _field(h, _PID)[].load():
            return
        var mask = Array[UInt64, _MASK_BYTES // 8](fill=0)
        var src = Pointer[UInt64, MutAnyOrigin](unsafe_from_address=h + _MASK * _LINE)
        var others = UInt64(0)
        for i in range(_MASK_BYTES // 8):
            mask[i] = src.unsafe_load[width=1](i)
        mask[Int(cpu) // 64] &= ~(UInt64(1) << UInt64(Int(cpu) % 64))
        for i in range(_MASK_BYTES // 8):
            others |= mask[i]
        if others == 0:
            return
        _ = external_call["pthread_setaffinity_np", Int32](
            UInt64(_field(h, _THREAD)[].load()),
            _MASK_BYTES,
            Int(Pointer(to=mask).unsafe_bitcast[Int]()),
        )


def _start_helper() -> Int:
    """Allocates the helper's state (never freed: the thread may outlive every caller) and
    starts its thread; 0 when either fails (callers then run alone)."""
    var h = external_call["aligned_alloc", Int](_LINE, _HELPER_BYTES)
    if h == 0:
        return 0
    _ = external_call["memset", Int](h, 0, _HELPER_BYTES)
    if external_call["pthread_mutex_init", Int32](h + _MUTEX * _LINE, 0) != 0:
        return 0
    if external_call["pthread_cond_init", Int32](h + _COND * _LINE, 0) != 0:
        return 0
    comptime if CompilationTarget.is_linux():
        # The CPUs the helper starts with (inherited from this thread): restored after each
        # wake-up that kept it off its caller's CPU (`_wake_elsewhere`).
        if external_call["sched_getaffinity", Int32](0, _MASK_BYTES, h + _MASK * _LINE) != 0:
            _ = external_call["memset", Int](h + _MASK * _LINE, 0, _MASK_BYTES)
    var entry: def(Int) thin abi("C") -> Int = _helper_main
    var entry_addr = Pointer(to=entry).unsafe_bitcast[Int]()[]
    var tid = UInt64(0)
    if external_call["pthread_create", Int32](Int(Pointer(to=tid).unsafe_bitcast[Int]()), 0, entry_addr, h) != 0:
        return 0
    _field(h, _THREAD)[].store(Int64(tid))
    _field(h, _PID)[].store(Int64(external_call["getpid", Int32]()))
    _ = external_call["pthread_detach", Int32](tid)
    return h


comptime _HELPER = _Global["synapse_mojo_pair_helper", _start_helper]


def pair_helper() -> Int:
    """The helper's address (started on first use), or 0 when there is none."""
    try:
        return _HELPER.get_or_create_ptr()[]
    except:
        return 0


def run_pair(job: PairJob, ctx: Int):
    """Runs `job(ctx, 0)` on the calling thread while offering `job(ctx, 1)` to the helper;
    returns when participant 0 is done and participant 1 either finished or never started."""
    var h = pair_helper()
    var unlocked = Int64(0)
    if h == 0 or not _field(h, _LOCK)[].compare_exchange(unlocked, 1):
        job(ctx, 0)  # no helper, or another caller owns it: run alone
        return
    var fn_addr = Pointer(to=job).unsafe_bitcast[Int]()[]
    _field(h, _JOB_FN)[].store(Int64(fn_addr))
    _field(h, _JOB_CTX)[].store(Int64(ctx))
    _field(h, _CALLER_CPU)[].store(_cpu())
    var t = _field(h, _TICKET)[].load() + 1
    _field(h, _CLAIM)[].store(t)
    _field(h, _TICKET)[].store(t)
    if _field(h, _SLEEPING)[].load() != 0:
        _wake_elsewhere(h, _field(h, _CALLER_CPU)[].load())
        _ = external_call["pthread_mutex_lock", Int32](h + _MUTEX * _LINE)
        _ = external_call["pthread_cond_signal", Int32](h + _COND * _LINE)
        _ = external_call["pthread_mutex_unlock", Int32](h + _MUTEX * _LINE)
    job(ctx, 0)
    var offered = t
    if not _field(h, _CLAIM)[].compare_exchange(offered, 0):
        # Claimed: the helper is working on a share the caller could not take over (its
        # current chunk); wait for it (unbounded: its chunk writes into this call's buffers).
        _wait_until_equal(h, _DONE, t, _HELPER_CPU)
    _field(h, _LOCK)[].store(0)


# ===----------------------------------------------------------------------=== #
# Alternating scan direction
# ===----------------------------------------------------------------------=== #


def _start_parity() -> Int:
    """Word 0: calls so far (their parity is the next direction); word 1: the order
    (SCAN_ALTERNATE, SCAN_FORWARD or SCAN_REVERSED)."""
    var p = external_call["aligned_alloc", Int](_LINE, _LINE)
    if p != 0:
        _ = external_call["memset", Int](p, 0, _LINE)
    return p


comptime _PARITY = _Global["synapse_mojo_scan_parity", _start_parity]
comptime SCAN_ALTERNATE = 0
comptime SCAN_FORWARD = 1
comptime SCAN_REVERSED = 2


def _parity_block() -> Int:
    try:
        return _PARITY.get_or_create_ptr()[]
    except:
        return 0


def next_scan_reversed() -> Bool:
    """Alternates between False and True from call to call, process-wide (`ChunkPlan`'s
    `reverse`), unless `set_scan_order` fixed the direction. Concurrent callers share the
    alternation: each still gets one direction or the other, which changes only what their
    scans find in cache."""
    var p = _parity_block()
    if p == 0:
        return False
    var order = Pointer[Atomic[Int64], MutAnyOrigin](unsafe_from_address=p + 8)[].load()
    if order != SCAN_ALTERNATE:
        return order == SCAN_REVERSED
    return (Pointer[Atomic[Int64], MutAnyOrigin](unsafe_from_address=p)[].fetch_add(1) & 1) == 1


def set_scan_order(order: Int) -> Int:
    """Sets the process-wide scan order (SCAN_ALTERNATE, the default; SCAN_FORWARD or
    SCAN_REVERSED, for tests and benchmarks); returns the previous one (-1: none kept)."""
    var p = _parity_block()
    if p == 0:
        return -1
    var field = Pointer[Atomic[Int64], MutAnyOrigin](unsafe_from_address=p + 8)
    var previous = field[].load()
    field[].store(Int64(order))
    return Int(previous)
