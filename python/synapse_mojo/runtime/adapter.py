"""The runtime adapter: per feature, Mojo when it is enabled and healthy, Python otherwise.

Every call of an accelerated operation goes through ``FeatureRuntime.run`` with two callables,
the Mojo path and the Python path::

    outcome = runtime.feature("pattern_search").run(
        "topk",
        mojo=lambda kernel, fault: ...,   # gets the loaded kernel module and a fault code
        python=lambda: ...,
        same=results_agree,               # used in shadow mode
    )
    outcome.value, outcome.runtime        # the result and who produced it

Hot paths use ``FeatureRuntime.call`` instead, with callables bound once and the arguments
passed separately, so that nothing is built per call (``mojo(kernel, fault, *args)``,
``python(*args)``).

Decisions, in order: ``SYNAPSE_FORCE_PYTHON`` (read on every call) > mode ``off`` > a canary
draw > an automatic disable > the kernel being unavailable (not built, not loaded, or failing
its start-up self-check). Any exception on the Mojo path is answered by the Python path in the
same call and recorded with its reason. An error rate over the configured threshold in the
sliding window disables the Mojo path until ``reset()``; a high fallback rate and a p95
regression against Python (shadow mode) raise warnings.
"""

from __future__ import annotations

import inspect
import logging
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Generic, Literal, TypeVar, cast, overload

from .. import config as config_module
from ..config import FEATURES, Mode, Settings
from .kernel_types import KernelModule, MessageRouterKernel, PatternSearchKernel
from .kernels import KernelHandle, find_compiler, load_kernel
from .metrics import FeatureMetrics, prometheus_text

log = logging.getLogger("synapse_mojo.runtime")

T = TypeVar("T")
#: The kernel module type of a feature (``FeatureRuntime[PatternSearchKernel]``, ...).
K = TypeVar("K", bound=KernelModule)

#: Fault codes understood by every kernel (see ``config.Fault``).
FAULT_CODES = {"raise": 1, "wrong": 2}

#: feature -> the kernel module that implements it.
FEATURE_KERNELS: dict[str, str] = {
    "pattern_search": "pattern_search",
    "vector_engine": "pattern_search",
    "message_router": "message_router",
}

#: feature -> its start-up self-check, registered by the backend that knows the kernel's
#: contract (``search.mojo_backend``, ``router.mojo_queue``) when it is imported: this layer
#: does not know the services above it. Each check takes its feature's kernel type.
_SELF_CHECKS: dict[str, Callable[[Any], None]] = {}


def register_self_check(feature: str, check: Callable[[Any], None]) -> None:
    """Registers the check a feature's kernel must pass before its first Mojo call.

    ``check(kernel_module)`` raises when the kernel disagrees with the reference.
    """
    if feature not in FEATURE_KERNELS:
        raise config_module.ConfigError(f"unknown feature {feature!r} for a self-check")
    _SELF_CHECKS[feature] = check


def registered_self_check(feature: str) -> Callable[[Any], None] | None:
    return _SELF_CHECKS.get(feature)


#: Successful Mojo calls are recorded in bulk every this many calls
#: (``FeatureRuntime.record_fast``), and whenever anything reads the metrics.
FAST_LANE_FLUSH = 64


@dataclass(slots=True)
class Outcome(Generic[T]):
    """One answered call: the value, the runtime that produced it, and why if it fell back."""

    value: T
    runtime: str  # "mojo" | "python"
    elapsed_ms: float
    fallback_reason: str | None = None
    error: str | None = None


