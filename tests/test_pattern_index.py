"""PatternIndex behaviour: updates, filters, validation, threads; run on every runtime."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from synapse_mojo import (
    DimensionMismatchError,
    EmptyIndexError,
    InvalidInputError,
    InvalidTypeError,
    PatternIndex,
    UnknownIdError,
)
from synapse_mojo.search.validation import as_matrix


@pytest.fixture(params=["mojo", "python"])
def index_runtime(request, make_runtime, search_kernel):
    """The same tests on the Mojo path (mode on) and on the Python path (mode off)."""
    mode = "on" if request.param == "mojo" else "off"
    return make_runtime(SYNAPSE_FEATURE_PATTERN_SEARCH=mode, SYNAPSE_FEATURE_VECTOR_ENGINE=mode)


def _vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def test_search_returns_nearest_with_metadata(index_runtime):
    index = PatternIndex(32, runtime=index_runtime)
    vectors = _vectors(500, 32)
    index.upsert([f"p{i}" for i in range(500)], vectors, [{"i": i} for i in range(500)])
    result = index.search_detailed(vectors[123], top_k=3)
    assert result.hits[0].id == "p123"
    assert result.hits[0].metadata == {"i": 123}
    assert result.hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert result.runtime == (
        "mojo" if index_runtime.settings.mode("pattern_search").kind == "on" else "python"
    )
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


def test_upsert_replaces_in_place_and_keeps_insertion_order(index_runtime):
    index = PatternIndex(4, runtime=index_runtime)
    same = np.array([1.0, 0, 0, 0])
    index.upsert(["a", "b", "c"], [same, [0, 1, 0, 0], same])
    assert [h.id for h in index.search(same, top_k=2)] == ["a", "c"]  # exact tie: insertion order
    added, updated = index.upsert(["a", "d"], [[0, 0, 1, 0], same], [{"v": 2}, None])
    assert (added, updated) == (1, 1)
    assert [h.id for h in index.search(same, top_k=2)] == ["c", "d"]
    vec, meta = index.get("a")
    assert np.allclose(vec, [0, 0, 1, 0]) and meta == {"v": 2}
    assert index.ids() == ["a", "b", "c", "d"]


def test_add_rejects_existing_ids(index_runtime):
    index = PatternIndex(3, runtime=index_runtime)
    index.add(["x"], [[1, 2, 3]])
    with pytest.raises(InvalidInputError, match="already in the index"):
        index.add(["x"], [[1, 2, 3]])


def test_remove_and_compaction_keep_order(index_runtime):
    index = PatternIndex(8, runtime=index_runtime)
    vectors = _vectors(3000, 8, seed=1)
    ids = [f"p{i}" for i in range(3000)]
    index.upsert(ids, vectors)
    index.remove(ids[:2000])  # triggers compaction
    assert len(index) == 1000
    assert index.ids() == ids[2000:]
    hit = index.search(vectors[2500], top_k=1)[0]
    assert hit.id == "p2500"
    assert "p5" not in index
    with pytest.raises(UnknownIdError, match="p5"):
        index.remove("p5")
    assert index.remove(["p5", "p2001"], missing_ok=True) == 1
    with pytest.raises(UnknownIdError):
        index.get("p5")


def test_removed_rows_never_returned_before_compaction(index_runtime):
    index = PatternIndex(4, runtime=index_runtime)
    index.upsert(["a", "b", "c"], [[1, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 1, 0, 0]])
    index.remove("a")
    assert [h.id for h in index.search([1, 0, 0, 0], top_k=5)] == ["b", "c"]


def test_filters_mapping_list_and_callable(index_runtime):
    index = PatternIndex(8, runtime=index_runtime)
    vectors = _vectors(200, 8, seed=2)
    langs = ["py", "go", "rs", "ts"]
    meta = [{"lang": langs[i % 4], "tags": ["x"] if i % 2 else ["y"], "n": i} for i in range(200)]
    index.upsert([f"p{i}" for i in range(200)], vectors, meta)
    py = index.search(vectors[0], top_k=100, filter={"lang": "py"})
    assert len(py) == 50 and all(h.metadata["lang"] == "py" for h in py)
    two = index.search(vectors[0], top_k=200, filter={"lang": ["py", "go"], "n": [0, 1, 2, 3]})
    assert sorted(h.id for h in two) == ["p0", "p1"]
    unhashable = index.search(vectors[0], top_k=200, filter={"tags": [["x"]]})
    assert len(unhashable) == 100
    big = index.search(vectors[0], top_k=10, filter=lambda m: m["n"] >= 190)
    assert {h.id for h in big} == {f"p{i}" for i in range(190, 200)}
    assert index.search(vectors[0], top_k=10, filter={"lang": "cobol"}) == []
    with pytest.raises(InvalidTypeError, match="filter"):
        index.search(vectors[0], filter=42)  # type: ignore[arg-type]


def test_k_larger_than_index_is_clamped(index_runtime):
    index = PatternIndex(4, runtime=index_runtime)
    index.upsert(["a", "b"], [[1, 0, 0, 0], [0, 1, 0, 0]])
    assert len(index.search([1, 0, 0, 0], top_k=10)) == 2


_BAD_QUERIES = [
    ([1.0, 2.0], DimensionMismatchError, "dimension 2"),
    ([[1, 2, 3, 4], [1, 2, 3, 4]], InvalidInputError, "search_batch"),
    ([np.nan, 0, 0, 0], InvalidInputError, "NaN"),
    ([np.inf, 0, 0, 0], InvalidInputError, "NaN or infinity"),
    ([0, 0, 0, 0], InvalidInputError, "zero vector"),
    (["a", "b", "c", "d"], InvalidTypeError, "real numbers"),
    ([], InvalidInputError, "empty"),
]


@pytest.mark.parametrize(
    "query, error, match",
    # As lists (the checked path) and as float32 arrays (the one-call path, which leaves every
    # one of these to the checked path); strings have no float32 array.
    [*_BAD_QUERIES]
    + [
        pytest.param(np.asarray(q, dtype=np.float32), e, m, id=f"float32-{m}")
        for q, e, m in _BAD_QUERIES
        if e is not InvalidTypeError
    ],
)
def test_bad_queries_raise_clear_errors(index_runtime, query, error, match):
    index = PatternIndex(4, runtime=index_runtime)
    index.upsert(["a"], [[1, 0, 0, 0]], [{"x": 1}])
    with pytest.raises(error, match=match):
        index.search(query)
    with pytest.raises(error, match=match):
        index.search(query, filter={"x": 2})  # no row passes: the query is still checked


def test_float32_queries_answer_as_the_checked_path(index_runtime):
    """The one-call path (a float32 array: normalised by the runtime that answers) gives the
    hits of the checked path (the same values as float64), scores within float32 rounding; at
    extreme magnitudes it hands over to the checked path's float64 normalisation."""
    vectors = _vectors(300, 33, seed=4)
    index = PatternIndex(33, runtime=index_runtime)
    index.upsert([f"p{i}" for i in range(300)], vectors, [{"odd": i % 2} for i in range(300)])
    rng = np.random.default_rng(9)
    for scale in (1e-18, 1e-3, 1.0, 250.0, 1e17):
        q32 = (rng.standard_normal(33) * scale).astype(np.float32)
        for filter in (None, {"odd": 1}, lambda meta: meta["odd"] == 0):
            fast = index.search_detailed(q32, top_k=7, filter=filter)
            checked = index.search(q32.astype(np.float64), top_k=7, filter=filter)
            assert [h.id for h in fast.hits] == [h.id for h in checked], (scale, filter)
            assert [h.score for h in fast.hits] == pytest.approx(
                [h.score for h in checked], abs=1e-5
            )
            assert all(type(h.score) is float for h in fast.hits)
            assert fast.runtime == (
                "mojo" if index_runtime.settings.mode("pattern_search").kind == "on" else "python"
            )
    calls = []
    index.search(q32, filter=lambda meta: calls.append(1) or True)
    assert len(calls) == 300  # a callable filter runs once per row, once per search


