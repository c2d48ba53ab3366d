"""Finding, building and loading the Mojo kernels.

Each kernel is a Python extension module written in Mojo (``mojo/<name>.mojo``, built with
``mojo build --emit shared-lib``). Loading order for a kernel ``name``:

1. a prebuilt module: ``<SYNAPSE_KERNEL_DIR>/<name>.so`` (``[runtime] kernel_dir``), then the
   ``_kernels/`` directory shipped inside the package, if any;
2. the per-user compile cache, keyed by the hash of every Mojo source, the compiler version and
   the target CPU; on a miss the sources are compiled there, under a file lock so that processes
   starting together compile once;
3. nothing: the caller runs on Python.

No step raises to the caller: every failure is kept as the handle's ``error`` (with the
compiler's own message) and logged.

Files are verified before they are imported, because importing a damaged shared library does
not raise: a truncated one kills the process with SIGBUS, flipped code bytes with SIGILL.

* Every build records the module's size and SHA-256: in the cache a sidecar
  ``<entry>/<name>.so.manifest.json``, in a prebuilt directory ``manifest.json``
  (``artefacts.<name>.sha256``, the format ``mojo_build_cli.py`` and ``kernels build --out`` write).
  A cache entry that does not match is rebuilt once; a prebuilt module that does not match, or
  has no manifest, is refused with the reason. The digest is computed once per process per
  file version (path, inode, size, mtime).
* A module that has not been imported on this machine before (just built, or an older cache
  entry without a sidecar) is first imported in a child process that also runs the kernel's
  self-checks (:mod:`.kernel_probe`); only when the child exits cleanly does this process import
  it. The outcome is remembered per SHA-256 and CPU under ``<cache>/probed/``.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib
import importlib.machinery
import importlib.util
import json
import logging
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from filelock import FileLock, Timeout

from ..config import Settings
from ..errors import KernelBuildError, KernelError
from . import mojo_build
from .kernel_types import KernelModule

log = logging.getLogger("synapse_mojo.kernels")

#: ABI version each Python backend expects from its kernel (``kernel_info()["abi_version"]``).
KERNEL_ABI: dict[str, int] = {"pattern_search": 8, "message_router": 1}

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_COMPILE_TIMEOUT_S = 900
_LOCK_TIMEOUT_S = 1200


# --------------------------------------------------------------------------------------------
# Compiler discovery
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compiler:
    """The Mojo compiler this process would use (``path`` is None when none was found)."""

    path: str | None
    version: str | None
    env: dict[str, str] = field(default_factory=dict, repr=False)
    lib_dir: str | None = None
    error: str | None = None

    @property
    def found(self) -> bool:
        return self.path is not None and self.version is not None


_compiler_cache: Compiler | None = None
_compiler_lock = threading.Lock()


def find_compiler(refresh: bool = False) -> Compiler:
    """Locates ``mojo``: ``$SYNAPSE_MOJO``, then the ``mojo-compiler`` wheel, then ``PATH``."""
    global _compiler_cache
    with _compiler_lock:
        if _compiler_cache is None or refresh:
            _compiler_cache = _find_compiler()
        return _compiler_cache


def _find_compiler() -> Compiler:
    env: dict[str, str] = {}
    lib_dir: str | None = None
    candidates: list[str] = []
    if explicit := os.environ.get("SYNAPSE_MOJO"):
        candidates.append(explicit)
    try:  # the wheel layout: site-packages/modular/{bin,lib}
        # By name: for a type checker run from the repository, `mojo` is the mojo/ directory.
        mojo_run = importlib.import_module("mojo.run")

        env = dict(mojo_run._sdk_default_env())
        if driver := env.get("MODULAR_MOJO_MAX_DRIVER_PATH"):
            candidates.append(driver)
            lib_dir = str(Path(driver).parent.parent / "lib")
    except Exception as exc:  # not installed, or an unexpected layout
        log.debug("mojo wheel not usable: %s", exc)
    if on_path := shutil.which("mojo"):
        candidates.append(on_path)
    for candidate in candidates:
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        try:
            out = subprocess.run(
                [candidate, "--version"],
                capture_output=True,
                text=True,
                timeout=60,
                env=_compile_env(env),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("mojo at %s does not run: %s", candidate, exc)
            continue
        version = out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""
        if out.returncode == 0 and version.lower().startswith("mojo"):
            if lib_dir is None:
                guess = Path(candidate).resolve().parent.parent / "lib"
                lib_dir = str(guess) if guess.is_dir() else None
            return Compiler(candidate, version, env, lib_dir)
    hint = (
        "no Mojo compiler found: install the 'mojo-compiler==1.2.0' wheel (a dependency of "
        "synapse-mojo on Linux x86_64/aarch64 and macOS arm64), put 'mojo' on PATH, or set "
        "SYNAPSE_MOJO to its path"
    )
    return Compiler(None, None, error=hint)


def _compile_env(sdk_env: dict[str, str]) -> dict[str, str]:
    env = dict(sdk_env) | dict(os.environ)
    home = env.get("HOME", "")
    if not home or not os.access(home, os.W_OK):
        # The compiler writes its own cache and crash-report settings under HOME.
        env["HOME"] = tempfile.mkdtemp(prefix="synapse-mojo-home-")
    return env


def _preload_runtime(compiler: Compiler) -> None:
    """Makes the Mojo runtime library resolvable for modules built elsewhere.

    Modules carry an RUNPATH to the lib directory of the compiler that built them; a prebuilt
    module from another machine finds the runtime through this preload instead.
    """
    if not compiler.lib_dir:
        return
    for lib in ("libKGENCompilerRTShared.so", "libAsyncRTRuntimeGlobals.so"):
        path = os.path.join(compiler.lib_dir, lib)
        if os.path.exists(path):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError as exc:
                log.debug("preloading %s failed: %s", path, exc)


# --------------------------------------------------------------------------------------------
# Sources and the cache key
# --------------------------------------------------------------------------------------------


def source_dir(settings: Settings) -> Path:
    """Where the Mojo sources are: the setting, the wheel's copy, or the repository's."""
    if settings.kernel_source:
        return Path(settings.kernel_source).expanduser()
    shipped = _PACKAGE_DIR / "_mojo_src"
    if shipped.is_dir():
        return shipped
    return _PACKAGE_DIR.parent.parent / "mojo"


def kernel_names(src: Path) -> list[str]:
    """Every top-level ``*.mojo`` file that defines an extension module."""
    return mojo_build.extension_modules(src)


def kernel_sources(src: Path) -> list[Path]:
    """The files a kernel build reads: top-level modules and the shared ``kernel_support``
    package (the standalone programs under ``bench/`` are not part of any kernel)."""
    return sorted([*src.glob("*.mojo"), *(src / "kernel_support").rglob("*.mojo")])


def source_hash(src: Path) -> str:
    h = hashlib.sha256()
    for p in kernel_sources(src):
        h.update(str(p.relative_to(src)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


@functools.cache
def host_cpu_fingerprint() -> str:
    """A stable description of the host CPU: arch, model name and a hash of its features."""
    model, flags = "", ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "CPU part") and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = value.strip()
                if model and flags:
                    break
    except OSError:
        model = platform.processor()
    digest = hashlib.sha256(flags.encode()).hexdigest()[:8]
    return f"{platform.machine()}:{model or 'unknown'}:{digest}"


def target_label(settings: Settings) -> str:
    return settings.target_cpu or f"native[{host_cpu_fingerprint()}]"


def cache_key(src: Path, compiler: Compiler, settings: Settings) -> str:
    h = hashlib.sha256()
    for part in (source_hash(src), compiler.version or "", target_label(settings)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------


def build_kernel(
    name: str,
    src: Path,
    out_path: Path,
    compiler: Compiler,
    target_cpu: str = "",
) -> float:
    """Compiles ``src/<name>.mojo`` into ``out_path``; returns the seconds it took.

    The command line comes from :mod:`.mojo_build`, the project's one build tool (also used by
    the Nix derivation and the cross build). Raises ``KernelBuildError`` with the compiler's
    output on failure.
    """
    if not compiler.found:
        raise KernelError(compiler.error or "no Mojo compiler")
    source = src / f"{name}.mojo"
    if not source.is_file():
        raise KernelError(f"no Mojo source {source}")
    try:
        return mojo_build.compile_source(
            str(compiler.path),
            source,
            out_path,
            kind="shared-lib",
            include=[src],
            target=mojo_build.Target(cpu=target_cpu or None),
            env=_compile_env(compiler.env),
            timeout=_COMPILE_TIMEOUT_S,
        )
    except mojo_build.MojoBuildError as exc:
        raise KernelBuildError(str(exc), compiler_output=exc.output) from exc


# --------------------------------------------------------------------------------------------
# Handles and importing
# --------------------------------------------------------------------------------------------


@dataclass
class KernelHandle:
    """What happened when a kernel was looked for. ``module`` is None when it is unavailable."""

    name: str
    module: KernelModule | None = None
    origin: str = "none"  # prebuilt | cache | compiled | none
    path: str | None = None
    compiler_version: str | None = None
    target: str = ""
    build_seconds: float | None = None
    error: str | None = None
    compiler_output: str = ""
    attempts: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        return self.module is not None


def _import_extension(name: str, path: Path) -> KernelModule:
    fullname = f"synapse_mojo._kernels.{name}"
    loader = importlib.machinery.ExtensionFileLoader(fullname, str(path))
    spec = importlib.util.spec_from_file_location(fullname, str(path), loader=loader)
    if spec is None:
        raise ImportError(f"cannot create an import spec for {path}")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    # Its exports are checked against the protocol by tests/test_kernel_types.py.
    return cast(KernelModule, module)


def _check_abi(name: str, module: KernelModule) -> None:
    expected = KERNEL_ABI.get(name)
    try:
        info = module.kernel_info()
    except Exception as exc:
        raise KernelError(f"{name}: kernel_info() failed: {exc}") from exc
    got = info.get("abi_version") if isinstance(info, dict) else None
    if expected is not None and got != expected:
        raise KernelError(f"{name}: kernel ABI {got}, this package expects {expected}")


def _prebuilt_dirs(settings: Settings) -> list[Path]:
    dirs = []
    if settings.kernel_dir:
        dirs.append(Path(settings.kernel_dir).expanduser())
    shipped = _PACKAGE_DIR / "_kernels"
    if shipped.is_dir():
        dirs.append(shipped)
    return dirs


# --------------------------------------------------------------------------------------------
# Verifying files before they are imported
# --------------------------------------------------------------------------------------------

#: A prebuilt directory's record of what was built (written by mojo_build_cli.py and
#: ``synapse-mojo kernels build --out``): ``{"artefacts": {name: {"path", "sha256", ...}}}``.
PREBUILT_MANIFEST = "manifest.json"
_PROBE_TIMEOUT_S = 300.0

_digests: dict[tuple[str, int, int, int, int], str] = {}
_digests_lock = threading.Lock()


def file_sha256(path: Path) -> tuple[int, str]:
    """``(size, sha256)`` of ``path``; hashed once per process per file version."""
    st = os.stat(path)
    key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _digests_lock:
        digest = _digests.get(key)
    if digest is None:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        with _digests_lock:
            _digests[key] = digest
    return st.st_size, digest


def sidecar_path(so_path: Path) -> Path:
    """The cache entry's record of a module: ``<name>.so.manifest.json``."""
    return so_path.with_name(so_path.name + ".manifest.json")


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def record_cache_entry(so_path: Path) -> dict:
    """Writes the sidecar of a module just built into the cache; returns it."""
    size, digest = file_sha256(so_path)
    record = {
        "file": so_path.name,
        "size": size,
        "sha256": digest,
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _write_json_atomic(sidecar_path(so_path), record)
    return record


def record_prebuilt(out_dir: Path, name: str, compiler: Compiler, target: str) -> None:
    """Adds ``name`` to ``out_dir/manifest.json`` (the format of ``mojo_build.write_manifest``)."""
    path = out_dir / PREBUILT_MANIFEST
    try:
        manifest = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        manifest = {}
    if not isinstance(manifest, dict):
        manifest = {}
    size, digest = file_sha256(out_dir / f"{name}.so")
    manifest.setdefault("compiler", compiler.version)
    manifest.setdefault("target_cpu", target or "host")
    artefacts = manifest.get("artefacts")
    if not isinstance(artefacts, dict):
        artefacts = manifest["artefacts"] = {}
    artefacts[name] = {"kind": "shared-lib", "path": f"{name}.so", "sha256": digest, "size": size}
    _write_json_atomic(path, manifest)


def _mismatch(path: Path, expected: dict) -> str | None:
    """Why ``path`` is not the file ``expected`` describes (None when it is)."""
    size, digest = file_sha256(path)
    want_size = expected.get("size")
    if isinstance(want_size, int) and size != want_size:
        return f"damaged: {size} bytes, {want_size} were built (truncated or overwritten?)"
    if expected.get("sha256") != digest:
        recorded = str(expected.get("sha256", "?"))[:16]
        return f"damaged: SHA-256 {digest[:16]}... differs from the {recorded}... recorded at build"
    return None


def verify_cache_entry(so_path: Path) -> tuple[bool, str | None]:
    """``(recorded, problem)``: whether the entry has a sidecar, and why it does not match it."""
    try:
        record = json.loads(sidecar_path(so_path).read_text())
    except FileNotFoundError:
        return False, None
    except (OSError, ValueError) as exc:
        return True, f"unreadable record {sidecar_path(so_path).name}: {exc}"
    if not isinstance(record, dict):
        return True, f"unreadable record {sidecar_path(so_path).name}"
    return True, _mismatch(so_path, record)


def verify_prebuilt(directory: Path, name: str) -> str | None:
    """Why ``directory/<name>.so`` must not be imported (None: it matches its manifest)."""
    manifest_path = directory / PREBUILT_MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        return (
            f"unverified: no {PREBUILT_MANIFEST} in {directory} recording its SHA-256 "
            "(build with `synapse-mojo kernels build --out DIR` or mojo_build_cli.py, "
            "which write one)"
        )
    except (OSError, ValueError) as exc:
        return f"unverified: {manifest_path} is unreadable: {exc}"
    artefacts = manifest.get("artefacts") if isinstance(manifest, dict) else None
    entry = artefacts.get(name) if isinstance(artefacts, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        return f"unverified: {manifest_path} records no SHA-256 for {name}"
    if entry.get("path", f"{name}.so") != f"{name}.so":
        return f"unverified: {manifest_path} records {name} at {entry.get('path')!r}, not {name}.so"
    return _mismatch(directory / f"{name}.so", entry)


def _probe_marker(settings: Settings, digest: str) -> Path:
    cpu = hashlib.sha256(host_cpu_fingerprint().encode()).hexdigest()[:12]
    return settings.cache_dir() / "probed" / f"{digest}-{cpu}"


def probe(name: str, path: Path, compiler: Compiler) -> str | None:
    """Imports ``path`` in a child process and runs the kernel's self-checks there; returns why
    it is unusable (None: the child exited cleanly). A crash (SIGBUS, SIGILL, SIGSEGV) only
    takes the child down."""
    # SYNAPSE_KERNEL_PROBE_RUNNER: a command prefix for the child, for a process that runs under
    # user-mode emulation without binfmt_misc (qemu-aarch64-static -L SYSROOT ...), where the
    # interpreter cannot be executed directly.
    runner = shlex.split(os.environ.get("SYNAPSE_KERNEL_PROBE_RUNNER", ""))
    cmd = [*runner, sys.executable, "-m", "synapse_mojo.runtime.kernel_probe", name, str(path)]
    if compiler.lib_dir:
        cmd += ["--lib-dir", compiler.lib_dir]
    env = dict(os.environ, SYNAPSE_KERNEL_PROBE="1")
    # The child imports this very package, wherever this process found it.
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(_PACKAGE_DIR.parent), env.get("PYTHONPATH")])
    )
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return f"the probe importing it did not finish within {_PROBE_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return f"the probe could not start: {exc}"
    if proc.returncode < 0:
        try:
            signame = signal.Signals(-proc.returncode).name
        except ValueError:
            signame = f"signal {-proc.returncode}"
        return (
            f"importing it in a probe process crashed it with {signame} "
            "(damaged or built for another CPU)"
        )
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stdout + proc.stderr).strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else "no output"
        return f"the probe importing it failed (exit {proc.returncode}): {last}"
    return None


