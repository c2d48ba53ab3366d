"""``synapse-mojo serve``: the pattern map kept warm in one process, for agents (MCP) and the CLI.

* ``service``: ``PatternService``, the warm ``PatternMap`` (+ router) behind checked operations;
* ``live``: ``LiveIndex``, which follows other processes' writes through the store's change feed;
* ``mcp_server``: the MCP tools (official SDK, FastMCP);
* ``runner``: transports (stdio, streamable HTTP, a Unix socket for the CLI), bearer-token check;
* ``client``: the CLI's way in (stdlib only, so that a search through the server starts fast).

This package's ``__init__`` imports nothing, so ``client`` stays cheap. See docs/serve.md.
"""

#: Nothing is re-exported here: the modules above are the API (and importing them is the cost
#: this package avoids).
__all__: list[str] = []
