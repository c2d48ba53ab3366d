"""The search seam: one adaptive backend, size-aware dispatch, modes keep their meaning."""

from __future__ import annotations

import time

import numpy as np
import pytest

from synapse_mojo._dev.bench.latency import latency_markdown, run_latency_grid
from synapse_mojo._dev.bench.report import validate_document
from synapse_mojo.runtime.adapter import registered_self_check
from synapse_mojo.search import PatternIndex, PythonSearchBackend, results_agree
from synapse_mojo.search.adaptive import AdaptiveSearchBackend
from synapse_mojo.search.dispatch import (
    BUSY_NOTE,
    SHIPPING_MARGIN,
    STARTUP_MARGIN,
    UNBOUNDED,
    Crossovers,
    calibrate,
    crossovers_from_entry,
    inline_edge,
    measure,
    second_core_busy,
    shipped_crossovers,
    winner_ranges,
    write_shipped,
)
from synapse_mojo.search.mojo_backend import MojoSearchBackend
from synapse_mojo.search.numpy_backend import NumpySearchBackend

EVERYWHERE = ((0, UNBOUNDED),)
NUMPY_EVERYWHERE = Crossovers(
    inline_below=0, numpy_ranges=EVERYWHERE, cosine_numpy_ranges=EVERYWHERE, source="test"
)


def _data(n=300, d=32, seed=3):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, d)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return m, m[5].copy()


def test_self_checks_are_registered_by_the_backends():
    for feature in ("pattern_search", "vector_engine", "message_router"):
        if feature == "message_router":
            import synapse_mojo.router.mojo_queue  # noqa: F401
        assert registered_self_check(feature) is not None


def test_auto_follows_the_crossovers_and_on_ignores_them(make_runtime, search_kernel):
    matrix, q = _data()
    auto = AdaptiveSearchBackend(make_runtime(), calibrate_on_start=False)
    auto.set_crossovers(Crossovers(1 << 22, source="test"))  # the kernel at every size
    assert auto.topk_outcome(matrix, q, 5).runtime == "mojo"
    auto.set_crossovers(NUMPY_EVERYWHERE)
    outcome = auto.topk_outcome(matrix, q, 5)
    assert (
        outcome.runtime == "python" and outcome.fallback_reason is None
    )  # a choice, not a fallback
    forced = AdaptiveSearchBackend(
        make_runtime(SYNAPSE_FEATURE_PATTERN_SEARCH="on"), calibrate_on_start=False
    )
    forced.set_crossovers(NUMPY_EVERYWHERE)
    assert forced.topk_outcome(matrix, q, 5).runtime == "mojo"
    assert forced.topk_cosine_outcome(matrix * 3, q, 5).runtime == "mojo"


def test_every_path_of_the_seam_agrees_with_the_reference(make_runtime, search_kernel):
    matrix, q = _data(n=1000, d=67)
    reference = PythonSearchBackend()
    backend = AdaptiveSearchBackend(
        make_runtime(SYNAPSE_FEATURE_PATTERN_SEARCH="on"), calibrate_on_start=False
    )
    for inline_below in (0, 1 << 40):  # worker pool and calling thread alone
        backend.set_crossovers(Crossovers(inline_below, source="test"))
        for k in (1, 10, 64):
            assert results_agree(reference.topk(matrix, q, k), backend.topk(matrix, q, k), 67)
            raw = matrix * np.linspace(0.1, 9, matrix.shape[0], dtype=np.float32)[:, None]
            got = backend.topk_cosine(raw, q, k)
            assert got is not None and results_agree(reference.topk_cosine(raw, q, k), got, 67)


def test_a_non_finite_row_in_the_cosine_scan_is_reported_not_ranked(search_kernel):
    matrix, q = _data()
    matrix[17, 3] = np.inf
    for backend in (
        MojoSearchBackend(search_kernel, 2, inline_below=0),
        NumpySearchBackend(),
        PythonSearchBackend(),
    ):
        assert backend.topk_cosine(matrix, q, 5) is None


def test_calibration_measures_every_crossover(search_kernel):
    measured = calibrate(MojoSearchBackend(search_kernel, 2), NumpySearchBackend())
    assert measured.source == "measured at start-up"
    assert 0 <= measured.inline_below <= 16384 * 256
    for ranges in (measured.numpy_ranges, measured.cosine_numpy_ranges):
        assert all(0 <= low < high for low, high in ranges)
    assert shipped_crossovers().source.startswith("shipped")


