"""Embedders: text -> L2-normalised float32 vectors.

    from synapse_mojo.embeddings import embedder_from_env
    with embedder_from_env() as embedder:
        vectors = embedder.embed(["cache-aside with Redis", "retry with backoff"])

Two backends behind one interface (``Embedder``):

* ``OpenAIEmbeddings``: any OpenAI-compatible ``/v1/embeddings`` server (Modular MAX
  ``max serve``, BGE-M3 behind vLLM or TEI in production, OpenAI itself).
* ``MiniLMEmbedder``: all-MiniLM-L6-v2 (384 dims) in-process on NumPy, offline, the default.

Configuration (``embedder_from_env``):

    SYNAPSE_EMBEDDINGS_URL       server API root, e.g. http://127.0.0.1:8000/v1; unset = local
    SYNAPSE_EMBEDDINGS_MODEL     model name the server knows (required with a URL); without a
                                 URL: a local sentence-transformers model directory (BERT +
                                 mean pooling), default the bundled all-MiniLM-L6-v2
    SYNAPSE_EMBEDDINGS_API_KEY   bearer token for the server (optional, never logged)
    SYNAPSE_EMBEDDINGS_TIMEOUT   seconds per request (default 60)
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..errors import ConfigError
from .base import Embedder, check_texts, l2_normalise
from .local import DEFAULT_MODEL_NAME, MiniLMEmbedder, default_model_dir
from .openai import OpenAIEmbeddings


def embedder_from_env(environ: Mapping[str, str] | None = None) -> Embedder:
    """The embedder the environment selects: the server in SYNAPSE_EMBEDDINGS_URL, else local."""
    env = environ if environ is not None else os.environ
    url = env.get("SYNAPSE_EMBEDDINGS_URL", "").strip()
    model = env.get("SYNAPSE_EMBEDDINGS_MODEL", "").strip()
    if url:
        if not model:
            raise ConfigError(
                "SYNAPSE_EMBEDDINGS_URL is set but SYNAPSE_EMBEDDINGS_MODEL is not: name the "
                "model the server serves (e.g. sentence-transformers/all-MiniLM-L6-v2)"
            )
        timeout_text = env.get("SYNAPSE_EMBEDDINGS_TIMEOUT", "").strip()
        try:
            timeout = float(timeout_text) if timeout_text else 60.0
        except ValueError:
            raise ConfigError(
                f"SYNAPSE_EMBEDDINGS_TIMEOUT={timeout_text!r}: expected seconds"
            ) from None
        if timeout <= 0:
            raise ConfigError("SYNAPSE_EMBEDDINGS_TIMEOUT must be > 0")
        api_key = env.get("SYNAPSE_EMBEDDINGS_API_KEY") or None
        return OpenAIEmbeddings(url, model, api_key, timeout=timeout)
    if model and model not in (DEFAULT_MODEL_NAME, "all-MiniLM-L6-v2"):
        return MiniLMEmbedder(model)
    return MiniLMEmbedder()


__all__ = [
    "DEFAULT_MODEL_NAME",
    "Embedder",
    "MiniLMEmbedder",
    "OpenAIEmbeddings",
    "check_texts",
    "default_model_dir",
    "embedder_from_env",
    "l2_normalise",
]
