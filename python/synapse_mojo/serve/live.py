"""``LiveIndex``: keeps a ``PatternMap``'s in-memory index in step with writes by other processes.

    live = LiveIndex(pmap)
    live.poll()          # call every ~0.2 s: one small read when nothing changed

Each poll asks the store's change feed (``PatternStore.changes``: SQLite triggers into a
``changes`` table, a Redis stream, Neo4j change nodes) what was written or deleted since the
last token and re-reads only those patterns. When the feed cannot tell (trimmed past the
token, store cleared) or the change is large, the index is rebuilt from the store. Stores
without a feed are not followed: ``status()['following']`` is False.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("synapse_mojo.serve.live")

#: Above this many changed ids (or a quarter of the index, whichever is larger) a rebuild is
#: cheaper than re-reading them one batch at a time.
REBUILD_AT = 2_000


class LiveIndex:
    def __init__(self, pmap: Any) -> None:
        self.pmap = pmap
        self.token = pmap.store.changes().token
        self.applied = 0
        self.rebuilds = 0
        self.last_change: float | None = None

    @property
    def following(self) -> bool:
        return self.token is not None

    def poll(self) -> int:
        """Applies the changes since the last poll; returns the patterns touched."""
        if self.token is None:
            return 0
        feed = self.pmap.store.changes(self.token)
        if feed.token == self.token or (feed.ids is not None and not feed.ids):
            self.token = feed.token
            return 0
        index_size = len(self.pmap.index) if self.pmap.index is not None else 0
        if feed.ids is None or len(feed.ids) > max(REBUILD_AT, index_size // 4):
            self.pmap.refresh()
            self.rebuilds += 1
            touched = len(self.pmap.index) if self.pmap.index is not None else 0
            log.info("store changed beyond the change feed: index rebuilt (%d patterns)", touched)
        else:
            touched = self.pmap.apply_changes(feed.ids)
            self.applied += touched
        self.token = feed.token
        self.last_change = time.time()
        return touched

    def status(self) -> dict[str, Any]:
        return {
            "following": self.following,
            "applied": self.applied,
            "rebuilds": self.rebuilds,
            "last_change": self.last_change,
        }
