"""``synapse-mojo demo``: the main job, end to end on the embedded default.

The command's options live here; what it does lives in ``synapse_mojo._dev.demo`` (tooling,
not library). It needs the ``local`` extra (the MiniLM embedder); without it the command says
so in one line and exits 2.
"""

from __future__ import annotations

import os

import click

from .._extras import require
from . import console, err_console, main
from .patterns import nonempty_store_url


@main.command()
# Bounds are checked by click before anything runs (--n -1 used to run the whole demo first).
@click.option(
    "--n",
    "n",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=3),
    help="Patterns in the demo index (at least 3: three of them are queried).",
)
@click.option(
    "--dim", default=384, show_default=True, type=click.IntRange(min=1), help="Embedding dimension."
)
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--queries",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="Timed queries for Mojo and NumPy.",
)
@click.option(
    "--python-queries",
    default=3,
    show_default=True,
    type=click.IntRange(min=0),
    help="Timed queries for the pure-Python baseline (slow).",
)
@click.option("--seed", default=42, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    callback=nonempty_store_url,
    help="Store for the sample pattern map [default: demo.db in the user data directory].",
)
@click.option(
    "--fresh", is_flag=True, help="Use a temporary store: embed the sample set from scratch."
)
@click.option(
    "--ask",
    "questions",
    multiple=True,
    metavar="TEXT",
    help="A question for the pattern map (repeatable) [default: four built-in ones].",
)
@click.option(
    "--skip-synthetic", is_flag=True, help="Skip the synthetic latency comparison at scale."
)
@click.option("--skip-router", is_flag=True, help="Skip the message-router part.")
@click.option(
    "--router-messages",
    default=20_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Messages the router part routes per transport.",
)
def demo(
    n: int,
    dim: int,
    top_k: int,
    queries: int,
    python_queries: int,
    seed: int,
    store_url: str | None,
    fresh: bool,
    questions: tuple[str, ...],
    skip_synthetic: bool,
    skip_router: bool,
    router_messages: int,
) -> None:
    """The main job on the embedded default: import, embed and search the sample pattern map;
    route messages between the tracts in-process and over Redis Streams; then compare Mojo,
    NumPy and Python search at scale."""
    if not os.environ.get("SYNAPSE_EMBEDDINGS_URL", "").strip():  # else a server embeds
        require("local", "synapse-mojo demo (it embeds the sample patterns locally)")
    from .._dev.demo import DEFAULT_QUESTIONS, DemoOptions, run_demo

    options = DemoOptions(
        n=n,
        dim=dim,
        top_k=top_k,
        queries=queries,
        python_queries=python_queries,
        seed=seed,
        store_url=store_url,
        fresh=fresh,
        questions=questions or DEFAULT_QUESTIONS,
        skip_synthetic=skip_synthetic,
        skip_router=skip_router,
        router_messages=router_messages,
    )
    run_demo(console, err_console, options)
