"""Helpers for the serve tests: a clean environment and seed data; the server process itself is
``synapse_mojo._dev.bench.serve.ServeProcess``, shared with `synapse-mojo bench serve`."""

from __future__ import annotations

import os
from pathlib import Path

# One way to start a server for the tests and the benchmark.
from synapse_mojo._dev.bench.serve import CLI, ServeProcess, free_port  # noqa: F401 (re-exported)


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SYNAPSE_") or k == "SYNAPSE_TEST_KERNEL_CACHE"
    }
    env.update(extra)
    return env


def seed_store(url: str, texts: dict[str, str]) -> None:
    """Writes ``name -> text`` patterns (embedded with the local MiniLM) into ``url``."""
    from synapse_mojo.patternmap import PatternMap

    with PatternMap.open(url) as pmap:
        for name, text in texts.items():
            pmap.add_text(text, {"name": name, "language": "python", "type": "pattern"})


SAMPLE = {
    "retry": "Retry idempotent calls with jittered exponential backoff",
    "breaker": "Wrap a flaky dependency in a circuit breaker that opens after repeated failures",
    "cache": "Cache the embeddings of repeated queries so that they are computed once",
    "pool": "Reuse database connections from a bounded pool instead of opening one per request",
}

__all__ = ["CLI", "SAMPLE", "Path", "ServeProcess", "clean_env", "free_port", "seed_store"]
