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
   admission, automatic persisted queries, then the execution within the deadline;
4. ``process_result``: the GraphQL-over-HTTP status, no suggestions in production,
   the answer stored in the response cache (``response_cache.remember``).

Every hook is one of strawberry's, but ``execute_single``: none other runs for each
operation of a request (a batch too) before strawberry refuses one without ``query``
(strawberry issue #1707), so ``pyproject.toml`` pins strawberry to one minor release.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cross_web import StarletteRequestAdapter
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.base import BaseSchema
from strawberry.types.execution import ExecutionResult

from edge import pipeline
from edge.exchange import exchange_of
from edge.graphiql import graphiql_response
from edge.middleware.response_cache import remember
from edge.operation import GRAPHQL_RESPONSE, JSON, Operation, response_media_type
from resolvers.context import RequestContext
from schema.error_codes import REQUEST_ERROR, code_of

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


class GatewayGraphQL(GraphQL[RequestContext, None]):
    """Strawberry's ASGI view, with our context, orjson and a preloaded GraphiQL.

    ``production=True``: no GraphiQL (404), no introspection, no field suggestions.
    """

    request_adapter_class = _RequestAdapter

    def __init__(self, schema: BaseSchema, *, production: bool = False) -> None:
        super().__init__(schema, graphql_ide=None if production else "graphiql")
        self.production = production

    async def get_context(self, request: Any, response: Any) -> RequestContext:
        # The media type the answer will have, chosen from the Accept header now, and
        # kept on the sub-response, which create_response turns into the real one.
        response.media_type = response_media_type(request.headers.get("accept"))
        exchange = exchange_of(request.scope)
        services = exchange.services
        context = RequestContext(
            pool=services.pool,
            now=services.settings.clock(),
            fanout_deadline_s=services.settings.fanout_deadline_s,
            allow_introspection=not self.production,
            operator_view=not self.production,
            watch=services.watch,
        )
        exchange.start(context, response)
        return context

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

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET carrying a persisted query's hash (APQ) or a trusted document's id is
        # an operation, not a browser.
        params = request.query_params
        return super().should_render_graphql_ide(request) and (
            params.get("extensions") is None and params.get("documentId") is None
        )

    async def execute_single(
        self,
        request: Any,
        request_adapter: Any,
        sub_response: Any,
        context: RequestContext,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        # Not a documented hook (see the module's docstring): kept to this one call.
        if not isinstance(request_data, _Sent):
            raise TypeError("execute_single runs what parse_http_body has read")
        execute_single = super().execute_single

        async def execute(operation: Operation) -> ExecutionResult:
            return await execute_single(
                request, request_adapter, sub_response, context, root_value, _sent(operation)
            )

        return await pipeline.run(request_data.operation, exchange_of(request.scope), execute)

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        # WebSocket messages (HTTP requests are read by edge/operation.py): orjson
        # refuses what the stdlib chokes on, nesting past 1024 levels, lone surrogates.
        return orjson.loads(data)

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Every error has its code already (schema.GatewaySchema.execute, or the
        # catalogue's error_result for the steps before execution).
        if result.errors and self.production:
            # "Did you mean ...?" would spell the schema out to a prober.
            result.errors = [without_suggestions(e) for e in result.errors]
        data = await super().process_result(request, result)
        exchange = exchange_of(request.scope)
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


def _sent(operation: Operation) -> _Sent:
    # protocol "http": the view enables no HTTP streaming transport (multipart
    # subscriptions, SSE); one that does must pass strawberry's protocol on here.
    return _Sent(
        query=operation.query,
        variables=operation.variables,
        operation_name=operation.operation_name,
        extensions=operation.extensions,
        operation=operation,
    )
