"""Settings: a TOML file (path in ``SYNAPSE_CONFIG``) with environment overrides.

Precedence, lowest first: built-in defaults < TOML file < environment variables < changes made
at run time through the API (``Runtime.set_mode``). ``SYNAPSE_FORCE_PYTHON`` is special: it is
read on every call, so setting it in a running process acts at once.

Sections ``[runtime]``, ``[features]``, ``[alerts]`` and ``[faults]``; unknown sections, keys
and features are errors. The example file with every key, and the environment variables
(``SYNAPSE_FEATURE_<NAME>``, ``SYNAPSE_ALERT_<KEY>``, ``SYNAPSE_FAULT_<NAME>``, ...), are in
docs/runtime.md ("Configuration").
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: Features with a Mojo path. ``vector_engine`` covers batch search and vector operations.
FEATURES: tuple[str, ...] = ("pattern_search", "message_router", "vector_engine")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Reads a boolean environment variable; unknown spellings are an error, not False."""
    value = (environ if environ is not None else os.environ).get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r}: expected one of 1/0, true/false, yes/no, on/off")


#: ``os.environ``'s own storage (bytes keys on POSIX): a lookup there skips the key encoding
#: that ``os.environ.get`` does on every call (half a microsecond on the search path).
_ENV_DATA = getattr(os.environ, "_data", None)
_FORCE_KEY = (
    os.environ.encodekey("SYNAPSE_FORCE_PYTHON") if hasattr(os.environ, "encodekey") else None
)


def force_python(environ: Mapping[str, str] | None = None) -> bool:
    """``SYNAPSE_FORCE_PYTHON``, read fresh on every call (cheap: one dict lookup)."""
    if (
        environ is None
        and _ENV_DATA is not None
        and _FORCE_KEY is not None
        and _FORCE_KEY not in _ENV_DATA
    ):
        return False
    env = environ if environ is not None else os.environ
    value = env.get("SYNAPSE_FORCE_PYTHON")
    if value is None:
        return False
    return env_flag("SYNAPSE_FORCE_PYTHON", env)


# --------------------------------------------------------------------------------------------
# Modes and faults
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    """How a feature chooses between its Mojo and Python paths.

    ``off``: Python only. ``on``: Mojo, falling back to Python on any failure. ``auto``: Mojo
    when its kernel loaded and passed the start-up self-check, else Python. ``canary:<f>``:
    a random share ``f`` of calls on Mojo, the rest on Python. ``shadow``: both run, the Python
    result is returned, mismatches and both latencies are recorded.
    """

    kind: str  # off | on | auto | canary | shadow
    fraction: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Mode:
        raw = str(text).strip().lower()
        if raw in ("off", "on", "auto", "shadow"):
            return cls(raw)
        if raw.startswith("canary:"):
            try:
                fraction = float(raw.split(":", 1)[1])
            except ValueError:
                fraction = -1.0
            if not 0.0 <= fraction <= 1.0:
                raise ConfigError(f"mode {text!r}: canary fraction must be a number in [0, 1]")
            return cls("canary", fraction)
        raise ConfigError(
            f"mode {text!r}: expected off, on, auto, shadow or canary:<fraction in [0, 1]>"
        )

    def __str__(self) -> str:
        return f"canary:{self.fraction:g}" if self.kind == "canary" else self.kind


@dataclass(frozen=True)
class Fault:
    """An injected kernel fault: ``raise`` makes the kernel raise, ``wrong`` makes it return
    wrong results; ``rate`` is the share of calls affected."""

    kind: str  # raise | wrong
    rate: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Fault | None:
        raw = str(text).strip().lower()
        if raw in ("", "none", "off"):
            return None
        kind, _, rate_text = raw.partition(":")
        if kind not in ("raise", "wrong"):
            raise ConfigError(f"fault {text!r}: expected raise or wrong, optionally :<rate>")
        try:
            rate = float(rate_text) if rate_text else 1.0
        except ValueError:
            rate = -1.0
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"fault {text!r}: rate must be a number in [0, 1]")
        return cls(kind, rate)

    def __str__(self) -> str:
        return f"{self.kind}:{self.rate:g}"


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertSettings:
    error_rate: float = 0.01
    window: int = 1000
    min_calls: int = 100
    fallback_rate: float = 0.10
    p95_regression: float = 0.20
    min_latency_samples: int = 50


