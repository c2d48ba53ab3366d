"""A parallel-for over the Mojo async runtime's worker pool.

Mojo 1.2's `std.algorithm` ships `vectorize` but no `parallelize`; the one in `max.algorithm`
needs the MAX device runtime (`max-core`), which the compiler-only wheel does not carry. The
compiler runtime (`libKGENCompilerRTShared`) does carry a worker pool and task groups, which is
what `parallelize` used before it moved, so this module builds the same primitive on it.

```mojo
from kernel_support.parallel import parallel_for

@__parameter
def body(i: Int):
    ...
parallel_for[body](4)   # body(0) .. body(3) on the worker pool, returns when all are done
```
"""

from std.runtime import initialize_runtime
from std.runtime._asyncrt import TaskGroup


def parallel_for[func: def(Int) capturing[_] -> None](num_work_items: Int):
    """Runs `func(0) ... func(num_work_items - 1)` as tasks and waits for all of them.

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
    for i in range(num_work_items):
        tg.create_task(task(i))
    tg.wait()
