"""``synapse-mojo bench compare``: matching by case key, ratio orientation, one-sided cases,
emulation warnings, the markdown report and the plot (real matplotlib, Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synapse_mojo._dev.bench.compare import compare_documents, describe_case
from synapse_mojo._dev.bench.report import new_document, write_document
from synapse_mojo.errors import InvalidInputError

from .conftest import run_cli


def _machine(arch: str, emulated: bool = False) -> dict:
    return {
        "arch": arch,
        "cpu_model": f"{arch} cpu",
        "cores": 2,
        "bandwidth_gbps": 40.0,
        "emulated": emulated,
    }


def _search(
    backend: str, n: int, p50: float, qps: float, mode: str = "single", batch: int = 1
) -> dict:
    return {
        "backend": backend,
        "n": n,
        "dim": 384,
        "k": 10,
        "mode": mode,
        "batch_size": batch,
        "p50_ms": p50,
        "p95_ms": p50 * 1.2,
        "p99_ms": p50 * 1.5,
        "qps": qps,
        "gbps": 1.0,
        "recall_at_k": 1.0,
    }


def _doc(arch: str, records: list[dict], emulated: bool = False, suite: str = "search") -> dict:
    doc = new_document(suite, command="test", machine=_machine(arch, emulated))
    doc["records"] = records
    return doc


@pytest.fixture
def pair() -> tuple[dict, dict]:
    a = _doc(
        "x86_64",
        [
            _search("mojo-f32", 10_000, 0.5, 2000.0),
            _search("numpy", 10_000, 1.0, 1000.0),
            _search("mojo-f32", 10_000, 4.0, 16_000.0, mode="batch", batch=64),
            _search("faiss-flat", 10_000, 0.9, 1100.0),  # x86_64 only
        ],
    )
    b = _doc(
        "aarch64",
        [
            _search("mojo-f32", 10_000, 1.0, 1000.0),
            _search("numpy", 10_000, 1.0, 1000.0),
            _search("mojo-f32", 10_000, 2.0, 32_000.0, mode="batch", batch=64),
            _search("usearch-f32", 10_000, 0.7, 1400.0),  # aarch64 only
        ],
    )
    return a, b


def test_ratios_are_oriented_so_that_above_one_means_a_is_faster(pair):
    c = compare_documents(*pair)
    assert (c.a.label, c.b.label) == ("x86_64", "aarch64")
    by_case = {describe_case("search", case.key): case for case in c.cases}
    single = by_case["mojo-f32 N=10,000 d=384 k=10 single"]
    assert single.ratios["p50_ms"] == pytest.approx(2.0)  # B's latency / A's latency
    assert single.ratios["qps"] == pytest.approx(2.0)  # A's throughput / B's throughput
    assert single.faster("p50_ms", "x86_64", "aarch64") == "x86_64 ×2.00"
    batch = by_case["mojo-f32 N=10,000 d=384 k=10 batch×64"]
    assert batch.ratios["p50_ms"] == pytest.approx(0.5)
    assert batch.faster("qps", "x86_64", "aarch64") == "aarch64 ×2.00"
    assert by_case["numpy N=10,000 d=384 k=10 single"].faster("p50_ms", "x86_64", "aarch64") == "≈"
    assert c.geomean("p50_ms") == pytest.approx(1.0)  # 2.0 x 0.5 x 1.0


def test_cases_on_one_side_are_listed_not_dropped(pair):
    c = compare_documents(*pair)
    assert [r["backend"] for r in c.only_a] == ["faiss-flat"]
    assert [r["backend"] for r in c.only_b] == ["usearch-f32"]
    report = c.markdown()
    assert "Only in x86_64 (1 case(s), not compared):" in report
    assert "- usearch-f32 N=10,000 d=384 k=10 single" in report


def test_markdown_has_machines_table_and_no_warning_for_real_hardware(pair):
    report = compare_documents(*pair).markdown()
    assert report.startswith("## search benchmark: x86_64 vs aarch64")
    assert "**x86_64** (A): x86_64 · x86_64 cpu · 2 cores" in report
    assert "| case | x86_64 p50 ms | aarch64 p50 ms | p50 ratio |" in report
    assert "| mojo-f32 N=10,000 d=384 k=10 single | 0.5000 | 1.0000 | 2.00 |" in report
    assert "WARNING" not in report and "EMULAT" not in report


def test_an_emulated_side_is_flagged_loudly(pair):
    a, _ = pair
    b = _doc("aarch64", [_search("mojo-f32", 10_000, 40.0, 25.0)], emulated=True)
    c = compare_documents(a, b)
    assert any("EMULATION" in w and "NOT performance" in w for w in c.warnings())
    report = c.markdown()
    assert "> **WARNING:** aarch64 ran under EMULATION (qemu)" in report
    assert "EMULATED (timings are not performance)" in report  # in the machine summary too


def test_no_common_case_is_a_warning_not_an_error():
    a = _doc("x86_64", [_search("numpy", 1000, 1.0, 1.0)])
    b = _doc("aarch64", [_search("numpy", 2000, 1.0, 1.0)])
    c = compare_documents(a, b)
    assert not c.cases and len(c.only_a) == len(c.only_b) == 1
    assert "No case appears in both documents" in c.markdown()


def test_suites_must_match(pair):
    a, _ = pair
    router = _doc("aarch64", [], suite="router")
    with pytest.raises(
        InvalidInputError, match="cannot compare a 'search' benchmark with a 'router'"
    ):
        compare_documents(a, router)


def test_duplicate_cases_are_reported_and_the_first_is_used():
    a = _doc("x86_64", [_search("numpy", 10, 1.0, 1.0), _search("numpy", 10, 9.0, 9.0)])
    b = _doc("aarch64", [_search("numpy", 10, 2.0, 1.0)])
    c = compare_documents(a, b)
    assert c.cases[0].ratios["p50_ms"] == pytest.approx(2.0)
    assert any("a second record for this case was ignored" in w for w in c.warnings())


def test_same_architecture_labels_use_the_file_names():
    a = _doc("x86_64", [_search("numpy", 10, 1.0, 1.0)])
    b = _doc("x86_64", [_search("numpy", 10, 1.0, 1.0)])
    c = compare_documents(a, b, path_a="runs/before.json", path_b="runs/after.json")
    assert (c.a.label, c.b.label) == ("x86_64 (before.json)", "x86_64 (after.json)")


def test_router_records_compare_on_messages_per_second():
    def rec(backend: str, rate: float) -> dict:
        return {
            "backend": backend,
            "mode": "batch",
            "batch_size": 256,
            "messages": 100_000,
            "msgs_per_s": rate,
            "p50_ms": 1 / rate,
            "p95_ms": 1 / rate,
            "p99_ms": 1 / rate,
            "lost": 0,
        }

    a = _doc("x86_64", [rec("mojo", 4e6)], suite="router")
    b = _doc("aarch64", [rec("mojo", 2e6)], suite="router")
    c = compare_documents(a, b)
    assert c.cases[0].ratios["msgs_per_s"] == pytest.approx(2.0)
    assert "mojo 100,000 msgs batch×256" in c.markdown()


@given(
    pa=st.floats(1e-4, 1e4),
    pb=st.floats(1e-4, 1e4),
    qa=st.floats(1e-2, 1e7),
    qb=st.floats(1e-2, 1e7),
)
def test_swapping_the_sides_inverts_every_ratio(pa, pb, qa, qb):
    a = _doc("x86_64", [_search("numpy", 10, pa, qa)])
    b = _doc("aarch64", [_search("numpy", 10, pb, qb)])
    ab, ba = compare_documents(a, b).cases[0], compare_documents(b, a).cases[0]
    for metric, ratio in ab.ratios.items():
        assert ratio * ba.ratios[metric] == pytest.approx(1.0)


def test_unusable_values_give_no_ratio():
    bad = _search("numpy", 10, 0.0, float("nan"))
    c = compare_documents(_doc("x86_64", [bad]), _doc("aarch64", [_search("numpy", 10, 1.0, 1.0)]))
    assert c.cases[0].ratios["p50_ms"] is None and c.cases[0].ratios["qps"] is None
    assert "| - |" in c.markdown()


def test_plot_is_a_png(pair, tmp_path):
    pytest.importorskip("matplotlib", reason="the `bench` extra provides matplotlib")
    path = compare_documents(*pair).plot(tmp_path / "out" / "compare.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------
# The command line (the installed console script, in a subprocess)
# ------------------------------------------------------------------------------------------


def _text(stream: str) -> str:
    """Terminal output with rich's line wrapping undone."""
    return " ".join(stream.split())