def test_ranges_decide_per_work():
    c = Crossovers(100, numpy_ranges=((0, 10), (1000, UNBOUNDED)), cosine_numpy_ranges=((5, 6),))
    assert [c.numpy_faster(w) for w in (0, 9, 10, 999, 1000, 1 << 40)] == [
        True,
        True,
        False,
        False,
        True,
        True,
    ]
    assert [c.cosine_numpy_faster(w) for w in (4, 5, 6)] == [False, True, False]
    assert not Crossovers(100).numpy_faster(50)
    with pytest.raises(ValueError):
        Crossovers(0, numpy_ranges=((10, 5),))


def test_inline_edge_lies_halfway_between_the_probes_either_side():
    # (work, inline seconds, pool seconds): the calling thread alone clearly wins at 131,072,
    # the pool from 1,048,576 on; the edge is their geometric midpoint, not the pool's probe.
    probes = [(2048, 1e-6, 2e-6), (131_072, 10e-6, 20e-6), (1_048_576, 150e-6, 50e-6)]
    assert inline_edge([*probes, (4_194_304, 600e-6, 200e-6)], 1.15) == 370_727
    # A later probe the calling thread wins again moves the edge above it.
    assert inline_edge([*probes, (4_194_304, 100e-6, 200e-6)], 1.15) == 4_194_304
    # The pool never clearly loses: it runs from the start; inline wins everything: the
    # largest probe is the edge.
    assert inline_edge([(2048, 2e-6, 2e-6), (131_072, 10e-6, 9e-6)], 1.15) == 0
    assert inline_edge([(2048, 1e-6, 3e-6), (131_072, 10e-6, 30e-6)], 1.15) == 131_072


def test_one_core_beating_two_at_the_largest_probe_means_a_busy_second_core():
    probes = [(131_072, 10e-6, 20e-6), (1_048_576, 150e-6, 130e-6)]
    assert not second_core_busy([*probes, (4_194_304, 690e-6, 400e-6)], STARTUP_MARGIN)
    assert not second_core_busy([*probes, (4_194_304, 690e-6, 760e-6)], STARTUP_MARGIN)  # a tie
    assert second_core_busy([*probes, (4_194_304, 500e-6, 760e-6)], STARTUP_MARGIN)


class _BusySecondCoreKernel:
    """Stands in for the Mojo backend (a busy second core cannot be produced on demand
    here): the pool is three times slower than the calling thread alone at every size, as
    when another thread spins on the pool's core."""

    def __init__(self) -> None:
        self.inline_below = 0

    def topk_with(self, fault, matrix, query, k, mask=None, matrix_addr=0, query_addr=0):
        inline = self.inline_below == UNBOUNDED
        started = time.perf_counter()
        while time.perf_counter() - started < (2e-4 if inline else 6e-4):
            pass
        return None

    def topk_cosine(self, rows, query, k):
        return None


def test_a_busy_second_core_at_start_up_keeps_the_shipped_inline_edge():
    def measured(**fallback: int) -> Crossovers:
        crossovers, _ = measure(
            _BusySecondCoreKernel(),  # type: ignore[arg-type]
            NumpySearchBackend(),
            ((64, 16), (512, 16)),
            rounds=3,
            margin=STARTUP_MARGIN,
            **fallback,
        )
        return crossovers

    at_start_up = measured(busy_fallback=123_456)
    assert at_start_up.inline_below == 123_456
    assert BUSY_NOTE in at_start_up.source
    # Without a fallback (``bench crossovers``) the measured edge stands: inline wins
    # everything, so the edge is the largest probe.
    assert measured().inline_below == 512 * 16


def test_winner_ranges_meet_halfway_between_probes():
    assert winner_ranges([(100, False), (10_000, False)]) == ()
    assert winner_ranges([(100, True), (10_000, False)]) == ((0, 1000),)
    assert winner_ranges([(100, False), (10_000, True), (1_000_000, False)]) == ((1000, 100_000),)
    assert winner_ranges([(100, False), (10_000, True)]) == ((1000, UNBOUNDED),)


def test_measured_crossovers_round_trip_through_the_shipped_file(tmp_path, search_kernel):
    crossovers, records = measure(
        MojoSearchBackend(search_kernel, 2),
        NumpySearchBackend(),
        ((10, 16), (200, 16)),
        rounds=3,
        margin=SHIPPING_MARGIN,
    )
    assert [r["work"] for r in records] == [160, 3200]
    assert all(r["inline_us"] > 0 and r["numpy_cosine_us"] > 0 for r in records)
    path = tmp_path / "crossovers.json"
    path.write_text('{"other": {"inline_below": 1}}')
    write_shipped(crossovers, {"medians_us": records}, path)
    import json

    from synapse_mojo.search.dispatch import arch

    data = json.loads(path.read_text())
    assert data["other"] == {"inline_below": 1}
    again = crossovers_from_entry(data[arch()], crossovers.source)
    assert again == crossovers