def _ensure_probed(name: str, path: Path, compiler: Compiler, settings: Settings) -> None:
    """Raises ``KernelError`` unless ``path`` was (or now is) imported cleanly in a child."""
    if os.environ.get("SYNAPSE_KERNEL_PROBE") == "1":
        return  # this is the probe
    _, digest = file_sha256(path)
    marker = _probe_marker(settings, digest)
    if marker.exists():
        return
    problem = probe(name, path, compiler)
    if problem is not None:
        raise KernelError(problem)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{name} {path}\n")
    except OSError as exc:  # a read-only cache: probe again next time
        log.debug("cannot record the probe of %s: %s", path, exc)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_kernel(name: str, settings: Settings) -> KernelHandle:
    """Finds, builds if needed, verifies and imports the kernel ``name``. Never raises."""
    handle = KernelHandle(name)
    compiler = find_compiler()
    handle.compiler_version = compiler.version
    handle.target = target_label(settings)

    for directory in _prebuilt_dirs(settings):
        candidate = directory / f"{name}.so"
        if not candidate.is_file():
            handle.attempts.append(f"prebuilt {candidate}: not present")
            continue
        try:
            problem = verify_prebuilt(directory, name)
            if problem is not None:
                raise KernelError(problem)
            _preload_runtime(compiler)
            _ensure_probed(name, candidate, compiler, settings)
            module = _import_extension(name, candidate)
            _check_abi(name, module)
        except Exception as exc:
            handle.attempts.append(f"prebuilt {candidate}: refused: {exc}")
            log.warning("prebuilt kernel %s at %s refused: %s", name, candidate, exc)
            continue
        handle.module, handle.origin, handle.path = module, "prebuilt", str(candidate)
        return handle

    src = source_dir(settings)
    if not (src / f"{name}.mojo").is_file():
        handle.error = f"no Mojo source for {name} under {src}"
        handle.attempts.append(handle.error)
        return handle
    if not compiler.found:
        handle.error = compiler.error
        handle.attempts.append(f"compile: {compiler.error}")
        log.info("kernel %s unavailable: %s", name, compiler.error)
        return handle

    cache = settings.cache_dir()
    key = cache_key(src, compiler, settings)
    entry = cache / key
    so_path = entry / f"{name}.so"
    try:
        entry.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(entry / f"{name}.lock"), timeout=_LOCK_TIMEOUT_S)
        with lock:
            origin = _load_cache_entry(handle, name, src, so_path, compiler, settings)
            _preload_runtime(compiler)
            module = _import_extension(name, so_path)
            _check_abi(name, module)
    except KernelBuildError as exc:
        handle.error = str(exc)
        handle.compiler_output = exc.compiler_output
        log.error(
            "Mojo kernel %s failed to compile; running on Python.\n%s", name, exc.compiler_output
        )
        return handle
    except Timeout:
        handle.error = f"timed out waiting for another process to compile {name} ({entry})"
        log.error(handle.error)
        return handle
    except Exception as exc:  # damaged entries, import errors, ABI mismatch, unwritable cache
        handle.error = (
            f"{type(exc).__name__}: {exc}" if not isinstance(exc, KernelError) else str(exc)
        )
        log.error("Mojo kernel %s could not be loaded; running on Python: %s", name, handle.error)
        return handle
    handle.module, handle.origin, handle.path = module, origin, str(so_path)
    return handle


