"""The pilot's ``reactive_message_router`` module name (see :mod:`synapse_mojo.compat.reactive`)."""

from ..router.compat import Message, MessagePriority, MessageStats, TractType
from .event_store import ConsciousnessMetrics
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

__all__ = [
    "BackpressureConfig",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitOpenError",
    "CircuitState",
    "ConsciousnessMetrics",
    "EmergenceEvent",
    "Message",
    "MessagePriority",
    "MessageStats",
    "PatternSynthesizer",
    "ReactiveCorpusCallosum",
    "TractType",
    "get_reactive_message_router",
]