@pytest.mark.parametrize(
    "top_k, error",
    [
        (0, InvalidInputError),
        (-3, InvalidInputError),
        (True, InvalidTypeError),
        (2.5, InvalidTypeError),
        ("3", InvalidTypeError),
    ],
)
def test_bad_top_k(index_runtime, top_k, error):
    index = PatternIndex(4, runtime=index_runtime)
    index.upsert(["a"], [[1, 0, 0, 0]])
    with pytest.raises(error, match="top_k"):
        index.search([1, 0, 0, 0], top_k=top_k)


def test_empty_index_raises(index_runtime):
    with pytest.raises(EmptyIndexError, match="empty"):
        PatternIndex(4, runtime=index_runtime).search([1, 0, 0, 0])
    with pytest.raises(EmptyIndexError, match="empty"):
        PatternIndex(4, runtime=index_runtime).search(np.ones(4, np.float32))
    index = PatternIndex(4, runtime=index_runtime)
    index.upsert(["a"], [[1, 0, 0, 0]])
    index.remove("a")
    with pytest.raises(EmptyIndexError):
        index.search([1, 0, 0, 0])


def test_bad_updates_change_nothing(index_runtime):
    index = PatternIndex(3, runtime=index_runtime)
    index.upsert(["a"], [[1, 0, 0]])
    with pytest.raises(InvalidInputError, match="row 1 contains NaN"):
        index.upsert(["b", "c"], [[1, 1, 1], [np.nan, 0, 0]])
    with pytest.raises(InvalidInputError, match="duplicate id 'b'"):
        index.upsert(["b", "b"], [[1, 1, 1], [1, 0, 0]])
    with pytest.raises(InvalidInputError, match="2 ids for 1 embeddings"):
        index.upsert(["b", "c"], [[1, 1, 1]])
    with pytest.raises(InvalidTypeError, match="strings"):
        index.upsert([7], [[1, 1, 1]])  # type: ignore[list-item]
    with pytest.raises(DimensionMismatchError):
        index.upsert(["b"], [[1, 1]])
    with pytest.raises(InvalidTypeError, match="metadata"):
        index.upsert(["b"], [[1, 1, 1]], ["not a dict"])  # type: ignore[list-item]
    assert index.ids() == ["a"]


