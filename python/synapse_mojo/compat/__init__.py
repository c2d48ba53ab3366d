"""Drop-in compatibility with the Synapse pilot's APIs: change the imports, keep the calls.

    from synapse_mojo.compat import (
        RuntimeAdapter, RuntimeResult, get_runtime_adapter,
        MOJO_FEATURES, ROLLOUT_CONFIG, get_mojo_feature_enabled, set_mojo_feature,
        get_rollout_percentage, PatternSearch,
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
from .pattern_search import PatternSearch
from .runtime_adapter import RuntimeAdapter, RuntimeResult, feature_for_task, get_runtime_adapter

__all__ = [
    "MOJO_FEATURES",
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
