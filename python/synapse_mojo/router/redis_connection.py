"""The Streams transport's connection to Redis: the client, its scripts and names, and ``call``.

Shared by the three parts of the transport: :mod:`.redis_streams` (publish, read, ack),
:mod:`.redis_recovery` (pending entries, retries, dead letters, the exactly-once commit) and
:mod:`.redis_introspection` (stats, consumers, dead-letter listing).

Every Redis command of the transport goes through :meth:`StreamsConnection.call`, which
translates redis-py's errors into the library's (``TransportError``, ``RouterClosedError``) and
retries outages (connection errors, ``LOADING``, ``MASTERDOWN``, ...) with backoff for
``retry_timeout`` seconds. redis-py itself never retries (``Retry(NoBackoff(), 0)``): a read, a
publish or a transaction whose reply was lost must not simply be sent again, and only the
caller knows how to retry each one safely.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis

from ..errors import RouterClosedError, TransportError
from . import redis_scripts
from .message import MAX_PRIORITY, TRACTS, Tract
from .redis_keys import Keys

log = logging.getLogger("synapse_mojo.router")

T = TypeVar("T")

_RETRYABLE_REPLIES = ("LOADING", "MASTERDOWN", "TRYAGAIN", "BUSY ", "READONLY")

#: A stream entry as the transport handles it: (band, entry id, fields, earlier deliveries).
#: ``band`` is the 1-based index of the entry's stream in ``Keys.bands()`` (see :func:`band_index`).
Entry = tuple[int, bytes, Any, int]


def band_index(priority: int) -> int:
    """1-based index of a priority's stream in ``Keys.bands()`` (the scripts' KEYS)."""
    return MAX_PRIORITY - priority + 1


def entry_fields(flat: Any) -> dict[bytes, bytes]:
    """The fields of an entry as a dict (redis-py gives a dict, scripts a flat list)."""
    if isinstance(flat, dict):
        return flat
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)}


def text(value: bytes | str) -> str:
    """A name from a Redis reply (bytes, or str when the client decodes responses)."""
    return value.decode() if isinstance(value, bytes) else value


class Reread(Exception):
    """A read failed and may have left entries pending here: start over from them."""

    def __init__(self, deadline: float) -> None:
        super().__init__("re-read")
        self.deadline = deadline


@dataclass(order=True)
class Retry:
    """A nacked entry waiting for its next delivery (a heap item, ordered by ``due``)."""

    due: float
    band: int = field(compare=False)
    eid: bytes = field(compare=False)
    attempts: int = field(compare=False)
    nacked_at: float = field(compare=False)


class DestinationState:
    """A destination's consumer-side state in this router."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.groups_ready = False
        #: False after an outage or a failed ack: this consumer's pending entries are
        #: recovered at the next read (see ``PendingRecovery.recover``).
        self.recovered = False
        self.retries: list[Retry] = []
        self.next_claim = 0.0
        self.next_trim = 0.0
        self.next_cleanup = 0.0
        self.claim_cursor: dict[int, bytes] = {}


class StreamsConnection:
    """The client, the scripts, the key names, and the calls that retry outages."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        owns_client: bool,
        url: str,
        keys: Keys,
        group: str,
        consumer: str,
        retry_timeout: float,
    ) -> None:
        self.client = client
        self.owns_client = owns_client
        self.url = url  # redacted: safe in errors and logs
        self.keys = keys
        self.group = group
        self.consumer = consumer
        self.retry_timeout = retry_timeout
        self.scripts = {
            name: client.register_script(getattr(redis_scripts, name))
            for name in ("READ", "CLAIM_CHECK", "DEAD_LETTER", "PUBLISH", "TRIM")
        }
        self.states = {t: DestinationState() for t in TRACTS}
        self.closed = False

    def call(
        self,
        fn: Callable[[], T],
        what: str,
        destination: Tract | None = None,
        *,
        reads: bool = False,
        retry_timeout: float | None = None,
    ) -> T:
        """Runs ``fn`` against Redis, retrying outages for ``retry_timeout`` seconds (the
        connection's unless given).

        ``reads``: ``fn`` takes new entries from the group (XREADGROUP ``>``). Such a call is
        not simply repeated after a failure, because a lost reply leaves the entries it read
        pending on this consumer: repeating it would deliver younger entries before them.
        After the backoff it raises :class:`Reread` instead, and the caller starts over with
        its own pending entries.
        """
        timeout = self.retry_timeout if retry_timeout is None else retry_timeout
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                return fn()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                problem: Exception = exc
            except redis.ResponseError as exc:
                reply = str(exc)
                if "NOGROUP" in reply and destination is not None:
                    log.warning(
                        "consumer group missing on %s (Redis restarted empty?); recreating",
                        destination.value,
                    )
                    self.ensure_groups(destination, force=True)
                    continue
                if not reply.startswith(_RETRYABLE_REPLIES):
                    raise TransportError(f"Redis refused {what}: {reply}") from exc
                problem = exc
            except redis.RedisError as exc:
                raise TransportError(f"Redis error during {what}: {exc}") from exc
            if destination is not None:
                self.states[destination].recovered = False  # a lost reply may have left entries
            if self.closed and what != "close":
                raise RouterClosedError("the redis router is closed") from problem
            if time.monotonic() + delay > deadline:
                raise TransportError(
                    f"Redis unavailable for {what} at {self.url} after retrying for "
                    f"{timeout:g}s: {problem}"
                ) from problem
            log.info("Redis %s failed (%s); retrying in %.2fs", what, problem, delay)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            if reads:
                raise Reread(deadline) from problem

    def script(
        self,
        name: str,
        keys: list[str],
        args: list[Any],
        what: str,
        destination: Tract | None = None,
        *,
        reads: bool = False,
    ) -> Any:
        """Runs one of the server-side scripts (:mod:`.redis_scripts`) through :meth:`call`."""
        script = self.scripts[name]
        return self.call(lambda: script(keys=keys, args=args), what, destination, reads=reads)

    def bands_and_counters(self, destination: Tract) -> list[str]:
        """The KEYS of most scripts: the band streams, highest first, then the counters."""
        return [*self.keys.bands(destination), self.keys.counters(destination)]

    def ensure_groups(self, destination: Tract, force: bool = False) -> None:
        """Creates the consumer group on every band stream of ``destination`` (once, or again
        with ``force`` when Redis lost it)."""
        state = self.states[destination]
        if state.groups_ready and not force:
            return

        def create() -> None:
            for key in self.keys.bands(destination):
                try:
                    self.client.xgroup_create(key, self.group, id="0", mkstream=True)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

        self.call(create, "XGROUP CREATE")
        state.groups_ready = True

    def check_open(self) -> None:
        if self.closed:
            raise RouterClosedError("the redis router is closed")
