"""A click group whose subcommands are imported only when one of them runs.

``synapse-mojo --help`` lists every command from the table given to the group (name, module,
one-line help) without importing any command module; running a command (or asking for its
own ``--help``) imports just its module, which registers the command on the group with the
usual ``@group.command()`` decorator. The one-line help in the table is checked against each
command's docstring by ``tests/test_cli_fast.py``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import click


class LazyGroup(click.Group):
    """``click.Group`` plus ``lazy``: command name -> (module, one-line help)."""

    def __init__(self, *args, lazy: Mapping[str, tuple[str, str]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            importlib.import_module(self.lazy[cmd_name][0])  # registers itself on this group
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name)
            if command is not None:
                if command.hidden:
                    continue
                text = command.get_short_help_str(limit)
            else:  # shortened as click shortens a loaded command's help (its helper is private)
                text = click.Command(name, help=self.lazy[name][1]).get_short_help_str(limit)
            rows.append((name, text))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
