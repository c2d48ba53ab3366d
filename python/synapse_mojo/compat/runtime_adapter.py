"""The pilot's ``RuntimeAdapter.execute_task`` over the synapse-mojo runtime adapter."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..runtime.adapter import Runtime, get_runtime
from .config import PILOT_FEATURES

#: Task-name keywords -> feature, for task names that are not feature names themselves.
_TASK_KEYWORDS = (
    (("pattern", "search", "match"), "pattern_search"),
    (("route", "routing", "message", "callosum", "tract"), "message_router"),
    (("vector", "similarity", "embed", "batch"), "vector_engine"),
)


@dataclass
class RuntimeResult:
    """What the pilot's callers read: whether it worked, which runtime produced the result,
    the result, the time, and the error (of the Mojo path when Python answered instead)."""

    success: bool
    runtime_used: str  # "mojo" | "python"
    result: Any
    execution_time_ms: float
    error: str | None = None


def feature_for_task(task_name: str) -> str:
    """The feature whose mode, rollout and health govern a task (documented in the README)."""
    if task_name in PILOT_FEATURES:
        return PILOT_FEATURES[task_name]
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

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime

    @property
    def runtime(self) -> Runtime:
        return self._runtime if self._runtime is not None else get_runtime()

    def execute_task(
        self,
        task_name: str,
        python_impl: Callable[..., Any],
        mojo_impl: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> RuntimeResult:
        feature = self.runtime.feature(feature_for_task(task_name))

        def mojo(_kernel: Any, fault: int) -> Any:
            if fault == 1:  # SYNAPSE_FAULT_<FEATURE>=raise applies to caller-supplied code too
                raise InjectedFault(f"injected fault: {task_name} mojo_impl")
            return mojo_impl(**kwargs)  # type: ignore[misc]

        started = time.perf_counter()
        try:
            outcome = feature.run(
                task_name,
                mojo=mojo if mojo_impl is not None else None,
                python=lambda: python_impl(**kwargs),
                requires_kernel=False,
            )
        except Exception as exc:  # python_impl itself failed: nothing answered
            return RuntimeResult(
                False, "python", None, (time.perf_counter() - started) * 1e3, f"{type(exc).__name__}: {exc}"
            )
        return RuntimeResult(True, outcome.runtime, outcome.value, outcome.elapsed_ms, outcome.error)

    def get_metrics(self) -> dict[str, Any]:
        return self.runtime.metrics_json()


_adapter: RuntimeAdapter | None = None
_lock = threading.Lock()


def get_runtime_adapter() -> RuntimeAdapter:
    """The process-wide adapter (it follows the process-wide runtime)."""
    global _adapter
    with _lock:
        if _adapter is None:
            _adapter = RuntimeAdapter()
        return _adapter
