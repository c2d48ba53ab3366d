"""Imports one kernel module in a throw-away process and runs its self-checks there.

    python -m synapse_mojo.runtime.kernel_probe NAME PATH [--lib-dir DIR]

Run by :func:`.kernels.probe` before a module that this machine has not imported before is
imported by the process that needs it: a damaged shared library does not raise on import, it
kills the importing process (SIGBUS for a truncated file, SIGILL or SIGSEGV for damaged code),
and that must be this process, not the caller. Exit 0: imported, ABI as expected, self-checks
ran (a self-check that *fails* is reported but is not a crash: the caller's own start-up
self-check decides whether the kernel is used). Exit 1: a Python-level failure, printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kernel_probe")
    parser.add_argument("name")
    parser.add_argument("path", type=Path)
    parser.add_argument("--lib-dir", default=None)
    args = parser.parse_args(argv)

    # This process is a program of its own: the services register their kernels'
    # self-checks when imported (the runtime layer does not know them by name).
    from ..router import mojo_queue as _router_checks  # noqa: F401
    from ..search import mojo_backend as _search_checks  # noqa: F401
    from . import kernels
    from .adapter import FEATURE_KERNELS, registered_self_check

    try:
        if args.lib_dir:
            kernels._preload_runtime(kernels.Compiler("probe", "probe", lib_dir=args.lib_dir))
        module = kernels._import_extension(args.name, args.path)
        kernels._check_abi(args.name, module)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    checks: dict[str, str] = {}
    for feature, kernel in FEATURE_KERNELS.items():
        if kernel != args.name:
            continue
        check = registered_self_check(feature)
        if check is None:
            checks[feature] = "not registered"
            continue
        try:
            check(module)
            checks[feature] = "passed"
        except Exception as exc:  # not a crash: reported, decided by the caller's self-check
            checks[feature] = f"failed: {type(exc).__name__}: {exc}"
    print(json.dumps({"kernel": args.name, "path": str(args.path), "self_checks": checks}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
