"""``graphql-transport-ws`` (the protocol of the ``graphql-ws`` client and Apollo's
``GraphQLWsLink``) as strawberry speaks it, under the gateway's rules.

strawberry's handler keeps the protocol (``connection_init``/``connection_ack``,
``subscribe``/``next``/``error``/``complete``, ``ping``/``pong``, the close codes);
:class:`GatewayTransportWS` changes what the gateway decides:

- the key: ``connection_init``'s payload may carry ``Authorization: Bearer KEY``
  (browsers cannot set headers on a WebSocket; GraphiQL sends its headers there), at
  its top level or in ``headers``, any case; else the handshake's ``Authorization``
  header counts. A refused key closes the socket with 4403, a connection over its
  rate with 4429;
- each ``subscribe`` is read into the one :class:`~edge.operation.Operation`, with its
  own context, and goes through the steps every request takes
  (``edge/pipeline.py``: the rate limit, partner admission, persisted documents) and
  the caps on open subscriptions, all within the operation deadline, which bounds its
  setup and never its life; a refusal is that operation's ``error`` message, with its
  code, and the connection stays open;
- errors carry their ``extensions.code`` and, in production, no suggestions;
- the server pings every ``ws_keepalive_s`` (graphql-ws clients answer ``pong``; one
  timer for every socket, the hub's);
- when the server goes away, the socket is closed with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from graphql import GraphQLError
from starlette.responses import Response
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    Operation as WSOperation,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.utils.aio import aclosing

from edge import pipeline
from edge.exchange import Exchange
from edge.operation import WEBSOCKET, Operation
from edge.subscriptions.hub import GOING_AWAY
from edge.subscriptions.limits import connection_refusal
from edge.subscriptions.stream import Opened, open_subscription
from schema.error_codes import ErrorCode, error_result

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
        ConnectionInitMessage,
        SubscribeMessage,
    )

    from edge.services import EdgeServices
    from resolvers.context import RequestContext
    from sources.registry.partners import Client

__all__ = ["Connection", "GatewayTransportWS"]

logger = logging.getLogger("passerelle.subscriptions")

# A close reason is at most 123 bytes (RFC 6455).
_MAX_REASON = 120


@dataclass(eq=False, slots=True)
class Connection:
    """One WebSocket: the app's services, where it comes from, and once its
    ``connection_init`` is accepted, its key (``authorization``) and client."""

    services: EdgeServices
    address: str
    header_authorization: str | None
    authorization: str | None = None
    client: Client | None = None


class _View(Protocol):
    """What the handler needs of the gateway's view (``edge/graphql_view.py``)."""

    def new_context(self, services: EdgeServices) -> RequestContext: ...

    def shown(self, errors: list[GraphQLError]) -> list[GraphQLError]: ...


