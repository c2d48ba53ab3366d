"""The pilot's runtime adapter and feature-flag APIs, called the way the pilot's callers do."""

from __future__ import annotations

import pytest

from synapse_mojo import ConfigError, set_runtime
from synapse_mojo.compat import (
    MOJO_FEATURES,
    ROLLOUT_CONFIG,
    Runtime,
    RuntimeAdapter,
    RuntimeResult,
    feature_for_task,
    get_mojo_feature_enabled,
    get_rollout_percentage,
    get_runtime_adapter,
    reset_pilot_flags,
    set_mojo_feature,
)


@pytest.fixture
def pilot_runtime(make_runtime, search_kernel):
    """A process-wide runtime whose features are configured explicitly (``auto``), so the
    pilot's defaults (10% rollout) do not apply; ``pilot_defaults=True`` leaves them unset."""

    def factory(pilot_defaults=False, **env):
        if not pilot_defaults:
            env = {
                "SYNAPSE_FEATURE_PATTERN_SEARCH": "auto",
                "SYNAPSE_FEATURE_VECTOR_ENGINE": "auto",
                **env,
            }
        rt = make_runtime(**env)
        set_runtime(rt)  # the compat API works on the process-wide runtime, as the pilot did
        return rt

    yield factory
    reset_pilot_flags()


def test_pilot_defaults_and_config_keys(pilot_runtime):
    rt = pilot_runtime(pilot_defaults=True)
    assert dict(MOJO_FEATURES) == {
        "pattern_search": True,
        "message_router": False,
        "message_router_reactive": False,
        "vector_engine": False,
        "corpus_callosum": False,
    }
    assert (
        ROLLOUT_CONFIG["pattern_search_rollout"] == 10
        and str(rt.feature("pattern_search").mode) == "canary:0.1"
    )
    assert (
        ROLLOUT_CONFIG["message_router_rollout"] == 0
        and ROLLOUT_CONFIG["message_router_reactive_rollout"] == 0
    )
    assert (
        ROLLOUT_CONFIG["stages"] == [0, 10, 25, 50, 75, 100]
        and ROLLOUT_CONFIG["auto_rollback"] is True
    )
    # scripts/monitor_reactive_metrics.py reads these four
    thresholds = ROLLOUT_CONFIG["reactive_rollback_thresholds"]
    assert (
        thresholds["max_error_rate"],
        thresholds["min_latency_ms"],
        thresholds["min_emergence_score"],
        thresholds["max_message_loss"],
    ) == (1.0, 5.0, 0.5, 100)
    # an explicit setting wins over the pilot's default
    rt = pilot_runtime(pilot_defaults=True, SYNAPSE_FEATURE_PATTERN_SEARCH="on")
    assert (
        ROLLOUT_CONFIG["pattern_search_rollout"] == 100
        and str(rt.feature("pattern_search").mode) == "on"
    )


def test_adapter_status_as_the_pilot_reports_it(pilot_runtime, monkeypatch):
    pilot_runtime()
    adapter = get_runtime_adapter()
    assert adapter.mojo_available is True and adapter.force_python is False
    assert adapter.runtime is Runtime.MOJO and adapter.runtime.value == "mojo"
    status = adapter.get_status()
    assert status == {
        "mojo_available": True,
        "current_runtime": "mojo",
        "force_python": False,
        "mojo_features": dict(MOJO_FEATURES),
    }
    monkeypatch.setenv("SYNAPSE_FORCE_PYTHON", "1")
    assert adapter.force_python and adapter.runtime is Runtime.PYTHON
    assert adapter.get_status()["current_runtime"] == "python"


def test_execute_task_uses_mojo_when_enabled(pilot_runtime):
    pilot_runtime()
    result = get_runtime_adapter().execute_task(
        "pattern_search", lambda x: ("py", x), lambda x: ("mojo", x), x=7
    )
    assert isinstance(result, RuntimeResult)
    assert result.success and result.runtime_used is Runtime.MOJO and result.result == ("mojo", 7)
    assert result.runtime_used == "mojo" and result.runtime_used.value == "mojo"
    assert result.execution_time_ms >= 0 and result.error is None


def test_execute_task_without_mojo_impl_runs_python(pilot_runtime):
    pilot_runtime()
    result = RuntimeAdapter().execute_task("vector_similarity", lambda: 41 + 1)
    assert result.runtime_used == "python" and result.result == 42