@dataclass(frozen=True)
class Settings:
    threads: int = 0
    kernel_dir: str = ""
    kernel_cache: str = ""
    kernel_source: str = ""
    target_cpu: str = ""
    modes: Mapping[str, Mode] = field(default_factory=lambda: {f: Mode("auto") for f in FEATURES})
    faults: Mapping[str, Fault] = field(default_factory=dict)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    source: str = "defaults"
    #: Features whose mode the TOML file or the environment set (the rest are defaults).
    configured_modes: frozenset[str] = frozenset()

    def mode(self, feature: str) -> Mode:
        return self.modes.get(feature, Mode("auto"))

    def fault(self, feature: str) -> Fault | None:
        return self.faults.get(feature)

    def effective_threads(self) -> int:
        return self.threads if self.threads > 0 else available_cores()

    def cache_dir(self) -> Path:
        if self.kernel_cache:
            return Path(self.kernel_cache).expanduser()
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        return Path(base) / "synapse-mojo" / "kernels"


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS has no sched_getaffinity
        return max(1, os.cpu_count() or 1)


_RUNTIME_KEYS = {
    "threads": int,
    "kernel_dir": str,
    "kernel_cache": str,
    "kernel_source": str,
    "target_cpu": str,
}
_ALERT_KEYS = {
    "error_rate": float,
    "window": int,
    "min_calls": int,
    "fallback_rate": float,
    "p95_regression": float,
    "min_latency_samples": int,
}


def _coerce(section: str, key: str, value: Any, kind: type) -> Any:
    try:
        if kind is int and isinstance(value, str):
            return int(value.strip())
        if kind is float and isinstance(value, str):
            return float(value.strip())
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError
        if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TypeError
        if kind is str and not isinstance(value, str):
            raise TypeError
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"[{section}] {key} = {value!r}: expected {kind.__name__}") from None


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Builds settings from defaults, the TOML file and the environment."""
    env = environ if environ is not None else os.environ
    config_path = path if path is not None else env.get("SYNAPSE_CONFIG") or None
    data: dict[str, Any] = {}
    source = "defaults"
    if config_path:
        p = Path(config_path).expanduser()
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"settings file {p} (SYNAPSE_CONFIG) does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"settings file {p} is not valid TOML: {exc}") from exc
        source = str(p)
    unknown_sections = set(data) - {"runtime", "features", "alerts", "faults"}
    if unknown_sections:
        raise ConfigError(
            f"settings file {source}: unknown section(s) {sorted(unknown_sections)}; "
            "expected runtime, features, alerts, faults"
        )

    runtime: dict[str, Any] = {}
    for key, value in dict(data.get("runtime", {})).items():
        if key not in _RUNTIME_KEYS:
            raise ConfigError(f"[runtime] {key}: unknown key; expected {sorted(_RUNTIME_KEYS)}")
        runtime[key] = _coerce("runtime", key, value, _RUNTIME_KEYS[key])
    for key, kind in _RUNTIME_KEYS.items():
        env_name = f"SYNAPSE_{key.upper()}"
        if env_name in env:
            runtime[key] = _coerce(env_name, key, env[env_name], kind)
    if runtime.get("threads", 0) < 0:
        raise ConfigError("threads must be >= 0 (0 = all cores)")

    modes = {f: Mode("auto") for f in FEATURES}
    configured: set[str] = set()
    for name, value in dict(data.get("features", {})).items():
        _check_feature(name, "[features]")
        modes[name] = Mode.parse(value)
        configured.add(name)
    faults: dict[str, Fault] = {}
    for name, value in dict(data.get("faults", {})).items():
        _check_feature(name, "[faults]")
        fault = Fault.parse(value)
        if fault:
            faults[name] = fault
    for name in FEATURES:
        if (v := env.get(f"SYNAPSE_FEATURE_{name.upper()}")) is not None:
            modes[name] = Mode.parse(v)
            configured.add(name)
        if (v := env.get(f"SYNAPSE_FAULT_{name.upper()}")) is not None:
            fault = Fault.parse(v)
            if fault:
                faults[name] = fault
            else:
                faults.pop(name, None)

    alerts: dict[str, Any] = {}
    for key, value in dict(data.get("alerts", {})).items():
        if key not in _ALERT_KEYS:
            raise ConfigError(f"[alerts] {key}: unknown key; expected {sorted(_ALERT_KEYS)}")
        alerts[key] = _coerce("alerts", key, value, _ALERT_KEYS[key])
    for key, kind in _ALERT_KEYS.items():
        env_name = f"SYNAPSE_ALERT_{key.upper()}"
        if env_name in env:
            alerts[key] = _coerce(env_name, key, env[env_name], kind)
    alert_settings = replace(AlertSettings(), **alerts)
    if alert_settings.window < 1 or alert_settings.min_calls < 1:
        raise ConfigError("[alerts] window and min_calls must be >= 1")

    force_python(env)  # validate the spelling early; the value itself is read per call
    return Settings(
        modes=modes,
        faults=faults,
        alerts=alert_settings,
        source=source,
        configured_modes=frozenset(configured),
        **runtime,
    )


def _check_feature(name: str, where: str) -> None:
    if name not in FEATURES:
        raise ConfigError(f"{where} {name}: unknown feature; expected one of {list(FEATURES)}")