def test_float64_and_non_contiguous_input_are_converted(index_runtime):
    index = PatternIndex(4, runtime=index_runtime)
    base = np.random.default_rng(3).standard_normal((10, 8))  # float64
    strided = base[:, ::2]  # non-contiguous view, 4 columns
    index.upsert([f"p{i}" for i in range(10)], strided)
    query = strided[4]
    assert not query.flags["C_CONTIGUOUS"] or query.dtype == np.float64
    assert index.search(query, top_k=1)[0].id == "p4"
    assert index.search(np.asarray(query, dtype=np.int64) * 0 + [1, 2, 3, 4], top_k=1)


def test_search_batch_matches_single_searches(index_runtime):
    index = PatternIndex(16, runtime=index_runtime)
    vectors = _vectors(300, 16, seed=4)
    index.upsert([f"p{i}" for i in range(300)], vectors)
    queries = vectors[[5, 50, 150]] + 0.01
    batch = index.search_batch(queries, top_k=4)
    assert batch.ids.shape == (3, 4) and batch.scores.dtype == np.float32
    for row, q in enumerate(queries):
        single = index.search(q, top_k=4)
        assert list(batch.ids[row]) == [h.id for h in single]
        assert np.allclose(batch.scores[row], [h.score for h in single], atol=1e-5)
    filtered = index.search_batch(queries, top_k=4, filter={"missing": 1})
    assert filtered.ids.shape == (3, 0)


