"""Bounds on every tool argument of ``synapse-mojo serve`` (stdlib only: the CLI checks them too
before it asks a server)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """A request over a bound is refused with a tool error, never truncated."""

    query_chars: int = 2_000
    max_results: int = 100
    text_chars: int = 20_000
    metadata_bytes: int = 16_384
    id_chars: int = 256
    filter_keys: int = 16
    payload_bytes: int = 65_536
    receive_max_n: int = 100


LIMITS = Limits()