def test_index_search_reuses_its_storage_view_and_sees_updates(make_runtime, search_kernel):
    index = PatternIndex(8, runtime=make_runtime())
    index.upsert(["a", "b"], np.eye(8, dtype=np.float32)[:2])
    assert index.search(np.eye(8)[1], 1)[0].id == "b"
    view = index._view
    assert index.search(np.eye(8)[0], 1)[0].id == "a" and index._view is view
    index.upsert(["c"], np.eye(8, dtype=np.float32)[2:3])  # more rows: a new view
    assert index.search(np.eye(8)[2], 1)[0].id == "c" and index._view is not view
    assert index._vectors.ctypes.data % 64 == 0  # rows start on a cache line


def test_latency_grid_writes_a_valid_document(search_kernel):
    doc = run_latency_grid((10, 200), (16,), 3, rounds=1, budget_s=0.2)
    validate_document(doc)
    names = {r["backend"] for r in doc["records"]}
    assert {
        "api-auto",
        "api-mojo",
        "api-python",
        "api-int8",
        "api-f32",
        "api-removed",
        "compat-array",
        "compat-list",
        "numpy-raw",
        "numpy-compat-array",
        "numpy-compat-list",
        "kernel-f32",
        "api-auto+numpy",
        "numpy-matvec+api",
    } <= names
    for record in doc["records"]:
        assert record["p50_ms"] > 0 and record["recall_at_k"] == pytest.approx(1.0)
    assert any(r["overhead_us"] is not None for r in doc["records"])
    assert "| 200 x 16 |" in latency_markdown(doc)
    assert doc["parameters"]["warmup_calls_per_block"] == 3


def test_latency_grid_blocks_open_with_unrecorded_calls():
    """Every block of a contender's calls (and of the alternating pair) opens with
    ``WARMUP_CALLS`` untimed calls; only the block's own calls are recorded."""
    from synapse_mojo._dev.bench import latency

    seen: list[int] = []
    sink: list[float] = []
    latency._time_calls(seen.append, 4, 1000, sink)
    assert seen == [997, 998, 999, 1000, 1001, 1002, 1003] and len(sink) == 4
    api: list[int] = []
    numpy_calls: list[int] = []
    api_sink: list[float] = []
    numpy_sink: list[float] = []
    latency._alternate(api.append, numpy_calls.append, 2, 0, api_sink, numpy_sink)
    assert api == numpy_calls == [-3, -2, -1, 0, 1]
    assert len(api_sink) == len(numpy_sink) == 2