@pytest.mark.parametrize("codes_from_bytes", [None, 256 << 10])
def test_concurrent_searches_and_updates(index_runtime, monkeypatch, codes_from_bytes):
    """Searches (kernel without the GIL) and updates (buffer reallocation) interleave safely;
    also while the default index (``quantization="auto"``) adds its int8 codes midway (with
    ``FLOAT32_FIRST_MAX_BYTES`` at 256 KB: from 1,024 rows of d = 64)."""
    if codes_from_bytes is not None:
        monkeypatch.setattr("synapse_mojo.search.index.FLOAT32_FIRST_MAX_BYTES", codes_from_bytes)
    index = PatternIndex(64, runtime=index_runtime, capacity=16)
    vectors = _vectors(4000, 64, seed=5)
    index.upsert(["seed"], vectors[:1])
    errors: list[BaseException] = []

    def writer():
        try:
            for start in range(1, 4000, 100):
                end = min(start + 100, 4000)
                index.upsert([f"p{i}" for i in range(start, end)], vectors[start:end])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader():
        try:
            for _ in range(200):
                hits = index.search(vectors[0], top_k=3)
                assert hits[0].id == "seed"
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(index) == 4000
    assert (index._codes is not None) == (codes_from_bytes is not None)


def test_hits_stay_consistent_while_metadata_is_rewritten(index_runtime):
    """``search`` builds its hits (in the kernel on the Mojo path) from the id and metadata
    tables under the read lock: while a writer rewrites every pattern's metadata, and adds
    and removes patterns, each hit's metadata is the one written for its own id."""
    n, d = 300, 32
    vectors = _vectors(n + 200, d, seed=9)
    index = PatternIndex(d, runtime=index_runtime)
    index.upsert([f"p{i}" for i in range(n)], vectors[:n], [{"id": f"p{i}"} for i in range(n)])
    errors: list[BaseException] = []
    done = threading.Event()

    def writer():
        try:
            for version in range(1, 40):
                ids = [f"p{i}" for i in range(n)]
                index.upsert(ids, vectors[:n], [{"id": i, "v": version} for i in ids])
                extra = [f"x{version}-{j}" for j in range(5)]
                index.upsert(extra, vectors[n : n + 5], [{"id": e} for e in extra])
                index.remove(extra[:3])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    def reader(seed: int):
        try:
            rng = np.random.default_rng(seed)
            while not done.is_set():
                q = vectors[rng.integers(0, n)]
                for hit in index.search(q, top_k=8):
                    assert hit.metadata["id"] == hit.id, hit
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader, args=(s,)) for s in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert index.search(vectors[7], top_k=1)[0].metadata == {"id": "p7", "v": 39}


def _count_read_locks(index, monkeypatch) -> list[int]:
    taken = [0]
    acquire = index._lock.acquire_read

    def counted() -> None:
        taken[0] += 1
        acquire()

    monkeypatch.setattr(index._lock, "acquire_read", counted)
    return taken


def test_search_reads_a_snapshot_without_the_lock_until_a_write(index_runtime, monkeypatch):
    """``search`` takes the read lock once after each write (to take the snapshot), then
    answers from the snapshot without it; removed rows (a mask) and codes keep the lock."""
    d = 16
    vectors = _vectors(60, d, seed=21)
    index = PatternIndex(d, runtime=index_runtime)
    index.upsert([f"p{i}" for i in range(50)], vectors[:50], [{"i": i} for i in range(50)])
    taken = _count_read_locks(index, monkeypatch)
    want = index.search_detailed(vectors[3], top_k=5).hits
    taken[0] = 0
    for _ in range(5):
        assert index.search(vectors[3], top_k=5) == want
    assert taken[0] == 1
    version = index._lock.version
    index.upsert(["p3"], vectors[4:5], [{"i": "moved"}])
    assert index._lock.version == version + 2  # odd while the write ran
    hits = index.search(vectors[4], top_k=2)
    assert {h.id for h in hits} == {"p3", "p4"}
    assert index.search(vectors[4], top_k=2) == hits
    assert taken[0] == 2
    assert [h.metadata for h in hits if h.id == "p3"] == [{"i": "moved"}]
    index.remove("p3")
    taken[0] = 0
    hits = index.search(vectors[3], top_k=5)
    assert index.search(vectors[3], top_k=5) == hits
    assert taken[0] == 1  # removed rows: the snapshot holds the liveness mask
    assert "p3" not in {h.id for h in hits}
    assert hits == index.search_detailed(vectors[3], top_k=5).hits
    int8 = PatternIndex(d, runtime=index_runtime, quantization="int8")
    int8.upsert([f"p{i}" for i in range(50)], vectors[:50])
    int8_taken = _count_read_locks(int8, monkeypatch)
    int8.search(vectors[3], top_k=5)
    int8.search(vectors[3], top_k=5)
    assert int8_taken[0] == 2


