"""The pilot's feature flags, as live views of the runtime's settings.

``MOJO_FEATURES`` and ``ROLLOUT_CONFIG`` read and write the same state as
``Runtime.feature(...).mode`` and the automatic disable: a feature disabled automatically shows
``False`` here too, and stays disabled for the process until it is re-enabled (the pilot's
flags silently re-enabled on the next read).

Names: the pilot's ``corpus_callosum`` and ``message_router_reactive`` are the message router
under other names; they share its mode and health (``message_router``).

Rollout percentages map onto modes: 0 -> ``off``; 10/25/50/75 -> ``canary:0.1`` ...
``canary:0.75``; 100 -> ``auto`` (Mojo whenever its kernel is healthy). Any integer 0..100 is
accepted; the stages are the pilot's.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from ..config import force_python
from ..errors import ConfigError
from ..runtime.adapter import FeatureRuntime, get_runtime

#: Pilot feature name -> synapse-mojo feature.
PILOT_FEATURES: dict[str, str] = {
    "pattern_search": "pattern_search",
    "message_router": "message_router",
    "message_router_reactive": "message_router",
    "vector_engine": "vector_engine",
    "corpus_callosum": "message_router",
}
ROLLOUT_STAGES = (0, 10, 25, 50, 75, 100)


def _feature(name: str) -> FeatureRuntime:
    try:
        return get_runtime().feature(PILOT_FEATURES[name])
    except KeyError:
        raise ConfigError(f"unknown feature {name!r}; expected one of {sorted(PILOT_FEATURES)}") from None


def get_mojo_feature_enabled(name: str) -> bool:
    """True when the feature may use Mojo now: not off, not auto-disabled, not forced to Python.
    Unknown names are False (as in the pilot)."""
    if name not in PILOT_FEATURES or force_python():
        return False
    feature = _feature(name)
    return feature.mode.kind != "off" and feature.disabled_reason is None


def set_mojo_feature(name: str, enabled: bool) -> None:
    """Enables (mode ``auto``, clearing an automatic disable) or disables (mode ``off``)."""
    feature = _feature(name)
    if enabled:
        if feature.mode.kind == "off":
            feature.set_mode("auto")
        if feature.disabled_reason is not None:
            feature.reset()
    else:
        feature.set_mode("off")


def get_rollout_percentage(name: str) -> int:
    """The share of calls (0..100) the feature sends to Mojo; 0 while auto-disabled."""
    if name not in PILOT_FEATURES:
        return 0
    feature = _feature(name)
    if feature.disabled_reason is not None:
        return 0
    kind = feature.mode.kind
    if kind == "canary":
        return int(round(feature.mode.fraction * 100))
    return 100 if kind in ("on", "auto") else 0  # shadow serves Python's answers


def set_rollout_percentage(name: str, percentage: int) -> None:
    if isinstance(percentage, bool) or not isinstance(percentage, int) or not 0 <= percentage <= 100:
        raise ConfigError(f"{name}_rollout must be an integer 0..100 (stages {ROLLOUT_STAGES}), got {percentage!r}")
    feature = _feature(name)
    if percentage == 0:
        feature.set_mode("off")
    elif percentage == 100:
        feature.set_mode("auto")
    else:
        feature.set_mode(f"canary:{percentage / 100:g}")


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

    def __repr__(self) -> str:
        return f"MOJO_FEATURES({dict(self)!r})"


class _RolloutConfig(MutableMapping[str, Any]):
    """``ROLLOUT_CONFIG["<feature>_rollout"]`` (0..100) and ``ROLLOUT_CONFIG["auto_rollback"]``."""

    def _keys(self) -> list[str]:
        return [f"{name}_rollout" for name in PILOT_FEATURES] + ["auto_rollback"]

    def __getitem__(self, key: str) -> Any:
        if key == "auto_rollback":
            return get_runtime().auto_rollback
        if key.endswith("_rollout") and key[: -len("_rollout")] in PILOT_FEATURES:
            return get_rollout_percentage(key[: -len("_rollout")])
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "auto_rollback":
            get_runtime().auto_rollback = bool(value)
        elif key.endswith("_rollout") and key[: -len("_rollout")] in PILOT_FEATURES:
            set_rollout_percentage(key[: -len("_rollout")], value)
        else:
            raise KeyError(key)

    def __delitem__(self, key: str) -> None:
        raise TypeError("ROLLOUT_CONFIG keys are fixed")

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __repr__(self) -> str:
        return f"ROLLOUT_CONFIG({dict(self)!r})"


MOJO_FEATURES: MutableMapping[str, bool] = _MojoFeatures()
ROLLOUT_CONFIG: MutableMapping[str, Any] = _RolloutConfig()
