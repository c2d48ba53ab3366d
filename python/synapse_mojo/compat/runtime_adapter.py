"""The pilot's ``runtime_adapter``: ``Runtime``, ``RuntimeResult``, ``RuntimeAdapter``,
``get_runtime_adapter``, over the synapse-mojo runtime.

``Runtime`` is the pilot's enum (``Runtime.MOJO.value == "mojo"``); it is also a ``str``, so
``result.runtime_used == "mojo"`` holds too. ``RuntimeAdapter.mojo_available`` is True when the
Mojo kernels load and pass their self-check here (the pilot ran ``mojo --version``);
``runtime`` is ``Runtime.MOJO`` then, unless ``force_python``. The engine underneath is
``adapter.engine``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..config import force_python
from ..runtime.adapter import Runtime as EngineRuntime
from .config import (
    CALLER_FLAGS,
    ENGINE_FEATURES,
    MOJO_FEATURES,
    get_rollout_percentage,
    pilot_runtime,
)

#: Task-name keywords -> feature, for task names that are not feature names themselves.
_TASK_KEYWORDS = (
    (("pattern", "search", "match"), "pattern_search"),
    (("route", "routing", "message", "callosum", "tract"), "message_router"),
    (("vector", "similarity", "embed", "batch"), "vector_engine"),
)


class Runtime(StrEnum):
    """The pilot's runtime names (``str(Runtime.MOJO) == "mojo"``)."""

    MOJO = "mojo"
    PYTHON = "python"


@dataclass
class RuntimeResult:
    """What the pilot's callers read: whether it worked, which runtime produced the result,
    the result, the time, and the error (of the Mojo path when Python answered instead)."""

    success: bool
    runtime_used: Runtime
    result: Any
    execution_time_ms: float
    error: str | None = None


def feature_for_task(task_name: str) -> str:
    """The feature whose mode, rollout and health govern a task (the mapping is documented in
    docs/migrating-from-the-pilot.md, "execute_task task names")."""
    if task_name in ENGINE_FEATURES:
        return ENGINE_FEATURES[task_name]
    if task_name in CALLER_FLAGS:
        return "message_router"
    lowered = task_name.lower()
    for keywords, feature in _TASK_KEYWORDS:
        if any(word in lowered for word in keywords):
            return feature
    return "vector_engine"


class InjectedFault(RuntimeError):
    """Raised instead of calling a caller-supplied ``mojo_impl`` under fault injection."""


class RuntimeAdapter:
    """Runs ``mojo_impl`` when the task's feature is enabled and in its rollout share, else
    ``python_impl``; any Mojo failure falls back to ``python_impl`` in the same call and is
    recorded. ``runtime_used`` is the runtime that really produced the result."""

    def __init__(self, engine: EngineRuntime | None = None) -> None:
        self._engine = engine
        self._mojo_available: bool | None = None
        #: The pilot's metrics collector; synapse-mojo's metrics are in ``get_metrics()``.
        self.metrics = None

    @property
    def engine(self) -> EngineRuntime:
        """The synapse-mojo runtime underneath (the process-wide one, with the pilot's defaults,
        unless one was given)."""
        return self._engine if self._engine is not None else pilot_runtime()

    @property
    def mojo_available(self) -> bool:
        """True when the Mojo kernels load and pass their self-check (checked once)."""
        if self._mojo_available is None:
            self._mojo_available = self.engine.feature("pattern_search").kernel() is not None
        return self._mojo_available

    @property
    def force_python(self) -> bool:
        return force_python()

    @property
    def runtime(self) -> Runtime:
        return Runtime.MOJO if self.mojo_available and not self.force_python else Runtime.PYTHON

    @property
    def mojo_features(self) -> dict[str, bool]:
        return dict(MOJO_FEATURES)

    def get_status(self) -> dict[str, Any]:
        """The pilot's status: ``mojo_available``, ``current_runtime``, ``force_python``,
        ``mojo_features``."""
        return {
            "mojo_available": self.mojo_available,
            "current_runtime": self.runtime.value,
            "force_python": self.force_python,
            "mojo_features": self.mojo_features,
        }

    def execute_task(
        self,
        task_name: str,
        python_impl: Callable[..., Any],
        mojo_impl: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> RuntimeResult:
        # The pilot's gate for its caller flags: on, and within the rollout share.
        if (
            task_name in CALLER_FLAGS
            and mojo_impl is not None
            and not (
                MOJO_FEATURES[task_name]
                and random.random() * 100 < get_rollout_percentage(task_name)
            )
        ):
            mojo_impl = None
        feature = self.engine.feature(feature_for_task(task_name))
        started = time.perf_counter()
        try:
            outcome = feature.run(
                task_name,
                mojo=_caller_mojo(task_name, mojo_impl, kwargs) if mojo_impl is not None else None,
                python=lambda: python_impl(**kwargs),
                requires_kernel=False,
            )
        except Exception as exc:  # python_impl itself failed: nothing answered
            return RuntimeResult(
                False,
                Runtime.PYTHON,
                None,
                (time.perf_counter() - started) * 1e3,
                f"{type(exc).__name__}: {exc}",
            )
        return RuntimeResult(
            True, Runtime(outcome.runtime), outcome.value, outcome.elapsed_ms, outcome.error
        )

    def get_metrics(self) -> dict[str, Any]:
        return self.engine.metrics_json()


def _caller_mojo(
    task_name: str, mojo_impl: Callable[..., Any], kwargs: dict[str, Any]
) -> Callable[[Any, int], Any]:
    """The feature's Mojo path for a caller-supplied ``mojo_impl``."""

    def mojo(_kernel: Any, fault: int) -> Any:
        if fault == 1:  # SYNAPSE_FAULT_<FEATURE>=raise applies to caller-supplied code too
            raise InjectedFault(f"injected fault: {task_name} mojo_impl")
        return mojo_impl(**kwargs)

    return mojo


_adapter: RuntimeAdapter | None = None
_lock = threading.Lock()


def get_runtime_adapter() -> RuntimeAdapter:
    """The process-wide adapter (it follows the process-wide runtime)."""
    global _adapter
    with _lock:
        if _adapter is None:
            _adapter = RuntimeAdapter()
        return _adapter
