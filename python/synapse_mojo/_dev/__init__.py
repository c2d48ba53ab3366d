"""Tooling that ships with synapse-mojo but is not part of the library.

* ``bench/``: the benchmark harness behind ``synapse-mojo bench`` and ``benchmarks/`` (needs
  the ``bench`` extra: ``pip install 'synapse-mojo[bench]'``);
* ``demo.py``, ``router_demo.py``: the body of ``synapse-mojo demo`` (needs the ``local``
  extra for the embedder; the Redis half of the router part needs the ``redis`` extra);
* ``generate_sample_patterns.py``: writes ``synapse_mojo/data/sample_patterns.json``.

Not public API: names here may change between releases. Nothing outside this package and the
CLI commands that run it (``cli/bench*.py``, ``cli/demo.py``) imports from it
(``tests/test_extras.py`` checks that).
"""
