#!/usr/bin/env python3
"""The Mojo SDK pins in ``sources.json``: update them, verify them, fetch and unpack them.

``sources.json`` holds, per Nix system, the PyPI wheel of ``mojo-compiler`` (the compiler, its
linker and runtime libraries) and, for all systems, ``mojo-compiler-mojo-libs`` (the precompiled
standard library): URL plus SRI hash, read by ``package.nix`` with ``fetchurl``. The same version
is locked in ``uv.lock`` (``mojo-compiler`` is a dependency of the package), so the two must agree.

    python3 nix/mojo-sdk/sources.py update [--version 1.2.0]   # rewrite sources.json from PyPI
    python3 nix/mojo-sdk/sources.py verify [--offline]         # uv.lock agreement + download and hash
    python3 nix/mojo-sdk/sources.py fetch --system aarch64-linux --dest DIR
                                                               # DIR/modular = the SDK of that system

Standard library only: it runs with any Python >= 3.11, inside or outside the project's venv.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import sys
import tempfile
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources.json"
REPO = HERE.parent.parent
UV_LOCK = REPO / "uv.lock"

#: sources.json key -> PyPI distribution.
DISTRIBUTIONS = {"mojoCompiler": "mojo-compiler", "mojoCompilerMojoLibs": "mojo-compiler-mojo-libs"}

#: Nix system -> the wheel platform tag suffix of that system's mojo-compiler wheel.
SYSTEM_PLATFORMS = {"x86_64-linux": "manylinux_2_34_x86_64", "aarch64-linux": "manylinux_2_34_aarch64"}

PYPI_JSON = "https://pypi.org/pypi/{name}/json"
PYPI_SIMPLE = "https://pypi.org/simple/{name}/"
USER_AGENT = "synapse-mojo-nix-sources/1"


class SourcesError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------
# Hashes
# --------------------------------------------------------------------------------------------


def sri_from_hex(hexdigest: str) -> str:
    return "sha256-" + base64.b64encode(bytes.fromhex(hexdigest)).decode()


def hex_from_sri(sri: str) -> str:
    algo, _, b64 = sri.partition("-")
    if algo != "sha256" or not b64:
        raise SourcesError(f"unsupported hash {sri!r} (expected sha256-<base64>)")
    return base64.b64decode(b64).hex()


# --------------------------------------------------------------------------------------------
# PyPI
# --------------------------------------------------------------------------------------------


def _get_json(url: str, accept: str = "application/json") -> Any:
    request = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def canonical_url(url: str, base: str) -> str:
    """The files.pythonhosted.org URL of a distribution file.

    PyPI answers with absolute files.pythonhosted.org URLs; mirrors often answer with relative
    ones (``../../packages/<xx>/<yy>/<digest>/<file>``). The pin must be the canonical URL that
    Nix fetches anywhere, so the blake2 path is kept and the host normalised.
    """
    absolute = urllib.parse.urljoin(base, url.split("#", 1)[0])
    parts = urllib.parse.urlparse(absolute).path.rstrip("/").split("/")
    if len(parts) < 4 or len(parts[-4]) != 2 or len(parts[-3]) != 2:
        raise SourcesError(f"unexpected distribution URL {absolute}")
    return "https://files.pythonhosted.org/packages/" + "/".join(parts[-4:])


def release_files(name: str, version: str) -> list[dict[str, str]]:
    """``[{filename, url, sha256}]`` of one release, from PyPI's JSON API (PEP 691 as fallback)."""
    json_url = PYPI_JSON.format(name=name)
    try:
        data = _get_json(json_url)
        files = data.get("releases", {}).get(version)
        if files:
            return [
                {
                    "filename": f["filename"],
                    "url": canonical_url(f["url"], json_url),
                    "sha256": f["digests"]["sha256"],
                }
                for f in files
                if f.get("packagetype") == "bdist_wheel" and not f.get("yanked")
            ]
    except (urllib.error.URLError, ValueError, KeyError) as exc:
        print(f"  PyPI JSON API unavailable for {name} ({exc}); trying the simple index", file=sys.stderr)
    simple_url = PYPI_SIMPLE.format(name=name)
    data = _get_json(simple_url, accept="application/vnd.pypi.simple.v1+json")
    prefix = f"{name.replace('-', '_')}-{version}-"
    return [
        {
            "filename": f["filename"],
            "url": canonical_url(f["url"], simple_url),
            "sha256": f["hashes"]["sha256"],
        }
        for f in data.get("files", [])
        if f["filename"].startswith(prefix) and f["filename"].endswith(".whl") and not f.get("yanked")
    ]