class GatewayTransportWS(BaseGraphQLTransportWSHandler[Any, None]):
    """strawberry's ``graphql-transport-ws`` handler, with the gateway's keys, steps,
    caps, codes, pings and goodbye. Its ``context`` is the :class:`Connection`."""

    context: Connection

    async def handle(self) -> None:
        hub = self.context.services.subscriptions
        hub.attach(self)
        try:
            await super().handle()
        finally:
            hub.detach(self)

    async def going_away(self) -> None:
        with contextlib.suppress(Exception):  # already closed
            await self.websocket.close(GOING_AWAY, "The server is going away; reconnect")

    @property
    def authorization(self) -> str | None:
        """The key the connection was accepted with (None before ``connection_ack``)."""
        return self.context.authorization

    async def key_refused(self, reason: str) -> None:
        """Its key was revoked since: the connection ends as one opened with it would."""
        with contextlib.suppress(Exception):  # already closed
            await self.websocket.close(4403, _reason(f"Forbidden: {reason}"))

    async def ping(self) -> None:
        # graphql-transport-ws lets either side ping; clients answer with a pong.
        if self.connection_acknowledged:
            with contextlib.suppress(WebSocketDisconnected, RuntimeError):
                await self.send_message({"type": "ping"})

    # -- connection_init: the key ---------------------------------------------------

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self.connection_timed_out:
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            await self.websocket.close(4400, "Invalid connection init payload")
            return
        if self.connection_init_received:
            await self.websocket.close(4429, "Too many initialisation requests")
            return
        self.connection_init_received = True
        connection = self.context
        services = connection.services
        if services.subscriptions.closing:
            await self.websocket.close(GOING_AWAY, "The server is going away; reconnect")
            return
        authorization = _authorization(payload) or connection.header_authorization
        found = await services.partners.identify(authorization)
        if isinstance(found, str):
            await self.websocket.close(4403, _reason(f"Forbidden: {found}"))
            return
        refusal = await services.rate_guard.refusal(authorization, connection.address)
        if refusal is not None:
            await self.websocket.close(4429, _reason(refusal.message))
            return
        connection.authorization, connection.client = authorization, found
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True

    # -- subscribe: the steps, the caps, the stream ---------------------------------

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if not self.connection_acknowledged:
            await self.websocket.close(4401, "Unauthorized")
            return
        operation_id, payload = message.get("id"), message.get("payload")
        if not isinstance(operation_id, str) or not isinstance(payload, dict):
            await self.handle_invalid_message("Invalid subscribe message")
            return
        if operation_id in self.operations:
            reason = _reason(f"Subscriber for {operation_id} already exists")
            await self.websocket.close(4409, reason)
            return
        operation = _operation(payload, self.context.authorization)
        if isinstance(operation, str):
            await self.handle_invalid_message(operation)
            return
        hub = self.context.services.subscriptions
        refused = connection_refusal(len(self.operations), hub.per_connection)
        if refused is not None:
            errors = error_result(ErrorCode.SUBSCRIPTION_LIMIT, refused).errors or []
            await self.send_message(
                {"id": operation_id, "type": "error", "payload": [e.formatted for e in errors]}
            )
            return
        running = WSOperation(
            self, operation_id, operation.query or "", operation.variables, operation.operation_name
        )
        running.task = asyncio.create_task(self._run(running, operation))
        running.task.add_done_callback(self._task_done)
        self.operations[operation_id] = running

    async def _run(self, running: WSOperation[Any, None], operation: Operation) -> None:
        try:
            opened = await self._open(operation)
            if isinstance(opened, ExecutionResult):
                await running.send_initial_errors(self._shown(opened.errors))
                return
            try:
                async with aclosing(opened.stream):
                    if not await self._send_stream(running, opened.stream):
                        return
            finally:
                opened.lease.release()
            await running.send_operation_message({"id": running.id, "type": "complete"})
        except WebSocketDisconnected:
            pass  # the connection's end ends its operations
        except Exception as error:
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await running.send_operation_message({"id": running.id, "type": "complete"})
            self.operations.pop(running.id, None)
            raise

    async def _open(self, operation: Operation) -> Opened | ExecutionResult:
        """The rate limit, then the steps and a place under the caps, within the deadline."""
        connection = self.context
        services = connection.services
        refusal = await services.rate_guard.refusal(operation.authorization, connection.address)
        if refusal is not None:
            return error_result(
                ErrorCode.RATE_LIMITED, refusal.message, retryAfter=refusal.retry_after_s
            )
        view: _View = self.view  # type: ignore[assignment]  # the gateway's view
        context = view.new_context(services)
        exchange = Exchange(services, read=operation)
        exchange.start(context, Response())

        async def start(admitted: Operation) -> Opened | ExecutionResult:
            return await open_subscription(
                services.subscriptions,
                self.schema,
                admitted,
                context,
                address=connection.address,
                client=connection.client,
                allowed=_OVER_WEBSOCKET,
                root_value=self.root_value,
            )

        return await pipeline.subscribe(operation, exchange, start)

    async def _send_stream(
        self, running: WSOperation[Any, None], stream: AsyncGenerator[Any, None]
    ) -> bool:
        """Send each result as ``next``; False when the operation ended with an ``error``."""
        first = True
        async for result in stream:
            if first and isinstance(result, PreExecutionError):
                await running.send_initial_errors(self._shown(result.errors))
                return False
            if not isinstance(result, ExecutionResult):
                await self._reject_incremental_delivery(running)
                return False
            if result.errors:
                result.errors = self._shown(result.errors)
            await running.send_next(result)
            first = False
        return True

    def _shown(self, errors: list[GraphQLError] | None) -> list[GraphQLError]:
        view: _View = self.view  # type: ignore[assignment]  # the gateway's view
        return view.shown(errors or [])


_OVER_WEBSOCKET = (OperationType.QUERY, OperationType.SUBSCRIPTION)


def _authorization(payload: Mapping[str, Any]) -> str | None:
    """``Authorization`` from a ``connection_init`` payload: at its top level, or in its
    ``headers`` (GraphiQL sends its headers editor there), any case."""
    for where in (payload, payload.get("headers")):
        if isinstance(where, Mapping):
            for name, value in where.items():
                if isinstance(name, str) and name.lower() == "authorization":
                    return value if isinstance(value, str) else ""
    return None


def _operation(payload: Mapping[str, Any], authorization: str | None) -> Operation | str:
    """The operation a ``subscribe`` payload asks for, or what is wrong with it."""
    for name, kind, what in (
        ("query", str, "a string"),
        ("operationName", str, "a string"),
        ("variables", dict, "an object"),
        ("extensions", dict, "an object"),
        ("documentId", str, "a string"),
    ):
        if not isinstance(payload.get(name), (kind, type(None))):
            return f"Invalid subscribe payload: {name} must be {what} or null"
    return Operation(
        "GET",
        payload.get("query"),
        payload.get("operationName"),
        payload.get("variables"),
        payload.get("extensions"),
        payload.get("documentId") or None,
        authorization,
        WEBSOCKET,
    )


def _reason(text: str) -> str:
    encoded = text.encode()
    return text if len(encoded) <= _MAX_REASON else encoded[:_MAX_REASON].decode(errors="ignore")