@pytest.mark.parametrize("quantization", [None, "int8"])
def test_search_with_removed_rows_matches_the_checked_path(
    index_runtime, monkeypatch, quantization
):
    """Removed rows are masked in the one-call search (and its snapshot): the same hits as
    ``search_detailed``'s checked path for every query, as rows are removed and re-added;
    ``top_k`` above the live patterns gives them all. With codes (and no float32-first
    size), the race's float32 turns take the mask too."""
    monkeypatch.setattr("synapse_mojo.search.index.FLOAT32_FIRST_MAX_BYTES", 0)
    d = 24
    vectors = _vectors(300, d, seed=23)
    index = PatternIndex(d, runtime=index_runtime, quantization=quantization)
    index.upsert([f"p{i}" for i in range(300)], vectors, [{"i": i} for i in range(300)])
    rng = np.random.default_rng(24)
    for step in range(6):
        gone = [f"p{i}" for i in rng.choice(300, 40, replace=False)]
        index.remove(gone, missing_ok=True)
        if step % 2:
            back = gone[:10]
            index.upsert(back, vectors[[int(g[1:]) for g in back]], [{"i": g} for g in back])
        for q in vectors[rng.choice(300, 8, replace=False)]:
            for k in (1, 10, len(index) + 5):
                hits = index.search(q, top_k=k)
                assert hits == index.search_detailed(q, top_k=k).hits
                assert len(hits) == min(k, len(index))
    index.remove([f"p{i}" for i in range(300)], missing_ok=True)
    index.upsert(["only"], vectors[:1])
    assert [h.id for h in index.search(vectors[0], top_k=3)] == ["only"]


def test_a_memory_mapped_index_is_searched_under_the_lock_until_its_first_update(
    tmp_path, index_runtime, monkeypatch
):
    """A loaded index reads its ids and metadata from its files, which its first update
    closes: no snapshot (which could outlive them) until that update made them lists."""
    vectors = _vectors(30, 8, seed=25)
    saved = PatternIndex(8, runtime=index_runtime)
    saved.upsert([f"p{i}" for i in range(30)], vectors, [{"i": i} for i in range(30)])
    saved.save(tmp_path / "index")
    index = PatternIndex.load(tmp_path / "index", runtime=index_runtime, mmap=True)
    taken = _count_read_locks(index, monkeypatch)
    want = index.search(vectors[2], top_k=4)
    assert index.search(vectors[2], top_k=4) == want and taken[0] == 2
    index.upsert(["new"], vectors[:1] + 1)
    index.search(vectors[2], top_k=4)
    assert index.search(vectors[2], top_k=4) == want and taken[0] == 3


def test_a_write_during_an_unlocked_search_drops_its_answer(index_runtime, monkeypatch):
    """A write that lands while a snapshot search runs (the kernel scans without the GIL)
    moves the lock's version: that answer may rest on torn rows, so it is dropped and the
    search runs again under the lock, answering from the written rows."""
    d = 16
    vectors = _vectors(40, d, seed=22)
    index = PatternIndex(d, runtime=index_runtime)
    index.upsert([f"p{i}" for i in range(40)], vectors, [{"i": i} for i in range(40)])
    index.search(vectors[0], top_k=3)  # takes the snapshot
    backend = index._backend
    through = backend.topk_hits
    calls = []

    def write_during_the_call(*args):
        hits = through(*args)
        if not calls:  # the first (unlocked) call: a writer replaces the best row meanwhile
            index.upsert(["p0"], -vectors[:1], [{"i": "flipped"}])
        calls.append(hits)
        return hits

    monkeypatch.setattr(backend, "topk_hits", write_during_the_call)
    hits = index.search(vectors[0], top_k=3)
    assert calls[0][0].id == "p0"  # what the unlocked call found before the write
    assert len(calls) == 2
    assert "p0" not in {h.id for h in hits}
    assert hits == index.search_detailed(vectors[0], top_k=3).hits


