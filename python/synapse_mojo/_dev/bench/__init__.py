"""Benchmark machinery shared by ``synapse-mojo bench`` and ``benchmarks/``.

Documents follow ``docs/benchmark-schema.md`` (``synapse-mojo-bench/1``): one JSON document per run
with a ``machine`` block and one record per case and backend.
"""