def test_mojo_failure_falls_back_and_reports_the_real_runtime(pilot_runtime):
    rt = pilot_runtime()

    def broken():
        raise ValueError("mojo exploded")

    result = RuntimeAdapter().execute_task("pattern_search", lambda: "python answer", broken)
    assert result.success and result.result == "python answer"
    assert result.runtime_used == "python"
    assert "mojo exploded" in result.error
    assert rt.feature("pattern_search").metrics.snapshot()["fallbacks"] == {
        "exception:ValueError": 1
    }


def test_both_paths_failing_is_reported_not_raised(pilot_runtime):
    pilot_runtime()

    def fail():
        raise RuntimeError("nope")

    result = RuntimeAdapter().execute_task("pattern_search", fail, fail)
    assert not result.success and result.result is None and "nope" in result.error


def test_flags_read_and_write_the_runtime(pilot_runtime):
    rt = pilot_runtime()
    assert set(MOJO_FEATURES) == {
        "pattern_search",
        "message_router",
        "message_router_reactive",
        "vector_engine",
        "corpus_callosum",
    }
    assert MOJO_FEATURES["pattern_search"] is True
    set_mojo_feature("pattern_search", False)
    assert get_mojo_feature_enabled("pattern_search") is False
    assert str(rt.feature("pattern_search").mode) == "off"
    assert (
        RuntimeAdapter().execute_task("pattern_search", lambda: "p", lambda: "m").runtime_used
        == "python"
    )
    MOJO_FEATURES["pattern_search"] = True
    assert str(rt.feature("pattern_search").mode) == "auto"
    # the router flags are switches the pilot's callers read; they leave the runtime alone
    assert MOJO_FEATURES["message_router_reactive"] is False
    set_mojo_feature("message_router_reactive", True)
    assert (
        MOJO_FEATURES["message_router_reactive"] is True
        and MOJO_FEATURES["corpus_callosum"] is False
    )
    assert str(rt.feature("message_router").mode) == "auto"
    assert get_mojo_feature_enabled("warp_drive") is False
    with pytest.raises(ConfigError, match="Unknown Mojo feature"):
        set_mojo_feature("warp_drive", True)
    with pytest.raises(ValueError):  # the pilot raised ValueError; ConfigError is one
        set_mojo_feature("warp_drive", True)


@pytest.mark.parametrize(
    "stage, mode",
    [
        (0, "off"),
        (10, "canary:0.1"),
        (25, "canary:0.25"),
        (50, "canary:0.5"),
        (75, "canary:0.75"),
        (100, "auto"),
    ],
)
def test_rollout_stages(pilot_runtime, stage, mode):
    rt = pilot_runtime()
    ROLLOUT_CONFIG["vector_engine_rollout"] = stage
    assert str(rt.feature("vector_engine").mode) == mode
    assert get_rollout_percentage("vector_engine") == stage
    assert ROLLOUT_CONFIG["vector_engine_rollout"] == stage


def test_rollout_share_is_respected(pilot_runtime):
    pilot_runtime()
    ROLLOUT_CONFIG["pattern_search_rollout"] = 25
    used = [
        RuntimeAdapter().execute_task("pattern_search", lambda: 0, lambda: 1).runtime_used
        for _ in range(2000)
    ]
    assert abs(used.count("mojo") / 2000 - 0.25) < 0.05
    with pytest.raises(ConfigError, match="0..100"):
        ROLLOUT_CONFIG["pattern_search_rollout"] = 150


def test_auto_disable_is_visible_through_the_pilot_flags_and_persists(pilot_runtime):
    rt = pilot_runtime(SYNAPSE_FAULT_PATTERN_SEARCH="raise", SYNAPSE_ALERT_MIN_CALLS="20")
    assert get_mojo_feature_enabled("pattern_search")
    for _ in range(20):
        result = RuntimeAdapter().execute_task("pattern_search", lambda: "py", lambda: "mojo")
        assert result.result == "py"
    assert get_mojo_feature_enabled("pattern_search") is False
    assert (
        MOJO_FEATURES["pattern_search"] is False and ROLLOUT_CONFIG["pattern_search_rollout"] == 0
    )
    # It stays disabled for the process: reading the flags does not re-enable it.
    for _ in range(5):
        assert (
            RuntimeAdapter()
            .execute_task("pattern_search", lambda: "py", lambda: "mojo")
            .runtime_used
            == "python"
        )
    assert rt.feature("pattern_search").disabled_reason
    set_mojo_feature("pattern_search", True)  # an explicit re-enable clears it
    assert get_mojo_feature_enabled("pattern_search")