def test_vectors_are_normalised_on_the_way_in(index_runtime):
    index = PatternIndex(2, runtime=index_runtime)
    index.upsert(["a"], [[3.0, 4.0]])
    vec, _ = index.get("a")
    assert np.allclose(vec, [0.6, 0.8])
    assert index.search([30, 40], top_k=1)[0].score == pytest.approx(1.0, abs=1e-6)


def test_bad_dim():
    with pytest.raises(InvalidInputError):
        PatternIndex(0)
    with pytest.raises(InvalidInputError):
        PatternIndex("3")  # type: ignore[arg-type]
    assert PatternIndex(np.int64(3)).dim == 3


def test_as_matrix_blocks_large_inputs():
    raw = np.random.default_rng(0).standard_normal((40_000, 3))
    out = as_matrix(raw, 3)
    assert out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-6)
    raw[33_000, 1] = np.inf
    with pytest.raises(InvalidInputError, match="row 33000"):
        as_matrix(raw, 3)


# ------------------------------------------------------------------ concurrency (issue 14)


def _filtered_index(tmp_path, runtime, n=6000, d=16):
    vectors = _vectors(n, d, seed=11)
    index = PatternIndex(d, runtime=runtime)
    index.upsert(
        [f"p{i}" for i in range(n)],
        vectors,
        [{"lang": ("py", "go", "rs")[i % 3], "i": i} for i in range(n)],
    )
    index.save(tmp_path / "idx")
    return vectors


def test_first_filtered_searches_after_load_agree_across_threads(tmp_path, index_runtime):
    """The metadata postings are built lazily by the first filtered search: threads that arrive
    together must all see the complete table (before: most of 24 answers were wrong)."""
    vectors = _filtered_index(tmp_path, index_runtime)
    queries = vectors[:4] + 0.05
    reference = PatternIndex.load(tmp_path / "idx", runtime=index_runtime)
    want = [[h.id for h in reference.search(q, top_k=5, filter={"lang": "go"})] for q in queries]
    wrong, total = _filtered_rounds(
        lambda: PatternIndex.load(tmp_path / "idx", runtime=index_runtime), queries, want, rounds=25
    )
    assert wrong == 0, f"{wrong} of {total} concurrent first filtered searches were wrong"


def test_filtered_searches_after_compaction_agree_across_threads(index_runtime):
    """Compaction drops the postings; the next filtered searches rebuild them concurrently."""
    d, n = 16, 6000
    vectors = _vectors(n, d, seed=12)
    queries = vectors[:4] + 0.05

    def build() -> PatternIndex:
        index = PatternIndex(d, runtime=index_runtime)
        index.upsert(
            [f"p{i}" for i in range(n)], vectors, [{"lang": ("py", "go")[i % 2]} for i in range(n)]
        )
        index.search(queries[0], filter={"lang": "go"})  # postings built ...
        index.remove([f"p{i}" for i in range(4000, n)])  # ... and dropped by the compaction
        return index

    reference = build()
    want = [[h.id for h in reference.search(q, top_k=5, filter={"lang": "go"})] for q in queries]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: more interleavings per round
    try:
        wrong, total = _filtered_rounds(build, queries, want)
    finally:
        sys.setswitchinterval(switch)
    assert wrong == 0, f"{wrong} of {total} concurrent filtered searches were wrong"


