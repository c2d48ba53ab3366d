"""``synapse-mojo serve``: the pattern map warm in one process, as MCP tools (see docs/serve.md)."""

from __future__ import annotations

from pathlib import Path

import click

from . import main


@main.command("serve")
@click.option(
    "--store",
    "store_url",
    envvar="SYNAPSE_STORE_URL",
    default=None,
    metavar="URL",
    help="Pattern store [default: SYNAPSE_STORE_URL or the embedded user data file].",
)
@click.option(
    "--router-url",
    envvar="SYNAPSE_ROUTER_URL",
    default=None,
    metavar="URL",
    help=(
        "Router (memory:// or redis://...): adds send_message/receive_messages"
        " [default: SYNAPSE_ROUTER_URL, else none]."
    ),
)
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio: what agent clients spawn; http: streamable HTTP at /mcp.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="HTTP bind address; anything but loopback needs SYNAPSE_SERVE_TOKEN.",
)
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="HTTP port."
)
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Unix socket for `synapse-mojo search` [default: serve.sock in the runtime dir].",
)
@click.option("--no-socket", is_flag=True, help="Do not serve the CLI socket.")
@click.option(
    "--poll-interval",
    default=0.2,
    show_default=True,
    type=click.FloatRange(0.01, 60),
    help="Seconds between checks of the store's change feed (live index).",
)
def serve_command(
    store_url, router_url, transport, host, port, socket_path, no_socket, poll_interval
) -> None:
    """Serve the pattern map to agents over MCP, warm: store, embedder and index stay loaded.

    Tools: search_pattern_map and check_system_health (the Synapse pilot's), search_patterns,
    get_pattern, add_pattern, pattern_stats; send_message and receive_messages with a router.
    Writes by other processes reach the index within a poll interval. Stop with Ctrl-C (HTTP)
    or by closing stdin (stdio).
    """
    import asyncio

    from ..serve.runner import ServeOptions, serve

    options = ServeOptions(
        store_url=store_url, router_url=router_url, transport=transport, host=host, port=port,
        socket_path=socket_path, use_socket=not no_socket, poll_interval=poll_interval,
    )  # fmt: skip

    def ready(where: list[str]) -> None:
        click.echo(f"synapse-mojo serve: ready on {', '.join(where)}", err=True)

    asyncio.run(serve(options, ready=ready))