class FeatureRuntime(Generic[K]):
    """Mode, kernel, health and metrics of one feature; ``K`` is its kernel module's type."""

    def __init__(self, name: str, owner: Runtime) -> None:
        self.name = name
        self._owner = owner
        self._lock = threading.RLock()
        self.mode: Mode = owner.settings.mode(name)
        self.metrics = FeatureMetrics(name)
        self._kernel_ready = False
        self._module: K | None = None
        self.self_check: str = "not run"
        self.disabled_reason: str | None = None
        self.alerts: dict[str, str] = {}
        alerts = owner.settings.alerts
        self._window: deque[bool] = deque(maxlen=alerts.window)
        self._window_errors = 0
        self._fallback_window: deque[bool] = deque(maxlen=alerts.window)
        self._fallback_count = 0
        self._shadow_calls = 0
        self._rng = random.Random()
        # The metrics' lock: queued Mojo successes record their metrics and both health
        # windows in one acquisition (``flush``). Nothing holding it calls out.
        self._health_lock = self.metrics.lock
        #: The kernel module while ``call`` may take its fast lane (no mode, health or fault
        #: checks): mode ``auto`` or ``on``, the kernel loaded and self-checked, not
        #: disabled, no fault injection. None otherwise; kept by ``_publish_state``.
        self.lane: K | None = None
        # Latencies of successful Mojo calls, recorded in bulk (``flush``).
        self._pending: list[float] = []
        self.metrics.before_read = self.flush
        #: Hooks run after the kernel passed its self-check (``add_ready_hook``).
        self._ready_hooks: list[Callable[[], Callable[[K], None] | None]] = []
        self.metrics.set_state(False, False)

    # ---------------------------------------------------------------------------- kernel

    @property
    def kernel_name(self) -> str | None:
        return FEATURE_KERNELS.get(self.name)

    def kernel_handle(self) -> KernelHandle | None:
        name = self.kernel_name
        return self._owner.kernel_handle(name) if name else None

    def kernel(self) -> K | None:
        """The loaded kernel module if it passed its self-check, else None. Loads on first use."""
        if self._kernel_ready:
            return self._module
        with self._lock:
            if self._kernel_ready:
                return self._module
            handle = self.kernel_handle()
            # The kernel this feature names (FEATURE_KERNELS) has the type K.
            module = cast("K | None", handle.module if handle else None)
            if handle is None:
                self.self_check = "no kernel for this feature"
            elif module is None:
                self.self_check = f"skipped: kernel unavailable ({handle.error})"
            elif self.name not in _SELF_CHECKS:
                # Nothing above has registered the check yet (its backend module is not
                # imported): not trusted now, decided again on the next call.
                self.self_check = "not run: no self-check registered for this feature yet"
                return None
            else:
                module = self._run_self_check(module)
            self._module = module
            self._kernel_ready = True
            self._publish_state()
            return module

    def _run_self_check(self, module: K) -> K | None:
        check = _SELF_CHECKS[self.name]
        try:
            started = time.perf_counter()
            check(module)
            self.self_check = f"passed ({(time.perf_counter() - started) * 1e3:.1f} ms)"
        except Exception as exc:
            self.self_check = f"failed: {type(exc).__name__}: {exc}"
            log.error(
                "Mojo kernel for %s failed its self-check against the reference; "
                "the feature runs on Python: %s",
                self.name,
                exc,
            )
            return None
        for ref in list(self._ready_hooks):
            hook = ref()
            if hook is None:  # its owner is gone (hooks of bound methods are weak)
                self._ready_hooks.remove(ref)
                continue
            try:
                hook(module)
            except Exception as exc:  # a hook (e.g. a calibration) must not disable the kernel
                log.warning("%s: start-up hook %r failed: %s", self.name, hook, exc)
        return module

    def add_ready_hook(self, hook: Callable[[K], None]) -> None:
        """Runs ``hook(kernel)`` once the kernel has passed its self-check (at once if it has).

        Backends use it to re-check their calibration against this kernel on this machine.
        A bound method is held weakly: the hook goes away with its object.
        """
        ref: Any = weakref.WeakMethod(hook) if inspect.ismethod(hook) else (lambda: hook)
        with self._lock:
            self._ready_hooks.append(ref)
            ready = self._kernel_ready and self._module is not None
        if ready:
            try:
                hook(self._module)  # type: ignore[arg-type]
            except Exception as exc:
                log.warning("%s: start-up hook %r failed: %s", self.name, hook, exc)

    # ---------------------------------------------------------------------------- control

    def set_mode(self, mode: Mode | str) -> None:
        self.mode = mode if isinstance(mode, Mode) else Mode.parse(mode)
        self._publish_state()

    def reset(self) -> None:
        """Clears an automatic disable, the sliding windows and the alerts."""
        self.flush()
        with self._lock:
            if self.disabled_reason:
                log.warning("Mojo path for %s re-enabled by reset()", self.name)
            self.disabled_reason = None
            with self._health_lock:
                self._window.clear()
                self._window_errors = 0
                self._fallback_window.clear()
                self._fallback_count = 0
            self.alerts.clear()
        self._publish_state()

    def disable(self, reason: str) -> None:
        with self._lock:
            if self.disabled_reason is None:
                self.disabled_reason = reason
                log.error(
                    "AUTO-DISABLED the Mojo path of %s: %s. Every call in this process now runs "
                    "on Python until runtime.reset(%r) re-enables it.",
                    self.name,
                    reason,
                    self.name,
                )
        self._publish_state()

    def mojo_active(self) -> bool:
        """Would a call (in a non-off mode) run on Mojo right now, ignoring canary draws?"""
        if config_module.force_python() or self.mode.kind == "off" or self.disabled_reason:
            return False
        return self.kernel() is not None

    def _publish_state(self) -> None:
        active = (
            self.mode.kind != "off"
            and self.disabled_reason is None
            and self._kernel_ready
            and self._module is not None
        )
        lane = (
            active
            and self.mode.kind in ("auto", "on")
            and self._owner.settings.fault(self.name) is None
        )
        self.lane = self._module if lane else None
        self.metrics.set_state(active, self.disabled_reason is not None)

    # ---------------------------------------------------------------------------- calls

    def _fault_code(self) -> int:
        fault = self._owner.settings.fault(self.name)
        if fault is None or self._rng.random() >= fault.rate:
            return 0
        return FAULT_CODES[fault.kind]

    def run(
        self,
        op: str,
        mojo: Callable[[K, int], T] | None,
        python: Callable[[], T],
        same: Callable[[T, T], bool] | None = None,
        *,
        requires_kernel: bool = True,
    ) -> Outcome[T]:
        """Answers one call on the runtime chosen by the current mode and health.

        ``requires_kernel=False`` is for Mojo paths that bring their own code (the pilot's
        ``mojo_impl`` callables): they run when the feature is enabled and in its rollout
        share, whether or not this feature's own kernel loaded; they get ``None`` as kernel.
        """
        return self.call(op, mojo, python, (), same, requires_kernel=requires_kernel)

    def call(
        self,
        op: str,
        mojo: Callable[..., T] | None,
        python: Callable[..., T],
        args: tuple[Any, ...],
        same: Callable[[T, T], bool] | None = None,
        *,
        requires_kernel: bool = True,
        python_faster: bool = False,
    ) -> Outcome[T]:
        """``run`` without per-call closures: ``mojo(kernel, fault, *args)`` or ``python(*args)``.

        ``python_faster``: the caller's cost model says the Python path is the faster one
        for this call; in ``auto`` mode Python then answers (not a fallback). The other modes
        ignore it: ``on``, ``canary`` and ``shadow`` are explicit requests for Mojo.
        """
        lane = self.lane
        if (
            lane is not None
            and mojo is not None
            and not python_faster
            and not config_module.force_python()
        ):
            # The fast lane: no mode, health or fault checks to make.
            return self._mojo(op, lane if requires_kernel else None, mojo, python, args, 0)
        if config_module.force_python():
            return self._python(python, args)
        mode = self.mode
        kind = mode.kind
        if kind == "off" or mojo is None:
            return self._python(python, args)
        if kind == "canary" and self._rng.random() >= mode.fraction:
            return self._python(python, args)
        if self.disabled_reason is not None:
            return self._python(python, args, fallback="auto_disabled")
        module = (
            (self._module if self._kernel_ready else self.kernel()) if requires_kernel else None
        )
        if requires_kernel and module is None:
            # In auto mode Python is the expected answer when there is no healthy kernel;
            # in on/canary/shadow the caller asked for Mojo, so it is a fallback.
            reason = None if kind == "auto" else "kernel_unavailable"
            return self._python(python, args, fallback=reason)
        if kind == "auto" and python_faster:
            return self._python(python, args)
        if kind == "shadow":
            return self._shadow(op, module, mojo, python, args, same)
        fault = self._fault_code() if self._owner.settings.faults else 0
        return self._mojo(op, module, mojo, python, args, fault)

    def _python(
        self, python: Callable[..., T], args: tuple[Any, ...], fallback: str | None = None
    ) -> Outcome[T]:
        started = time.perf_counter()
        value = python(*args)
        elapsed = time.perf_counter() - started
        self.metrics.record_call("python", elapsed)
        if fallback is not None:
            self.metrics.record_fallback(fallback)
            self._note_fallback(True)
        return Outcome(value, "python", elapsed * 1e3, fallback)

    def _mojo(
        self,
        op: str,
        module: K | None,
        mojo: Callable[..., T],
        python: Callable[..., T],
        args: tuple[Any, ...],
        fault: int,
    ) -> Outcome[T]:
        """The kernel's answer, its success queued for ``flush``; Python's if it raised."""
        started = time.perf_counter()
        try:
            value = mojo(module, fault, *args)
        except Exception as exc:
            return self.answer_after_failure(op, exc, python, args)
        elapsed = time.perf_counter() - started
        self.record_fast(elapsed)
        return Outcome(value, "mojo", elapsed * 1e3)

    def answer_after_failure(
        self, op: str, exc: Exception, python: Callable[..., T], args: tuple[Any, ...]
    ) -> Outcome[T]:
        """Python's answer after the kernel raised ``exc``: the error is logged, counted and
        noted in the health window, and the call counts as a fallback. For ``_mojo`` and for
        callers that take the fast lane themselves (``lane`` set: they call the kernel
        directly and ``record_fast`` its success)."""
        reason = f"{type(exc).__name__}: {exc}"
        log.warning("Mojo %s.%s failed, answered by Python: %s", self.name, op, reason)
        self.metrics.record_error("exception")
        self._note_result(error=True)
        outcome = self._python(python, args, fallback=f"exception:{type(exc).__name__}")
        return Outcome(
            outcome.value,
            "python",
            outcome.elapsed_ms,
            fallback_reason=outcome.fallback_reason,
            error=reason,
        )

    def _shadow(
        self,
        op: str,
        module: K | None,
        mojo: Callable[..., T],
        python: Callable[..., T],
        args: tuple[Any, ...],
        same: Callable[[T, T], bool] | None,
    ) -> Outcome[T]:
        outcome = self._python(python, args)
        started = time.perf_counter()
        error: str | None = None
        try:
            mojo_value = mojo(module, self._fault_code(), *args)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("Mojo %s.%s failed in shadow mode: %s", self.name, op, error)
            self.metrics.record_error("exception")
            self._note_result(error=True)
        else:
            self.metrics.record_latency_only("mojo", time.perf_counter() - started)
            agree = same(outcome.value, mojo_value) if same else outcome.value == mojo_value
            self.metrics.record_shadow(bool(agree))
            if not agree:
                error = "shadow mismatch"
                log.warning("Mojo %s.%s disagreed with Python in shadow mode", self.name, op)
                self.metrics.record_error("mismatch")
            self._note_result(error=not agree)
        self._shadow_calls += 1
        if self._shadow_calls % 32 == 0:
            self._check_latency_regression()
        return Outcome(outcome.value, "python", outcome.elapsed_ms, error=error)

    # ---------------------------------------------------------------------------- fast lane

    def record_fast(self, seconds: float) -> None:
        """A successful Mojo call (the fast lane's, or ``_mojo``'s): queued, and recorded in
        bulk with the next ``flush``, without a lock or a histogram update per call."""
        pending = self._pending
        pending.append(seconds)
        if len(pending) >= FAST_LANE_FLUSH:
            self.flush()

    def flush(self) -> None:
        """Records the queued successful calls: metrics and both health windows. Runs before
        anything reads them (``metrics.snapshot``, a Prometheus scrape, the health checks)
        and every FAST_LANE_FLUSH calls."""
        pending = self._pending
        if not pending:
            return
        with self._health_lock:  # one flush at a time: each queued call is recorded once
            count = len(pending)
            values = pending[:count]
            del pending[:count]  # calls queued meanwhile (other threads) stay for the next
            self.metrics.record_calls_locked("mojo", values)
            self._window.extend(repeat(False, count))
            if self._window_errors:
                self._window_errors = sum(self._window)
            self._fallback_window.extend(repeat(False, count))
            if self._fallback_count:
                self._fallback_count = sum(self._fallback_window)
        if "fallback_rate" in self.alerts:
            self._note_fallback(None)

    # ---------------------------------------------------------------------------- health

    def _note_result(self, error: bool) -> None:
        self.flush()
        alerts = self._owner.settings.alerts
        with self._health_lock:
            if len(self._window) == self._window.maxlen and self._window[0]:
                self._window_errors -= 1
            self._window.append(error)
            self._window_errors += int(error)
            calls, errors = len(self._window), self._window_errors
        if (
            self._owner.auto_rollback
            and calls >= alerts.min_calls
            and errors / calls > alerts.error_rate
        ):
            self.disable(
                f"error rate {errors}/{calls} = {errors / calls:.1%} over the last {calls} Mojo "
                f"calls exceeds {alerts.error_rate:.1%}"
            )

    def _note_fallback(self, fell_back: bool | None) -> None:
        """Records a call in the fallback window (None: only re-evaluate the alert)."""
        if fell_back is not None:
            self.flush()
        alerts = self._owner.settings.alerts
        with self._health_lock:
            if fell_back is not None:
                if (
                    len(self._fallback_window) == self._fallback_window.maxlen
                    and self._fallback_window[0]
                ):
                    self._fallback_count -= 1
                self._fallback_window.append(fell_back)
                self._fallback_count += int(fell_back)
            calls, fallbacks = len(self._fallback_window), self._fallback_count
        if calls < alerts.min_calls:
            return
        rate = fallbacks / calls
        if rate > alerts.fallback_rate:
            self._raise_alert(
                "fallback_rate",
                f"fallback rate {rate:.1%} over the last {calls} calls exceeds "
                f"{alerts.fallback_rate:.0%}",
            )
        else:
            self.alerts.pop("fallback_rate", None)

    def _check_latency_regression(self) -> None:
        self.flush()
        alerts = self._owner.settings.alerts
        mojo_r, py_r = self.metrics.latency["mojo"], self.metrics.latency["python"]
        if min(len(mojo_r), len(py_r)) < alerts.min_latency_samples:
            return
        mojo_p95, py_p95 = mojo_r.p95(), py_r.p95()
        if mojo_p95 is None or py_p95 is None or py_p95 <= 0:
            return
        regression = mojo_p95 / py_p95 - 1.0
        if regression > alerts.p95_regression:
            self._raise_alert(
                "p95_regression",
                f"Mojo p95 {mojo_p95 * 1e3:.3f} ms is {regression:.0%} above Python's "
                f"{py_p95 * 1e3:.3f} ms (threshold {alerts.p95_regression:.0%})",
            )
        else:
            self.alerts.pop("p95_regression", None)

    def _raise_alert(self, key: str, message: str) -> None:
        if self.alerts.get(key) is None:
            log.warning("%s: %s", self.name, message)
        self.alerts[key] = message

    # ---------------------------------------------------------------------------- reporting

    def status(self, load: bool = True) -> dict[str, Any]:
        if load:
            self.kernel()
        handle = self.kernel_handle() if (load or self._kernel_ready) else None
        return {
            "feature": self.name,
            "mode": str(self.mode),
            "force_python": config_module.force_python(),
            "kernel": self.kernel_name,
            "kernel_loaded": bool(handle and handle.loaded),
            "kernel_origin": handle.origin if handle else "not loaded yet",
            "kernel_path": handle.path if handle else None,
            "kernel_error": handle.error if handle else None,
            "kernel_notes": list(handle.attempts) if handle else [],
            "self_check": self.self_check,
            "auto_disabled": self.disabled_reason,
            "active_runtime": "mojo" if self.mojo_active() else "python",
            "alerts": dict(self.alerts),
            "metrics": self.metrics.snapshot(),
        }


