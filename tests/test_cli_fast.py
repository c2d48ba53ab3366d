"""The CLI starts fast: ``--help`` imports no heavy module; the lazy command table is truthful.

Speed itself is measured by ``synapse-mojo bench serve`` (never asserted here): these tests check
the cause of a slow start instead, i.e. which modules a help request imports.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import click
import pytest

#: Modules whose import costs tens to hundreds of milliseconds, none needed to print help.
HEAVY = (
    "numpy", "redis", "neo4j", "httpx", "rich", "mcp", "anyio", "tokenizers",
    "synapse_mojo.router", "synapse_mojo._dev", "synapse_mojo.runtime", "synapse_mojo.search",
    "synapse_mojo.patternmap", "synapse_mojo.stores", "synapse_mojo.embeddings",
)  # fmt: skip

_PROBE = """
import json, sys
sys.argv = ["synapse-mojo", *json.loads(sys.argv[1])]
from synapse_mojo.cli import run
try:
    run()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _modules_after(*args: str) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


@pytest.mark.parametrize(
    "args",
    [("--help",), ("search", "--help"), ("serve", "--help"), ("patterns", "search", "--help")],
)
def test_help_imports_nothing_heavy(args):
    code, modules = _modules_after(*args)
    assert code == 0
    loaded = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert not loaded, f"`synapse-mojo {' '.join(args)}` imported {loaded}"


def test_import_synapse_mojo_is_light():
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, synapse_mojo; print(' '.join(sys.modules))"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    modules = set(proc.stdout.split())
    assert "numpy" not in modules and "synapse_mojo.runtime" not in modules
    import synapse_mojo

    assert synapse_mojo.PatternIndex.__name__ == "PatternIndex"  # still reachable, on first use


def _groups():
    from synapse_mojo.cli import main

    ctx = click.Context(main)
    stack = [main]
    while stack:
        group = stack.pop()
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None, f"{group.name} {name}: listed but does not load"
            if isinstance(command, click.Group):
                stack.append(command)
        yield group


def test_lazy_table_matches_the_commands():
    """The one-line help shown by ``--help`` before import is the command's own docstring."""
    for group in _groups():
        for name, (_module, summary) in getattr(group, "lazy", {}).items():
            command = group.commands[name]
            first = inspect.cleandoc(command.help or "").split("\n\n")[0].replace("\n", " ")
            assert summary == first, f"{group.name} {name}: update the lazy table"