def latest_version(name: str) -> str:
    return _get_json(PYPI_JSON.format(name=name))["info"]["version"]


def _pick(files: list[dict[str, str]], suffix: str, what: str) -> dict[str, str]:
    matches = [f for f in files if f["filename"].endswith(f"-{suffix}.whl")]
    if len(matches) != 1:
        raise SourcesError(f"expected one {what} wheel ending in {suffix}, found {[f['filename'] for f in matches]}")
    return {"url": matches[0]["url"], "hash": sri_from_hex(matches[0]["sha256"])}


def build_sources(version: str) -> dict[str, Any]:
    compiler = release_files(DISTRIBUTIONS["mojoCompiler"], version)
    libs = release_files(DISTRIBUTIONS["mojoCompilerMojoLibs"], version)
    if not compiler or not libs:
        raise SourcesError(f"no wheels for Mojo {version} on PyPI")
    return {
        "version": version,
        "common": {"mojoCompilerMojoLibs": _pick(libs, "py3-none-any", "mojo-compiler-mojo-libs")},
        "systems": {
            system: {"mojoCompiler": _pick(compiler, f"py3-none-{platform}", f"mojo-compiler {system}")}
            for system, platform in SYSTEM_PLATFORMS.items()
        },
    }


# --------------------------------------------------------------------------------------------
# Reading, checking
# --------------------------------------------------------------------------------------------


def load_sources(path: Path = SOURCES) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SourcesError(f"cannot read {path}: {exc}") from exc
    for key in ("version", "common", "systems"):
        if key not in data:
            raise SourcesError(f"{path}: missing {key!r}")
    return data


