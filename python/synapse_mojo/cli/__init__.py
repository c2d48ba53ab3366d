"""The ``synapse-mojo`` command line."""

from __future__ import annotations

import logging
import sys

import click
from rich.console import Console
from rich.logging import RichHandler

from ..errors import SynapseError

console = Console()
err_console = Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="synapse-mojo")
def main(verbose: int) -> None:
    """Mojo-accelerated pattern search and message routing with automatic Python fallback.

    Configuration: a TOML file named by SYNAPSE_CONFIG, environment overrides
    (SYNAPSE_FEATURE_<NAME>=off|on|auto|shadow|canary:<f>, SYNAPSE_THREADS, ...) and
    SYNAPSE_FORCE_PYTHON=1 to run everything on Python. See the README.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
    )


def run() -> None:
    """Entry point that turns library errors into a one-line message and exit code 2."""
    try:
        code = main(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SynapseError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


from . import (  # noqa: E402,F401  (commands register themselves)
    bench,
    bench_compare,
    bench_router,
    bench_search,
    demo,
    doctor,
    kernels,
    kernels_check,
    patterns,
    router,
    search,
)
