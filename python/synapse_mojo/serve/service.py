"""``PatternService``: what ``synapse-mojo serve`` keeps warm, and the checked operations on it.

    with PatternService.open("sqlite:///tmp/patterns.db") as service:
        service.search_pattern_map("retry with backoff", 5)     # the pilot's JSON document
        service.search_patterns("retry", top_k=3, filter={"lang": "py"})
        service.add_pattern("Retry idempotent calls with jittered backoff", {"lang": "py"})

It holds one ``PatternMap`` (store connection, embedder, in-memory index), optionally a router,
and a ``LiveIndex`` that keeps the index in step with writes made by other processes. Every
argument is checked against the bounds below before anything runs; a bad one raises
``InvalidInputError`` (the MCP layer turns it into a tool error). The service is used from one
thread (the server's event loop), so it takes no locks.
"""

from __future__ import annotations

import json
import logging
import time
from types import TracebackType
from typing import Any

from .._urls import redact
from ..errors import InvalidInputError, InvalidTypeError
from .client import store_fingerprint
from .limits import Limits

log = logging.getLogger("synapse_mojo.serve")


def _check_str(value: Any, name: str, limit: int, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidTypeError(f"{name} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidInputError(f"{name} is {len(value)} characters; the limit is {limit}")
    if not allow_empty and not value.strip():
        raise InvalidInputError(f"{name} is empty")
    return value


def _check_int(value: Any, name: str, low: int, high: int) -> int:
    if type(value) is not int:
        raise InvalidTypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidInputError(f"{name}={value} is out of range: {low}..{high}")
    return value


def _json_size(value: Any, name: str) -> int:
    try:
        return len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} is not plain JSON: {exc}") from None


class PatternService:
    """A warm ``PatternMap`` (+ router, + live index) behind checked operations."""

    def __init__(self, pmap: Any, *, router: Any = None, router_url: str | None = None,
                 limits: Limits | None = None, live: bool = True) -> None:  # fmt: skip
        from .live import LiveIndex

        self.pmap = pmap
        self.router = router
        self.router_url = router_url
        self.limits = limits or Limits()
        self.live = LiveIndex(pmap) if live else None
        #: Store URLs a client may name for this store (its canonical URL, and as it was given).
        self.fingerprints = {store_fingerprint(pmap.store.url)}
        self.started_at = time.time()

    @classmethod
    def open(cls, store_url: str | None = None, *, router_url: str | None = None, warm: bool = True,
             live: bool = True, limits: Limits | None = None) -> PatternService:  # fmt: skip
        """Opens the store, builds the index, loads the embedder and kernel (``warm``), and
        opens the router when ``router_url`` is given."""
        from ..patternmap import PatternMap
        from ..stores import default_store_url

        url = store_url or default_store_url()
        pmap = PatternMap.open(url, start=True, saved_index=True)
        router = None
        try:
            if warm:
                pmap.warm_up()
            if router_url:
                from ..router.url import open_router

                router = open_router(router_url)
            service = cls(pmap, router=router, router_url=router_url, limits=limits, live=live)
            service.fingerprints.add(store_fingerprint(url))
        except BaseException:
            if router is not None:
                router.close()
            pmap.close()
            raise
        log.info("serving %s (%d patterns indexed)%s", redact(pmap.store.url),
                 len(pmap.index) if pmap.index is not None else 0,
                 f", router {redact(router_url)}" if router_url else "")  # fmt: skip
        return service

    def close(self) -> None:
        try:
            if self.router is not None:
                self.router.close()
        finally:
            self.pmap.close()

    def __enter__(self) -> PatternService:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.close()

    def follow(self) -> int:
        """Applies other processes' writes to the index; returns the patterns touched."""
        return self.live.poll() if self.live is not None else 0

    # ------------------------------------------------------------------ the pilot's tools

    def search_pattern_map(self, query: str, max_results: int = 10) -> dict[str, Any]:
        """The pilot's search document (``compat.tools.search_result``, as the CLI prints it)."""
        from ..compat.tools import search_result

        _check_str(query, "query", self.limits.query_chars, allow_empty=True)
        _check_int(max_results, "max_results", 0, self.limits.max_results)
        return search_result(self.pmap, query, max_results)

    def check_system_health(self) -> dict[str, Any]:
        """The pilot's health document (``compat.tools.health_report``) for the warm store and
        embedder; Redis is the router's when it is a Redis URL."""
        from ..compat.tools import health_report

        redis_url = (
            self.router_url
            if (self.router_url or "").startswith(("redis://", "rediss://", "unix://"))
            else None
        )
        return health_report(
            redis_url=redis_url.split("?", 1)[0] if redis_url else None, pmap=self.pmap
        )

    # ------------------------------------------------------------------ pattern map

    def search_patterns(
        self, query: str, top_k: int = 5, filter: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        _check_str(query, "query", self.limits.query_chars)
        _check_int(top_k, "top_k", 1, self.limits.max_results)
        if filter is not None:
            if not isinstance(filter, dict):
                raise InvalidTypeError(
                    "filter must be an object of metadata key -> value, "
                    f"got {type(filter).__name__}"
                )
            if len(filter) > self.limits.filter_keys:
                raise InvalidInputError(
                    f"filter has {len(filter)} keys; the limit is {self.limits.filter_keys}"
                )
            _json_size(filter, "filter")
        started = time.perf_counter()
        result = self.pmap.search_detailed(query, top_k=top_k, filter=filter or None)
        latency_ms = (time.perf_counter() - started) * 1e3
        return {
            "query": query,
            "hits": [
                {
                    "id": hit.id,
                    "score": round(float(hit.score), 6),
                    "name": _name(hit.metadata, hit.text),
                    "text": hit.text,
                    "metadata": hit.metadata,
                }
                for hit in result.hits
            ],
            "runtime": result.runtime,
            "fallback_reason": result.fallback_reason,
            "latency_ms": round(latency_ms, 3),
            "embed_ms": round(result.embed_ms, 3),
            "search_ms": round(result.search_ms, 3),
        }

    def get_pattern(self, pattern_id: str) -> dict[str, Any]:
        _check_str(pattern_id, "id", self.limits.id_chars)
        pattern = self.pmap.get(pattern_id)  # UnknownIdError names the id
        return {
            "id": pattern.id,
            "text": pattern.text,
            "metadata": pattern.metadata,
            "embedded": pattern.embedding is not None,
            "created_at": pattern.created_at.isoformat() if pattern.created_at else None,
            "updated_at": pattern.updated_at.isoformat() if pattern.updated_at else None,
            "relations": [
                {"source": r.source, "target": r.target, "type": r.type, "weight": r.weight}
                for r in self.pmap.store.relations([pattern.id])
            ],
        }

    def add_pattern(self, text: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        _check_str(text, "text", self.limits.text_chars)
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise InvalidTypeError(f"metadata must be an object, got {type(metadata).__name__}")
            size = _json_size(metadata, "metadata")
            if size > self.limits.metadata_bytes:
                raise InvalidInputError(
                    f"metadata is {size} bytes of JSON; the limit is {self.limits.metadata_bytes}"
                )
        pattern = self.pmap.add_text(text, metadata or {})
        existed = pattern.created_at != pattern.updated_at
        return {
            "id": pattern.id,
            "updated": existed,
            "indexed": pattern.id in (self.pmap.index or ()),
        }

    def pattern_stats(self) -> dict[str, Any]:
        stats = self.pmap.stats()
        stats["store"] = redact(stats["store"])
        stats["live_index"] = self.live.status() if self.live is not None else None
        stats["uptime_s"] = round(time.time() - self.started_at, 1)
        return stats

    # ------------------------------------------------------------------ router

    def _require_router(self) -> Any:
        if self.router is None:
            raise InvalidInputError("no router is configured: start the server with --router-url")
        return self.router

    def send_message(
        self, destination: str, payload: Any = None, priority: int = 2
    ) -> dict[str, Any]:
        from ..router.message import Tract

        router = self._require_router()
        target = Tract.coerce(destination)
        _check_int(priority, "priority", 0, 9)
        size = _json_size(payload, "payload")
        if size > self.limits.payload_bytes:
            raise InvalidInputError(
                f"payload is {size} bytes of JSON; the limit is {self.limits.payload_bytes}"
            )
        source = Tract.EXTERNAL if target is Tract.INTERNAL else Tract.INTERNAL
        message = router.send(source, target, payload, priority=priority)
        return {
            "id": message.id,
            "source": source.value,
            "destination": target.value,
            "priority": priority,
        }

    def receive_messages(self, tract: str, max_n: int = 10) -> dict[str, Any]:
        from ..router.message import Tract

        router = self._require_router()
        target = Tract.coerce(tract)
        _check_int(max_n, "max_n", 1, self.limits.receive_max_n)
        messages = router.consume(target, max_n, 0.0, auto_ack=True)
        return {"tract": target.value, "messages": [_message_json(m) for m in messages]}


def _name(metadata: dict[str, Any], text: str) -> str | None:
    for key in ("name", "title"):
        if metadata.get(key):
            return str(metadata[key])
    return text.splitlines()[0] if text else None


def _message_json(message: Any) -> dict[str, Any]:
    out = message.to_dict()
    if isinstance(out.get("payload"), (bytes, bytearray)):
        import base64

        out["payload"] = {"base64": base64.b64encode(bytes(out["payload"])).decode("ascii")}
    return out


__all__ = ["Limits", "PatternService", "store_fingerprint"]
