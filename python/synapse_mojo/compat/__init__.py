"""Drop-in compatibility with the Synapse pilot's APIs: change the imports, keep the calls.

    from synapse_mojo.compat import (
        RuntimeAdapter, RuntimeResult, get_runtime_adapter,
        MOJO_FEATURES, ROLLOUT_CONFIG, get_mojo_feature_enabled, set_mojo_feature,
        get_rollout_percentage, PatternSearch,
        TractType, MessagePriority, MessageRouter, Message, get_message_router,
        ReactiveCorpusCallosum, get_reactive_message_router,
    )

Everything here is a thin layer over the real API (``synapse_mojo.runtime``,
``synapse_mojo.search``, ``synapse_mojo.router``); behaviour differences from the pilot are
deliberate and listed in the README ("Migrating from the pilot").
"""

from .config import (
    MOJO_FEATURES,
    PILOT_FEATURES,
    ROLLOUT_CONFIG,
    ROLLOUT_STAGES,
    get_mojo_feature_enabled,
    get_rollout_percentage,
    set_mojo_feature,
    set_rollout_percentage,
)
from ..router.compat import (
    Message,
    MessagePriority,
    MessageRouter,
    TractType,
    get_message_router,
    reset_message_router,
)
from .pattern_search import PatternSearch
from .reactive import (
    EVENTS_STREAM,
    ReactiveCorpusCallosum,
    get_reactive_message_router,
    reset_reactive_message_router,
)
from .runtime_adapter import RuntimeAdapter, RuntimeResult, feature_for_task, get_runtime_adapter

__all__ = [
    "EVENTS_STREAM",
    "MOJO_FEATURES",
    "Message",
    "MessagePriority",
    "MessageRouter",
    "ReactiveCorpusCallosum",
    "TractType",
    "get_message_router",
    "get_reactive_message_router",
    "reset_message_router",
    "reset_reactive_message_router",
    "PILOT_FEATURES",
    "ROLLOUT_CONFIG",
    "ROLLOUT_STAGES",
    "PatternSearch",
    "RuntimeAdapter",
    "RuntimeResult",
    "feature_for_task",
    "get_mojo_feature_enabled",
    "get_rollout_percentage",
    "get_runtime_adapter",
    "set_mojo_feature",
    "set_rollout_percentage",
]
