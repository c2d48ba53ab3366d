"""``synapse-mojo patterns ...`` and the demo's pattern-map part, run as a user runs them
(subprocesses of the installed console script, real stores, the real local model)."""

from __future__ import annotations

import json

import pytest

from .conftest import run_cli

DOC = {
    "meta": {"version": "1"},
    "patterns": {
        "p_001": {
            "name": "Retry with backoff",
            "description": "Retry transient failures with exponential backoff and jitter.",
            "confidence": 0.9,
        },
        "p_002": {
            "name": "Cache-aside",
            "description": "Read the cache first; load from the database on a miss.",
            "extra": [1, 2],
        },
        "p_003": {
            "name": "Dead-letter queue",
            "description": "Park poison messages after repeated failures.",
        },
        "p_004": "not an object",
    },
    "emergence_log": [{"contributing_patterns": ["p_001", "p_003"]}],
}


@pytest.fixture
def env(tmp_path):
    """A private user data directory, so the default store is a temp file."""
    return {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}


def test_import_search_stats_export(tmp_path, env):
    source = tmp_path / "PATTERN_MAP.json"
    source.write_text(json.dumps(DOC))
    store = f"sqlite:///{tmp_path / 'p.db'}"

    proc = run_cli("patterns", "import", str(source), "--store", store, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["added"], report["relations"], report["embedded"]) == (3, 1, 3)
    assert report["skipped"] == [
        {"where": "patterns.p_004", "reason": "the entry is a str, not an object"}
    ]

    human = run_cli("patterns", "import", str(source), "--store", store, env=env)
    assert human.returncode == 0 and "3 patterns" in human.stdout and "skipped: 1" in human.stdout
    assert "3 reused" in human.stdout

    proc = run_cli(
        "patterns",
        "search",
        "poison messages keep failing",
        "--top-k",
        "2",
        "--store",
        store,
        "--json",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["hits"][0]["id"] == "p_003" and len(result["hits"]) == 2
    assert result["runtime"] in ("mojo", "python") and result["search_ms"] >= 0
    table = run_cli("patterns", "search", "cache miss", "--store", store, env=env)
    assert table.returncode == 0 and "Cache-aside" in table.stdout and "answered by" in table.stdout

    stats = json.loads(run_cli("patterns", "stats", "--store", store, "--json", env=env).stdout)
    assert stats["patterns"] == 3 and stats["relations"] == 1 and stats["embedding_dim"] == 384

    out = tmp_path / "out.json"
    proc = run_cli(
        "patterns", "export", "--store", store, "--format", "pattern_map", "-o", str(out), env=env
    )
    assert proc.returncode == 0 and "exported 3 patterns" in proc.stderr
    expected = {**DOC, "patterns": {k: v for k, v in DOC["patterns"].items() if k != "p_004"}}
    assert json.loads(out.read_text()) == expected
    jsonl = run_cli("patterns", "export", "--store", store, "--no-embeddings", env=env)
    records = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["kind"] for r in records] == ["header", "pattern", "pattern", "pattern", "relation"]
    assert all("embedding" not in r for r in records)