def test_auto_rollback_off_keeps_mojo_enabled(pilot_runtime):
    pilot_runtime(SYNAPSE_FAULT_PATTERN_SEARCH="raise", SYNAPSE_ALERT_MIN_CALLS="20")
    ROLLOUT_CONFIG["auto_rollback"] = False
    for _ in range(40):
        RuntimeAdapter().execute_task("pattern_search", lambda: "py", lambda: "mojo")
    assert get_mojo_feature_enabled("pattern_search")


def test_force_python_behaves_as_before(pilot_runtime, monkeypatch):
    pilot_runtime()
    monkeypatch.setenv("SYNAPSE_FORCE_PYTHON", "1")
    assert get_mojo_feature_enabled("pattern_search") is False
    assert (
        RuntimeAdapter().execute_task("pattern_search", lambda: "p", lambda: "m").runtime_used
        == "python"
    )


def test_caller_flags_gate_execute_task_as_in_the_pilot(pilot_runtime):
    pilot_runtime()
    assert RuntimeAdapter().execute_task("message_router", lambda: "p", lambda: "m").result == "p"
    set_mojo_feature("message_router", True)
    assert (
        RuntimeAdapter().execute_task("message_router", lambda: "p", lambda: "m").result == "p"
    )  # rollout 0
    ROLLOUT_CONFIG["message_router_rollout"] = 100
    assert RuntimeAdapter().execute_task("message_router", lambda: "p", lambda: "m").result == "m"


def test_task_names_map_to_features():
    assert feature_for_task("pattern_search") == "pattern_search"
    assert feature_for_task("corpus_callosum") == "message_router"
    assert feature_for_task("semantic_pattern_match") == "pattern_search"
    assert feature_for_task("route_messages") == "message_router"
    assert feature_for_task("cosine_similarity_batch") == "vector_engine"


PILOT_MODULES = {
    "runtime_adapter": ["Runtime", "RuntimeResult", "RuntimeAdapter", "get_runtime_adapter"],
    "config": [
        "MOJO_FEATURES",
        "ROLLOUT_CONFIG",
        "MOJO_CONFIG",
        "PERFORMANCE_THRESHOLDS",
        "MONITORING_CONFIG",
        "get_mojo_feature_enabled",
        "set_mojo_feature",
        "get_rollout_percentage",
        "is_mojo_available",
    ],
    "pattern_search": ["PatternSearch", "create_pattern_search"],
    "message_router": [
        "TractType",
        "MessagePriority",
        "Message",
        "MessageStats",
        "MessageRouter",
        "MessageRouterPython",
        "MessageRouterMojo",
        "get_message_router",
    ],
    "reactive_message_router": [
        "ReactiveCorpusCallosum",
        "BackpressureConfig",
        "CircuitBreakerConfig",
        "CircuitState",
        "CircuitOpenError",
        "CircuitBreaker",
        "EmergenceEvent",
        "PatternSynthesizer",
        "TractType",
        "MessagePriority",
        "Message",
        "MessageStats",
        "ConsciousnessMetrics",
        "get_reactive_message_router",
    ],
    "event_store": [
        "ConsciousnessMetrics",
        "EventLogEntry",
        "InMemoryEventStore",
        "RedisEventStore",
        "create_event_store",
    ],
}


@pytest.mark.parametrize("module", sorted(PILOT_MODULES))
def test_every_pilot_module_has_a_namesake_with_its_names(module):
    """Changing `from <module> import X` to `from synapse_mojo.compat.<module> import X` is
    enough."""
    import importlib

    import synapse_mojo.compat as compat

    mod = importlib.import_module(f"synapse_mojo.compat.{module}")
    missing = [name for name in PILOT_MODULES[module] if not hasattr(mod, name)]
    assert not missing, f"synapse_mojo.compat.{module} lacks {missing}"
    assert not [name for name in PILOT_MODULES[module] if not hasattr(compat, name)]
