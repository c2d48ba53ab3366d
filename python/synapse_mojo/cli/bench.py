"""``synapse-mojo bench``: the benchmark suites (see docs/benchmark-schema.md)."""

from __future__ import annotations

from . import main


@main.group()
def bench() -> None:
    """Run benchmarks and compare results across machines.

    Every subcommand writes a JSON document (schema synapse-mojo-bench/1), a markdown table and,
    with the `bench` extra installed, PNG plots. Never run two benchmarks at once.
    """
