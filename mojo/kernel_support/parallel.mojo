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
"""

from std.atomic import Atomic
from std.runtime import initialize_runtime
from std.runtime._asyncrt import TaskGroup


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
    var end: Int  # one past its last chunk number

    def __init__(out self, start: Int, end: Int):
        self.next = Atomic[Int64](Int64(start))
        self.end = end


struct ChunkPlan(Movable):
    """Rows split into chunks; each participant owns a contiguous run of chunks and, when its
    own run is done, helps the participants above it.

    Owning a fixed run means repeated scans of the same data find each participant's part in
    its own core's cache (a 4 MB matrix fits in two 2 MB L2 caches, not in one). Helping means
    a participant that starts late (a worker waking up, a core taken by another library's
    spinning threads) costs only the chunks it did not get to: the calling thread is
    participant 0 and helps everyone. A participant takes chunk numbers in increasing order
    (its own run, then the runs above it), so its scan visits rows in increasing order, which
    the top-k admission test relies on.
    """

    var chunk: Int  # rows per chunk
    var workers: Int
    var ranges: List[_RangeCounter]

    def __init__(out self, n: Int, workers: Int, align: Int = 64):
        self.workers = max(1, workers)
        if self.workers == 1:
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
                return c
        return -1
