"""``synapse-mojo search QUERY [MAX_RESULTS] --json``: the pilot tools' search contract."""

from __future__ import annotations

import json

from .conftest import run_cli

# Twelve patterns; the one the query is about is inserted LAST. The pilot's Cypher applied
# LIMIT before ranking and so could never return it; ranking the whole map must.
PATTERNS = {
    f"p_{i:03d}": {
        "name": f"Logging convention {i}",
        "description": f"Structured log field naming rule number {i} for service telemetry.",
        "language": "python",
        "type": "observability",
    }
    for i in range(1, 12)
}
PATTERNS["p_012"] = {
    "name": "Dead-letter queue for poison messages",
    "description": "Park messages that keep failing after repeated delivery attempts.",
    "applicable_to": ["rabbitmq", "redis streams"],
    "abstraction_level": "architecture",
}


def test_search_json_contract_ranks_the_whole_map(tmp_path, search_kernel, kernel_cache):
    source = tmp_path / "PATTERN_MAP.json"
    source.write_text(json.dumps({"meta": {}, "patterns": PATTERNS, "emergence_log": []}))
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path), "SYNAPSE_KERNEL_CACHE": str(kernel_cache)}
    assert run_cli("patterns", "import", str(source), env=env).returncode == 0  # the default store

    proc = run_cli("search", "messages that keep failing", "3", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"query", "max_results", "latency_ms", "results"}
    assert out["query"] == "messages that keep failing" and out["max_results"] == 3
    assert out["latency_ms"] >= 0 and len(out["results"]) == 3
    first = out["results"][0]
    assert set(first) == {"id", "name", "description", "language", "type", "similarity"}
    assert first["id"] == "p_012" and first["name"] == "Dead-letter queue for poison messages"
    assert first["language"] == "rabbitmq, redis streams" and first["type"] == "architecture"
    similarities = [r["similarity"] for r in out["results"]]
    assert similarities == sorted(similarities, reverse=True)
    second = out["results"][1]
    assert second["language"] == "python" and second["type"] == "observability"

    default = json.loads(run_cli("search", "structured logging fields", "--json", env=env).stdout)
    assert default["max_results"] == 5 and len(default["results"]) == 5

    human = run_cli("search", "poison messages", env=env)
    assert human.returncode == 0 and "p_012" in human.stdout


def test_search_errors_are_clear(tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    empty = run_cli("search", "anything", "--json", env=env)
    assert empty.returncode == 2 and "import or add some first" in empty.stderr and "Traceback" not in empty.stderr
    bad = run_cli("search", "anything", "0", env=env)
    assert bad.returncode == 2 and "MAX_RESULTS" in bad.stderr
