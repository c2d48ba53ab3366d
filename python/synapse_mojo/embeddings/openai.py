"""A client for OpenAI-compatible ``/v1/embeddings`` servers (MAX ``max serve``, vLLM, OpenAI).

    from synapse_mojo.embeddings import OpenAIEmbeddings
    model = "sentence-transformers/all-MiniLM-L6-v2"
    with OpenAIEmbeddings("http://127.0.0.1:8000/v1", model) as e:
        vectors = e.embed(["retry with exponential backoff"])    # (1, 384), unit rows

``base_url`` is the API root, as for OpenAI's own clients (``.../v1``); a bare
``http://host:port`` gets ``/v1`` appended. Requests go out in batches of ``batch_size``
texts. Failures:

* 429 and 5xx answers, timeouts and refused connections are retried ``max_retries`` times
  with exponential backoff and full jitter (a ``Retry-After`` header is honoured, capped at
  ``max_backoff``); then ``EmbeddingServerError`` (a status) or ``EmbeddingUnavailableError``
  (no answer) is raised.
* Other 4xx answers fail at once with ``EmbeddingServerError`` carrying the server's message
  and a hint (wrong model name, wrong URL, missing key).
* A malformed answer (not JSON, wrong count, ragged or non-finite vectors) is an
  ``EmbeddingServerError`` too.

Vectors are L2-normalised here (MAX returns un-normalised vectors). The dimension is checked:
every vector must have the same length, equal to ``dim`` when given; when ``dim`` is not
given, the first answer fixes it (``dim`` probes the server once if asked before any call).
The API key is sent as a bearer token and never appears in logs, errors or ``repr``. User
info in the URL (``https://user:pw@host/v1``) becomes HTTP basic authentication and is left
out of ``base_url``; the URL takes no query options (use ``api_key`` for a key).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import numpy as np

from .._urls import check_options, parse_url
from ..errors import (
    ConfigError,
    DimensionMismatchError,
    EmbeddingServerError,
    EmbeddingUnavailableError,
    InvalidInputError,
)
from .base import Embedder, check_texts, l2_normalise

log = logging.getLogger("synapse_mojo.embeddings")

#: Answers worth retrying: rate limiting and server-side trouble.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

_HINTS = {
    401: "the server wants an API key: set SYNAPSE_EMBEDDINGS_API_KEY (or pass api_key)",
    403: "the API key was refused: check SYNAPSE_EMBEDDINGS_API_KEY",
    404: "check the base URL (the API root, usually ending in /v1) and the model name",
    413: "the request is too large: lower batch_size",
}


class OpenAIEmbeddings(Embedder):
    """Embeddings from an OpenAI-compatible HTTP server, normalised and dimension-checked."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        dim: int | None = None,
        batch_size: int = 64,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not model or not isinstance(model, str):
            raise ConfigError("the embeddings model name must be a non-empty string")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        if max_retries < 0 or backoff < 0 or timeout <= 0:
            raise InvalidInputError("max_retries and backoff must be >= 0 and timeout > 0")
        if dim is not None and dim < 1:
            raise InvalidInputError(f"dim must be >= 1, got {dim}")
        self.base_url, auth = _api_root(base_url)
        self.model = model
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._dim = dim
        self._sleep = sleep
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"OpenAIEmbeddings(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def embed(
        self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """See ``Embedder.embed``. ``progress(n)`` is called after each batch with its size."""
        items = check_texts(texts)
        if not items:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        parts = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            parts.append(self._embed_batch(batch))
            if progress is not None:
                progress(len(batch))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ internals

    def _embed_batch(self, batch: list[str]) -> np.ndarray:
        payload = {"model": self.model, "input": batch, "encoding_format": "float"}
        body = self._post_with_retries(payload)
        vectors = self._parse(body, len(batch))
        return l2_normalise(vectors, what="embedding")

    def _post_with_retries(self, payload: dict[str, Any]) -> Any:
        url = f"{self.base_url}/embeddings"
        attempt = 0
        while True:
            try:
                response = self._client.post("/embeddings", json=payload)
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise EmbeddingUnavailableError(
                        f"embeddings server {url} did not answer after {attempt + 1} "
                        f"attempt(s): {type(exc).__name__}: {exc}"
                    ) from exc
                delay = self._delay(attempt, None)
                log.warning(
                    "embeddings server %s: %s; retrying in %.2fs", url, type(exc).__name__, delay
                )
            else:
                if response.status_code < 400:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise EmbeddingServerError(
                            f"embeddings server {url} answered {response.status_code} with "
                            f"a body that is not JSON: {response.text[:200]!r}",
                            response.status_code,
                        ) from exc
                if response.status_code not in RETRY_STATUSES or attempt >= self.max_retries:
                    raise self._status_error(url, response, attempt + 1)
                delay = self._delay(attempt, response.headers.get("retry-after"))
                log.warning(
                    "embeddings server %s answered %d; retrying in %.2fs",
                    url, response.status_code, delay,
                )  # fmt: skip
            self._sleep(delay)
            attempt += 1

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), self.max_backoff)
            except ValueError:
                pass  # an HTTP date: fall back to our own schedule
        # Full jitter: uniform in [0, backoff * 2**attempt], capped.
        return random.uniform(0.0, min(self.backoff * 2.0**attempt, self.max_backoff))

    def _status_error(
        self, url: str, response: httpx.Response, attempts: int
    ) -> EmbeddingServerError:
        detail = _error_detail(response)
        status = response.status_code
        message = f"embeddings server {url} answered {status} for model {self.model!r}: {detail}"
        if status in RETRY_STATUSES:
            message += f" (after {attempts} attempts)"
        elif hint := _HINTS.get(
            status, "check the model name and the request" if status < 500 else ""
        ):
            message += f" ({hint})"
        return EmbeddingServerError(message, status)

    def _parse(self, body: Any, expected: int) -> np.ndarray:
        url = f"{self.base_url}/embeddings"
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise EmbeddingServerError(f"embeddings server {url}: the answer has no 'data' list")
        if len(data) != expected:
            raise EmbeddingServerError(
                f"embeddings server {url}: {len(data)} embeddings for {expected} inputs"
            )
        try:
            ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
            rows = [item["embedding"] for item in ordered]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise EmbeddingServerError(
                f"embeddings server {url}: malformed 'data' entries ({exc!r})"
            ) from exc
        if any(isinstance(r, str) for r in rows):
            raise EmbeddingServerError(
                f"embeddings server {url}: base64 embeddings returned"
                " although floats were asked for"
            )
        lengths = {len(r) for r in rows if isinstance(r, list)}
        if len(lengths) != 1 or not all(isinstance(r, list) for r in rows):
            raise EmbeddingServerError(f"embeddings server {url}: embeddings of unequal length")
        try:
            vectors = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise EmbeddingServerError(f"embeddings server {url}: non-numeric embeddings") from exc
        dim = vectors.shape[1]
        if self._dim is None:
            self._dim = dim
        elif dim != self._dim:
            raise DimensionMismatchError(
                f"embeddings server {url} returned {dim}-dimensional vectors for model "
                f"{self.model!r}; expected {self._dim}"
            )
        return vectors


def _api_root(base_url: str) -> tuple[str, tuple[str, str] | None]:
    """(API root without user info, basic-auth credentials from the user info or None)."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise ConfigError("the embeddings server URL is empty")
    parsed = parse_url(base_url.strip().rstrip("/"), what="embeddings server URL")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(
            f"embeddings server URL {parsed.redacted()!r} must be http(s)://host[:port][/v1]"
        )
    check_options(
        parsed,
        (),
        what="embeddings server URL",
        hint="pass a key as api_key / SYNAPSE_EMBEDDINGS_API_KEY",
    )
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    url = (
        f"{parsed.scheme}://{host}"
        + (f":{parsed.port}" if parsed.port is not None else "")
        + parsed.path
    )
    if parsed.path in ("", "/"):
        url = url.rstrip("/") + "/v1"
    auth = (parsed.username, parsed.password or "") if parsed.username is not None else None
    return url, auth


def _error_detail(response: httpx.Response) -> str:
    """The server's own words: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
        if "detail" in body:
            return str(body["detail"])[:300]
        if "message" in body:
            return str(body["message"])[:300]
    return str(body)[:300]
