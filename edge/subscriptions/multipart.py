"""Apollo's multipart HTTP subscriptions, as strawberry writes them, kept in the hub.

strawberry encodes the stream (``multipart/mixed;boundary="graphql";subscriptionSpec=1.0``:
each event a part ``{"payload": {...}}``, a heartbeat ``{}`` every 5 s and one at once,
the closing boundary when the subscription completes); :class:`MultipartStream` is the
response that carries it. It holds the subscription's place under the caps for as long
as it is sent, and gives it back however it ends (completed, the client gone, the
server going away), and it ends with the closing boundary when the server goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING

from starlette.responses import StreamingResponse

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from edge.subscriptions.hub import Subscriptions
    from edge.subscriptions.limits import Lease

__all__ = ["MultipartStream"]


class MultipartStream(StreamingResponse):
    """The response of one multipart subscription: ``chunks`` as strawberry encodes them,
    ``closing`` the closing boundary, sent when the server goes away."""

    def __init__(
        self,
        chunks: Callable[[], AsyncIterator[str]],
        *,
        hub: Subscriptions,
        lease: Lease | None,
        closing: str,
        status_code: int,
        headers: Mapping[str, str],
    ) -> None:
        self._hub = hub
        self._lease = lease
        self._closing = closing
        self._away = asyncio.Event()
        self._body = self._until_away(chunks)
        super().__init__(self._body, status_code=status_code, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._hub.attach(self)
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._hub.detach(self)
            if self._lease is not None:
                self._lease.release()
            # A client gone mid-send leaves the stream suspended: end the subscription now.
            await self._body.aclose()

    async def going_away(self) -> None:
        self._away.set()

    async def ping(self) -> None:
        """Nothing: strawberry sends Apollo's heartbeat every 5 s."""

    async def _until_away(
        self, chunks: Callable[[], AsyncIterator[str]]
    ) -> AsyncGenerator[str, None]:
        iterator = chunks()
        away = asyncio.ensure_future(self._away.wait())
        following: asyncio.Future[str] | None = None
        try:
            while True:
                following = asyncio.ensure_future(anext(iterator))
                await asyncio.wait({following, away}, return_when=asyncio.FIRST_COMPLETED)
                if not following.done():
                    yield self._closing
                    return
                try:
                    chunk = following.result()
                except StopAsyncIteration:
                    return
                following = None
                yield chunk
        finally:
            away.cancel()
            # A pending read must end before the stream is closed (the client gone, or
            # the server going away): its cancellation ends the subscription itself.
            if following is not None and not following.done():
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await following
            if isinstance(iterator, AsyncGenerator):
                await iterator.aclose()
