"""The pilot's ``config`` module: feature flags, rollout, thresholds.

Pilot defaults: only ``pattern_search`` is on, at a 10% rollout; ``message_router``,
``message_router_reactive``, ``vector_engine`` and ``corpus_callosum`` are off. They apply to
the process-wide runtime the first time the compat layer uses it, for every feature the
settings file or ``SYNAPSE_FEATURE_<NAME>`` did not set (those win).

Two kinds of flag:

* ``pattern_search`` and ``vector_engine`` are live views of the runtime's features:
  ``MOJO_FEATURES[name]`` reads and writes the feature's mode, ``ROLLOUT_CONFIG["<name>_rollout"]``
  its share (0 -> ``off``; 10/25/50/75 -> ``canary:0.1`` ... ``canary:0.75``; 100 -> ``auto``).
  A feature disabled automatically shows ``False``/0 here and stays disabled for the process
  until it is re-enabled (the pilot's flags silently re-enabled on the next read).
* ``message_router``, ``message_router_reactive`` and ``corpus_callosum`` are switches the
  pilot's callers read (its orchestrator routes through the router only when they are on), kept
  here as plain values. The router's Mojo queue is chosen by the runtime's ``message_router``
  mode (``SYNAPSE_FEATURE_MESSAGE_ROUTER``), as the pilot's router ignored the flag too.

The other keys of ``ROLLOUT_CONFIG`` (``stages``, ``stage_duration``,
``reactive_rollback_thresholds``) and ``MOJO_CONFIG``, ``PERFORMANCE_THRESHOLDS``,
``MONITORING_CONFIG`` hold the pilot's values.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator, MutableMapping
from typing import Any

from ..config import force_python
from ..errors import ConfigError
from ..runtime.adapter import FeatureRuntime, get_runtime
from ..runtime.adapter import Runtime as EngineRuntime

#: Pilot feature name -> synapse-mojo feature, for the flags that are views of the runtime.
ENGINE_FEATURES: dict[str, str] = {
    "pattern_search": "pattern_search",
    "vector_engine": "vector_engine",
}
#: Flags the pilot's callers read, with the pilot's defaults.
CALLER_FLAGS: dict[str, bool] = {
    "message_router": False,
    "message_router_reactive": False,
    "corpus_callosum": False,
}
#: Every pilot feature name (the pilot's order).
PILOT_FEATURES: tuple[str, ...] = (
    "pattern_search",
    "message_router",
    "message_router_reactive",
    "vector_engine",
    "corpus_callosum",
)
#: The pilot's defaults as runtime modes (pattern_search at its 10% rollout).
PILOT_DEFAULT_MODES: dict[str, str] = {"pattern_search": "canary:0.1", "vector_engine": "off"}
ROLLOUT_STAGES = (0, 10, 25, 50, 75, 100)
#: The pilot's rollout keys (``<feature>_rollout``).
ROLLOUT_FEATURES: tuple[str, ...] = ("pattern_search", "message_router", "message_router_reactive")

_flags: dict[str, bool] = dict(CALLER_FLAGS)
_rollouts: dict[str, int] = {
    "message_router": 0,
    "message_router_reactive": 0,
    "corpus_callosum": 0,
}


#: Runtimes that have had the pilot's defaults (once each; weak, so runtimes still go away).
_runtimes_with_pilot_defaults: weakref.WeakSet[EngineRuntime] = weakref.WeakSet()


def apply_pilot_defaults(runtime: EngineRuntime) -> EngineRuntime:
    """Gives ``runtime`` the pilot's modes for the features its settings left at the default
    (once per runtime); returns it."""
    if runtime not in _runtimes_with_pilot_defaults:
        configured = runtime.settings.configured_modes
        for name, mode in PILOT_DEFAULT_MODES.items():
            if name not in configured:
                runtime.feature(name).set_mode(mode)
        _runtimes_with_pilot_defaults.add(runtime)
    return runtime


def pilot_runtime() -> EngineRuntime:
    """The process-wide runtime, with the pilot's defaults."""
    return apply_pilot_defaults(get_runtime())


def _feature(name: str) -> FeatureRuntime:
    return pilot_runtime().feature(ENGINE_FEATURES[name])


def _check(name: str) -> None:
    if name not in ENGINE_FEATURES and name not in CALLER_FLAGS:
        raise ConfigError(f"Unknown Mojo feature: {name!r}; expected one of {list(PILOT_FEATURES)}")


def get_mojo_feature_enabled(name: str) -> bool:
    """True when the feature is on (for runtime features: may use Mojo now, not auto-disabled);
    always False under ``SYNAPSE_FORCE_PYTHON=1``. Unknown names are False (as in the pilot)."""
    if force_python():
        return False
    if name in CALLER_FLAGS:
        return _flags[name]
    if name not in ENGINE_FEATURES:
        return False
    feature = _feature(name)
    return feature.mode.kind != "off" and feature.disabled_reason is None


def set_mojo_feature(name: str, enabled: bool) -> None:
    """Turns a feature on (a runtime feature: its mode becomes ``auto`` unless it is already on
    or in canary, and an automatic disable is cleared) or off. Unknown names raise
    ``ConfigError`` (a ``ValueError``, as in the pilot)."""
    _check(name)
    if name in CALLER_FLAGS:
        _flags[name] = bool(enabled)
        return
    feature = _feature(name)
    if enabled:
        if feature.mode.kind == "off":
            feature.set_mode("auto")
        if feature.disabled_reason is not None:
            feature.reset()
    else:
        feature.set_mode("off")


