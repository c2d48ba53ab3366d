"""pytest-benchmark suites: the same kernels as `synapse-mojo bench`, for regression tracking.

    uv run pytest benchmarks --benchmark-json=bench.json      # all suites
    SYNAPSE_BENCH_N=1000000 uv run pytest benchmarks/test_search_bench.py

They assert answers (recall, equality), never times: compare runs with
`pytest-benchmark compare` or `synapse-mojo bench compare`. Never run two benchmarks at once.
"""

from __future__ import annotations

import os

import pytest

from synapse_mojo.runtime import get_runtime


def pytest_configure(config):
    config.addinivalue_line("markers", "peer: compares against a third-party library")


@pytest.fixture(scope="session")
def search_kernel():
    kernel = get_runtime().feature("pattern_search").kernel()
    if kernel is None:
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail("CI=true and the Mojo pattern_search kernel is unavailable")
        pytest.skip("the Mojo pattern_search kernel is unavailable")
    return kernel
