"""On-disk format of a saved ``PatternIndex`` (a directory), read back memory-mapped.

    <dir>/manifest.json        {"format": "synapse-mojo-index/2", "dim", "count", "quantization",
                                "rerank_factor", "files": {name: {"bytes", "blake2b"}}}
    <dir>/vectors.npy          float32 (count, dim), L2-normalised rows in insertion order
    <dir>/codes.npy            uint8 (count, dim): with quantization "int8", and with "auto"
                               once the index keeps codes (then listed under "files")
    <dir>/quantizer.npy        float32 (2, dim): offset, scale (with codes.npy)
    <dir>/ids.jsonl            one JSON string per row (the ids, in row order)
    <dir>/ids.offsets.npy      int64 (count + 1) byte offsets of the lines
    <dir>/metadata.jsonl       one JSON object (or null) per row
    <dir>/metadata.offsets.npy int64 (count + 1) byte offsets of the lines

``.npy`` files open with ``numpy.load(mmap_mode="r")``: opening costs no copy, pages are read
on first touch and shared by every process that maps the same files (the page cache). The
id and metadata files are memory-mapped too: a row's id or metadata is parsed only when it is
asked for, so a process that only searches never builds a million Python strings.

Writing: files go to a fresh directory beside the target (normal permissions: the umask
applies) and are renamed into place, so a reader never sees a half-written index. An existing
target is replaced only when it is a saved index (nothing but index files) or an empty
directory; any other path (a regular file, a directory holding other files) is refused and
left untouched.

Reading: the manifest's shape and types are checked, every file's structure (dtype, C order,
shape, offsets that fit the jsonl file and end on line breaks) is checked, and with
``verify=True`` (default) every file's size and BLAKE2b checksum is compared with the manifest
while the vectors are checked to be finite and of unit norm. The files are read through the
page cache, not the memory maps, so verification does not make the vectors resident in the
process. Any failure is a ``DamagedIndexError`` naming the file. ``verify=False`` skips the
content pass (for trusted files when opening time matters). Format 1 (no checksums) is still
read, with the structural checks only.
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from ..errors import DamagedIndexError, InvalidInputError

#: ``numpy.load``'s memory-map modes (a loaded index uses "r").
MmapMode = Literal["r+", "r", "w+", "c"]

FORMAT = "synapse-mojo-index/2"
FORMAT_V1 = "synapse-mojo-index/1"

#: Every file a saved index may hold; a directory with anything else is not replaced by save().
INDEX_FILES = frozenset(
    {
        "manifest.json",
        "vectors.npy",
        "codes.npy",
        "quantizer.npy",
        "ids.jsonl",
        "ids.offsets.npy",
        "metadata.jsonl",
        "metadata.offsets.npy",
    }
)

#: Largest deviation of a stored row's squared norm from 1 (float32 rounding is ~d * 1e-7).
NORM_TOLERANCE = 1e-3
_CHUNK_BYTES = 8 << 20


class LazyJsonLines(Sequence[Any]):
    """Read-only rows parsed on demand from a memory-mapped JSON-lines file."""

    def __init__(self, path: Path, offsets: np.ndarray, cache: bool = True) -> None:
        self._path = path
        self._offsets = offsets
        self._keep = cache
        self._file = open(path, "rb")  # noqa: SIM115 - lives as long as the index
        size = os.fstat(self._file.fileno()).st_size
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        self._cache: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, row: int) -> Any: ...
    @overload
    def __getitem__(self, row: slice) -> list[Any]: ...
    def __getitem__(self, row: int | slice) -> Any:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if row in self._cache:
            return self._cache[row]
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        try:
            value = json.loads(self._map[start:end])
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise DamagedIndexError(
                f"{self._path}: line {row + 1} is not valid JSON ({exc})"
            ) from exc
        if self._keep:
            self._cache[row] = value
        return value

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def close(self) -> None:
        if isinstance(self._map, mmap.mmap):
            self._map.close()
        self._file.close()


# ------------------------------------------------------------------ writing


def write_index(
    path: str | os.PathLike[str],
    *,
    dim: int,
    ids: list[str],
    vectors: np.ndarray,
    metadata: Sequence[dict[str, Any] | None],
    codes: np.ndarray | None,
    quantizer: tuple[np.ndarray, np.ndarray] | None,
    rerank_factor: int,
    quantization: str | None = None,
) -> Path:
    """``quantization`` is the index's mode (None, "int8" or "auto": ``PatternIndex``); an
    index with codes is at least "int8"."""
    if quantization is None and codes is not None:
        quantization = "int8"
    target = Path(path)
    _check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_directory(target, "tmp")
    try:
        np.save(tmp / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
        if codes is not None and quantizer is not None:
            np.save(tmp / "codes.npy", np.ascontiguousarray(codes, dtype=np.uint8))
            np.save(tmp / "quantizer.npy", np.stack(quantizer).astype(np.float32))
        _write_lines(tmp, "ids", ids)
        _write_lines(tmp, "metadata", metadata)
        names = sorted(p.name for p in tmp.iterdir())
        with ThreadPoolExecutor(max_workers=min(4, len(names))) as pool:  # hashlib drops the GIL
            sums = dict(zip(names, pool.map(lambda name: _scan(tmp / name), names), strict=True))
        manifest = {
            "format": FORMAT,
            "dim": dim,
            "count": len(ids),
            "quantization": quantization,
            "rerank_factor": rerank_factor,
            "files": sums,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        _sync_directory(tmp)
        if target.is_dir() and not target.is_symlink():
            # rename() replaces an empty directory only: move the old index aside first.
            old = _fresh_directory(target, "old")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)  # nothing but index files (checked above)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _check_replaceable(target: Path) -> None:
    """Refuses a target that is anything but nothing, an empty directory or a saved index."""
    if not os.path.lexists(target):
        return
    if target.is_symlink() or not target.is_dir():
        raise InvalidInputError(
            f"{target} exists and is not a directory: refusing to replace it with a saved index "
            "(remove it, or choose another path)"
        )
    entries = {p.name for p in target.iterdir()}
    if not entries:
        return
    others = sorted(entries - INDEX_FILES)
    if "manifest.json" not in entries or others:
        what = f"it holds {others[0]!r}" if others else "it has no manifest.json"
        raise InvalidInputError(
            f"{target} is a directory that is not a saved index ({what}): refusing to replace it "
            "(save to a new or empty directory, or to an existing index)"
        )


def _fresh_directory(target: Path, kind: str) -> Path:
    """A new directory beside ``target``, created with mkdir (so the umask applies)."""
    while True:
        candidate = target.with_name(f".{target.name}.{kind}-{secrets.token_hex(6)}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue


def _sync_directory(directory: Path) -> None:
    for entry in directory.iterdir():
        with open(entry, "rb") as f:
            os.fsync(f.fileno())


def _write_lines(directory: Path, name: str, values: Sequence[Any]) -> None:
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    with open(directory / f"{name}.jsonl", "wb") as f:
        for i, value in enumerate(values):
            try:
                text = json.dumps(value, separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError) as exc:  # upsert validates; this is the last guard
                raise InvalidInputError(
                    f"{name} row {i} is not JSON-representable ({exc})"
                ) from None
            line = text.encode() + b"\n"
            f.write(line)
            offsets[i + 1] = offsets[i] + len(line)
    np.save(directory / f"{name}.offsets.npy", offsets)


def _scan(
    path: Path,
    data_offset: int = 0,
    row_bytes: int = 0,
    check: Callable[[bytes], None] | None = None,
) -> dict[str, Any]:
    """Size and BLAKE2b of a file read through the page cache; ``check`` sees the data region
    after ``data_offset`` in chunks of whole rows of ``row_bytes``."""
    digest = hashlib.blake2b(digest_size=16)
    size = 0
    with open(path, "rb", buffering=0) as f:
        if check is not None and data_offset:
            head = f.read(data_offset)
            digest.update(head)
            size += len(head)
        step = _CHUNK_BYTES if not row_bytes else max(1, _CHUNK_BYTES // row_bytes) * row_bytes
        while True:
            chunk = f.read(step)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            if check is not None:
                check(chunk)
    return {"bytes": size, "blake2b": digest.hexdigest()}


# ------------------------------------------------------------------ reading


def read_index(
    path: str | os.PathLike[str], mmap_mode: MmapMode | None = "r", *, verify: bool = True
) -> dict[str, Any]:
    """Opens a saved index; arrays are memory-mapped unless ``mmap_mode`` is None.

    Every failure is a ``DamagedIndexError`` (an ``InvalidInputError``) naming the file.
    """
    source = Path(path)
    manifest = _read_manifest(source)
    count, dim = manifest["count"], manifest["dim"]
    int8 = _has_codes(manifest)
    vectors = _load_npy(source, "vectors.npy", mmap_mode, np.float32, (count, dim))
    id_offsets = _load_npy(source, "ids.offsets.npy", mmap_mode, np.int64, (count + 1,))
    meta_offsets = _load_npy(source, "metadata.offsets.npy", mmap_mode, np.int64, (count + 1,))
    codes = quantizer = None
    if int8:
        codes = _load_npy(source, "codes.npy", mmap_mode, np.uint8, (count, dim))
        quantizer = _load_npy(source, "quantizer.npy", None, np.float32, (2, dim))
        if not np.all(np.isfinite(quantizer)) or not np.all(quantizer[1] > 0):
            raise DamagedIndexError(
                f"{source / 'quantizer.npy'}: damaged index: scales must be finite and positive"
            )
    for name, offsets in (("ids", id_offsets), ("metadata", meta_offsets)):
        _check_offsets(source / f"{name}.jsonl", source / f"{name}.offsets.npy", offsets)
    if verify:
        _verify_files(source, manifest)
    opened: list[LazyJsonLines] = []
    try:
        # Ids are not cached: a search-only process keeps them in the page cache, not the heap.
        opened.append(LazyJsonLines(source / "ids.jsonl", id_offsets, cache=False))
        opened.append(LazyJsonLines(source / "metadata.jsonl", meta_offsets))
    except OSError as exc:
        for lazy in opened:
            lazy.close()
        raise DamagedIndexError(
            f"{exc.filename or source}: cannot open ({exc.strerror or exc})"
        ) from exc
    return {
        "manifest": manifest,
        "vectors": vectors,
        "codes": codes,
        "quantizer": quantizer,
        "ids": opened[0],
        "metadata": opened[1],
    }


def _has_codes(manifest: dict[str, Any]) -> bool:
    """An "int8" index always has codes; an "auto" one when its manifest lists them."""
    mode = manifest.get("quantization")
    return mode == "int8" or (mode == "auto" and "codes.npy" in (manifest.get("files") or {}))


def _read_manifest(source: Path) -> dict[str, Any]:
    file = source / "manifest.json"
    if not source.is_dir():
        what = "does not exist" if not os.path.lexists(source) else "is not a directory"
        raise DamagedIndexError(f"{source} is not a saved index (it {what})")
    try:
        manifest = json.loads(file.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise DamagedIndexError(f"{source} is not a saved index (no manifest.json)") from None
    except OSError as exc:
        raise DamagedIndexError(f"{file}: cannot read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise DamagedIndexError(f"{file} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise DamagedIndexError(
            f"{file}: damaged index: expected a JSON object, got {type(manifest).__name__}"
        )
    if manifest.get("format") not in (FORMAT, FORMAT_V1):
        raise DamagedIndexError(
            f"{file}: unsupported index format {manifest.get('format')!r}; expected {FORMAT}"
        )

    def integer(key: str, low: int) -> int:
        value = manifest.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise DamagedIndexError(
                f"{file}: damaged index: {key!r} must be an integer >= {low}, got {value!r}"
            )
        return value

    integer("dim", 1)
    integer("count", 0)
    if manifest.get("quantization") not in (None, "int8", "auto"):
        raise DamagedIndexError(
            f"{file}: damaged index: unknown quantization {manifest.get('quantization')!r}"
        )
    if manifest.get("rerank_factor") is not None:
        integer("rerank_factor", 1)
    files = manifest.get("files")
    if manifest["format"] == FORMAT:
        ok = isinstance(files, dict) and all(
            isinstance(v, dict)
            and isinstance(v.get("bytes"), int)
            and isinstance(v.get("blake2b"), str)
            for v in files.values()
        )
        if not ok:
            raise DamagedIndexError(
                f"{file}: damaged index: 'files' must map file names to sizes and checksums"
            )
    return manifest


def _load_npy(
    source: Path, name: str, mmap_mode: MmapMode | None, dtype: Any, shape: tuple[int, ...]
) -> np.ndarray:
    file = source / name
    try:
        array = np.load(file, mmap_mode=mmap_mode, allow_pickle=False)
    except FileNotFoundError:
        raise DamagedIndexError(f"{file}: damaged index: the file is missing") from None
    except (OSError, ValueError, EOFError) as exc:
        raise DamagedIndexError(f"{file}: damaged index: not a readable .npy file ({exc})") from exc
    problems = []
    if array.dtype != np.dtype(dtype):
        problems.append(f"dtype {array.dtype}, expected {np.dtype(dtype)}")
    if array.shape != shape:
        problems.append(f"shape {array.shape}, expected {shape}")
    if not array.flags["C_CONTIGUOUS"]:
        problems.append("not in C order")
    if problems:
        raise DamagedIndexError(f"{file}: damaged index: " + "; ".join(problems))
    return array


def _check_offsets(file: Path, offsets_file: Path, offsets: np.ndarray) -> None:
    """Offsets start at 0, never decrease, end at the file's size, and every line ends in a
    newline."""
    try:
        size = file.stat().st_size
    except FileNotFoundError:
        raise DamagedIndexError(f"{file}: damaged index: the file is missing") from None
    except OSError as exc:
        raise DamagedIndexError(f"{file}: cannot read ({exc.strerror or exc})") from exc
    o = np.asarray(offsets)
    if o[0] != 0 or int(o[-1]) != size or (o.size > 1 and np.any(np.diff(o) < 1)):
        raise DamagedIndexError(
            f"{offsets_file}: damaged index: its line offsets do not fit {file.name} ({size} bytes)"
        )
    if o.size > 1:
        with open(file, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            ends = np.frombuffer(m, dtype=np.uint8)[o[1:] - 1]
            bad = np.flatnonzero(ends != ord("\n"))
            del ends
        if bad.size:
            raise DamagedIndexError(
                f"{file}: damaged index: line {int(bad[0]) + 1} does not end where "
                f"{offsets_file.name} says"
            )


def _verify_files(source: Path, manifest: dict[str, Any]) -> None:
    """Sizes and checksums of every file, plus finite unit-norm vectors, in one read per file."""
    expected: dict[str, dict[str, Any]] = manifest.get("files") or {}  # format 1: none
    if manifest["format"] == FORMAT:
        required = {
            "vectors.npy",
            "ids.jsonl",
            "ids.offsets.npy",
            "metadata.jsonl",
            "metadata.offsets.npy",
        }
        if _has_codes(manifest):
            required |= {"codes.npy", "quantizer.npy"}
        unlisted = sorted(required - set(expected))
        if unlisted:
            raise DamagedIndexError(
                f"{source / 'manifest.json'}: damaged index: no checksum for {unlisted[0]}"
            )
    present = {p.name for p in source.iterdir()}
    missing = sorted(set(expected) - present)
    if missing:
        raise DamagedIndexError(f"{source / missing[0]}: damaged index: the file is missing")
    dim = manifest["dim"]
    row = [0]

    def check_rows(chunk: bytes) -> None:
        rows = np.frombuffer(chunk, dtype=np.float32).reshape(-1, dim)
        sq = np.einsum("ij,ij->i", rows, rows, dtype=np.float64)
        bad = np.flatnonzero(~(np.abs(sq - 1.0) <= NORM_TOLERANCE))  # NaN fails too
        if bad.size:
            r = row[0] + int(bad[0])
            what = (
                "NaN or infinity"
                if not math.isfinite(float(sq[bad[0]]))
                else f"norm {math.sqrt(sq[bad[0]]):.6g}"
            )
            raise DamagedIndexError(
                f"{source / 'vectors.npy'}: damaged index: row {r} has {what}, "
                "expected a unit vector"
            )
        row[0] += rows.shape[0]

    def one(name: str) -> None:
        file = source / name
        try:
            if name == "vectors.npy":
                got = _scan(file, _npy_data_offset(file), dim * 4, check_rows)
            else:
                got = _scan(file)
        except DamagedIndexError:
            raise
        except OSError as exc:
            raise DamagedIndexError(f"{file}: cannot read ({exc.strerror or exc})") from exc
        except ValueError as exc:
            raise DamagedIndexError(f"{file}: damaged index ({exc})") from exc
        want = expected.get(name)
        if want is None:
            return
        if got["bytes"] != want["bytes"]:
            raise DamagedIndexError(
                f"{file}: damaged index: {got['bytes']} bytes, the manifest says {want['bytes']}"
            )
        if got["blake2b"] != want["blake2b"]:
            raise DamagedIndexError(
                f"{file}: damaged index: checksum mismatch (the file changed after it was saved)"
            )

    names = sorted(set(expected) | {"vectors.npy"})
    with ThreadPoolExecutor(max_workers=min(4, len(names))) as pool:  # hashlib drops the GIL
        for result in [pool.submit(one, name) for name in names]:
            result.result()


def _npy_data_offset(file: Path) -> int:
    with open(file, "rb") as f:
        major, _minor = np.lib.format.read_magic(f)
        if major == 1:
            np.lib.format.read_array_header_1_0(f)
        else:
            np.lib.format.read_array_header_2_0(f)
        return f.tell()
