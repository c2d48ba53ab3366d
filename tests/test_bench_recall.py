"""``bench recall``: the datasets and the document it writes (tiny sizes; the lead runs the
real one)."""

from __future__ import annotations

import pytest

from synapse_mojo._dev.bench.recall import iter_docstrings, run_recall_benchmark
from synapse_mojo._dev.bench.report import validate_document


def test_docstrings_are_read_without_importing(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(
        '"""Module docstring that is long enough to be kept as a text.\\n\\nSecond paragraph."""\n'
        'raise SystemExit("imported!")\n'
        'def f():\n    """Short."""\n'
        'class C:\n    """A class docstring that is long enough to be kept, too."""\n'
    )
    (tmp_path / "broken.py").write_text("def (:\n")
    assert list(iter_docstrings([str(tmp_path)])) == [
        "Module docstring that is long enough to be kept as a text.",
        "A class docstring that is long enough to be kept, too.",
    ]


def test_recall_document_shows_the_fixed_rerank_failing_and_the_certified_search_not(search_kernel):
    doc = run_recall_benchmark(
        ["gaussian", "clustered", "docstrings"], n=4000, dim=64, docstrings=20, queries=4
    )
    validate_document(doc)
    by = {(r["dataset"], r["method"]): r for r in doc["records"]}
    assert set(by) == {
        (d, m)
        for d in ("gaussian", "clustered", "docstrings")
        for m in ("int8-fixed", "int8-certified", "f32")
    }
    for dataset in ("gaussian", "clustered", "docstrings"):
        assert by[dataset, "int8-certified"]["recall_at_k"] == pytest.approx(1.0)
        assert by[dataset, "f32"]["recall_at_k"] == pytest.approx(1.0)
    assert by["clustered", "int8-fixed"]["recall_at_k"] < 0.9
    assert by["docstrings", "f32"]["dim"] == 384
