"""On-disk format of a saved ``PatternIndex`` (a directory), read back memory-mapped.

    <dir>/manifest.json        {"format": "synapse-mojo-index/1", "dim", "count", "quantization", ...}
    <dir>/vectors.npy          float32 (count, dim), L2-normalised rows in insertion order
    <dir>/codes.npy            uint8 (count, dim), only with int8 quantisation
    <dir>/quantizer.npy        float32 (2, dim): offset, scale (int8 only)
    <dir>/ids.jsonl            one JSON string per row (the ids, in row order)
    <dir>/ids.offsets.npy      int64 (count + 1) byte offsets of the lines
    <dir>/metadata.jsonl       one JSON object (or null) per row
    <dir>/metadata.offsets.npy int64 (count + 1) byte offsets of the lines

``.npy`` files open with ``numpy.load(mmap_mode="r")``: opening costs no copy, pages are read
on first touch and shared by every process that maps the same files (the page cache). The
id and metadata files are memory-mapped too: a row's id or metadata is parsed only when it is
asked for, so a process that only searches never builds a million Python strings.
Files are written to a temporary directory and renamed into place, so a reader never sees a
half-written index.
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from ..errors import InvalidInputError

FORMAT = "synapse-mojo-index/1"


class LazyJsonLines(Sequence[Any]):
    """Read-only rows parsed on demand from a memory-mapped JSON-lines file."""

    def __init__(self, path: Path, offsets: np.ndarray, cache: bool = True) -> None:
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
    def __getitem__(self, row):  # type: ignore[no-untyped-def]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if row in self._cache:
            return self._cache[row]
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        value = json.loads(self._map[start:end])
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


def write_index(
    path: str | os.PathLike[str],
    *,
    dim: int,
    ids: list[str],
    vectors: np.ndarray,
    metadata: Sequence[dict[str, Any]],
    codes: np.ndarray | None,
    quantizer: tuple[np.ndarray, np.ndarray] | None,
    rerank_factor: int,
) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        np.save(tmp / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
        if codes is not None and quantizer is not None:
            np.save(tmp / "codes.npy", np.ascontiguousarray(codes, dtype=np.uint8))
            np.save(tmp / "quantizer.npy", np.stack(quantizer).astype(np.float32))
        _write_lines(tmp, "ids", ids)
        _write_lines(tmp, "metadata", metadata)
        manifest = {
            "format": FORMAT,
            "dim": dim,
            "count": len(ids),
            "quantization": "int8" if codes is not None else None,
            "rerank_factor": rerank_factor,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _write_lines(directory: Path, name: str, values: Sequence[Any]) -> None:
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    with open(directory / f"{name}.jsonl", "wb") as f:
        for i, value in enumerate(values):
            line = json.dumps(value, separators=(",", ":"), default=str).encode() + b"\n"
            f.write(line)
            offsets[i + 1] = offsets[i] + len(line)
    np.save(directory / f"{name}.offsets.npy", offsets)


def read_index(path: str | os.PathLike[str], mmap_mode: str | None = "r") -> dict[str, Any]:
    """Opens a saved index; arrays are memory-mapped unless ``mmap_mode`` is None."""
    source = Path(path)
    try:
        manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"{source} is not a saved index (no manifest.json)") from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{source}/manifest.json is not valid JSON: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise InvalidInputError(f"{source}: unsupported index format {manifest.get('format')!r}; expected {FORMAT}")
    try:
        vectors = np.load(source / "vectors.npy", mmap_mode=mmap_mode)
        id_offsets = np.load(source / "ids.offsets.npy", mmap_mode=mmap_mode)
        offsets = np.load(source / "metadata.offsets.npy", mmap_mode=mmap_mode)
        codes = quantizer = None
        if manifest.get("quantization") == "int8":
            codes = np.load(source / "codes.npy", mmap_mode=mmap_mode)
            quantizer = np.load(source / "quantizer.npy")
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{source}: damaged index ({exc})") from exc
    count, dim = int(manifest["count"]), int(manifest["dim"])
    problems = []
    if vectors.shape != (count, dim) or vectors.dtype != np.float32:
        problems.append(f"vectors.npy has {vectors.dtype} {vectors.shape}, expected float32 ({count}, {dim})")
    if len(id_offsets) != count + 1 or len(offsets) != count + 1:
        problems.append("ids / metadata offsets do not match the row count")
    if codes is not None and codes.shape != (count, dim):
        problems.append(f"codes.npy has shape {codes.shape}, expected ({count}, {dim})")
    if problems:
        raise InvalidInputError(f"{source}: damaged index: " + "; ".join(problems))
    return {
        "manifest": manifest,
        "vectors": vectors,
        "codes": codes,
        "quantizer": quantizer,
        # Ids are not cached: a search-only process keeps them in the page cache, not the heap.
        "ids": LazyJsonLines(source / "ids.jsonl", id_offsets, cache=False),
        "metadata": LazyJsonLines(source / "metadata.jsonl", offsets),
    }
