"""``synapse-mojo search QUERY [MAX_RESULTS] --json`` and ``synapse-mojo health --json``: the
pilot tools' contracts (synapse_search.py, synapse_health.py), as their callers parse them."""

from __future__ import annotations

import json
import re

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
    env = {
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "HOME": str(tmp_path),
        "SYNAPSE_KERNEL_CACHE": str(kernel_cache),
    }
    assert run_cli("patterns", "import", str(source), env=env).returncode == 0  # the default store

    proc = run_cli("search", "messages that keep failing", "3", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"query", "max_results", "latency_ms", "results"}
    assert out["query"] == "messages that keep failing" and out["max_results"] == 3
    assert (
        isinstance(out["latency_ms"], int) and out["latency_ms"] >= 0 and len(out["results"]) == 3
    )
    first = out["results"][0]
    assert set(first) == {"id", "name", "description", "language", "type", "similarity"}
    assert first["id"] == "p_012" and first["name"] == "Dead-letter queue for poison messages"
    # `type` is the pattern's `type`, "unknown" without one (abstraction_level is not a type)
    assert first["language"] == "rabbitmq, redis streams" and first["type"] == "unknown"
    similarities = [r["similarity"] for r in out["results"]]
    assert similarities == sorted(similarities, reverse=True)
    assert all(round(s, 3) == s for s in similarities)  # rounded to 3 decimals, as the pilot
    second = out["results"][1]
    assert second["language"] == "python" and second["type"] == "observability"

    default = json.loads(run_cli("search", "structured logging fields", "--json", env=env).stdout)
    assert default["max_results"] == 10 and len(default["results"]) == 10  # the pilot's default
    none = run_cli("search", "structured logging fields", "0", "--json", env=env)
    assert none.returncode == 0 and json.loads(none.stdout)["results"] == []

    human = run_cli("search", "poison messages", env=env)
    assert human.returncode == 0 and "p_012" in human.stdout


def test_search_answers_json_with_exit_0_where_the_pilot_did(tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    blank = run_cli("search", "  ", "--json", env=env)
    assert blank.returncode == 0, blank.stderr
    assert json.loads(blank.stdout) == {
        "query": "  ",
        "max_results": 10,
        "latency_ms": 0,
        "results": [],
    }
    empty = run_cli("search", "anything", "3", "--json", env=env)
    assert empty.returncode == 0, empty.stderr
    out = json.loads(empty.stdout)
    assert (
        out["results"] == []
        and out["max_results"] == 3
        and "import or add patterns first" in out["error"]
    )
    broken = run_cli("search", "anything", "--json", "--store", "neo4j://127.0.0.1:1", env=env)
    assert broken.returncode == 0 and "Traceback" not in broken.stderr
    out = json.loads(broken.stdout)
    assert out["results"] == [] and out["error"] and isinstance(out["latency_ms"], int)
    human = run_cli("search", "anything", env=env)  # without --json an error is an error
    assert human.returncode == 2 and "import or add patterns first" in human.stderr
    bad = run_cli("search", "anything", "-1", env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_health_json_contract(tmp_path, redis_server):
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    proc = run_cli("health", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == {"status", "timestamp", "checks", "ready_for_mcp"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", report["timestamp"])
    checks = report["checks"]
    assert set(checks) == {"neo4j", "redis", "bge_m3", "cli_tools"}
    store = checks["neo4j"]
    assert (
        store["status"] == "up"
        and isinstance(store["latency_ms"], int)
        and store["backend"] == "sqlite"
    )
    assert (
        checks["redis"]["status"] == "down" and checks["redis"]["optional"] is True
    )  # none configured
    assert checks["bge_m3"]["status"] == "available" and checks["bge_m3"]["model_path"]
    assert checks["cli_tools"] == {"synapse_search": "executable", "synapse_health": "executable"}
    assert report["status"] == "degraded" and report["ready_for_mcp"] is True  # the pilot's rules

    healthy = json.loads(run_cli("health", "--json", "--redis", redis_server.url, env=env).stdout)
    assert healthy["status"] == "healthy" and healthy["checks"]["redis"]["status"] == "up"

    down = json.loads(
        run_cli("health", "--json", "--store", "neo4j://neo4j:secret@127.0.0.1:1", env=env).stdout
    )
    assert down["status"] == "unhealthy" and down["ready_for_mcp"] is False
    assert down["checks"]["neo4j"]["status"] == "down" and "secret" not in json.dumps(down)

    human = run_cli("health", "--verbose", env=env)
    assert (
        human.returncode == 0
        and "Overall Status: DEGRADED" in human.stdout
        and "Ready for MCP: YES" in human.stdout
    )
