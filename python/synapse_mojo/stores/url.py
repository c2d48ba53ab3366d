"""``open_store(url)``: the backend chosen by the URL scheme.

    open_store()                                        # SYNAPSE_STORE_URL, else the default file
    open_store("sqlite:///var/lib/synapse/patterns.db") # absolute path
    open_store("sqlite:patterns.db")                    # relative path (sqlite:~/p.db works)
    open_store("sqlite://")                             # private, in memory
    open_store("neo4j://db.internal:7687?database=patterns")
    open_store("bolt://127.0.0.1:7687")
    open_store("redis://127.0.0.1:6379/0")              # Redis holds the pattern data
    open_store("redis://cache:6379/0?backing=neo4j://db:7687")   # read-through cache over Neo4j
    open_store("redis://cache:6379/0?read_only=1")      # read pattern data, never write

Schemes: ``sqlite`` (embedded default), ``neo4j``/``neo4j+s``/``neo4j+ssc``/``bolt``/
``bolt+s``/``bolt+ssc`` (``Neo4jStore``), ``redis``/``rediss``/``unix`` (``RedisStore``; with
``backing=`` a ``ReadThroughStore`` of a ``RedisPatternCache`` over the backing store). Any
other scheme is a ``ConfigError``. A bare path (no scheme) is a SQLite file.

Neo4j credentials come from ``NEO4J_USER`` (or ``NEO4J_USERNAME``) and ``NEO4J_PASSWORD`` (or
the URL's user info, which is discouraged); a URL of just ``neo4j://`` takes the address from
``NEO4J_URI``, and ``NEO4J_DATABASE`` names the database when the URL does not. Passwords
never appear in ``store.url``, logs or error messages.

Query options, all backends: ``read_only=1``. SQLite: ``timeout`` (lock wait, seconds).
Neo4j: ``database``, ``batch_size`` (rows per UNWIND), ``batch_bytes`` (parameter budget per
statement), ``timeout`` (connect, seconds), ``vector_index=0|1``, ``candidates`` (neighbours
asked of the vector index per search). Redis: ``prefix`` (key namespace), ``backing`` (the
store of record's URL), ``ttl`` (seconds cached entries live, 0 = no expiry),
``vector_set=auto|0|1``, ``quantization=noquant|q8|bin``, and the redis-py options listed by
``synapse_mojo._urls.redis_driver_options`` (``client_name``, ``max_connections``, TLS files
for ``rediss``, ...), which are passed on. Unknown options are an error, not ignored (the one
rule of :mod:`synapse_mojo._urls`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from .._urls import parse_url
from .._urls import redact as redact
from ..errors import ConfigError, StoreUnavailableError
from .base import PatternStore
from .url_options import (
    NEO4J_SCHEMES,
    REDIS_SCHEMES,
    SQLITE_SCHEMES,
    reject_unknown,
    take_flag,
    take_number,
)


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user data directory (XDG on Linux, Application Support on macOS)."""
    env = environ if environ is not None else os.environ
    if xdg := env.get("XDG_DATA_HOME"):
        return Path(xdg) / "synapse-mojo"
    home = Path(env.get("HOME") or Path.home())
    if os.uname().sysname == "Darwin":
        return home / "Library" / "Application Support" / "synapse-mojo"
    return home / ".local" / "share" / "synapse-mojo"


def default_store_url(environ: Mapping[str, str] | None = None) -> str:
    """``SYNAPSE_STORE_URL`` if set, else a SQLite file in the user data directory."""
    env = environ if environ is not None else os.environ
    if url := env.get("SYNAPSE_STORE_URL", "").strip():
        return url
    return f"sqlite:///{default_data_dir(env) / 'patterns.db'}"


def open_store(
    url: str | None = None, *, environ: Mapping[str, str] | None = None, create: bool = True
) -> PatternStore:
    """Opens the store a URL names (see the module docstring); None = ``default_store_url()``.

    ``create=False`` (read-only commands: stats, search, show, export) refuses a SQLite file
    that does not exist yet, with ``StoreUnavailableError("no store at PATH ...")``, instead
    of creating it and its directories (a mistyped path must not leave a database behind)."""
    env = environ if environ is not None else os.environ
    text = (url if url is not None else default_store_url(env)).strip()
    if not text:
        raise ConfigError("empty store URL")
    scheme = text.split(":", 1)[0].lower() if "://" in text or text.startswith("sqlite:") else ""
    if not scheme:
        return _open_sqlite_path(text, {}, create=create)
    options = dict(parse_url(text, what="store URL").options)
    if scheme in SQLITE_SCHEMES:
        return _open_sqlite(text, options, create)
    if scheme in NEO4J_SCHEMES:
        from .neo4j import Neo4jStore

        return Neo4jStore.from_url(text, options, env)
    if scheme in REDIS_SCHEMES:
        backing_url = options.pop("backing", "").strip()
        if backing_url:
            return _open_read_through(text, backing_url, options, env)
        from .redis import RedisStore

        return RedisStore.from_url(text, options)
    raise ConfigError(
        f"store URL {redact(text)!r}: unknown scheme {scheme!r}; expected sqlite, "
        "neo4j/bolt (+s, +ssc) or redis/rediss"
    )


def _open_read_through(
    url: str, backing_url: str, options: dict[str, str], environ: Mapping[str, str]
) -> PatternStore:
    """A Redis URL with ``backing=``: a ``ReadThroughStore`` of a Redis cache over the store
    the backing URL names (opened read-only too when the cache is)."""
    from .read_through import ReadThroughStore
    from .redis_cache import RedisPatternCache

    read_only = take_flag(options, "read_only", False, url)
    if backing_url.split(":", 1)[0].lower() in REDIS_SCHEMES:
        raise ConfigError("a Redis store cannot be the backing store of a Redis cache")
    if read_only and "read_only" not in dict(parse_qsl(urlsplit(backing_url).query)):
        backing_url += ("&" if "?" in backing_url else "?") + "read_only=1"
    cache = RedisPatternCache.from_url(url, options)
    try:
        backing = open_store(backing_url, environ=environ)
    except BaseException:
        cache.close()
        raise
    return ReadThroughStore(cache, backing, read_only=read_only)


def _open_sqlite(url: str, options: dict[str, str], create: bool = True) -> PatternStore:
    rest = url.split(":", 1)[1].split("?", 1)[0]
    if rest in ("", "//", "///:memory:", ":memory:"):
        path = ":memory:"
    elif rest.startswith("///"):
        path = "/" + rest[3:].lstrip("/")  # sqlite:///abs and sqlite:////abs both mean /abs
    elif rest.startswith("//"):
        raise ConfigError(
            f"store URL {redact(url)!r}: SQLite URLs have no host; use sqlite:///absolute/path.db "
            "or sqlite:relative/path.db"
        )
    else:
        path = rest
    return _open_sqlite_path(unquote(path), options, url, create=create)


def _open_sqlite_path(
    path: str, options: dict[str, str], url: str | None = None, *, create: bool = True
) -> PatternStore:
    from .sqlite import SQLiteStore

    shown = url or path
    read_only = take_flag(options, "read_only", False, shown)
    timeout = take_number(options, "timeout", 30.0, shown)
    reject_unknown(options, shown, ("read_only", "timeout"))
    if path != ":memory:":
        path = os.path.expanduser(path)
        if not create and not os.path.exists(path):
            raise StoreUnavailableError(
                f"no store at {path}: import or add patterns first (a read-only command does "
                "not create one), or pass --store / set SYNAPSE_STORE_URL"
            )
    return SQLiteStore(path, read_only=read_only, timeout=timeout)
