"""Saving and memory-mapping indexes: round trips, sharing across processes, damage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from synapse_mojo import InvalidInputError, PatternIndex


def _build(runtime, quantization=None, n=3000, d=64, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    index = PatternIndex(d, runtime=runtime, quantization=quantization)
    index.upsert([f"p{i}" for i in range(n)], vectors, [{"i": i, "tag": ["a", "b"][i % 2]} for i in range(n)])
    return index, vectors


@pytest.mark.parametrize("quantization", [None, "int8"])
def test_round_trip_is_memory_mapped_and_answers_the_same(tmp_path, make_runtime, search_kernel, quantization):
    runtime = make_runtime()
    index, vectors = _build(runtime, quantization)
    index.remove(["p5", "p6"])
    index.save(tmp_path / "idx")
    loaded = PatternIndex.load(tmp_path / "idx", runtime=runtime)
    assert isinstance(loaded._vectors, np.memmap) and not loaded._vectors.flags.writeable
    assert loaded.info()["memory_mapped"] and loaded.quantization == quantization
    assert loaded.ids() == index.ids() and len(loaded) == 2998
    for q in vectors[[0, 100, 2999]]:
        a, b = index.search(q, top_k=5), loaded.search(q, top_k=5)
        assert [h.id for h in a] == [h.id for h in b]
        assert [h.metadata for h in a] == [h.metadata for h in b]
    assert [h.id for h in loaded.search(vectors[1], top_k=3, filter={"tag": "b"})][0] == "p1"
    vec, meta = loaded.get("p7")
    assert meta == {"i": 7, "tag": "b"} and np.allclose(vec, index.get("p7")[0])


def test_first_update_of_a_loaded_index_copies_it(tmp_path, make_runtime, search_kernel):
    runtime = make_runtime()
    index, vectors = _build(runtime, "int8", n=500)
    index.save(tmp_path / "idx")
    loaded = PatternIndex.load(tmp_path / "idx", runtime=runtime)
    loaded.upsert(["new"], vectors[:1] * -1, {"fresh": True})
    assert not loaded.info()["memory_mapped"]
    assert loaded.search(vectors[0] * -1, top_k=1)[0].id == "new"
    loaded.remove("p3")
    # The files on disk are untouched.
    again = PatternIndex.load(tmp_path / "idx", runtime=runtime)
    assert "p3" in again and "new" not in again


def test_save_replaces_atomically(tmp_path, make_runtime):
    runtime = make_runtime()
    index, _ = _build(runtime, n=50)
    index.save(tmp_path / "idx")
    index.remove([f"p{i}" for i in range(10)])
    index.save(tmp_path / "idx")
    assert len(PatternIndex.load(tmp_path / "idx", runtime=runtime)) == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


_SHARER = textwrap.dedent(
    """
    import sys, time, numpy as np
    from synapse_mojo import PatternIndex
    index = PatternIndex.load(sys.argv[1])
    index.search(np.ones(index.dim, np.float32), top_k=3)   # touches every page
    shared = 0
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            if "-" in line.split()[0] and len(line.split()) >= 5:
                inside = line.rstrip().endswith("vectors.npy")
            elif inside and line.startswith(("Shared_Clean:", "Shared_Dirty:")):  # dirty: just written
                shared += int(line.split()[1]) * 1024
    print(shared)
    sys.stdout.flush()
    time.sleep(float(sys.argv[2]))
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc/self/smaps")
def test_processes_share_the_mapped_pages(tmp_path, make_runtime, search_kernel):
    runtime = make_runtime()
    index, _ = _build(runtime, n=20_000, d=128)
    index.save(tmp_path / "idx")
    size = (tmp_path / "idx" / "vectors.npy").stat().st_size
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}
    env["SYNAPSE_KERNEL_CACHE"] = runtime.settings.kernel_cache
    first = subprocess.Popen(
        [sys.executable, "-c", _SHARER, str(tmp_path / "idx"), "30"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        first.stdout.readline()  # the first process has mapped and touched every page
        second = subprocess.run(
            [sys.executable, "-c", _SHARER, str(tmp_path / "idx"), "0"],
            capture_output=True, text=True, env=env, timeout=300,
        )
        assert second.returncode == 0, second.stderr
        shared = int(second.stdout.split()[0])
        # The second process's pages of the vectors file are shared with the first one.
        assert shared >= 0.9 * (size - 4096)
    finally:
        first.kill()
        first.wait()


def test_damaged_indexes_raise_clear_errors(tmp_path, make_runtime):
    runtime = make_runtime()
    with pytest.raises(InvalidInputError, match="not a saved index"):
        PatternIndex.load(tmp_path / "nothing", runtime=runtime)
    index, _ = _build(runtime, n=20)
    index.save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    (tmp_path / "idx" / "manifest.json").write_text(json.dumps({**manifest, "count": 21}))
    with pytest.raises(InvalidInputError, match="damaged index"):
        PatternIndex.load(tmp_path / "idx", runtime=runtime)
    (tmp_path / "idx" / "manifest.json").write_text(json.dumps({**manifest, "format": "other/9"}))
    with pytest.raises(InvalidInputError, match="unsupported index format"):
        PatternIndex.load(tmp_path / "idx", runtime=runtime)
    (tmp_path / "idx" / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "idx" / "vectors.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InvalidInputError, match="damaged index"):
        PatternIndex.load(tmp_path / "idx", runtime=runtime)