def test_add_show_delete_with_the_default_store(tmp_path, env):
    proc = run_cli(
        "patterns", "add", "--text", "Bulkhead: isolate pools per dependency", "--id", "bh",
        "--meta", "lang=go", "--meta", "confidence=0.8", "--meta", 'tags=["a"]', env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert str(tmp_path / "data" / "synapse-mojo" / "patterns.db") in proc.stdout.replace("\n", "")
    shown = json.loads(run_cli("patterns", "show", "bh", env=env).stdout)
    assert shown["metadata"] == {"lang": "go", "confidence": 0.8, "tags": ["a"]}
    assert shown["embedding_dim"] == 384 and shown["text"].startswith("Bulkhead")
    assert run_cli("patterns", "delete", "bh", "nope", env=env).stdout.startswith("deleted 1 of 2")
    missing = run_cli("patterns", "show", "bh", env=env)
    assert missing.returncode == 2 and "unknown pattern id 'bh'" in missing.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["patterns", "stats", "--store", "mongodb://localhost/db"], "unknown scheme 'mongodb'"),
        (["patterns", "add", "--text", "x", "--meta", "novalue"], "expected key=value"),
        (["patterns", "search", "x", "--top-k", "0"], "0"),
    ],
)
def test_bad_input_is_a_clean_error(env, args, message):
    proc = run_cli(*args, env=env)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_malformed_import_writes_nothing(tmp_path, env):
    bad = tmp_path / "bad.json"
    bad.write_text('{"patterns": {"p_1": {"name": "x"}')
    store = f"sqlite:///{tmp_path / 'p.db'}"
    proc = run_cli("patterns", "import", str(bad), "--store", store, env=env)
    assert proc.returncode == 2 and "invalid JSON" in proc.stderr and "Traceback" not in proc.stderr
    stats = json.loads(run_cli("patterns", "stats", "--store", store, "--json", env=env).stdout)
    assert stats["patterns"] == 0


def test_embeddings_server_down_is_a_clean_error(tmp_path, env):
    from .servers import free_port

    env = {
        **env,
        "SYNAPSE_EMBEDDINGS_URL": f"http://127.0.0.1:{free_port()}/v1",
        "SYNAPSE_EMBEDDINGS_MODEL": "m",
    }
    proc = run_cli(
        "patterns",
        "add",
        "--text",
        "x",
        "--store",
        f"sqlite:///{tmp_path / 'p.db'}",
        env=env,
        timeout=120,
    )
    assert (
        proc.returncode == 2 and "did not answer" in proc.stderr and "Traceback" not in proc.stderr
    )


@pytest.mark.slow
def test_demo_imports_embeds_and_answers(search_kernel, kernel_cache, env):
    """The main job end to end: the shipped sample set, embedded locally, real questions."""
    env = {**env, "SYNAPSE_KERNEL_CACHE": str(kernel_cache)}
    proc = run_cli(
        "demo", "--skip-synthetic", "--ask", "poison messages keep blocking the queue", env=env
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "imported 320 patterns" in out and "320 embedded" in out
    # auto: the kernel, unless the shipped crossovers give a 320 x 384 scan to NumPy
    from synapse_mojo.search.dispatch import shipped_crossovers

    runtime = "python" if shipped_crossovers().numpy_faster(320 * 384) else "mojo"
    assert f"answered by {runtime}" in out and "Dead-letter queue" in out
    again = run_cli("demo", "--skip-synthetic", "--ask", "cache stampede", env=env)
    assert again.returncode == 0 and "0 embedded" in again.stdout and "320 reused" in again.stdout


@pytest.mark.parametrize(
    "command", [["stats"], ["show", "p_1"], ["export"], ["search", "anything"], ["delete", "p_1"]]
)
def test_commands_that_only_read_never_create_a_store(tmp_path, env, command):
    """``patterns stats`` on a mistyped path created its directories and a database."""
    typo = tmp_path / "no-such-dir" / "patterns.db"
    proc = run_cli("patterns", *command, "--store", f"sqlite:///{typo}", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"no store at {typo}" in " ".join(proc.stderr.split())
    assert not typo.parent.exists()
    # The default store is not created by a read either (it was, by search).
    proc = run_cli("patterns", *command, env=env)
    assert proc.returncode == 2 and "no store at" in proc.stderr
    assert not (tmp_path / "data").exists()


def test_the_pilot_search_does_not_create_the_default_store(tmp_path, env):
    proc = run_cli("search", "anything", "--json", env=env)
    assert proc.returncode == 0 and "no store at" in json.loads(proc.stdout)["error"]
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "command", [["patterns", "stats"], ["patterns", "import", "x.json"], ["demo"]]
)
def test_an_empty_store_url_is_rejected(env, command):
    """``--store ''`` silently meant the default store."""
    proc = run_cli(*command, "--store", "", env=env)
    assert (
        proc.returncode == 2 and "empty store URL" in proc.stderr and "Traceback" not in proc.stderr
    )
