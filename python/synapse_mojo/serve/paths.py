"""Where a running server listens for the CLI: a Unix socket in the per-user runtime directory.

Stdlib only (the CLI's search imports this before deciding whether to load anything heavy).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

SOCKET_NAME = "serve.sock"


def runtime_dir(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_RUNTIME_DIR/synapse-mojo``, else ``/tmp/synapse-mojo-<uid>`` (``SYNAPSE_RUNTIME_DIR``
    overrides both)."""
    env = os.environ if environ is None else environ
    if override := env.get("SYNAPSE_RUNTIME_DIR", "").strip():
        return Path(override)
    if xdg := env.get("XDG_RUNTIME_DIR", "").strip():
        return Path(xdg) / "synapse-mojo"
    return Path("/tmp") / f"synapse-mojo-{os.getuid()}"


def default_socket(environ: dict[str, str] | None = None) -> Path:
    return runtime_dir(environ) / SOCKET_NAME


def private_dir(path: Path) -> Path:
    """Creates ``path`` (mode 0700) if needed and checks that it is ours and private."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{path} is not a private directory owned by this user")
    return path


def trusted_socket(path: Path) -> bool:
    """True when ``path`` is a socket owned by this user in a private directory."""
    try:
        info = path.lstat()
        parent = path.parent.lstat()
    except OSError:
        return False
    uid = os.getuid()
    return (
        stat.S_ISSOCK(info.st_mode) and info.st_uid == uid
        and parent.st_uid == uid and not parent.st_mode & 0o077
    )  # fmt: skip