def test_fast_built_results_equal_the_dataclasses(make_runtime, search_kernel):
    import dataclasses

    from synapse_mojo.search import SearchHit, SearchResult

    index = PatternIndex(4, runtime=make_runtime())
    index.upsert(["a", "b"], np.eye(4, dtype=np.float32)[:2], [{"x": 1}, None])
    result = index.search_detailed(np.eye(4)[0], 2)
    assert {f.name for f in dataclasses.fields(SearchResult)} == set(vars(result))
    assert {f.name for f in dataclasses.fields(SearchHit)} == set(vars(result.hits[0]))
    assert result.hits[0] == SearchHit("a", result.hits[0].score, {"x": 1})
    assert result == SearchResult(result.hits, result.runtime, result.elapsed_ms, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.hits[0].id = "z"  # type: ignore[misc]


def test_crossovers_from_a_latency_grid_document():
    from synapse_mojo.search.dispatch import grid_crossovers

    def rec(backend, n, us):
        return {"backend": backend, "n": n, "dim": 100, "p50_ms": us / 1e3}

    doc = {
        "machine": {"arch": "x86_64"},
        "records": [
            *(rec("api-mojo", n, us) for n, us in ((10, 5), (100, 50), (1000, 100))),
            *(rec("api-python", n, us) for n, us in ((10, 6), (100, 20), (1000, 99))),
            *(rec("kernel-cosine", n, us) for n, us in ((10, 9), (100, 9), (1000, 9))),
            *(rec("numpy-compat-array", n, us) for n, us in ((10, 5), (100, 50), (1000, 50))),
        ],
    }
    crossovers, records = grid_crossovers(doc, inline_below=123)
    assert crossovers.inline_below == 123
    assert crossovers.numpy_ranges == ((3162, 31622),)  # only 100 x 100 is clearly NumPy's
    assert crossovers.cosine_numpy_ranges == ((0, 3162),)
    assert [r["work"] for r in records] == [1000, 10_000, 100_000]


def _grid_document(records: list[dict], machine: dict) -> dict:
    """A latency-grid document around ``records`` (the other required fields left null)."""
    from synapse_mojo._dev.bench.report import REQUIRED_FIELDS, new_document

    doc = new_document("search", "synapse-mojo bench search --grid latency", machine)
    doc["parameters"] = {"grid": "latency", "k": 10}
    doc["records"] = [
        {**dict.fromkeys(REQUIRED_FIELDS["search"]), "k": 10, "mode": "single", **r}
        for r in records
    ]
    return doc


def test_bench_crossovers_from_grid_writes_the_architectures_entry(tmp_path):
    import json

    from click.testing import CliRunner

    from synapse_mojo.cli import main

    grid = tmp_path / "grid.json"
    records = [
        {"backend": name, "n": n, "dim": 384, "p50_ms": us / 1e3}
        for name, timings in (
            ("api-mojo", ((10, 5), (1000, 100), (100_000, 1000))),
            ("api-python", ((10, 6), (1000, 50), (100_000, 2000))),
        )
        for n, us in timings
    ]
    grid.write_text(json.dumps(_grid_document(records, {"arch": "aarch64"})))
    target = tmp_path / "crossovers.json"
    result = CliRunner().invoke(
        main,
        ["bench", "crossovers", "--from-grid", str(grid), "--write", "--path", str(target)],
    )
    assert result.exit_code == 0, result.output
    entry = json.loads(target.read_text())["aarch64"]
    assert entry["numpy_ranges"] == [[38_400, 3_840_000]]  # halfway to 10 and 100,000 rows
    assert entry["measured"]["medians_us"][0]["api-mojo_us"] == 5


@pytest.mark.parametrize(
    "command", [["crossovers", "--from-grid"], ["search", "--grid", "latency", "--from-json"]]
)
@pytest.mark.parametrize(
    "content, message",
    [
        ("not json at all", "not valid JSON"),
        (None, "not a latency-grid document"),  # a valid benchmark document of another kind
    ],
)
def test_bench_grid_inputs_refuse_other_files_in_one_line(tmp_path, command, content, message):
    import json
    import subprocess
    import sys

    from synapse_mojo._dev.bench.report import new_document

    path = tmp_path / "input.json"
    if content is None:
        doc = new_document("search", "synapse-mojo bench search", {"arch": "x86_64"})
        path.write_text(json.dumps(doc))  # bench search without --grid: no grid parameters
    else:
        path.write_text(content)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from synapse_mojo.cli import run; run()",
            "bench",
            *command,
            str(path),
            *(["--out", str(out)] if "search" in command else []),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()  # nothing written for a refused input


def test_path_race_measures_both_then_runs_the_faster_and_keeps_probing():
    from synapse_mojo.search.dispatch import (
        RACE_FIRST_SAMPLES,
        RACE_PROBE_EVERY,
        RACE_WINDOW,
        PathRace,
    )

    race = PathRace()
    cost = {True: 5.0, False: 1.0}
    first = []
    for _ in range(2 * RACE_FIRST_SAMPLES):
        choice = race.choose()
        first.append(choice)
        race.record(choice, cost[choice])
    assert sorted(first) == [False] * RACE_FIRST_SAMPLES + [True] * RACE_FIRST_SAMPLES
    runs = []
    for _ in range(4 * RACE_PROBE_EVERY):
        choice = race.choose()
        runs.append(choice)
        race.record(choice, cost[choice])
    assert 3 <= runs.count(True) <= 5  # one probe of the slower path per RACE_PROBE_EVERY
    assert race.state() == {"true_us": 5e6, "false_us": 1e6}
    # The data changes: the probes see it within RACE_WINDOW of them, and the race follows.
    cost = {True: 1.0, False: 5.0}
    for _ in range(RACE_WINDOW * RACE_PROBE_EVERY):
        choice = race.choose()
        race.record(choice, cost[choice])
    assert [race.choose() for _ in range(10)].count(True) >= 9
    race.reset()
    assert race.state() == {"true_us": None, "false_us": None} and race.choose() is True
