"""One request's values as they pass from step to step: :class:`Exchange`.

The middleware and the view hand one typed ``Exchange`` on, kept in the ASGI scope
(``scope["state"]``, where Starlette keeps ``request.state``) under one key, instead
of loose attributes; :func:`exchange_of` is the one place that knows where::

    exchange = exchange_of(scope)
    operation = await exchange.operations(request)  # read once, by whoever asks first
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cross_web import HTTPException  # what strawberry 0.341 raises for a 400 (its HTTP layer)

from edge.operation import Operation, read_operations, stream_protocol
from edge.services import services_of

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import Scope

    from edge.services import EdgeServices
    from edge.subscriptions.limits import Lease
    from resolvers.context import RequestContext

__all__ = ["Exchange", "exchange_in", "exchange_of"]

_KEY = "passerelle.exchange"
MAX_CODES = 20  # distinct error codes a request log keeps


@dataclass(slots=True, eq=False)
class Exchange:
    """What one GraphQL request carries from the middleware to the view.

    ``read``: what the request asks (an ``Operation``, a batch of them, or the 400
    that says why it cannot be read), read once by :meth:`operations`;
    ``cache_key``: its response-cache key when the lookup missed (the view stores the
    answer under it); ``lease``: a subscription's place under the caps, held by its
    stream (``edge/subscriptions/``); ``context`` and ``sub_response``: strawberry's
    context and the response the steps fill (status, headers), from the view's
    ``get_context``; ``ran``: the operations that passed the steps (their documents
    found), and ``error_codes`` the codes answered, for the request log
    (``edge/middleware/request_log.py``).
    """

    services: EdgeServices
    read: Operation | list[Operation] | HTTPException | None = None
    cache_key: str | None = None
    lease: Lease | None = None
    ran: list[Operation] = field(default_factory=list)
    error_codes: list[str] = field(default_factory=list)
    _context: RequestContext | None = field(default=None, init=False)
    _sub_response: Response | None = field(default=None, init=False)

    async def operations(self, request: Request) -> Operation | list[Operation]:
        """What the request asks (``HTTPException``: a 400 that says why it is unreadable)."""
        if self.read is None:
            try:
                self.read = read_operations(
                    request.method,
                    request.query_params if request.method == "GET" else await request.body(),
                    authorization=request.headers.get("authorization"),
                    content_type=request.headers.get("content-type", ""),
                    max_batch=self.services.max_batch,
                    protocol=stream_protocol(request.headers.get("accept")),
                )
            except HTTPException as exc:
                self.read = exc
        if isinstance(self.read, HTTPException):
            raise self.read
        return self.read

    def start(self, context: RequestContext, sub_response: Response) -> None:
        """The view's part: strawberry's context, and the response it builds the answer on."""
        self._context = context
        self._sub_response = sub_response

    def note_errors(self, codes: Iterable[str]) -> None:
        """Remember the codes of errors answered (each once; a stream's events add up)."""
        for code in codes:
            if code not in self.error_codes and len(self.error_codes) < MAX_CODES:
                self.error_codes.append(code)

    @property
    def authorization(self) -> str | None:
        """The key a single operation was sent with (a subscription's, kept to end it if
        the key is revoked); None for a batch or an unreadable request."""
        return self.read.authorization if isinstance(self.read, Operation) else None

    @property
    def context(self) -> RequestContext:
        if self._context is None:
            raise LookupError("the view has not started this request (get_context)")
        return self._context

    @property
    def sub_response(self) -> Response:
        if self._sub_response is None:
            raise LookupError("the view has not started this request (get_context)")
        return self._sub_response


def exchange_of(scope: Scope, services: EdgeServices | None = None) -> Exchange:
    """The request's exchange, begun by the first to ask (``services``: the app's,
    for a caller in front of Starlette, which has not yet put the app in the scope)."""
    state = scope.setdefault("state", {})
    exchange: Exchange | None = state.get(_KEY)
    if exchange is None:
        exchange = state[_KEY] = Exchange(services or services_of(scope["app"]))
    return exchange


def exchange_in(scope: Scope) -> Exchange | None:
    """The request's exchange if something began one (the request log reads it after)."""
    exchange: Exchange | None = scope.get("state", {}).get(_KEY)
    return exchange
