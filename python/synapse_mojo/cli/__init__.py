"""The ``synapse-mojo`` command line.

Every command lives in its own module and is imported only when it runs (see ``lazy.py``), so
``synapse-mojo --help`` and ``synapse-mojo search --help`` start without NumPy, Redis, the router
or the benchmark harness. Command modules import their heavy dependencies inside the command
function when the command's ``--help`` should stay fast too (``search``).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from ..errors import SynapseError
from .lazy import LazyGroup

__all__ = ["COMMANDS", "main", "run"]

#: name -> (module, first paragraph of the command's docstring: its line in ``--help``).
COMMANDS = {
    "bench": ("synapse_mojo.cli.bench", "Run benchmarks and compare results across machines."),
    "demo": (
        "synapse_mojo.cli.demo",
        "The main job on the embedded default: import, embed and search the sample pattern map; "
        "route messages between the tracts in-process and over Redis Streams; then compare Mojo, "
        "NumPy and Python search at scale.",
    ),
    "doctor": (
        "synapse_mojo.cli.doctor",
        "Per feature: compiler, kernel, self-check, mode, force-python, auto-disable, metrics.",
    ),
    "health": (
        "synapse_mojo.cli.health",
        "Check the pattern store, Redis, the embedder and the tools; say if ready for MCP.",
    ),
    "kernels": ("synapse_mojo.cli.kernels", "Build and inspect the Mojo kernels."),
    "patterns": (
        "synapse_mojo.cli.patterns",
        "Import, add, search, inspect and export the pattern map.",
    ),
    "router": (
        "synapse_mojo.cli.router",
        "Inspect the message router: depths, rates, consumers, dead letters.",
    ),
    "serve": (
        "synapse_mojo.cli.serve",
        "Serve the pattern map to agents over MCP, warm: store, embedder and index stay loaded.",
    ),
    "search": (
        "synapse_mojo.cli.search",
        "Rank the whole pattern map against QUERY; print the best MAX_RESULTS (default 10).",
    ),
}


def __getattr__(name: str) -> Any:  # PEP 562: rich loads only for commands that print with it
    if name in ("console", "err_console"):
        from rich.console import Console

        globals()["console"] = Console()
        globals()["err_console"] = Console(stderr=True)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _RichLogHandler(logging.Handler):
    """Formats records with rich's ``RichHandler``, imported at the first record."""

    def __init__(self) -> None:
        super().__init__()
        self._inner: logging.Handler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._inner is None:
            from rich.logging import RichHandler

            self._inner = RichHandler(
                console=__getattr__("err_console"), show_path=False, show_time=False
            )
            self._inner.setFormatter(logging.Formatter("%(message)s"))
        self._inner.handle(record)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="synapse-mojo")
def main(verbose: int) -> None:
    """Mojo-accelerated pattern search and message routing with automatic Python fallback.

    Configuration: a TOML file named by SYNAPSE_CONFIG, environment overrides
    (SYNAPSE_FEATURE_<NAME>=off|on|auto|shadow|canary:<f>, SYNAPSE_THREADS, ...) and
    SYNAPSE_FORCE_PYTHON=1 to run everything on Python. See docs/runtime.md.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(message)s", handlers=[_RichLogHandler()])
    # The Neo4j driver logs its own ERROR line for a failure that our one error line reports
    # already (and better: with the URL and what was being done); shown from -vv on.
    logging.getLogger("neo4j").setLevel(logging.DEBUG if verbose >= 2 else logging.CRITICAL)


def run() -> None:
    """Entry point that turns library errors into a one-line message and exit code 2."""
    try:
        code = main(standalone_mode=False)
    except click.exceptions.Abort:
        __getattr__("err_console").print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SynapseError as exc:
        from rich.markup import escape

        # One line, however long: no wrapping at the console width (80 when not a terminal).
        message = " ".join(str(exc).split())  # drivers' messages carry newlines
        __getattr__("err_console").print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