def _write_pair(pair, tmp_path: Path) -> tuple[Path, Path]:
    a, b = pair
    return write_document(a, tmp_path / "x86_64.json"), write_document(b, tmp_path / "aarch64.json")


def test_cli_prints_and_writes_markdown_and_plot(pair, tmp_path):
    pytest.importorskip("matplotlib", reason="the `bench` extra provides matplotlib")
    a, b = _write_pair(pair, tmp_path)
    md, png = tmp_path / "compare.md", tmp_path / "compare.png"
    proc = run_cli("bench", "compare", str(a), str(b), "--markdown", str(md), "--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    assert "| mojo-f32 N=10,000 d=384 k=10 single |" in proc.stdout
    assert md.read_text() == proc.stdout
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_appends_to_the_github_step_summary(pair, tmp_path):
    a, b = _write_pair(pair, tmp_path)
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    proc = run_cli(
        "bench",
        "compare",
        str(a),
        str(b),
        "--markdown",
        str(summary),
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert proc.returncode == 0, proc.stderr
    assert summary.read_text().startswith("# earlier step\n## search benchmark")


def test_cli_rejects_a_missing_or_invalid_file_clearly(pair, tmp_path):
    a, _ = _write_pair(pair, tmp_path)
    proc = run_cli("bench", "compare", str(a), str(tmp_path / "nope.json"))
    assert proc.returncode == 2 and "nope.json: no such file" in _text(proc.stderr)
    (tmp_path / "bad.json").write_text(json.dumps({"schema": "something-else"}))
    proc = run_cli("bench", "compare", str(a), str(tmp_path / "bad.json"))
    assert proc.returncode == 2
    assert "not a synapse-mojo-bench/1 benchmark document" in _text(proc.stderr)


def test_cli_without_matplotlib_says_what_to_install(pair, tmp_path):
    """A stand-in ``matplotlib`` package that fails to import, first on the path: the real
    CLI must still print the report, then explain the missing plot dependency."""
    blocker = tmp_path / "no-matplotlib" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('matplotlib blocked for this test')\n")
    a, b = _write_pair(pair, tmp_path)
    proc = run_cli(
        "bench",
        "compare",
        str(a),
        str(b),
        "--plot",
        str(tmp_path / "x.png"),
        env={"PYTHONPATH": str(blocker.parent)},
    )
    assert proc.returncode == 2
    assert "## search benchmark" in proc.stdout
    assert "needs matplotlib: uv sync --extra bench" in _text(proc.stderr)
    assert not (tmp_path / "x.png").exists()


def _one_error_line(proc) -> str:
    """The CLI's error: exit 2, no traceback, one ``error:`` line (not wrapped at 80 columns)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    "content, message",
    [
        (bytes(range(256)) * 8, "not UTF-8 text"),  # a binary file (was: UnicodeDecodeError)
        (b"[" * 100_000, "cannot be read"),  # absurd nesting (RecursionError)
        (
            json.dumps(
                {"schema": "synapse-mojo-bench/1", "suite": [], "machine": {}, "records": []}
            ).encode(),
            "unknown suite []",
        ),  # was: TypeError unhashable
        (
            json.dumps(
                {"schema": "synapse-mojo-bench/1", "suite": "search", "machine": {}, "records": [1]}
            ).encode(),
            "record 0 is a int",
        ),  # was: TypeError not iterable
    ],
    ids=["binary", "nested", "suite-list", "record-int"],
)
def test_cli_rejects_unreadable_documents_in_one_line(pair, tmp_path, content, message):
    a, _ = _write_pair(pair, tmp_path)
    bad = (
        tmp_path
        / "a-rather-long-file-name-so-that-the-error-line-is-longer-than-eighty-columns.json"
    )
    bad.write_bytes(content)
    line = _one_error_line(run_cli("bench", "compare", str(bad), str(a), env={"COLUMNS": "80"}))
    assert str(bad) in line and message in line


def test_records_with_unusable_case_keys_or_metrics_are_rejected(pair):
    a, _ = pair
    record = dict(a["records"][0])
    for field, value, message in (
        ("n", [1], "n must be a string or a number"),
        ("p50_ms", "fast", "p50_ms must be a number or null"),
        ("qps", True, "qps must be a number or null"),
    ):
        doc = {**a, "records": [{**record, field: value}]}
        with pytest.raises(InvalidInputError, match=message):
            write_document(doc, "/dev/null")
