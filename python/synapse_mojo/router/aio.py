"""An asyncio face for any router: the same calls, awaitable, run in worker threads.

    router = AsyncRouter(open_router("redis://127.0.0.1:6379/0"))
    async with router:
        await router.send(Tract.INTERNAL, Tract.EXTERNAL, {"goal": "reply"})
        async for message in router.messages(Tract.EXTERNAL):   # acks after each iteration
            ...

Blocking calls (a consume that waits, a publish under backpressure, Redis round trips) run in
``asyncio.to_thread``, so the event loop never blocks; the router itself stays thread-safe.
Sync and async are separate classes (like httpx's), and this one adds no behaviour of its own:
ordering, acknowledgements and errors are the wrapped router's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from .base import Commit, DeadLetter, Router, RouterStats
from .message import Message, Priority, Tract


class AsyncRouter:
    """Awaitable wrapper of a :class:`~.base.Router` (see the module docstring)."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def publish(self, message: Message, *, timeout: float | None = None) -> Message:
        return await asyncio.to_thread(self.router.publish, message, timeout=timeout)

    async def publish_batch(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> int:
        return await asyncio.to_thread(self.router.publish_batch, list(messages), timeout=timeout)

    async def send(
        self,
        source: Tract | str,
        destination: Tract | str,
        payload: Any = None,
        *,
        priority: int = Priority.NORMAL,
        headers: Mapping[str, str] | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        timeout: float | None = None,
    ) -> Message:
        message = Message(
            source,
            destination,
            payload,
            priority=priority,
            headers=headers,
            correlation_id=correlation_id,
            reply_to=reply_to,
        )
        return await self.publish(message, timeout=timeout)

    async def consume(
        self,
        destination: Tract | str,
        max_n: int = 1,
        timeout: float | None = 0.0,
        *,
        auto_ack: bool = False,
    ) -> list[Message]:
        return await asyncio.to_thread(
            self.router.consume, destination, max_n, timeout, auto_ack=auto_ack
        )

    async def ack(
        self, messages: Message | Iterable[Message], *, commit: Commit | None = None
    ) -> None:
        await asyncio.to_thread(self.router.ack, messages, commit=commit)

    async def nack(
        self, messages: Message | Iterable[Message], error: BaseException | str | None = None
    ) -> None:
        await asyncio.to_thread(self.router.nack, messages, error)

    async def messages(
        self, destination: Tract | str, *, batch_size: int = 1, poll_interval: float = 0.5
    ) -> AsyncIterator[Message]:
        """Yields messages as they arrive, acking each one when the next is requested.

        Leaving the loop (``break``, an exception, cancellation) leaves the message in hand
        unacknowledged: it is nacked, and delivered again, when the iterator is closed, unless
        the body acked it itself (``await router.ack(message)`` before ``break``; settling twice
        is harmless). Close it deterministically with ``contextlib.aclosing(...)`` (otherwise
        that happens when the generator is garbage-collected). With ``batch_size > 1`` the rest
        of the batch, not yet yielded, is nacked too. Ends when the router closes.
        """
        from ..errors import RouterClosedError

        while True:
            try:
                batch = await self.consume(destination, batch_size, poll_interval)
            except RouterClosedError:
                return
            for i, message in enumerate(batch):
                try:
                    yield message
                except BaseException:
                    await asyncio.shield(self.nack(batch[i:], "left the messages() loop"))
                    raise
                await self.ack(message)

    async def drain(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.router.drain, timeout)

    async def stats(self) -> RouterStats:
        return await asyncio.to_thread(self.router.stats)

    async def dead_letters(self, destination: Tract | str, limit: int = 100) -> list[DeadLetter]:
        return await asyncio.to_thread(self.router.dead_letters, destination, limit)

    async def close(self, timeout: float | None = 5.0) -> list[Message]:
        return await asyncio.to_thread(self.router.close, timeout)

    async def __aenter__(self) -> AsyncRouter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
