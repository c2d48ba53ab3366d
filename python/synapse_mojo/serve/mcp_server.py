"""The MCP server: the pattern map (and the router) as tools, over stdio or streamable HTTP.

    server = build_server(service)       # FastMCP from the official SDK
    await server.run_stdio_async()       # what agent clients spawn

The ``PatternService`` is opened once per process by ``run`` and handed to every MCP session
through the server's lifespan context; tools take it from there (``ctx.request_context``),
never from a module global. Tools are typed functions whose docstrings are their
descriptions; arguments carry their bounds in the schema and are checked again by the
service. A ``SynapseError`` becomes a tool error (``isError``) with its message.
"""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from pydantic import Field

from ..errors import SynapseError
from .limits import LIMITS as _LIMITS
from .service import PatternService

INSTRUCTIONS = (
    "synapse-mojo pattern map: search_pattern_map (the Synapse pilot's tool, JSON text), "
    "search_patterns (structured hits with scores and metadata), get_pattern, add_pattern, "
    "pattern_stats, check_system_health; send_message/receive_messages when a router is set."
)

Query = Annotated[
    str, Field(description="What to look for, in words.", max_length=_LIMITS.query_chars)
]
MaxResults = Annotated[int, Field(ge=1, le=_LIMITS.max_results)]


def _service(ctx: Context) -> PatternService:
    return ctx.request_context.lifespan_context


def _call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except SynapseError as exc:
        raise ToolError(str(exc)) from exc


def build_server(service: PatternService, *, host: str = "127.0.0.1", port: int = 8765) -> FastMCP:
    """A FastMCP server whose sessions all share ``service`` (opened and closed by the caller)."""

    @asynccontextmanager
    async def lifespan(_server: FastMCP) -> AsyncIterator[PatternService]:
        yield service

    mcp = FastMCP(
        name="synapse-mojo",
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        host=host,
        port=port,
        log_level="WARNING",
        max_request_body_size=1_048_576,
        # Streamable HTTP answers a tool call with one JSON body instead of opening an SSE
        # stream per request (both are in the spec; every client takes either).
        json_response=True,
    )

    @mcp.tool()
    def search_pattern_map(
        query: Query,
        ctx: Context,
        max_results: Annotated[int, Field(ge=0, le=_LIMITS.max_results)] = 10,
    ) -> str:
        """Search the Synapse Pattern Map for relevant patterns, solutions, and best practices.

        Returns the Synapse pilot's JSON document: query, max_results, latency_ms and results
        (id, name, description, language, type, similarity), best first.
        """
        return json.dumps(
            _call(_service(ctx).search_pattern_map, query, max_results),
            indent=2,
            ensure_ascii=False,
        )

    @mcp.tool()
    def check_system_health(ctx: Context) -> str:
        """Check the health of the pattern store, Redis, the embedding model and the consciousness
        metric (the Synapse pilot's JSON document)."""
        return json.dumps(_call(_service(ctx).check_system_health), indent=2, ensure_ascii=False)

    @mcp.tool()
    def search_patterns(
        query: Query,
        ctx: Context,
        top_k: MaxResults = 5,
        filter: Annotated[
            dict[str, Any] | None,
            Field(
                description="Metadata that every hit must have: key -> value (a list means any of)."
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Rank the whole pattern map against a query by exact cosine similarity.

        Returns hits (id, score, name, text, metadata), the runtime that ranked them (mojo or
        python) and the latency (embedding the query plus ranking) in milliseconds.
        """
        return _call(_service(ctx).search_patterns, query, top_k, filter)

    @mcp.tool()
    def get_pattern(
        id: Annotated[str, Field(max_length=_LIMITS.id_chars)], ctx: Context
    ) -> dict[str, Any]:
        """One pattern by id: text, metadata, timestamps and relations."""
        return _call(_service(ctx).get_pattern, id)

    @mcp.tool()
    def add_pattern(
        text: Annotated[str, Field(max_length=_LIMITS.text_chars)],
        ctx: Context,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add (or update) a pattern: embedded, stored and indexed, searchable at once. The id is
        derived from the text, so adding the same text again updates it."""
        return _call(_service(ctx).add_pattern, text, metadata)

    @mcp.tool()
    def pattern_stats(ctx: Context) -> dict[str, Any]:
        """Counts, embedding model and dimension, index size and live-index status."""
        return _call(_service(ctx).pattern_stats)

    if service.router is not None:

        @mcp.tool()
        def send_message(
            destination: Annotated[
                str, Field(description="The tract to send to: internal or external.")
            ],
            ctx: Context,
            payload: Any = None,
            priority: Annotated[int, Field(ge=0, le=9)] = 2,
        ) -> dict[str, Any]:
            """Send a JSON payload to the other tract over the corpus callosum (priority 0-9,
            higher first). Returns the message id."""
            return _call(_service(ctx).send_message, destination, payload, priority)

        @mcp.tool()
        def receive_messages(
            tract: Annotated[
                str, Field(description="The tract to receive for: internal or external.")
            ],
            ctx: Context,
            max_n: Annotated[int, Field(ge=1, le=_LIMITS.receive_max_n)] = 10,
        ) -> dict[str, Any]:
            """Take up to max_n waiting messages for a tract, highest priority first (they are
            acknowledged as they are handed over)."""
            return _call(_service(ctx).receive_messages, tract, max_n)

    return mcp


#: Tools the plain JSON endpoint (``POST /call``, used by the CLI) may call.
CALLABLE = (
    "search_pattern_map",
    "search_patterns",
    "get_pattern",
    "pattern_stats",
    "check_system_health",
)