def pinned_wheels(data: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """``[(label, {url, hash})]`` for every wheel in the sources file."""
    items = [(f"common.{k}", v) for k, v in sorted(data["common"].items())]
    for system, wheels in sorted(data["systems"].items()):
        items += [(f"{system}.{k}", v) for k, v in sorted(wheels.items())]
    return items


def uv_lock_hashes(lock_path: Path = UV_LOCK) -> dict[str, tuple[str, str, str]]:
    """Wheel filename -> (version, sha256 hex, URL) for the Mojo distributions in uv.lock."""
    lock = tomllib.loads(lock_path.read_text())
    out = {}
    for package in lock.get("package", []):
        if package["name"] in DISTRIBUTIONS.values():
            for wheel in package.get("wheels", []):
                algo, _, digest = wheel["hash"].partition(":")
                if algo == "sha256":
                    out[wheel["url"].rsplit("/", 1)[1]] = (package["version"], digest, wheel["url"])
    return out


def check_against_uv_lock(data: dict[str, Any]) -> list[str]:
    """Problems where sources.json and uv.lock disagree (same wheels, same hashes expected)."""
    problems = []
    if not UV_LOCK.exists():
        return [f"{UV_LOCK} not found"]
    locked = uv_lock_hashes()
    for label, wheel in pinned_wheels(data):
        filename = wheel["url"].rsplit("/", 1)[1]
        if filename not in locked:
            problems.append(f"{label}: {filename} is not in uv.lock (version drift? run update)")
            continue
        version, digest, url = locked[filename]
        if url != wheel["url"]:
            problems.append(f"{label}: URL differs from uv.lock's ({url})")
        if version != data["version"]:
            problems.append(f"{label}: uv.lock has {version}, sources.json {data['version']}")
        if digest != hex_from_sri(wheel["hash"]):
            problems.append(f"{label}: hash differs from uv.lock's for {filename}")
    return problems


def download(url: str, dest: Path, expected_hex: str) -> Path:
    """Downloads ``url`` to ``dest`` and checks its sha256 (the file is removed on mismatch)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and _sha256(dest) == expected_hex:
        return dest
    tmp = dest.with_suffix(dest.suffix + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(request, timeout=120) as response, tmp.open("wb") as f:
            for block in iter(lambda: response.read(1 << 20), b""):
                h.update(block)
                f.write(block)
    except (urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise SourcesError(f"download of {url} failed: {exc}") from exc
    if h.hexdigest() != expected_hex:
        tmp.unlink(missing_ok=True)
        raise SourcesError(f"hash mismatch for {url}: got sha256 {h.hexdigest()}, pinned {expected_hex}")
    tmp.replace(dest)
    return dest


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def unpack_sdk(wheels: list[Path], dest: Path) -> Path:
    """Unpacks the wheels' ``modular`` trees into ``dest/modular`` (what pip would install)."""
    root = dest / "modular"
    dest.mkdir(parents=True, exist_ok=True)
    if root.exists():
        shutil.rmtree(root)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as zf:
                for info in zf.infolist():
                    parts = Path(info.filename).parts
                    # <dist>-<v>.data/platlib/modular/... or modular/... (purelib)
                    if len(parts) > 2 and parts[0].endswith(".data") and parts[1] in ("platlib", "purelib"):
                        parts = parts[2:]
                    if not parts or parts[0] != "modular" or info.is_dir():
                        continue
                    target = Path(tmp, *parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, target.open("wb") as out:
                        shutil.copyfileobj(src, out)
                    mode = (info.external_attr >> 16) & 0o777
                    target.chmod(mode or 0o644)
        shutil.move(str(Path(tmp, "modular")), root)
    for required in ("lib/libKGENCompilerRTShared.so", "lib/mojo", "bin/mojo"):
        if not (root / required).exists():
            raise SourcesError(f"unpacked SDK lacks {required} (unexpected wheel layout)")
    return root


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def cmd_update(args: argparse.Namespace) -> int:
    version = args.version or latest_version(DISTRIBUTIONS["mojoCompiler"])
    data = build_sources(version)
    SOURCES.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {SOURCES} for Mojo {version}")
    problems = check_against_uv_lock(data)
    if problems:
        print("uv.lock pins a different Mojo; also run `uv lock --upgrade-package mojo-compiler` "
              "(pyproject.toml pins mojo-compiler==X):\n  " + "\n  ".join(problems))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    data = load_sources()
    problems = check_against_uv_lock(data)
    for p in problems:
        print(f"FAIL {p}")
    if not problems:
        print(f"ok   sources.json and uv.lock pin the same Mojo {data['version']} wheels")
    if not args.offline:
        cache = Path(args.cache or tempfile.mkdtemp(prefix="mojo-sdk-verify-"))
        for label, wheel in pinned_wheels(data):
            name = wheel["url"].rsplit("/", 1)[1]
            try:
                download(wheel["url"], cache / name, hex_from_sri(wheel["hash"]))
                print(f"ok   {label}: {name} matches {wheel['hash']}")
            except SourcesError as exc:
                problems.append(str(exc))
                print(f"FAIL {label}: {exc}")
        if not args.cache:
            shutil.rmtree(cache, ignore_errors=True)
    return 1 if problems else 0


def cmd_fetch(args: argparse.Namespace) -> int:
    data = load_sources()
    if args.system not in data["systems"]:
        raise SourcesError(f"no pins for {args.system}; have {sorted(data['systems'])}")
    dest = Path(args.dest).resolve()
    wheels = []
    for wheel in [*data["systems"][args.system].values(), *data["common"].values()]:
        name = wheel["url"].rsplit("/", 1)[1]
        wheels.append(download(wheel["url"], dest / "wheels" / name, hex_from_sri(wheel["hash"])))
    root = unpack_sdk(wheels, dest)
    print(root)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("update", help="rewrite sources.json from PyPI")
    p.add_argument("--version", help="Mojo version (default: the latest mojo-compiler on PyPI)")
    p.set_defaults(func=cmd_update)
    p = sub.add_parser("verify", help="check sources.json against uv.lock and the downloads' hashes")
    p.add_argument("--offline", action="store_true", help="only compare with uv.lock, download nothing")
    p.add_argument("--cache", help="keep downloads in this directory (re-used when hashes match)")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("fetch", help="download, verify and unpack one system's SDK into DEST/modular")
    p.add_argument("--system", required=True, choices=sorted(SYSTEM_PLATFORMS))
    p.add_argument("--dest", required=True)
    p.set_defaults(func=cmd_fetch)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SourcesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
