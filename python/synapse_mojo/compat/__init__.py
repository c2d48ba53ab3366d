"""Drop-in compatibility with the Synapse pilot's APIs: change the imports, keep the calls.

    from synapse_mojo.compat import (
        # runtime_adapter
        Runtime, RuntimeAdapter, RuntimeResult, get_runtime_adapter,
        # config
        MOJO_FEATURES, ROLLOUT_CONFIG, get_mojo_feature_enabled, set_mojo_feature,
        get_rollout_percentage,
        # pattern_search
        PatternSearch, create_pattern_search,
        # message_router
        TractType, MessagePriority, Message, MessageStats, MessageRouter, get_message_router,
        # reactive_message_router
        ReactiveCorpusCallosum, BackpressureConfig, CircuitBreakerConfig, CircuitState,
        CircuitOpenError, EmergenceEvent, get_reactive_message_router,
        # event_store
        ConsciousnessMetrics, EventLogEntry, create_event_store,
    )

The pilot's module names work as submodules too (``synapse_mojo.compat.message_router``,
``.reactive_message_router``, ``.event_store``, ``.pattern_search``, ``.runtime_adapter``,
``.config``). Everything is a thin layer over the real API (``synapse_mojo.runtime``,
``synapse_mojo.search``, ``synapse_mojo.router``); what still differs from the pilot, and why,
is listed in docs/migrating-from-the-pilot.md.
"""

from ..router.compat import (
    Message,
    MessagePriority,
    MessageRouter,
    MessageRouterMojo,
    MessageRouterPython,
    MessageStats,
    TractType,
    get_message_router,
    reset_message_router,
)
from .config import (
    MOJO_CONFIG,
    MOJO_FEATURES,
    MONITORING_CONFIG,
    PERFORMANCE_THRESHOLDS,
    PILOT_FEATURES,
    ROLLOUT_CONFIG,
    ROLLOUT_STAGES,
    apply_pilot_defaults,
    get_mojo_feature_enabled,
    get_rollout_percentage,
    is_mojo_available,
    reset_pilot_flags,
    set_mojo_feature,
    set_rollout_percentage,
)
from .event_store import (
    EVENTS_STREAM,
    ConsciousnessMetrics,
    EventLogEntry,
    InMemoryEventStore,
    RedisEventStore,
    create_event_store,
)
from .pattern_search import PatternSearch, create_pattern_search
from .reactive import (
    BackpressureConfig,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    EmergenceEvent,
    PatternSynthesizer,
    ReactiveCorpusCallosum,
    get_reactive_message_router,
)
from .runtime_adapter import (
    Runtime,
    RuntimeAdapter,
    RuntimeResult,
    feature_for_task,
    get_runtime_adapter,
)

__all__ = [
    "EVENTS_STREAM",
    "MOJO_CONFIG",
    "MOJO_FEATURES",
    "MONITORING_CONFIG",
    "PERFORMANCE_THRESHOLDS",
    "PILOT_FEATURES",
    "ROLLOUT_CONFIG",
    "ROLLOUT_STAGES",
    "BackpressureConfig",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitOpenError",
    "CircuitState",
    "ConsciousnessMetrics",
    "EmergenceEvent",
    "EventLogEntry",
    "InMemoryEventStore",
    "Message",
    "MessagePriority",
    "MessageRouter",
    "MessageRouterMojo",
    "MessageRouterPython",
    "MessageStats",
    "PatternSearch",
    "PatternSynthesizer",
    "ReactiveCorpusCallosum",
    "RedisEventStore",
    "Runtime",
    "RuntimeAdapter",
    "RuntimeResult",
    "TractType",
    "apply_pilot_defaults",
    "create_event_store",
    "create_pattern_search",
    "feature_for_task",
    "get_message_router",
    "get_mojo_feature_enabled",
    "get_reactive_message_router",
    "get_rollout_percentage",
    "get_runtime_adapter",
    "is_mojo_available",
    "reset_message_router",
    "reset_pilot_flags",
    "set_mojo_feature",
    "set_rollout_percentage",
]