class Runtime:
    """All features of one process (or one test): settings, kernels and feature runtimes."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else config_module.load_settings()
        #: Automatic disable on the error-rate threshold (the pilot's ``auto_rollback``).
        self.auto_rollback = True
        self._features: dict[str, FeatureRuntime[Any]] = {}
        self._kernels: dict[str, KernelHandle] = {}
        self._lock = threading.RLock()

    @overload
    def feature(
        self, name: Literal["pattern_search", "vector_engine"]
    ) -> FeatureRuntime[PatternSearchKernel]: ...
    @overload
    def feature(self, name: Literal["message_router"]) -> FeatureRuntime[MessageRouterKernel]: ...
    @overload
    def feature(self, name: str) -> FeatureRuntime[Any]: ...
    def feature(self, name: str) -> FeatureRuntime[Any]:
        """The runtime of feature ``name`` (typed by its kernel when ``name`` is a literal)."""
        if name not in FEATURES:
            raise config_module.ConfigError(
                f"unknown feature {name!r}; expected one of {list(FEATURES)}"
            )
        with self._lock:
            if name not in self._features:
                self._features[name] = FeatureRuntime(name, self)
            return self._features[name]

    def kernel_handle(self, kernel: str) -> KernelHandle:
        with self._lock:
            if kernel not in self._kernels:
                self._kernels[kernel] = load_kernel(kernel, self.settings)
            return self._kernels[kernel]

    def set_mode(self, feature: str, mode: Mode | str) -> None:
        self.feature(feature).set_mode(mode)

    def reset(self, feature: str | None = None) -> None:
        for name in [feature] if feature else list(self._features):
            self.feature(name).reset()

    def status(self) -> dict[str, Any]:
        compiler = find_compiler()
        return {
            "compiler": {
                "path": compiler.path,
                "version": compiler.version,
                "error": compiler.error,
            },
            "settings_source": self.settings.source,
            "threads": self.settings.effective_threads(),
            "features": {name: self.feature(name).status() for name in FEATURES},
        }

    def metrics_json(self) -> dict[str, Any]:
        return {name: f.metrics.snapshot() for name, f in self._features.items()}

    def metrics_prometheus(self) -> str:
        return prometheus_text()


_default: Runtime | None = None
_default_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process-wide runtime, created on first use from ``load_settings()``."""
    global _default
    runtime = _default  # the common case needs no lock: the name is rebound, never mutated
    if runtime is not None:
        return runtime
    with _default_lock:
        if _default is None:
            _default = Runtime()
        return _default


def set_runtime(runtime: Runtime | None) -> None:
    """Replaces (or with None, forgets) the process-wide runtime; used by tests and the CLI."""
    global _default
    with _default_lock:
        _default = runtime
