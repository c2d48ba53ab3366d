"""The pilot's ``message_router`` module name (see :mod:`synapse_mojo.router.compat`)."""

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

__all__ = [
    "Message",
    "MessagePriority",
    "MessageRouter",
    "MessageRouterMojo",
    "MessageRouterPython",
    "MessageStats",
    "TractType",
    "get_message_router",
    "reset_message_router",
]
