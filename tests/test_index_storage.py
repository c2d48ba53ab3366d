"""Saving and memory-mapping indexes: round trips, sharing across processes, damage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from synapse_mojo import InvalidInputError, InvalidTypeError, PatternIndex
from synapse_mojo.errors import DamagedIndexError


def _codes_variant(quantization, monkeypatch):
    """``"auto+codes"``: an ``"auto"`` index that already keeps codes (its size threshold set
    to 0 for the test); the others as they are."""
    if quantization == "auto+codes":
        monkeypatch.setattr("synapse_mojo.search.index.FLOAT32_FIRST_MAX_BYTES", 0)
        return "auto", True
    return quantization, quantization == "int8"


def _build(runtime, quantization=None, n=3000, d=64, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    index = PatternIndex(d, runtime=runtime, quantization=quantization)
    index.upsert(
        [f"p{i}" for i in range(n)], vectors, [{"i": i, "tag": ["a", "b"][i % 2]} for i in range(n)]
    )
    return index, vectors


@pytest.mark.parametrize("quantization", [None, "int8", "auto", "auto+codes"])
def test_round_trip_is_memory_mapped_and_answers_the_same(
    tmp_path, make_runtime, search_kernel, quantization, monkeypatch
):
    runtime = make_runtime()
    quantization, has_codes = _codes_variant(quantization, monkeypatch)
    index, vectors = _build(runtime, quantization)
    assert (index._codes is not None) == has_codes
    index.remove(["p5", "p6"])
    index.save(tmp_path / "idx")
    loaded = PatternIndex.load(tmp_path / "idx", runtime=runtime)
    assert isinstance(loaded._vectors, np.memmap) and not loaded._vectors.flags.writeable
    assert loaded.info()["memory_mapped"] and loaded.quantization == quantization
    assert (loaded._codes is not None) == has_codes
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
            # Dirty too: the pages were just written.
            elif inside and line.startswith(("Shared_Clean:", "Shared_Dirty:")):
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
        [sys.executable, "-c", _SHARER, str(tmp_path / "idx"), "30"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first.stdout.readline()  # the first process has mapped and touched every page
        second = subprocess.run(
            [sys.executable, "-c", _SHARER, str(tmp_path / "idx"), "0"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
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


# ---------------------------------------------------- issue 14: save never destroys, load verifies


def _restamp(directory, name):
    """Rewrites the manifest's checksum of ``name`` (a consistent but wrong file: only the
    structural checks can catch it)."""
    from synapse_mojo.search.storage import _scan

    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"][name] = _scan(directory / name)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_save_refuses_paths_that_are_not_saved_indexes(tmp_path, make_runtime):
    runtime = make_runtime()
    index, _ = _build(runtime, n=20)
    user_dir = tmp_path / "d"
    user_dir.mkdir()
    (user_dir / "precious.txt").write_text("keep")
    with pytest.raises(InvalidInputError, match="not a saved index"):
        index.save(user_dir)
    assert (user_dir / "precious.txt").read_text() == "keep"
    user_file = tmp_path / "f"
    user_file.write_text("keep")
    with pytest.raises(InvalidInputError, match="not a directory"):
        index.save(user_file)
    assert user_file.read_text() == "keep"
    (tmp_path / "link").symlink_to(user_dir)
    with pytest.raises(InvalidInputError, match="not a directory"):
        index.save(tmp_path / "link")
    # A saved index with a user's file added is not replaced either.
    index.save(tmp_path / "idx")
    (tmp_path / "idx" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="notes.txt"):
        index.save(tmp_path / "idx")
    assert (tmp_path / "idx" / "notes.txt").read_text() == "mine"
    # An empty directory is fine; nothing is left behind beside the targets.
    (tmp_path / "empty").mkdir()
    index.save(tmp_path / "empty")
    assert len(PatternIndex.load(tmp_path / "empty", runtime=runtime)) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "empty", "f", "idx", "link"]


def test_saved_directories_respect_the_umask(tmp_path, make_runtime):
    index, _ = _build(make_runtime(), n=5)
    old = os.umask(0o022)
    try:
        index.save(tmp_path / "idx")
    finally:
        os.umask(old)
    assert (tmp_path / "idx").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "idx" / "vectors.npy").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("quantization", [None, "int8", "auto", "auto+codes"])
def test_any_flipped_byte_is_detected_at_load(tmp_path, make_runtime, quantization, monkeypatch):
    runtime = make_runtime()
    quantization, has_codes = _codes_variant(quantization, monkeypatch)
    index, _ = _build(runtime, quantization, n=200, d=8)
    index.save(tmp_path / "idx")
    names = sorted(p.name for p in (tmp_path / "idx").iterdir() if p.name != "manifest.json")
    assert len(names) == (7 if has_codes else 5)
    rng = np.random.default_rng(3)
    for name in names:
        file = tmp_path / "idx" / name
        original = file.read_bytes()
        for _ in range(5):
            data = bytearray(original)
            data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
            file.write_bytes(bytes(data))
            with pytest.raises(DamagedIndexError, match=name.replace(".", r"\.")):
                PatternIndex.load(tmp_path / "idx", runtime=runtime)
        file.write_bytes(original)
    assert len(PatternIndex.load(tmp_path / "idx", runtime=runtime)) == 200


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda v: v.__setitem__((3, 2), np.nan), "row 3 has NaN"),
        (lambda v: v.__setitem__((4, 0), np.inf), "row 4 has NaN or infinity"),
        (lambda v: v.__setitem__(5, v[5] * 79.0), "row 5 has norm 79"),
    ],
)
def test_vectors_that_are_not_unit_rows_are_rejected(tmp_path, make_runtime, damage, match):
    """Even with a matching checksum (written by something else): NaN, inf, unnormalised."""
    runtime = make_runtime()
    index, _ = _build(runtime, n=50, d=8)
    index.save(tmp_path / "idx")
    vectors = np.load(tmp_path / "idx" / "vectors.npy")
    damage(vectors)
    np.save(tmp_path / "idx" / "vectors.npy", vectors)
    _restamp(tmp_path / "idx", "vectors.npy")
    with pytest.raises(DamagedIndexError, match=match):
        PatternIndex.load(tmp_path / "idx", runtime=runtime)


def test_fortran_order_and_wrong_dtype_are_rejected_even_without_verify(tmp_path, make_runtime):
    runtime = make_runtime()
    index, _ = _build(runtime, n=50, d=8)
    index.save(tmp_path / "idx")
    vectors = np.load(tmp_path / "idx" / "vectors.npy")
    for bad, match in (
        (np.asfortranarray(vectors), "C order"),
        (vectors.astype(np.float64), "dtype float64"),
    ):
        np.save(tmp_path / "idx" / "vectors.npy", bad)
        for verify in (True, False):
            with pytest.raises(DamagedIndexError, match=match):
                PatternIndex.load(tmp_path / "idx", runtime=runtime, verify=verify)


def test_verify_false_skips_the_content_pass(tmp_path, make_runtime):
    runtime = make_runtime()
    index, vectors = _build(runtime, n=50, d=8)
    index.save(tmp_path / "idx")
    file = tmp_path / "idx" / "vectors.npy"
    data = bytearray(file.read_bytes())
    data[-4] ^= 0x01  # lowest mantissa bit of the last value: still a unit vector within tolerance
    file.write_bytes(bytes(data))
    with pytest.raises(DamagedIndexError, match="checksum mismatch"):
        PatternIndex.load(tmp_path / "idx", runtime=runtime)
    assert len(PatternIndex.load(tmp_path / "idx", runtime=runtime, verify=False)) == 50


def _broken(tmp_path, runtime):
    index, _ = _build(runtime, n=30, d=8)
    index.save(tmp_path / "idx")
    return tmp_path / "idx"


@pytest.mark.parametrize(
    "breakage, names",
    [
        (lambda d: (d / "vectors.npy").write_bytes(b""), "vectors.npy"),  # EOFError
        (
            lambda d: (d / "manifest.json").write_bytes(b"\xff\xfe{"),
            "manifest.json",
        ),  # UnicodeDecodeError
        (
            lambda d: (d / "manifest.json").write_text(
                json.dumps({"format": "synapse-mojo-index/2", "dim": 8})
            ),
            "manifest.json",
        ),  # KeyError count
        (lambda d: (d / "manifest.json").write_text("[1, 2]"), "manifest.json"),  # AttributeError
        (lambda d: (d / "ids.offsets.npy").unlink(), "ids.offsets.npy"),  # FileNotFoundError
        (lambda d: (d / "metadata.jsonl").unlink(), "metadata.jsonl"),
        (
            lambda d: (d / "ids.jsonl").write_bytes(b'"p0"\n' * 30),
            "ids.jsonl",
        ),  # offsets no longer fit
        (lambda d: (d / "quantizer.npy").write_bytes(b"x"), None),  # not an int8 index: ignored
    ],
)
def test_every_load_failure_is_a_synapse_error_naming_the_file(
    tmp_path, make_runtime, breakage, names
):
    runtime = make_runtime()
    directory = _broken(tmp_path, runtime)
    breakage(directory)
    if names is None:
        assert len(PatternIndex.load(directory, runtime=runtime)) == 30
        return
    for verify in (True, False):
        with pytest.raises(DamagedIndexError, match=names.replace(".", r"\.")):
            PatternIndex.load(directory, runtime=runtime, verify=verify)


def test_loading_a_file_or_nothing_is_a_synapse_error(tmp_path, make_runtime):
    runtime = make_runtime()
    (tmp_path / "file").write_text("x")
    with pytest.raises(DamagedIndexError, match="not a directory"):
        PatternIndex.load(tmp_path / "file", runtime=runtime)
    with pytest.raises(DamagedIndexError, match="does not exist"):
        PatternIndex.load(tmp_path / "missing", runtime=runtime)


def test_damaged_jsonl_lines_fail_at_load_or_as_synapse_errors(tmp_path, make_runtime):
    """Same length, broken JSON: the checksum catches it at load; unverified, the row that is
    read raises DamagedIndexError (not a bare JSONDecodeError)."""
    runtime = make_runtime()
    directory = _broken(tmp_path, runtime)
    data = (directory / "metadata.jsonl").read_bytes()
    (directory / "metadata.jsonl").write_bytes(data.replace(b'{"i":0,', b'{"i":0;', 1))
    with pytest.raises(DamagedIndexError, match="metadata.jsonl"):
        PatternIndex.load(directory, runtime=runtime)
    loaded = PatternIndex.load(directory, runtime=runtime, verify=False)
    with pytest.raises(DamagedIndexError, match="metadata.jsonl: line 1"):
        loaded.search(np.ones(8), top_k=30)


def test_metadata_round_trips_exactly_or_is_rejected_at_upsert(tmp_path, make_runtime):
    runtime = make_runtime()
    index = PatternIndex(3, runtime=runtime)
    meta = {
        "s": "x",
        "i": 1,
        "f": 1.5,
        "b": True,
        "n": None,
        "l": [1, "a", [True]],
        "d": {"k": {"z": 0.0}},
    }
    index.upsert(["a"], [[1, 0, 0]], [meta])
    index.save(tmp_path / "idx")
    loaded = PatternIndex.load(tmp_path / "idx", runtime=runtime)
    assert loaded.get("a")[1] == meta
    for key in meta:
        if not isinstance(meta[key], (list, dict)):
            assert [h.id for h in loaded.search([1, 0, 0], filter={key: meta[key]})] == ["a"]
    for bad, match in (
        ({"tags": {"a", "b"}}, "set"),
        ({"t": (1, 2)}, "tuple"),
        ({1: "x"}, "keys must be strings"),
        ({"d": {2: "x"}}, "non-string key 2"),
        ({"v": np.int64(3)}, r"int64.*\.item\(\)"),
        ({"f": float("nan")}, "nan"),
        ({"x": b"raw"}, "bytes"),
        ({"nested": [{"when": object()}]}, r"'nested'\[0\]\['when'\]"),
    ):
        with pytest.raises((InvalidInputError, InvalidTypeError), match=match):
            index.upsert(["b"], [[0, 1, 0]], [bad])
    assert len(index) == 1
