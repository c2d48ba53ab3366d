"""``PatternMap``: a pattern store, an embedder and an in-memory ``PatternIndex`` in step.

    from synapse_mojo.patternmap import PatternMap
    with PatternMap.open("sqlite:///tmp/patterns.db", progress=True) as pmap:
        pmap.import_file("PATTERN_MAP.json")          # embed + write + index, one transaction
        pmap.add_text("Retry idempotent calls with jittered backoff", {"lang": "py"})
        for hit in pmap.search("how do I retry safely?", top_k=5):
            print(hit.id, round(hit.score, 3), hit.text.splitlines()[0])

On ``start`` (done by ``open``) the index is built from the store in batches, with a progress
bar when asked; patterns stored without an embedding are embedded then (and written back,
unless the store is read-only). Afterwards every write through the map goes to the store
first (one transaction) and then to the index, so the two stay in step; writes made by
other processes are picked up by ``refresh()``.

Searches run on the in-memory index by default (``search="memory"``: exact cosine, Mojo
kernel when available, NumPy otherwise), or are pushed down to the store's own vector index
(``search="store"``: Neo4j vector index or Redis 8 vector set; approximate; nothing is loaded
into memory).

The embedder (``embedder_from_env()`` unless one is given: MiniLM locally, or the server in
``SYNAPSE_EMBEDDINGS_URL``) must produce vectors of the store's dimension; otherwise
``DimensionMismatchError`` names both and what to do. Its model name is recorded in the store
(``info['embedding_model']``); a different model of the same dimension is allowed with a
warning (e.g. the same MiniLM served by MAX).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np

from ..embeddings import Embedder, embedder_from_env
from ..errors import (
    DimensionMismatchError,
    EmptyIndexError,
    InvalidInputError,
    InvalidTypeError,
    SynapseError,
    UnknownIdError,
)
from ..runtime.adapter import Runtime
from ..search.index import Filter, PatternIndex
from ..stores import (
    INFO_EMBEDDING_DIM,
    INFO_EMBEDDING_MODEL,
    Pattern,
    PatternStore,
    Relation,
    WriteResult,
    open_store,
)
from ..vectors import unusable_rows
from . import formats
from .progress import progress_bar

log = logging.getLogger("synapse_mojo.patternmap")

SEARCH_MODES = ("memory", "store")
#: Version of the token file written beside a saved index (``<store>.index.json``).
_SAVED_FORMAT = "synapse-mojo-saved-index/1"


@dataclass(frozen=True)
class PatternHit:
    """One search result: the pattern, its cosine similarity to the query, its text."""

    id: str
    score: float
    text: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class PatternSearchResult:
    """Hits plus where and how fast they were found.

    ``runtime``: ``mojo``/``python`` (in-memory index) or the store backend (push-down).
    ``search_ms``: the vector search alone; ``embed_ms``: embedding the query text (0 for a
    vector query).
    """

    hits: list[PatternHit]
    runtime: str
    search_ms: float
    embed_ms: float
    fallback_reason: str | None = None


@dataclass
class ImportReport:
    """What an import did and what it left out (never silently)."""

    source: str
    format: str
    added: int = 0
    updated: int = 0
    relations: int = 0
    embedded: int = 0  # embeddings computed for this import
    reused: int = 0  # embeddings kept from the store (same text, same model)
    skipped: list[formats.Skipped] = field(default_factory=list)

    @property
    def patterns(self) -> int:
        return self.added + self.updated


class PatternMap:
    """The pattern map service. Use ``PatternMap.open(url)``, or wrap a store yourself."""

    def __init__(
        self,
        store: PatternStore,
        embedder: Embedder | None = None,
        *,
        runtime: Runtime | None = None,
        search: str = "memory",
        embed_batch: int = 64,
        saved_index: bool = False,
    ) -> None:
        if search not in SEARCH_MODES:
            raise InvalidInputError(f"search={search!r}: expected one of {list(SEARCH_MODES)}")
        if search == "store" and not store.supports_search:
            # Raises UnsupportedStoreOperationError with the store's own explanation.
            store.search(np.ones(1, dtype=np.float32), 1)
        self.store = store
        self._embedder = embedder
        self._owns_embedder = embedder is None  # close only what we create
        self._runtime = runtime
        self.search_mode = search
        self.embed_batch = embed_batch
        self.index: PatternIndex | None = None
        self.started = False  # the index is built and kept in step only after start()
        self.not_indexed = 0  # patterns left out of the index (no embedding, read-only store)
        #: Keep the index saved beside the store (SQLite files) and open it memory-mapped on
        #: start while the store has not changed since (its change-feed token says so).
        self.saved_index = saved_index
        self.index_source = "none"  # "store" (built) or "saved" (opened beside the store)

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        embedder: Embedder | None = None,
        runtime: Runtime | None = None,
        search: str = "memory",
        progress: bool = False,
        start: bool = True,
        saved_index: bool = False,
        create: bool = True,
    ) -> PatternMap:
        """Opens the store at ``url`` (default: ``SYNAPSE_STORE_URL`` or the user data file).
        ``create=False``: a SQLite file that does not exist is an error, not created."""
        store = open_store(url, create=create)
        try:
            pmap = cls(store, embedder, runtime=runtime, search=search, saved_index=saved_index)
            if start:
                pmap.start(progress=progress)
            return pmap
        except BaseException:
            store.close()
            raise

    # ------------------------------------------------------------------ embedder

    @property
    def embedder(self) -> Embedder:
        """The embedder, created from the environment on first use."""
        if self._embedder is None:
            self._embedder = embedder_from_env()
        return self._embedder

    def check_embedder(self) -> None:
        """Raises ``DimensionMismatchError`` if the embedder cannot serve this store."""
        info = self.store.info()
        stored = info.get(INFO_EMBEDDING_DIM)
        if stored is None:
            return
        dim = self.embedder.dim
        if dim != stored:
            model = info.get(INFO_EMBEDDING_MODEL, "unknown model")
            raise DimensionMismatchError(
                f"{self.store.url} holds {stored}-dimensional embeddings ({model}), but the "
                f"embedder {self.embedder.model!r} gives {dim} dimensions: point "
                "SYNAPSE_EMBEDDINGS_URL/SYNAPSE_EMBEDDINGS_MODEL at the store's model, or "
                "export the map and import it into a new store to re-embed it"
            )
        recorded = info.get(INFO_EMBEDDING_MODEL)
        if recorded is not None and recorded != self.embedder.model:
            log.warning(
                "%s was embedded with %r; the embedder is %r (same dimension %d): scores are "
                "only meaningful if both are the same model",
                self.store.url, recorded, self.embedder.model, dim,
            )  # fmt: skip

    def warm_up(self) -> None:
        """Pays the one-time costs before the first query, so that its latency is the search's:
        the embedder's model load and the search kernel's load and start-up self-check. Starts
        the map first if it is not started (the index is built or opened)."""
        if not self.started:
            self.start()
        self.embedder.embed(["warm-up"])
        if self.index is not None:
            self.index.runtime.feature("pattern_search").kernel()

    def _embed(self, texts: list[str], progress: bool, description: str) -> np.ndarray:
        with progress_bar(progress and len(texts) > 0, description, len(texts)) as advance:
            parts = []
            for start in range(0, len(texts), self.embed_batch):
                chunk = texts[start : start + self.embed_batch]
                parts.append(self.embedder.embed(chunk))
                advance(len(chunk))
        if not parts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.concatenate(parts)

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, progress: bool = False, batch_size: int = 2000) -> int:
        """Builds the in-memory index from the store; returns the patterns indexed.

        Patterns without an embedding are embedded and written back first (unless the store
        is read-only: then they are left out and counted in ``not_indexed``).
        """
        self.started = True
        if self.search_mode == "store":
            self._sync_store_vectors(progress)
            return 0
        saved = self._saved_index_paths()
        token = self.store.changes().token if saved is not None else None
        if saved is not None and token is not None and self._open_saved_index(saved, token):
            return len(self.index)  # type: ignore[arg-type]
        total = self.store.count()
        info = self.store.info()
        dim = info.get(INFO_EMBEDDING_DIM)
        index: PatternIndex | None = (
            PatternIndex(int(dim), runtime=self._runtime, capacity=max(total, 16)) if dim else None
        )
        missing: list[Pattern] = []
        with progress_bar(
            progress and total > 0, f"loading {self.store.backend} patterns", total
        ) as advance:
            for batch in self.store.iter_batches(batch_size):
                embedded = [p for p in batch if p.embedding is not None]
                missing.extend(p for p in batch if p.embedding is None)
                if embedded:
                    if index is None:  # pragma: no cover - dim is recorded with the first embedding
                        first = embedded[0].embedding
                        assert first is not None  # the batch was filtered on it
                        index = PatternIndex(
                            int(first.shape[0]),
                            runtime=self._runtime,
                            capacity=max(total, 16),
                        )
                    vectors = np.stack([p.embedding for p in embedded if p.embedding is not None])
                    bad, reasons = unusable_rows(vectors)
                    if bad.size:
                        pid = embedded[int(bad[0])].id
                        raise InvalidInputError(
                            f"{self.store.url}: pattern {pid!r} has an embedding that cannot be "
                            f"searched (it {reasons[0]}; {bad.size} such in this batch): delete it "
                            f"(synapse-mojo patterns delete {pid}) or write it again with its text "
                            "and no embedding, so that it is embedded"
                        )
                    index.upsert([p.id for p in embedded], vectors, [p.metadata for p in embedded])
                advance(len(batch))
        self.index = index
        self.index_source = "store"
        self.not_indexed = 0
        if saved is not None and token is not None and not missing and index is not None:
            self._save_index(saved, token)
        if missing:
            if self.store.read_only:
                self.not_indexed = len(missing)
                log.warning(
                    "%d patterns in %s have no embedding and the store is read-only: "
                    "they are not searchable",
                    len(missing),
                    self.store.url,
                )
            else:
                self.upsert(missing, progress=progress)
        return len(self.index) if self.index is not None else 0

    # ------------------------------------------------------------------ saved index

    def _saved_index_paths(self) -> tuple[Path, Path] | None:
        """(index directory, token file) beside a SQLite file store, when ``saved_index``."""
        path = getattr(self.store, "path", None)
        if not self.saved_index or self.store.backend != "sqlite" or not isinstance(path, Path):
            return None
        return path.with_name(path.name + ".index"), path.with_name(path.name + ".index.json")

    def _open_saved_index(self, paths: tuple[Path, Path], token: Any) -> bool:
        """Opens the saved index (memory-mapped, checksums verified) if it was saved at
        ``token``; False (and a rebuild) for anything else."""
        directory, token_file = paths
        try:
            note = json.loads(token_file.read_text(encoding="utf-8"))
            if (
                not isinstance(note, dict)
                or note.get("format") != _SAVED_FORMAT
                or note.get("token") != token
            ):
                return False
            index = PatternIndex.load(directory, runtime=self._runtime, mmap=True)
        except (OSError, ValueError, SynapseError) as exc:
            log.debug("saved index beside %s not used: %s", self.store.url, exc)
            return False
        if note.get("count") != len(index):
            return False
        if index.quantization != "auto":
            # Saved before the index's default kept int8 codes (``quantization="auto"``):
            # rebuilt once, then saved again in the default's form.
            log.debug("saved index beside %s rebuilt: made without codes", self.store.url)
            return False
        self.index, self.index_source, self.not_indexed = index, "saved", 0
        return True

    def _save_index(self, paths: tuple[Path, Path], token: Any) -> None:
        """Saves the index beside the store, then the token it matches (best effort: a store in
        a read-only place just rebuilds every time). Only our own files are replaced."""
        directory, token_file = paths
        try:
            if token_file.exists():
                old = json.loads(token_file.read_text(encoding="utf-8"))
                if not isinstance(old, dict) or old.get("format") != _SAVED_FORMAT:
                    return  # not ours: leave it alone
            self.index.save(directory)  # type: ignore[union-attr]  # refuses non-index paths
            note = {"format": _SAVED_FORMAT, "token": token, "count": len(self.index)}  # type: ignore[arg-type]
            temporary = token_file.with_name(f".{token_file.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(note), encoding="utf-8")
            os.replace(temporary, token_file)
        except (OSError, ValueError, SynapseError) as exc:
            log.debug("could not save the index beside %s: %s", self.store.url, exc)

    def refresh(self, *, progress: bool = False) -> int:
        """Rebuilds the index from the store (to see other processes' writes)."""
        return self.start(progress=progress)

    def apply_changes(self, ids: Iterable[str]) -> int:
        """Brings the index in step with the store for ``ids`` (patterns another process wrote
        or deleted, e.g. from ``store.changes()``): re-reads them, re-indexes those that exist
        with an embedding and removes the rest. Returns how many ids were applied."""
        id_list = list(dict.fromkeys(ids))
        if not self.started or self.search_mode == "store" or not id_list:
            return 0
        current = self.store.get_many(id_list)
        gone = [i for i in id_list if i not in current or current[i].embedding is None]
        if self.index is not None and gone:
            self.index.remove(gone, missing_ok=True)
        self._index_upsert([p for p in current.values() if p.embedding is not None])
        return len(id_list)

    def _sync_store_vectors(self, progress: bool) -> None:
        """Brings a vector index the store keeps apart from its patterns up to date (a no-op
        for stores without one), so that searching on the server sees every pattern."""
        if self.store.read_only or not self.store.vectors_out_of_step():
            return
        total = self.store.count()
        with progress_bar(
            progress and total > 0, "building the store's vector index", total
        ) as advance:
            self.store.sync_vectors(progress=advance)

    def close(self) -> None:
        """Closes the store, and the embedder if this map created it."""
        try:
            self.store.close()
        finally:
            if self._embedder is not None and self._owns_embedder:
                self._embedder.close()

    def __enter__(self) -> PatternMap:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ writes

    def upsert(
        self,
        patterns: Iterable[Pattern],
        relations: Iterable[Relation] = (),
        *,
        progress: bool = False,
    ) -> WriteResult:
        """Embeds patterns that have no embedding, writes everything in one store transaction,
        then updates the index. Nothing changes anywhere if any step before the commit fails."""
        pattern_list = list(patterns)
        relation_list = list(relations)
        need = [i for i, p in enumerate(pattern_list) if p.embedding is None]
        embedder_used = False
        if need:
            self.check_embedder()
            vectors = self._embed(
                [pattern_list[i].text for i in need], progress, "embedding patterns"
            )
            for i, vector in zip(need, vectors, strict=True):
                p = pattern_list[i]
                pattern_list[i] = Pattern(
                    p.id, p.text, p.metadata, vector, p.created_at, p.updated_at
                )
            embedder_used = True
        by_dim: dict[int, list[Pattern]] = {}
        for p in pattern_list:
            if p.embedding is not None:
                by_dim.setdefault(p.embedding.shape[0], []).append(p)
        for group in by_dim.values():  # before the store write: store and index stay in step
            vectors = np.stack([p.embedding for p in group if p.embedding is not None])
            bad, reasons = unusable_rows(vectors)
            if bad.size:
                raise InvalidInputError(
                    f"pattern {group[int(bad[0])].id!r}: the embedding {reasons[0]}; cosine "
                    "search needs a finite, non-zero vector"
                )
        if self.index is not None:
            for p in pattern_list:
                if p.embedding is not None and p.embedding.shape[0] != self.index.dim:
                    raise DimensionMismatchError(
                        f"pattern {p.id!r} has a {p.embedding.shape[0]}-dimensional embedding; "
                        f"the index has dimension {self.index.dim}"
                    )
        result = self.store.upsert(pattern_list, relation_list)
        if embedder_used and self.store.info().get(INFO_EMBEDDING_MODEL) is None:
            self.store.set_info({INFO_EMBEDDING_MODEL: self.embedder.model})
        self._index_upsert(pattern_list)
        return result

    def _index_upsert(self, patterns: list[Pattern]) -> None:
        if self.search_mode == "store" or not self.started:
            return
        embedded = [p for p in patterns if p.embedding is not None]
        bare = [p.id for p in patterns if p.embedding is None]
        if self.index is not None and bare:
            self.index.remove(bare, missing_ok=True)
        if not embedded:
            return
        if self.index is None:
            self.index = PatternIndex(int(embedded[0].embedding.shape[0]), runtime=self._runtime)  # type: ignore[union-attr]
        self.index.upsert(
            [p.id for p in embedded],
            np.stack([p.embedding for p in embedded]),  # type: ignore[misc]
            [p.metadata for p in embedded],
        )

    def add_text(
        self, text: str, metadata: Mapping[str, Any] | None = None, *, pattern_id: str | None = None
    ) -> Pattern:
        """Embeds and stores one pattern; the id defaults to ``p_`` + 12 hex of the text's SHA-256
        (so adding the same text twice updates one pattern)."""
        if not isinstance(text, str):
            raise InvalidTypeError(f"text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InvalidInputError("text is empty: nothing to embed")
        pid = pattern_id or "p_" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
        pattern = Pattern(pid, text, dict(metadata or {}))
        self.upsert([pattern])
        return self.store.get(pid)

    def delete(self, ids: str | Iterable[str]) -> int:
        """Deletes patterns (and their relations) from the store, then from the index."""
        id_list = [ids] if isinstance(ids, str) else list(ids)
        removed = self.store.delete(id_list)
        if self.index is not None:
            self.index.remove(id_list, missing_ok=True)
        return removed

    def get(self, pattern_id: str) -> Pattern:
        return self.store.get(pattern_id)

    # ------------------------------------------------------------------ search

    def search(self, query: str | Any, top_k: int = 5, filter: Filter = None) -> list[PatternHit]:
        """The ``top_k`` patterns most similar to ``query`` (text, or a vector), best first."""
        return self.search_detailed(query, top_k, filter).hits

    def search_detailed(
        self, query: str | Any, top_k: int = 5, filter: Filter = None
    ) -> PatternSearchResult:
        embed_ms = 0.0
        if isinstance(query, str):
            if not query.strip():
                raise InvalidInputError("the query text is empty")
            self.check_embedder()
            started = time.perf_counter()
            vector = self.embedder.embed_one(query)
            embed_ms = (time.perf_counter() - started) * 1e3
        else:
            vector = query
        if self.search_mode == "store":
            if filter is not None:
                raise InvalidInputError("filters need the in-memory index (search='memory')")
            started = time.perf_counter()
            pairs = self.store.search(vector, top_k)
            search_ms = (time.perf_counter() - started) * 1e3
            runtime, reason = self.store.backend, None
        else:
            if not self.started:
                self.start()
            if self.index is None or len(self.index) == 0:
                raise EmptyIndexError(
                    f"{self.store.url} holds no embedded patterns: import or add some first"
                )
            result = self.index.search_detailed(vector, top_k, filter)
            pairs = [(h.id, h.score) for h in result.hits]
            search_ms, runtime, reason = result.elapsed_ms, result.runtime, result.fallback_reason
        stored = self.store.get_many([pid for pid, _ in pairs])
        hits = [
            PatternHit(
                pid, max(-1.0, min(1.0, float(score))), stored[pid].text, stored[pid].metadata
            )
            for pid, score in pairs
            if pid in stored
        ]
        return PatternSearchResult(hits, runtime, search_ms, embed_ms, reason)

    # ------------------------------------------------------------------ import / export

    def import_file(
        self,
        path: str | Path,
        *,
        format: str = "auto",
        reembed: bool = False,
        strict: bool = False,
        progress: bool = False,
    ) -> ImportReport:
        """Imports a PATTERN_MAP.json or JSONL file: parse and validate everything, embed what
        needs it, then write patterns and relations in one transaction and index them.

        A malformed file raises ``ImportFormatError`` before anything is written; records that
        cannot be imported are left out and listed in ``report.skipped`` with the reason.
        Embeddings in a JSONL file are kept when they come from the embedder's model (as its
        header says) and have its dimension, unless ``reembed``.
        """
        doc = formats.read_file(path, format, strict=strict)
        report = ImportReport(str(path), doc.format, skipped=list(doc.skipped))
        if not doc.patterns and not doc.relations:
            return report
        file_model = doc.info.get(INFO_EMBEDDING_MODEL)
        patterns, replaced = [], 0
        for p in doc.patterns:
            embedding = p.embedding
            keep = embedding is not None and not reembed
            if (
                keep
                and embedding is not None
                and (file_model != self.embedder.model or embedding.shape[0] != self.embedder.dim)
            ):
                keep, replaced = False, replaced + 1
            patterns.append(p if keep else Pattern(p.id, p.text, p.metadata, None, p.created_at))
        if replaced:
            report.skipped.append(
                formats.Skipped(
                    "embeddings",
                    f"{replaced} embeddings from {file_model or 'an unnamed model'} were not used "
                    f"(the embedder is {self.embedder.model}, {self.embedder.dim} dimensions): "
                    "re-embedded",
                )
            )
        if not reembed:
            report.reused = self._reuse_stored_embeddings(patterns)
        report.embedded = sum(1 for p in patterns if p.embedding is None)
        relations = self._relations_with_known_endpoints(doc, report)
        result = self.upsert(patterns, relations, progress=progress)
        info = {k: v for k, v in doc.info.items() if k not in formats.MANAGED_INFO}
        if info and not self.store.read_only:
            self.store.set_info(info)
        report.added, report.updated, report.relations = result
        return report

    def _reuse_stored_embeddings(self, patterns: list[Pattern], chunk: int = 1000) -> int:
        """Fills in embeddings from the store for patterns whose text is unchanged (same model),
        so re-importing an updated map only embeds what changed. Returns how many."""
        info = self.store.info()
        if (
            info.get(INFO_EMBEDDING_MODEL) != self.embedder.model
            or info.get(INFO_EMBEDDING_DIM) != self.embedder.dim
        ):
            return 0
        reused = 0
        todo = [i for i, p in enumerate(patterns) if p.embedding is None]
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            stored = self.store.get_many([patterns[i].id for i in part])
            for i in part:
                p = patterns[i]
                old = stored.get(p.id)
                if old is not None and old.embedding is not None and old.text == p.text:
                    patterns[i] = Pattern(p.id, p.text, p.metadata, old.embedding, p.created_at)
                    reused += 1
        return reused

    def _relations_with_known_endpoints(
        self, doc: formats.ParsedDocument, report: ImportReport
    ) -> list[Relation]:
        in_file = {p.id for p in doc.patterns}
        outside = sorted({e for r in doc.relations for e in (r.source, r.target)} - in_file)
        in_store = set(self.store.get_many(outside)) if outside else set()
        kept = []
        for relation in doc.relations:
            missing = [
                e
                for e in (relation.source, relation.target)
                if e not in in_file and e not in in_store
            ]
            if missing:
                report.skipped.append(
                    formats.Skipped(
                        f"relation {relation.source} -> {relation.target}",
                        f"pattern {missing[0]!r} is neither in the file nor in the store",
                    )
                )
            else:
                kept.append(relation)
        return kept

    def export(self, out: IO[str], format: str = "jsonl", *, embeddings: bool = True) -> int:
        """Writes the map as ``jsonl`` (complete) or ``pattern_map`` (PATTERN_MAP.json)."""
        if format == "jsonl":
            return formats.write_jsonl(self.store, out, embeddings=embeddings)
        if format == "pattern_map":
            return formats.write_pattern_map(self.store, out)
        raise InvalidInputError(f"unknown export format {format!r}; expected jsonl or pattern_map")

    # ------------------------------------------------------------------ stats

    def stats(self) -> dict[str, Any]:
        """Counts and settings, for ``patterns stats`` and monitoring."""
        info = self.store.info()
        return {
            "store": self.store.url,
            "backend": self.store.backend,
            "read_only": self.store.read_only,
            "patterns": self.store.count(),
            "relations": len(self.store.relations()),
            "embedding_dim": info.get(INFO_EMBEDDING_DIM),
            "embedding_model": info.get(INFO_EMBEDDING_MODEL),
            "search": self.search_mode,
            "indexed": len(self.index) if self.index is not None else 0,
            "not_indexed": self.not_indexed,
            "index_bytes": self.index.nbytes if self.index is not None else 0,
            "store_search": self.store.supports_search,
        }

    def __contains__(self, pattern_id: object) -> bool:
        if not isinstance(pattern_id, str):
            return False
        try:
            self.store.get(pattern_id)
            return True
        except UnknownIdError:
            return False
