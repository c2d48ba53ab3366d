"""Standalone message-router benchmark: a pure Mojo program (no Python).

Usage: `router_bench [MESSAGES] [BATCH] [WINDOW]` (defaults 2000000 1024 64).
Smoke: 20000 256 16

Drives the router's priority structure (`kernel_support.priority_queue.SlotQueue`, the code
behind the `message_router` extension module) with priorities spread over 1..5:

* `single`: rounds of WINDOW messages, each pushed with one call, then each popped with one
  call (a message's latency: from its push to its pop);
* `batch`: rounds of BATCH messages pushed in order, then popped (a round's time is every
  message's latency).

Every pop is checked against the promised order (higher priority first, FIFO within a
priority) and every slot must come back: `lost` counts the ones that did not. Prints one JSON
document in the `synapse-mojo-bench/1` schema (suite "router") on stdout, so the Nix build and
the aarch64 cross-build can run it with no Python at all and `synapse-mojo bench compare` can
read it. These numbers are the kernel alone: the Python router adds the cost of the calls
(see `synapse-mojo bench router`).
"""

from std.os import getenv
from std.sys import CompilationTarget, argv, num_logical_cores
from std.time import perf_counter_ns

from kernel_support.abi import I64UntrackedPtr
from kernel_support.priority_queue import SlotQueue, init_state, state_len


struct Rng:
    """A xorshift64* generator: reproducible priorities without dependencies."""

    var state: UInt64

    def __init__(out self, seed: UInt64):
        self.state = seed * 2685821657736338717 + 1

    def next(mut self) -> UInt64:
        self.state ^= self.state >> 12
        self.state ^= self.state << 25
        self.state ^= self.state >> 27
        return self.state * 2685821657736338717


def _percentile(mut values: List[Float64], q: Int) -> Float64:
    """Nearest-rank percentile; sorts `values` (Mojo's List.sort) first."""
    sort(values)
    var rank = max(1, (q * len(values) + 99) // 100)
    return values[min(rank, len(values)) - 1]


def _record(
    mode: String, batch: Int, messages: Int, seconds: Float64, mut lat_ms: List[Float64], lost: Int,
    load: String,
) -> String:
    var p50 = _percentile(lat_ms, 50)
    var p95 = _percentile(lat_ms, 95)
    var p99 = _percentile(lat_ms, 99)
    return String(
        '{"backend": "mojo-kernel", "mode": "', mode, '", "batch_size": ', batch,
        ', "messages": ', messages, ', "msgs_per_s": ', Float64(messages) / seconds,
        ', "p50_ms": ', p50, ', "p95_ms": ', p95, ', "p99_ms": ', p99, ', "lost": ', lost,
        ', "load": "', load, '", "note": "standalone Mojo program: the kernel without Python calls"}',
    )


def main() raises:
    var args = argv()
    var messages = Int(args[1]) if len(args) > 1 else 2000000
    var batch = Int(args[2]) if len(args) > 2 else 1024
    var window = Int(args[3]) if len(args) > 3 else 64
    var capacity = max(batch, window)

    # One block, as the Python side allocates it; latency buckets are irrelevant here.
    var block = List[Int64](length=state_len(capacity), fill=0)
    var bounds = List[Int64](length=1, fill=1000)
    var q = SlotQueue(I64UntrackedPtr(unsafe_from_address=Int(block.unsafe_ptr())))
    init_state(q.s, capacity, I64UntrackedPtr(unsafe_from_address=Int(bounds.unsafe_ptr())), 1)

    var rng = Rng(20261125)
    var prios = List[Int64](length=messages, fill=0)
    for i in range(messages):
        prios[i] = Int64(1 + Int(rng.next() % 5))
    var slots = List[Int64](length=capacity, fill=0)
    var levels = List[Int64](length=capacity, fill=0)
    var out = List[Int64](length=capacity, fill=0)
    var seq_of_slot = List[Int](length=capacity, fill=0)
    var records = List[String]()

    # ------------------------------------------------------------------ single
    var lost = 0
    var bad_order = 0
    var lat = List[Float64]()
    var pushed_at = List[Int](length=capacity, fill=0)
    var t_start = perf_counter_ns()
    var done = 0
    while done < messages:
        var n = min(window, messages - done)
        for i in range(n):
            pushed_at[i] = perf_counter_ns()
            seq_of_slot[i] = done + i
            _ = q.push(Int(prios[done + i]), i, 0)
        var last_prio = 100
        var last_seq = -1
        for _ in range(n):
            var slot = q.pop(-1, False)
            if slot < 0:
                lost += 1
                continue
            var p = Int(prios[seq_of_slot[slot]])
            if p > last_prio or (p == last_prio and seq_of_slot[slot] < last_seq):
                bad_order += 1
            last_prio = p
            last_seq = seq_of_slot[slot]
            lat.append(Float64(perf_counter_ns() - pushed_at[slot]) / 1e6)
        done += n
    var secs = Float64(perf_counter_ns() - t_start) / 1e9
    records.append(_record("single", 1, messages, secs, lat, lost + bad_order, String("unpaced, window ", window)))

    # ------------------------------------------------------------------ batch
    lost = 0
    bad_order = 0
    lat = List[Float64]()
    var sp = I64UntrackedPtr(unsafe_from_address=Int(slots.unsafe_ptr()))
    var lp = I64UntrackedPtr(unsafe_from_address=Int(levels.unsafe_ptr()))
    var op = I64UntrackedPtr(unsafe_from_address=Int(out.unsafe_ptr()))
    t_start = perf_counter_ns()
    done = 0
    while done < messages:
        var n = min(batch, messages - done)
        var t0 = perf_counter_ns()
        for i in range(n):
            slots[i] = Int64(i)
            levels[i] = prios[done + i]
            seq_of_slot[i] = done + i
        _ = q.push_batch(lp, sp, n, 0)
        var got = q.pop_batch(op, n, -1, False)
        var dt = Float64(perf_counter_ns() - t0) / 1e6
        lost += n - got
        var last_prio = 100
        var last_seq = -1
        for i in range(got):
            var s = Int(out[i])
            var p = Int(prios[seq_of_slot[s]])
            if p > last_prio or (p == last_prio and seq_of_slot[s] < last_seq):
                bad_order += 1
            last_prio = p
            last_seq = seq_of_slot[s]
            lat.append(dt)
        done += n
    secs = Float64(perf_counter_ns() - t_start) / 1e9
    records.append(_record("batch", batch, messages, secs, lat, lost + bad_order, String("unpaced, batches of ", batch)))

    var emulated = "true" if getenv("SYNAPSE_EMULATED") != "" else "false"
    var arch = "aarch64" if CompilationTarget.has_neon() else "x86_64"
    var doc = String(
        '{"schema": "synapse-mojo-bench/1", "suite": "router", "created_at": null, ',
        '"command": "router_bench ', messages, " ", batch, " ", window, '", "machine": {"arch": "',
        arch, '", "cpu_model": null, "cores": ', num_logical_cores(), ', "emulated": ', emulated,
        '}, "records": [',
    )
    for i in range(len(records)):
        if i > 0:
            doc += ", "
        doc += records[i]
    doc += "]}"
    print(doc)
    _ = block^
    _ = bounds^
    _ = prios^
    _ = slots^
    _ = levels^
    _ = out^