def _load_cache_entry(
    handle: KernelHandle,
    name: str,
    src: Path,
    so_path: Path,
    compiler: Compiler,
    settings: Settings,
) -> str:
    """Makes ``so_path`` a verified, probed module (called under the entry's lock); returns its
    origin (``cache`` or ``compiled``). A damaged or crashing entry is rebuilt once; a fresh
    build that still fails its probe raises ``KernelError`` with the reason."""
    if so_path.is_file():
        recorded, problem = verify_cache_entry(so_path)
        if problem is None:
            try:
                _ensure_probed(name, so_path, compiler, settings)
                if (
                    not recorded
                ):  # an entry from before sidecars: record it once it has proved itself
                    record_cache_entry(so_path)
                return "cache"
            except KernelError as exc:
                problem = str(exc)
        note = f"cache {so_path}: {problem}; rebuilding it"
        handle.attempts.append(note)
        log.warning("Mojo kernel %s: %s", name, note)
    else:
        log.info(
            "compiling Mojo kernel %s for %s (one-time; cached in %s)",
            name,
            handle.target,
            so_path.parent,
        )
    handle.build_seconds = build_kernel(name, src, so_path, compiler, settings.target_cpu)
    record_cache_entry(so_path)
    _write_meta(so_path.parent, name, src, compiler, settings, handle.build_seconds)
    try:
        _ensure_probed(name, so_path, compiler, settings)
    except KernelError as exc:
        raise KernelError(f"freshly built {so_path}: {exc}") from exc
    return "compiled"


def _write_meta(
    entry: Path, name: str, src: Path, compiler: Compiler, settings: Settings, seconds: float
) -> None:
    meta_path = entry / "meta.json"
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    except (OSError, ValueError):
        meta = {}
    meta.update(
        {
            "source_hash": source_hash(src),
            "compiler": compiler.version,
            "target": target_label(settings),
            "python": sys.version.split()[0],
        }
    )
    meta.setdefault("kernels", {})[name] = {
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(seconds, 3),
        "pid": os.getpid(),
    }
    tmp = meta_path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, meta_path)
