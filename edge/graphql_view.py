"""Strawberry's ASGI view, adapted to the gateway: our context and request reading,
the steps before execution, stable error codes, media types, GraphiQL preloaded
with the example query.

A GraphQL request goes through, in this order (each taking the one
:class:`~edge.operation.Operation` read from the request, and its
:class:`~edge.exchange.Exchange`, the values of one request):

1. ASGI middleware (``edge/middleware/``, assembled by ``app.py``): the cached-hit
   fast path for anonymous GETs, in front of Starlette; CORS, the body limit,
   CSRF; then on the ``/graphql`` route, the rate limits and the response-cache
   lookup;
2. this view: ``get_context`` (the context, the media type), ``parse_http_body``
   (the operation read once, by the exchange);
3. the steps before execution, run from one place (``edge/pipeline.py``): partner
   admission, automatic persisted queries, then the execution within the deadline
   (shared by identical concurrent queries: ``edge/shared_operations.py``);
4. ``process_result``: the GraphQL-over-HTTP status, no suggestions in production,
   the answer stored in the response cache (``response_cache.remember``).

Subscriptions stream (``edge/subscriptions/``): over HTTP as Apollo's multipart
subscriptions (a ``POST`` accepting ``multipart/mixed;subscriptionSpec=1.0``; the
same steps, then a :class:`~edge.subscriptions.multipart.MultipartStream`, never
cached), and over a WebSocket (``graphql-transport-ws``, from the origins CORS
allows, by :class:`~edge.subscriptions.websocket.GatewayTransportWS`). A
subscription over ``GET`` is refused (405: a URL would carry its whereabouts into
every log on the way), and one asked for a single JSON answer too (400).

Every hook is one of strawberry's, but ``execute_single``: none other runs for each
operation of a request (a batch too) before strawberry refuses one without ``query``
(strawberry issue #1707), so ``pyproject.toml`` pins strawberry to one minor release.
It calls the schema as strawberry's own does, refusing subscriptions, which
strawberry would execute as a query (an internal error).
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from cross_web import HTTPException, StarletteRequestAdapter
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.streaming import MultipartSubscriptionTransport
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL
from strawberry.types.execution import ExecutionResult
from strawberry.types.graphql import OperationType

from edge import pipeline
from edge.exchange import exchange_of
from edge.graphiql import graphiql_response
from edge.middleware.response_cache import remember
from edge.operation import GRAPHQL_RESPONSE, JSON, Operation, response_media_type
from edge.services import EdgeServices, services_of
from edge.shared_operations import SharedOperations
from edge.subscriptions.multipart import MultipartStream
from edge.subscriptions.stream import open_subscription
from edge.subscriptions.websocket import Connection, GatewayTransportWS
from resolvers.context import RequestContext
from schema.error_codes import REQUEST_ERROR, ErrorCode, code_of

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?\s*$")


def without_suggestions(error: GraphQLError) -> GraphQLError:
    if "Did you mean" not in error.message:
        return error
    return GraphQLError(
        _SUGGESTION.sub("", error.message),
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=error.extensions,
    )


def is_request_error(result: ExecutionResult) -> bool:
    """Whether the operation never ran: no data, and only errors from before execution.

    Only errors whose code is a request error in the catalogue count:
    ``PersistedQueryNotFound`` stays a 200, which Apollo Client's persisted-queries
    link expects (a 400 would make it give up on APQ); a timeout is a 504.
    """
    errors = result.errors or []
    return (
        result.data is None
        and bool(errors)
        and all(error.path is None and code_of(error).status is REQUEST_ERROR for error in errors)
    )


_NO_GET = (
    "Subscriptions are not served over GET: send a POST accepting "
    "multipart/mixed;subscriptionSpec=1.0, or subscribe over a WebSocket (graphql-transport-ws)"
)
_NOT_STREAMED = (
    "A subscription streams its events: send it as a POST accepting "
    "multipart/mixed;subscriptionSpec=1.0, or over a WebSocket (graphql-transport-ws)"
)
# A WebSocket that never says connection_init is closed (4408) after this long.
CONNECTION_INIT_WAIT = timedelta(seconds=10)

# Package data (pyproject.toml), so that an installed gateway has it too; the tests run it
# with the queries of examples/queries/ (tests/examples/test_queries.py).
EXAMPLE_QUERY = Path(__file__).parent / "static" / "example_query.graphql"


@functools.cache
def _example_query() -> str:
    return EXAMPLE_QUERY.read_text(encoding="utf-8")


class _RequestAdapter(StarletteRequestAdapter):
    """Strawberry's adapter, keeping the Starlette request at hand for ``parse_http_body``."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.starlette_request = request


