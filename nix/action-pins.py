#!/usr/bin/env python3
"""Every ``uses:`` of the GitHub workflows must be a pin from .github/actions-pins.json.

A tag is a moving, typo-able name (``astral-sh/setup-uv@v8`` names no tag at all: from v8.0.0 on
only full version tags are published), and actionlint does not look refs up. So each action is
pinned to a commit SHA, recorded once in the table with the release tag it was read from, and
every ``uses:`` must be exactly ``OWNER/REPO@<sha> # <tag>`` from that table.

    nix/action-pins.py check [--workflows DIR] [--pins FILE]
    nix/action-pins.py verify --git-dir OWNER/REPO=GIT_DIR [...]   # tag -> commit, from clones

``check`` is offline (nix/offline-checks.sh runs it); ``verify`` reads each tag's commit from a
local clone of the action's repository and compares it with the table.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHA = re.compile(r"[0-9a-f]{40}")


class PinError(Exception):
    """The pin table itself is malformed."""


def load_pins(path: Path) -> dict[str, dict[str, str]]:
    actions = json.loads(path.read_text())["actions"]
    for name, pin in actions.items():
        if not SHA.fullmatch(pin.get("sha", "")):
            raise PinError(f"{path}: {name}: 'sha' must be a full 40-character commit SHA")
        if not pin.get("tag"):
            raise PinError(f"{path}: {name}: 'tag' (the release the SHA was read from) is missing")
    return actions


def _uses(doc: object) -> list[str]:
    """Every `uses:` value of a workflow: job-level (reusable workflows) and step-level."""
    found: list[str] = []
    jobs = doc.get("jobs", {}) if isinstance(doc, dict) else {}
    for job in (jobs or {}).values():
        if not isinstance(job, dict):
            continue
        if "uses" in job:
            found.append(str(job["uses"]))
        for step in job.get("steps", []) or []:
            if isinstance(step, dict) and "uses" in step:
                found.append(str(step["uses"]))
    return found


def check_workflow(path: Path, pins: dict[str, dict[str, str]]) -> list[str]:
    import yaml  # PyYAML: in the project environment (uv sync)

    text = path.read_text()
    problems: list[str] = []
    for ref in _uses(yaml.safe_load(text)):
        if ref.startswith("./"):
            continue  # an action or workflow of this repository
        action, at, version = ref.partition("@")
        repo = "/".join(action.split("/")[:2])
        pin = pins.get(repo)
        if not at or pin is None:
            problems.append(f"{path.name}: `uses: {ref}`: {repo} is not in the pin table")
        elif version != pin["sha"]:
            problems.append(
                f"{path.name}: `uses: {ref}`: {repo} must be pinned to {pin['sha']} (# {pin['tag']}), "
                f"the table's commit; `{version}` is not it"
            )
        else:
            line = re.search(rf"uses:\s*['\"]?{re.escape(ref)}['\"]?[ \t]*(#[^\n]*)?", text)
            comment = (line.group(1) or "").lstrip("# ").strip() if line else ""
            if comment != pin["tag"]:
                problems.append(f"{path.name}: `uses: {ref}` should carry the comment `# {pin['tag']}`")
    return problems


def check(workflows: Path, pins_path: Path) -> list[str]:
    pins = load_pins(pins_path)
    files = sorted([*workflows.glob("*.yml"), *workflows.glob("*.yaml")])
    if not files:
        return [f"no workflows in {workflows}"]
    problems: list[str] = []
    for path in files:
        problems += check_workflow(path, pins)
    return list(dict.fromkeys(problems))  # one line per distinct ref


def verify(pins_path: Path, git_dirs: dict[str, str]) -> list[str]:
    pins = load_pins(pins_path)
    problems = []
    for repo, git_dir in git_dirs.items():
        pin = pins.get(repo)
        if pin is None:
            problems.append(f"{repo}: not in the pin table")
            continue
        proc = subprocess.run(
            ["git", "--git-dir", git_dir, "rev-parse", "--verify", "--quiet", f"refs/tags/{pin['tag']}^{{commit}}"],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            problems.append(f"{repo}: tag {pin['tag']} does not exist in {git_dir}")
        elif proc.stdout.strip() != pin["sha"]:
            problems.append(f"{repo}: tag {pin['tag']} is {proc.stdout.strip()}, the table says {pin['sha']}")
        else:
            print(f"  ok {repo} {pin['tag']} = {pin['sha']}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pins", type=Path, default=REPO / ".github/actions-pins.json")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="every uses: of the workflows is a pin from the table (offline)")
    c.add_argument("--workflows", type=Path, default=REPO / ".github/workflows")
    v = sub.add_parser("verify", help="each pinned tag resolves to the pinned SHA in a local clone")
    v.add_argument("--git-dir", action="append", default=[], metavar="OWNER/REPO=GIT_DIR", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            problems = check(args.workflows, args.pins)
        else:
            problems = verify(args.pins, dict(item.split("=", 1) for item in args.git_dir))
    except (PinError, OSError, ValueError, KeyError) as exc:
        print(f"action-pins: error: {exc}", file=sys.stderr)
        return 2
    if problems:
        print("action-pins: " + "\n  ".join(["refs outside the pin table:", *problems]), file=sys.stderr)
        return 1
    if args.command == "check":
        print(f"  ok: every uses: is pinned ({args.pins.relative_to(REPO) if args.pins.is_relative_to(REPO) else args.pins})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