def get_rollout_percentage(name: str) -> int:
    """The share of calls (0..100) the feature sends to Mojo; 0 while auto-disabled or unknown."""
    if name in _rollouts:
        return _rollouts[name]
    if name not in ENGINE_FEATURES:
        return 0
    feature = _feature(name)
    if feature.disabled_reason is not None:
        return 0
    kind = feature.mode.kind
    if kind == "canary":
        return int(round(feature.mode.fraction * 100))
    return 100 if kind in ("on", "auto") else 0  # shadow serves Python's answers


def set_rollout_percentage(name: str, percentage: int) -> None:
    if (
        isinstance(percentage, bool)
        or not isinstance(percentage, int)
        or not 0 <= percentage <= 100
    ):
        raise ConfigError(
            f"{name}_rollout must be an integer 0..100 (stages {ROLLOUT_STAGES}),"
            f" got {percentage!r}"
        )
    _check(name)
    if name in _rollouts:
        _rollouts[name] = percentage
        return
    feature = _feature(name)
    if percentage == 0:
        feature.set_mode("off")
    elif percentage == 100:
        feature.set_mode("auto")
    else:
        feature.set_mode(f"canary:{percentage / 100:g}")


def reset_pilot_flags() -> None:
    """The caller flags and their rollouts back to the pilot's defaults (tests)."""
    _flags.clear()
    _flags.update(CALLER_FLAGS)
    for name in _rollouts:
        _rollouts[name] = 0


def is_mojo_available() -> bool:
    """True when the pattern-search Mojo kernel loads and passes its self-check here."""
    if force_python():
        return False
    return get_runtime().feature("pattern_search").kernel() is not None


class _MojoFeatures(MutableMapping[str, bool]):
    """``MOJO_FEATURES[name]`` -> ``get_mojo_feature_enabled(name)``; assignment sets the flag."""

    def __getitem__(self, name: str) -> bool:
        if name not in PILOT_FEATURES:
            raise KeyError(name)
        return get_mojo_feature_enabled(name)

    def __setitem__(self, name: str, enabled: bool) -> None:
        set_mojo_feature(name, bool(enabled))

    def __delitem__(self, name: str) -> None:
        raise TypeError("MOJO_FEATURES keys are fixed; set a feature to False to disable it")

    def __iter__(self) -> Iterator[str]:
        return iter(PILOT_FEATURES)

    def __len__(self) -> int:
        return len(PILOT_FEATURES)

    def copy(self) -> dict[str, bool]:
        return dict(self)

    def __repr__(self) -> str:
        return f"MOJO_FEATURES({dict(self)!r})"


_ROLLOUT_STATIC: dict[str, Any] = {
    "stages": list(ROLLOUT_STAGES),
    "stage_duration": 48,
    "reactive_rollback_thresholds": {
        "max_error_rate": 1.0,
        "min_latency_ms": 5.0,
        "min_emergence_score": 0.5,
        "max_message_loss": 100,
    },
}


class _RolloutConfig(MutableMapping[str, Any]):
    """``ROLLOUT_CONFIG["<feature>_rollout"]`` (0..100, live), ``["auto_rollback"]`` (the
    runtime's automatic disable), and the pilot's other keys as plain values."""

    def _keys(self) -> list[str]:
        rollouts = [f"{name}_rollout" for name in ROLLOUT_FEATURES]
        return rollouts + [
            "stages",
            "stage_duration",
            "auto_rollback",
            "reactive_rollback_thresholds",
        ]

    @staticmethod
    def _rollout_name(key: str) -> str | None:
        if key.endswith("_rollout") and key[: -len("_rollout")] in PILOT_FEATURES:
            return key[: -len("_rollout")]
        return None

    def __getitem__(self, key: str) -> Any:
        if key == "auto_rollback":
            return pilot_runtime().auto_rollback
        if key in _ROLLOUT_STATIC:
            return _ROLLOUT_STATIC[key]
        name = self._rollout_name(key)
        if name is not None:
            return get_rollout_percentage(name)
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "auto_rollback":
            pilot_runtime().auto_rollback = bool(value)
        elif key in _ROLLOUT_STATIC:
            _ROLLOUT_STATIC[key] = value
        elif (name := self._rollout_name(key)) is not None:
            set_rollout_percentage(name, value)
        else:
            raise KeyError(key)

    def __delitem__(self, key: str) -> None:
        raise TypeError("ROLLOUT_CONFIG keys are fixed")

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def copy(self) -> dict[str, Any]:
        return dict(self)

    def __repr__(self) -> str:
        return f"ROLLOUT_CONFIG({dict(self)!r})"


MOJO_FEATURES: MutableMapping[str, bool] = _MojoFeatures()
ROLLOUT_CONFIG: MutableMapping[str, Any] = _RolloutConfig()

#: The pilot's runtime configuration (``force_python`` as read at import, like the pilot).
MOJO_CONFIG: dict[str, Any] = {
    "min_version": "0.25.7",
    "force_python": os.getenv("SYNAPSE_FORCE_PYTHON", "0") == "1",
    "execution_timeout": 30,
    "auto_fallback": True,
    "track_metrics": True,
    "log_fallbacks": True,
}
PERFORMANCE_THRESHOLDS: dict[str, float] = {
    "max_fallback_rate": 1.0,
    "max_error_rate": 0.1,
    "min_speedup": 5.0,
    "max_latency_regression": 20.0,
}
MONITORING_CONFIG: dict[str, Any] = {
    "enabled": True,
    "collection_interval": 60,
    "retention_hours": 24,
    "alert_on_threshold": True,
}