@dataclass
class _Sent(GraphQLRequestData):
    """What strawberry executes, with the operation it was made from: strawberry hands
    ``execute_single`` the one, the steps take the other."""

    operation: Operation = field(kw_only=True)


class GatewayGraphQL(GraphQL[RequestContext | Connection, None]):
    """Strawberry's ASGI view, with our context, orjson and a preloaded GraphiQL.

    ``production=True``: no GraphiQL (404), no introspection, no field suggestions;
    ``cors_origins``: the browser origins whose pages may open a WebSocket (besides the
    gateway's own: GraphiQL's). Settings' ``share_operations``: see step 3 above.
    """

    request_adapter_class = _RequestAdapter
    graphql_transport_ws_handler_class = GatewayTransportWS

    def __init__(
        self, schema: BaseSchema, *, production: bool = False, cors_origins: Sequence[str] = ()
    ) -> None:
        super().__init__(
            schema,
            graphql_ide=None if production else "graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL),
            connection_init_wait_timeout=CONNECTION_INIT_WAIT,
            max_subscriptions_per_connection=None,  # the gateway's caps (edge/subscriptions/)
            allowed_origins=cors_origins,
        )
        self.production = production
        self.shared_operations = SharedOperations()

    async def get_context(self, request: Any, response: Any) -> RequestContext | Connection:
        if isinstance(request, WebSocket):
            # A connection: each of its operations gets its own context (GatewayTransportWS).
            services = services_of(request.app)
            return Connection(
                services,
                services.rate_guard.address(request),
                request.headers.get("authorization"),
            )
        # The media type the answer will have, chosen from the Accept header now, and
        # kept on the sub-response, which create_response turns into the real one.
        response.media_type = response_media_type(request.headers.get("accept"))
        exchange = exchange_of(request.scope)
        context = self.new_context(exchange.services)
        context.charge = _charging(exchange.services, request)
        exchange.start(context, response)
        return context

    def new_context(self, services: EdgeServices) -> RequestContext:
        """The context of one operation (a request's, or a subscription's)."""
        return RequestContext(
            pool=services.pool,
            now=services.settings.clock(),
            fanout_deadline_s=services.settings.fanout_deadline_s,
            allow_introspection=not self.production,
            operator_view=not self.production,
            watch=services.watch,
            webhooks=services.webhooks,
        )

    def shown(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        """Errors as clients see them (each has its code already: the schema gave it, or
        the catalogue's error_result): in production, without "Did you mean ...?",
        which would spell the schema out to a prober."""
        return [without_suggestions(e) for e in errors] if self.production else errors

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        starlette_request = request.starlette_request
        operations = await exchange_of(starlette_request.scope).operations(starlette_request)
        if isinstance(operations, list):
            return [_sent(operation) for operation in operations]
        return _sent(operations)

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Any
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        media_type = getattr(sub_response, "media_type", None) or JSON
        response.headers["content-type"] = f"{media_type}; charset=utf-8"
        return response

    async def create_streaming_response(
        self,
        request: Any,
        stream: Callable[[], AsyncIterator[str]],
        sub_response: Any,
        headers: Mapping[str, str],
    ) -> Response:
        exchange = exchange_of(request.scope)
        return MultipartStream(
            stream,
            hub=exchange.services.subscriptions,
            lease=exchange.lease,
            closing=_MULTIPART.encode_complete(),
            authorization=exchange.authorization,
            status_code=sub_response.status_code or 200,
            # Never kept by a cache on the way, nor held back by a buffering proxy.
            headers={
                **sub_response.headers,
                **headers,
                "cache-control": "no-store",
                "x-accel-buffering": "no",
            },
        )

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET carrying a persisted query's hash (APQ) or a trusted document's id is
        # an operation, not a browser.
        params = request.query_params
        return super().should_render_graphql_ide(request) and (
            params.get("extensions") is None and params.get("documentId") is None
        )

    async def execute_operation(
        self,
        request: Any,
        request_adapter: Any,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Any,
        root_value: Any,
        sub_response: Any,
    ) -> Any:
        if isinstance(request_data, _Sent) and request_data.operation.streamed:
            return await self._open_stream(request, request_data.operation, context)
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    async def _open_stream(
        self, request: Any, operation: Operation, context: RequestContext
    ) -> ExecutionResult | AsyncGenerator[Any, None]:
        """A multipart subscription: the steps, its place under the caps, its stream."""
        if operation.method == "GET":
            raise HTTPException(405, _NO_GET)
        exchange = exchange_of(request.scope)
        services = exchange.services
        address = services.rate_guard.address(request)

        async def start(admitted: Operation) -> ExecutionResult | AsyncGenerator[Any, None]:
            opened = await open_subscription(
                services.subscriptions,
                self.schema,
                admitted,
                context,
                address=address,
                client=await services.partners.client_of(admitted.authorization),
                allowed=(OperationType.SUBSCRIPTION,),
            )
            if isinstance(opened, ExecutionResult):
                exchange.sub_response.status_code = ErrorCode.SUBSCRIPTION_LIMIT.http_status
                return opened
            exchange.lease = opened.lease
            return opened.stream

        return await pipeline.subscribe(operation, exchange, start)

    async def execute_single(
        self,
        request: Any,
        request_adapter: Any,
        sub_response: Any,
        context: Any,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        # Not a documented hook (see the module's docstring): kept to this one call.
        if not isinstance(request_data, _Sent):
            raise TypeError("execute_single runs what parse_http_body has read")
        method = request_adapter.method
        # As strawberry's own execute_single, but for subscriptions, which stream.
        allowed = OperationType.from_http(method) - {OperationType.SUBSCRIPTION}
        exchange = exchange_of(request.scope)

        async def execute(operation: Operation) -> ExecutionResult:
            if not exchange.services.settings.share_operations:
                return await execute_alone(operation)
            share = self.shared_operations
            return await share.run(operation, context, lambda: execute_alone(operation))

        async def execute_alone(operation: Operation) -> ExecutionResult:
            try:
                return await self.schema.execute(
                    operation.query,
                    root_value=root_value,
                    variable_values=operation.variables,
                    context_value=context,
                    operation_name=operation.operation_name,
                    allowed_operation_types=allowed,
                    operation_extensions=operation.extensions,
                )
            except CannotGetOperationTypeError as e:
                raise HTTPException(400, e.as_http_error_reason()) from e
            except InvalidOperationTypeError as e:
                if e.operation_type is OperationType.SUBSCRIPTION:
                    refusal = (405, _NO_GET) if method == "GET" else (400, _NOT_STREAMED)
                    raise HTTPException(*refusal) from e
                raise HTTPException(400, e.as_http_error_reason(method)) from e
            except MissingQueryError as e:
                raise HTTPException(400, "No GraphQL query found in the request") from e

        return await pipeline.run(request_data.operation, exchange, execute)

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        # WebSocket messages (HTTP requests are read by edge/operation.py): orjson
        # refuses what the stdlib chokes on, nesting past 1024 levels, lone surrogates.
        return orjson.loads(data)

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Every error has its code already (schema.GatewaySchema.execute and stream, or
        # the catalogue's error_result for the steps before execution).
        if result.errors:
            result.errors = self.shown(result.errors)
        data = await super().process_result(request, result)
        exchange = exchange_of(request.scope)
        exchange.note_errors(str(code_of(error)) for error in result.errors or ())
        if isinstance(exchange.read, Operation) and exchange.read.streamed and exchange.lease:
            return data  # an event of a stream: its status is sent, it is never cached
        sub_response = exchange.sub_response
        if (
            sub_response.media_type == GRAPHQL_RESPONSE
            and sub_response.status_code in (None, 200)  # a 401 or 504 stays one
            and is_request_error(result)
        ):
            # GraphQL over HTTP: a request that could not be executed at all (parse,
            # validation, variables) is a 400 without a data entry in this media type.
            sub_response.status_code = 400
            data.pop("data", None)
        await remember(exchange, request.method, result, data)
        return data

    async def render_graphql_ide(self, request: Any) -> Any:
        # Our own page over vendored assets (edge/graphiql.py): strawberry's loads a CDN.
        return graphiql_response(request.url.path, default_query=_example_query())


_MULTIPART = MultipartSubscriptionTransport()


def _sent(operation: Operation) -> _Sent:
    return _Sent(
        query=operation.query,
        variables=operation.variables,
        operation_name=operation.operation_name,
        extensions=operation.extensions,
        protocol="multipart-subscription" if operation.streamed else "http",
        operation=operation,
    )


def _charging(services: EdgeServices, request: Any) -> Callable[[float], Awaitable[str | None]]:
    """What a field costing more than a request (a slot checked at its source) charges
    the client's rate budget, as the request itself was charged (its key or its IP)."""
    authorization = request.headers.get("authorization")
    address = services.rate_guard.address(request)

    async def charge(cost: float) -> str | None:
        refusal = await services.rate_guard.refusal(authorization, address, cost)
        return refusal.message if refusal is not None else None

    return charge
