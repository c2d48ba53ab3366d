"""Secrets never show: every class that takes a URL or a credential is built with one, and the
secret must appear in none of ``repr``, ``str``, the messages (and causes) of the errors raised
when the server is unreachable or refuses it, and the log records at DEBUG level.

Unreachable servers are closed ports on 127.0.0.1 (nothing listens there); the Redis cases
with a password also run against a real redis-server started with ``--requirepass``.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Iterator
from urllib.parse import quote

import numpy as np
import pytest

from synapse_mojo._urls import check_options, parse_url, redact, redact_text, scrub
from synapse_mojo.errors import (
    ConfigError,
    EmbeddingUnavailableError,
    RouterError,
    StoreAuthError,
    StoreError,
    StoreUnavailableError,
    SynapseError,
)

from .conftest import run_cli
from .servers import RedisServer, free_port

# Special characters on purpose: the percent-encoded form must not leak either.
SECRET = "s3cret-Pw@x:y/z%"
ENC = quote(SECRET, safe="")
KEY = "sk-test-0123456789abcdef"


def forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote(secret)}


def assert_hidden(text: str, *secrets: str) -> None:
    for secret in secrets:
        for form in forms(secret):
            assert form not in text, f"secret {form!r} shown in: {text}"


def error_text(exc: BaseException) -> str:
    """The message of the error and of every error in its chain (what a traceback prints)."""
    return "".join(traceback.format_exception(exc))


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], str]]:
    caplog.set_level(logging.DEBUG)  # every logger: ours, redis-py, the neo4j driver, httpx

    def text() -> str:
        out = []
        for record in caplog.records:
            out.append(record.getMessage())
            if record.exc_info and record.exc_info[1] is not None:
                out.append(error_text(record.exc_info[1]))
        return "\n".join(out)

    yield text


def check_object(obj: object, *secrets: str) -> None:
    assert_hidden(repr(obj), *secrets)
    assert_hidden(str(obj), *secrets)


def raises(
    kind: type[BaseException], fn: Callable[..., object], *args: object, **kwargs: object
) -> BaseException:
    """The error ``fn(*args, **kwargs)`` raises, checked to be a ``kind``."""
    with pytest.raises(kind) as info:
        fn(*args, **kwargs)
    return info.value


@pytest.fixture
def closed_port() -> int:
    return free_port()  # bound once to find it, then released: nothing listens there


@pytest.fixture
def redis_with_password(redis_binary: str) -> Iterator[RedisServer]:
    with RedisServer(redis_binary, extra_args=["--requirepass", SECRET]) as server:
        yield server


def with_password(url: str, password: str = SECRET) -> str:
    return url.replace("redis://", f"redis://:{quote(password, safe='')}@", 1)


# ------------------------------------------------------------------ the shared URL module


def test_redaction_rules():
    assert redact(f"redis://:{ENC}@h:6379/0") == "redis://:***@h:6379/0"
    assert (
        redact(f"neo4j://neo4j:{ENC}@db:7687?database=x") == "neo4j://neo4j:***@db:7687?database=x"
    )
    assert redact(f"https://{KEY}@api.example.com/v1") == "https://***@api.example.com/v1"
    nested = f"redis://c:6379/0?backing=neo4j://u:{ENC}@db:7687&ttl=5&token={KEY}&api_key={KEY}"
    assert_hidden(redact(nested), SECRET, KEY)
    assert "ttl=5" in redact(nested) and "backing=neo4j://u:***@db:7687" in redact(nested)
    assert redact("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"
    assert redact("redis://[::1") == "<unparseable URL>"
    assert_hidden(redact_text(f"--redis-url redis://:{ENC}@h:1/0 --x"), SECRET)
    parsed = parse_url(f"redis://:{ENC}@127.0.0.1:6379/2?client_name=a", what="test URL")
    assert (parsed.scheme, parsed.host, parsed.port, parsed.database, parsed.password) == (
        "redis",
        "127.0.0.1",
        6379,
        "2",
        SECRET,
    )
    check_object(parsed, SECRET)
    assert SECRET in parsed.driver_url() or ENC in parsed.driver_url()
    assert_hidden(scrub(f"AUTH {SECRET} failed at {parsed.driver_url()}", parsed), SECRET)


def test_one_rule_for_unknown_options():
    """Every URL taker refuses options it does not know, naming the option and the allowed."""
    from synapse_mojo.router import open_router, parse_router_url
    from synapse_mojo.stores import open_store

    url = f"redis://:{ENC}@h:1/0?colour=red&password={KEY}"
    for fn, args in (
        (check_options, (parse_url(url), ("prefix",))),
        (open_store, (url,)),
        (open_router, (url,)),
    ):
        message = str(raises(ConfigError, fn, *args))
        assert "colour" in message and "allowed" in message
        assert_hidden(message, SECRET, KEY)
    # The redis-py options the router forwards are listed: kept, the rest refused; TLS ones
    # only on rediss://; unix:// socket URLs stay unix:///path.
    assert parse_router_url("unix:///run/r.sock?db=2&group=g") == (
        "redis",
        "unix:///run/r.sock?db=2",
        {"group": "g"},
    )
    assert parse_router_url("rediss://h/0?ssl_cert_reqs=none&claim_idle=3")[1:] == (
        "rediss://h/0?ssl_cert_reqs=none",
        {"claim_idle": 3.0},
    )
    tls_on_plain = raises(ConfigError, parse_router_url, "redis://h/0?ssl_cert_reqs=none")
    assert "ssl_cert_reqs" in str(tls_on_plain)
    twice = raises(ConfigError, parse_router_url, "redis://h/0?group=a&group=b")
    assert "given twice" in str(twice)
    for bad in (
        f"{url}&colour=blue",
        f"redis://:{ENC}@h:1/0?a",
        f"postgres://u:{ENC}@h/db",
        f"memory://u:{ENC}@",
    ):
        for opener in (open_store, open_router):
            assert_hidden(error_text(raises(ConfigError, opener, bad)), SECRET, KEY)


# ------------------------------------------------------------------ router


def test_redis_streams_router_unreachable(closed_port, logs):
    from synapse_mojo.router import RedisStreamsRouter, Tract, open_router

    url = f"redis://:{ENC}@127.0.0.1:{closed_port}/0"
    for router in (
        RedisStreamsRouter(url, retry_timeout=0.2, socket_timeout=0.5),
        open_router(f"{url}?retry_timeout=0.2&socket_timeout=0.5&client_name=t"),
        open_router(f"redis://127.0.0.1:{closed_port}/0?password={ENC}&retry_timeout=0.2"),
    ):
        try:
            check_object(router, SECRET)
            assert "***" in repr(router) and router.url.startswith("redis://")
            exc = raises(RouterError, router.send, Tract.INTERNAL, Tract.EXTERNAL, {"x": 1})
            assert "unavailable" in str(exc)
            assert_hidden(error_text(exc), SECRET)
            exc = raises(RouterError, router.consume, Tract.EXTERNAL, 1, 0.1)
            assert_hidden(error_text(exc), SECRET)
        finally:
            router.close()
    assert_hidden(logs(), SECRET)
    exc = raises(ConfigError, RedisStreamsRouter, f"{url}?group=g")
    assert "keyword" in str(exc)
    assert_hidden(error_text(exc), SECRET)


def test_redis_streams_router_real_server_with_password(redis_with_password, logs):
    from synapse_mojo.router import RedisStreamsRouter, Tract, open_router

    router = open_router(with_password(redis_with_password.url))
    try:
        router.send(Tract.INTERNAL, Tract.EXTERNAL, {"x": 1})
        check_object(router, SECRET)
        assert_hidden(repr(router.stats()), SECRET)
    finally:
        router.close()
    wrong = RedisStreamsRouter(
        with_password(redis_with_password.url, "wrong-" + SECRET), retry_timeout=0.2
    )
    try:
        exc = raises(RouterError, wrong.send, Tract.INTERNAL, Tract.EXTERNAL, {"x": 1})
        assert_hidden(error_text(exc), SECRET)
    finally:
        wrong.close()
    assert_hidden(logs(), SECRET)


def test_router_cli_hides_the_password(closed_port):
    url = f"redis://:{ENC}@127.0.0.1:{closed_port}/0?retry_timeout=0.3&socket_timeout=0.5"
    result = run_cli("router", "stats", "--url", url, timeout=120)
    assert result.returncode != 0
    assert_hidden(result.stdout + result.stderr, SECRET)


# ------------------------------------------------------------------ pattern stores


def test_redis_store(closed_port, redis_with_password, logs):
    from synapse_mojo.stores import open_store

    exc = raises(
        StoreUnavailableError, open_store, f"redis://:{ENC}@127.0.0.1:{closed_port}/0?timeout=0.5"
    )
    assert_hidden(error_text(exc), SECRET)
    for password in ("wrong", "wrong-" + SECRET):
        exc = raises(StoreAuthError, open_store, with_password(redis_with_password.url, password))
        assert_hidden(error_text(exc), SECRET)
    with open_store(f"{with_password(redis_with_password.url)}?client_name=secret-test") as store:
        assert store._client.client_getname() in (
            "secret-test",
            b"secret-test",
        )  # a redis-py option passed on
        check_object(store._client, SECRET)  # redis-py's own repr too
        check_object(store, SECRET)
        assert_hidden(store.url, SECRET)
        redis_with_password.stop()
        exc = raises(StoreError, store.get, "a")
        assert_hidden(error_text(exc), SECRET)
        redis_with_password.start()
    # A read-through cache whose backing store (Neo4j) holds the password too.
    backing = f"bolt://neo4j:{ENC}@127.0.0.1:{closed_port}?timeout=0.5"
    exc = raises(
        StoreError,
        open_store,
        f"{with_password(redis_with_password.url)}?backing={quote(backing, safe='')}",
    )
    assert_hidden(error_text(exc), SECRET)
    assert_hidden(logs(), SECRET)


def test_neo4j_store(closed_port, logs):
    from synapse_mojo.stores import open_store

    for url, env in (
        (f"bolt://neo4j:{ENC}@127.0.0.1:{closed_port}?timeout=0.5", {}),
        (
            f"neo4j://127.0.0.1:{closed_port}?timeout=0.5",
            {"NEO4J_USER": "neo4j", "NEO4J_PASSWORD": SECRET},
        ),
        ("neo4j://?timeout=0.5", {"NEO4J_URI": f"bolt://neo4j:{ENC}@127.0.0.1:{closed_port}"}),
        (f"neo4j://neo4j:{ENC}@?timeout=0.5", {}),
        (f"neo4j://neo4j:{ENC}@127.0.0.1:{closed_port}?timeout=0.5&colour=red", {}),
    ):
        exc = raises(SynapseError, open_store, url, environ=env)
        assert isinstance(exc, (StoreUnavailableError, ConfigError)), exc
        assert_hidden(error_text(exc), SECRET)
    assert_hidden(logs(), SECRET)


def test_neo4j_store_on_a_real_server(neo4j_server, logs):
    """A real Neo4j (tests/neo4j-launcher): a refused login names the variables, never the
    password; a session with the right one shows it nowhere."""
    from synapse_mojo.stores import open_store

    wrong = neo4j_server.url.replace("bolt://", f"bolt://neo4j:{ENC}@") + "?timeout=20"
    assert_hidden(error_text(raises(StoreAuthError, open_store, wrong, environ={})), SECRET)
    right = quote(neo4j_server.password, safe="")
    url = neo4j_server.url.replace("bolt://", f"bolt://neo4j:{right}@") + "?timeout=20"
    with open_store(url, environ={}) as store:
        check_object(store, neo4j_server.password)
        store.count()
    assert_hidden(logs(), SECRET, neo4j_server.password)


def test_sqlite_store_urls(tmp_path, logs):
    from synapse_mojo.stores import open_store

    for url in (f"sqlite://admin:{ENC}@host/x.db", f"sqlite:///{tmp_path}/x.db?password={ENC}"):
        assert_hidden(error_text(raises(ConfigError, open_store, url)), SECRET)
    with open_store(f"sqlite:///{tmp_path}/p.db") as store:
        check_object(store, SECRET)
    assert_hidden(logs(), SECRET)


# ------------------------------------------------------------------ embeddings


def test_openai_embeddings_client(closed_port, logs):
    from synapse_mojo.embeddings import OpenAIEmbeddings, embedder_from_env

    clients = [
        OpenAIEmbeddings(
            f"http://127.0.0.1:{closed_port}/v1", "m", KEY, max_retries=1, sleep=lambda s: None
        ),
        OpenAIEmbeddings(f"http://user:{ENC}@127.0.0.1:{closed_port}/v1", "m", KEY, max_retries=0),
        embedder_from_env(
            {
                "SYNAPSE_EMBEDDINGS_URL": f"http://127.0.0.1:{closed_port}",
                "SYNAPSE_EMBEDDINGS_MODEL": "m",
                "SYNAPSE_EMBEDDINGS_API_KEY": KEY,
                "SYNAPSE_EMBEDDINGS_TIMEOUT": "1",
            }
        ),
    ]
    for client in clients:
        try:
            check_object(client, SECRET, KEY)
            client.max_retries = 0  # type: ignore[attr-defined]
            exc = raises(EmbeddingUnavailableError, client.embed, ["x"])
            assert_hidden(error_text(exc), SECRET, KEY)
        finally:
            client.close()
    exc = raises(
        ConfigError, OpenAIEmbeddings, f"http://127.0.0.1:{closed_port}/v1?api_key={KEY}", "m"
    )
    assert_hidden(error_text(exc), KEY)
    exc = raises(ConfigError, OpenAIEmbeddings, f"ftp://u:{ENC}@h/v1", "m")
    assert_hidden(error_text(exc), SECRET)
    assert_hidden(logs(), SECRET, KEY)


def test_openai_embeddings_against_a_server(logs):
    """A real HTTP server (tests/openai_server.py): requests and their log lines carry no secret,
    user info in the URL is sent as basic authentication."""
    from synapse_mojo.embeddings import OpenAIEmbeddings

    from .openai_server import EmbeddingsTestServer

    with EmbeddingsTestServer(lambda texts: np.ones((len(texts), 8), dtype=np.float32)) as server:
        url = server.url.replace("http://", f"http://user:{ENC}@")
        with OpenAIEmbeddings(url, EmbeddingsTestServer.MODEL, KEY) as client:
            assert client.embed(["a", "b"]).shape == (2, 8)
            check_object(client, SECRET, KEY)
            assert "user" not in client.base_url
    assert_hidden(logs(), SECRET, KEY)


# ------------------------------------------------------------------ compat and helpers


def test_compat_event_store_and_reactive_router(closed_port, logs):
    from synapse_mojo.compat.event_store import RedisEventStore
    from synapse_mojo.compat.reactive import ReactiveCorpusCallosum

    url = f"redis://:{ENC}@127.0.0.1:{closed_port}/0"
    events = RedisEventStore(url, required=True)
    check_object(events, SECRET)
    exc = raises(RouterError, asyncio.run, events.connect())
    assert_hidden(error_text(exc), SECRET)
    events = RedisEventStore(url)  # not required: logged, kept in memory
    asyncio.run(events.connect())
    assert events.fallback_reason and "***" in events.fallback_reason
    assert_hidden(events.fallback_reason, SECRET)
    cc = ReactiveCorpusCallosum(router_url=f"{url}?retry_timeout=0.2", enable_event_sourcing=True)
    check_object(cc, SECRET)

    async def run() -> None:
        await cc.start()
        try:
            check_object(cc, SECRET)
            await cc.route_message(0, 1, payload={"x": 1})  # the router cannot reach Redis
        finally:
            await cc.stop()

    try:
        asyncio.run(run())
    except SynapseError as exc:
        assert_hidden(error_text(exc), SECRET)
    assert_hidden(logs(), SECRET)


def test_local_redis_shows_no_secret():
    from synapse_mojo.router.local_redis import LocalRedis

    server = LocalRedis()
    try:
        check_object(server, SECRET)
        assert "@" not in server.url
    finally:
        server.stop()


def test_health_report(closed_port, monkeypatch, logs):
    """The health contract (CLI ``health``, MCP ``check_system_health``) reports failures as
    text: no secret in it."""
    import json

    from synapse_mojo.compat.tools import health_report

    monkeypatch.setenv(
        "SYNAPSE_ROUTER_URL", f"redis://:{ENC}@127.0.0.1:{closed_port}/0?retry_timeout=0.2"
    )
    monkeypatch.setenv("SYNAPSE_EMBEDDINGS_URL", f"http://user:{ENC}@127.0.0.1:{closed_port}/v1")
    monkeypatch.setenv("SYNAPSE_EMBEDDINGS_MODEL", "m")
    monkeypatch.setenv("SYNAPSE_EMBEDDINGS_API_KEY", KEY)
    report = health_report(store_url=f"redis://:{ENC}@127.0.0.1:{closed_port}/0?timeout=0.5")
    assert (
        report["checks"]["neo4j"]["status"] == "down"
        and report["checks"]["redis"]["status"] == "down"
    )
    assert_hidden(json.dumps(report), SECRET, KEY)
    report = health_report(store_url=f"bolt://neo4j:{ENC}@127.0.0.1:{closed_port}?timeout=0.5")
    assert_hidden(json.dumps(report), SECRET, KEY)
    assert_hidden(logs(), SECRET, KEY)


def test_serve_client_and_service(closed_port, monkeypatch, logs):
    from synapse_mojo.serve.client import call, store_fingerprint

    # What the CLI sends to name its store is derived from the redacted URL only.
    url = f"redis://:{ENC}@127.0.0.1:{closed_port}/0"
    assert store_fingerprint(url) == store_fingerprint(redact(url))
    assert store_fingerprint(url) != store_fingerprint(url.replace("127.0.0.1", "localhost"))
    from synapse_mojo.serve.service import PatternService

    monkeypatch.setenv("SYNAPSE_SERVER_URL", f"ftp://user:{ENC}@127.0.0.1:{closed_port}")
    assert_hidden(
        error_text(raises(ConfigError, call, "search_pattern_map", {"query": "x"})), SECRET
    )
    monkeypatch.setenv("SYNAPSE_SERVER_URL", f"http://user:{ENC}@127.0.0.1:{closed_port}")
    monkeypatch.setenv("SYNAPSE_SERVE_TOKEN", KEY)
    assert call("search_pattern_map", {"query": "x"}) is None  # nothing listens: answer in process
    exc = raises(
        StoreError, PatternService.open, f"redis://:{ENC}@127.0.0.1:{closed_port}/0?timeout=0.5"
    )
    assert_hidden(error_text(exc), SECRET)
    assert_hidden(logs(), SECRET, KEY)