def _filtered_rounds(build, queries, want, rounds=10) -> tuple[int, int]:
    def run(index, barrier, got: list, t: int) -> None:
        barrier.wait()
        try:
            got[t] = [h.id for h in index.search(queries[t], top_k=5, filter={"lang": "go"})]
        except BaseException as exc:  # noqa: BLE001 - counted as wrong below
            got[t] = exc

    wrong = total = 0
    for _round in range(rounds):
        index = build()
        barrier = threading.Barrier(len(queries))
        got: list[list[str] | BaseException | None] = [None] * len(queries)
        threads = [
            threading.Thread(target=run, args=(index, barrier, got, t)) for t in range(len(queries))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        wrong += sum(1 for t in range(len(queries)) if got[t] != want[t])
        total += len(queries)
    return wrong, total


def test_writer_is_not_starved_by_continuous_readers(index_runtime):
    """Readers search without pause; a writer's upsert must get its turn. Counted in reader
    operations, not seconds: searches that *start* while the writer waits must be few (each
    reader can be at most one search ahead of the writer). Before: unbounded (the readers stop
    at the cap below and the upsert only then completes)."""
    d, readers, cap = 64, 4, 2000
    vectors = _vectors(20_000, d, seed=13)
    index = PatternIndex(d, runtime=index_runtime)
    index.upsert([f"p{i}" for i in range(20_000)], vectors)
    state = {"waiting": False, "done": False, "overtaking": 0}
    counter = threading.Lock()
    start = threading.Barrier(readers + 1)
    worst = 0

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        start.wait()
        while not state["done"]:
            with counter:
                if state["waiting"]:
                    state["overtaking"] += 1
                    if state["overtaking"] > cap:
                        return  # starvation: give up so that the test ends
            index.search(vectors[int(rng.integers(20_000))], top_k=5)

    threads = [threading.Thread(target=reader, args=(s,), daemon=True) for s in range(readers)]
    for t in threads:
        t.start()
    start.wait()
    for round_ in range(8):
        for _ in range(3):  # let the readers overlap first
            index.search(vectors[round_], top_k=1)
        with counter:
            state["waiting"], state["overtaking"] = True, 0
        index.upsert([f"w{round_}"], vectors[round_ : round_ + 1])
        with counter:
            state["waiting"] = False
            worst = max(worst, state["overtaking"])
    state["done"] = True
    for t in threads:
        t.join(timeout=60)
    assert worst <= readers * 4, f"{worst} searches started while a one-row upsert waited"


def test_boolean_filters_do_not_match_numbers(index_runtime):
    """``True == 1`` in Python; a metadata filter compares booleans and numbers apart."""
    index = PatternIndex(3, runtime=index_runtime)
    index.upsert(
        ["one", "true", "zero", "false"],
        np.eye(3)[[0, 1, 2, 0]] + 0.1,
        [{"a": 1}, {"a": True}, {"a": 0}, {"a": False}],
    )
    q = [1.0, 1.0, 1.0]
    assert [h.id for h in index.search(q, 4, filter={"a": True})] == ["true"]
    assert [h.id for h in index.search(q, 4, filter={"a": 1})] == ["one"]
    assert sorted(h.id for h in index.search(q, 4, filter={"a": [0, False]})) == ["false", "zero"]
    index.upsert(["true"], [q], [{"a": 1}])  # unindexing a bool key, then indexing a number
    assert sorted(h.id for h in index.search(q, 4, filter={"a": 1})) == ["one", "true"]
    assert index.search(q, 4, filter={"a": True}) == []


@pytest.mark.parametrize("magnitude", [1e-200, 1e-30, 1.0, 1e30, 1e155, 1e300])
def test_norms_neither_overflow_nor_underflow(index_runtime, magnitude):
    """Huge finite components (> ~1e154) used to overflow the float64 norm: the row became
    zero and such a query scored everything 0.0. Tiny ones underflowed to a 'zero vector'."""
    raw = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]) * magnitude
    out = as_matrix(raw, 3)
    assert np.allclose(out, [[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]], atol=1e-7)
    index = PatternIndex(3, runtime=index_runtime)
    index.upsert(["a", "b"], raw)
    hits = index.search(raw[0], top_k=2)
    assert [h.id for h in hits] == ["a", "b"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-6)
