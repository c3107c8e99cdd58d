"""Apollo's multipart HTTP subscriptions, as strawberry writes them, kept in the hub.

strawberry encodes the stream (``multipart/mixed;boundary="graphql";subscriptionSpec=1.0``:
each event a part ``{"payload": {...}}``, a heartbeat ``{}`` every 5 s and one at once,
the closing boundary when the subscription completes); :class:`MultipartStream` is the
response that carries it. It holds the subscription's place under the caps for as long
as it is sent, and gives it back however it ends (completed, the client gone, the
server going away), and it ends with the closing boundary when the server goes away;
when its key is revoked, after a last part holding ``payload: null`` and the error
(Apollo's transport-level error) with ``UNAUTHENTICATED``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING

import orjson
from starlette.responses import StreamingResponse
from strawberry.http.streaming import MultipartSubscriptionTransport

from schema.error_codes import ErrorCode, envelope

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from edge.subscriptions.hub import Subscriptions
    from edge.subscriptions.limits import Lease

__all__ = ["MultipartStream", "refusal_part"]

_TRANSPORT = MultipartSubscriptionTransport()


def refusal_part(reason: str) -> str:
    """A stream's last part when its key is refused since it opened: Apollo's
    transport-level error (``payload`` null), with the code a request would get."""
    body = orjson.loads(envelope(ErrorCode.UNAUTHENTICATED, reason))
    return _TRANSPORT.encode_multipart_data(
        {"payload": None, **body}, lambda value: orjson.dumps(value).decode()
    )


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
        authorization: str | None = None,
    ) -> None:
        self._hub = hub
        self._lease = lease
        self._closing = closing
        self._authorization = authorization
        self._last: str | None = None  # a part sent before the closing boundary
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

    @property
    def authorization(self) -> str | None:
        return self._authorization

    async def going_away(self) -> None:
        self._away.set()

    async def key_refused(self, reason: str) -> None:
        """Its key was revoked since: a last part says so, then the end."""
        self._last = refusal_part(reason)
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
                    if self._last is not None:
                        yield self._last
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
