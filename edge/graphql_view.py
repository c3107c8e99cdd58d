"""Strawberry's ASGI view, made ours: one read of the request, the edge's steps
around strawberry's execution, stable error codes, GraphiQL preloaded with the
example query.

A request goes through these steps, in this order (each one a service of
:class:`~edge.services.EdgeServices`, each taking the one
:class:`~edge.operation.Operation` read from the request):

1. rate limits (``run``; edge/middleware/rate_limit.py), before the body is read;
2. the response cache (``run``; edge/middleware/response_cache.py, edge/middleware/cached_hits.py);
3. strawberry reads the operation (``parse_http_body``: ours, read once);
4. partner admission, then automatic persisted queries, then the deadline
   (``execute_single``; edge/documents/partners.py, edge/documents/apq.py);
5. error codes, the GraphQL-over-HTTP status, and storing the response in the cache
   (``process_result``).

``execute_single`` is not one of strawberry's documented hooks: it is the only
place where each operation of a request (a batch too) can be answered with an
error before strawberry refuses one without ``query`` (strawberry issue #1707),
which is why ``pyproject.toml`` pins strawberry to one minor release.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from pathlib import Path
from typing import Any

import orjson
from cross_web import HTTPException, StarletteRequestAdapter
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.base import BaseSchema
from strawberry.types.execution import ExecutionResult
from strawberry.types.unset import UNSET

from edge.graphiql import graphiql_response
from edge.middleware.cached_hits import HitResponse
from edge.middleware.response_cache import etag_of
from edge.operation import (
    GRAPHQL_RESPONSE,
    JSON,
    VARY,
    Operation,
    read_operations,
    response_media_type,
)
from edge.services import services_of
from resolvers.context import RequestContext
from schema.error_codes import REQUEST_ERROR, ErrorCode, code_of, error_result

logger = logging.getLogger("passerelle.http")

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


class GatewayGraphQL(GraphQL[RequestContext, None]):
    """Strawberry's ASGI view, with our context, orjson and a preloaded GraphiQL.

    ``production=True``: no GraphiQL (404), no introspection, no field suggestions.
    """

    request_adapter_class = _RequestAdapter

    def __init__(self, schema: BaseSchema, *, production: bool = False) -> None:
        super().__init__(schema, graphql_ide=None if production else "graphiql")
        self.production = production
        batching = schema.config.batching_config
        self._max_batch = batching["max_operations"] if batching is not None else None

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Rate limits first, then the response cache, then strawberry."""
        if isinstance(request, Request):
            services = services_of(request.app)
            refusal = await services.rate_guard.check(request)
            if refusal is not None:
                return refusal
            cache = services.response_cache
            # Already looked up (and missed) by the fast path in front
            # (edge/middleware/cached_hits.py)?
            if cache is not None and getattr(request.state, "response_cache_key", None) is None:
                try:
                    operation = await self._operations(request)
                except HTTPException:
                    operation = None  # strawberry answers it (a 400) below
                if isinstance(operation, Operation):
                    key = cache.key(operation, services.pool.fingerprint)
                    if key is not None:
                        hit = await cache.get(key)
                        if hit is not None:
                            return HitResponse(
                                hit,
                                method=request.method,
                                accept=request.headers.get("accept", ""),
                                if_none_match=request.headers.get("if-none-match", ""),
                            )
                        request.state.response_cache_key = key
        return await super().run(request, context, root_value)

    async def _operations(self, request: Request) -> Operation | list[Operation]:
        """What the request asks, read once (kept on the request; the fast path may
        have read it already)."""
        state = request.state
        read = getattr(state, "operation", None)
        if read is None:
            try:
                read = read_operations(
                    request.method,
                    request.query_params if request.method == "GET" else await request.body(),
                    authorization=request.headers.get("authorization"),
                    content_type=request.headers.get("content-type", ""),
                    max_batch=self._max_batch,
                )
            except HTTPException as exc:
                read = exc
            state.operation = read
        if isinstance(read, HTTPException):
            raise read
        return read

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        operations = await self._operations(request.starlette_request)
        batch = operations if isinstance(operations, list) else [operations]
        # execute_single gets strawberry's request data: it finds its operation here.
        sent = [(operation.request_data(), operation) for operation in batch]
        request.starlette_request.state.sent = sent
        data = [request_data for request_data, _ in sent]
        return data if isinstance(operations, list) else data[0]

    async def get_context(self, request: Any, response: Any) -> RequestContext:
        # The media type the answer will have, chosen from the Accept header now, and
        # kept on the sub-response, which create_response turns into the real one.
        response.media_type = response_media_type(request.headers.get("accept"))
        request.state.sub_response = response
        services = services_of(request.app)
        context = RequestContext(
            pool=services.pool,
            now=services.settings.clock(),
            fanout_deadline_s=services.settings.fanout_deadline_s,
            allow_introspection=not self.production,
        )
        request.state.context = context
        return context

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
        operation = next(o for sent, o in request.state.sent if sent is request_data)
        services = services_of(request.app)
        # Partner keys and trusted documents first, then automatic persisted queries.
        admitted = await services.partners.admit(operation, context, sub_response)
        if isinstance(admitted, ExecutionResult):
            return admitted
        resolved = await services.persisted.resolve(admitted)
        if isinstance(resolved, ExecutionResult):
            return resolved
        limit = services.settings.operation_timeout_s
        try:
            # The fan-out deadline (3 s) normally answers long before this one.
            async with asyncio.timeout(limit):
                return await super().execute_single(
                    request,
                    request_adapter,
                    sub_response,
                    context,
                    root_value,
                    resolved.request_data(),
                )
        except TimeoutError:
            logger.warning("operation cancelled after %.0f s", limit)
            sub_response.status_code = ErrorCode.OPERATION_TIMEOUT.http_status
            message = f"The operation took longer than {limit:g} s and was cancelled"
            return error_result(ErrorCode.OPERATION_TIMEOUT, message)

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        # WebSocket messages (HTTP requests are read by edge/operation.py): orjson
        # refuses what the stdlib chokes on, nesting past 1024 levels, lone surrogates.
        return orjson.loads(data)

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Every error has its code already (schema.GatewaySchema.execute, or the
        # catalogue's error_result for the steps above).
        if result.errors:
            if self.production:
                # "Did you mean ...?" would spell the schema out to a prober.
                result.errors = [without_suggestions(e) for e in result.errors]
        data = await super().process_result(request, result)
        sub_response = getattr(request.state, "sub_response", None)
        if (
            sub_response is not None
            and sub_response.media_type == GRAPHQL_RESPONSE
            and sub_response.status_code in (None, 200)  # a 401 or 504 stays one
            and is_request_error(result)
        ):
            # GraphQL over HTTP: a request that could not be executed at all (parse,
            # validation, variables) is a 400 without a data entry in this media type.
            sub_response.status_code = 400
            data.pop("data", None)
        await self._cache_response(request, result, data)
        return data

    async def _cache_response(
        self, request: Any, result: ExecutionResult, data: GraphQLHTTPResponse
    ) -> None:
        """Store a cacheable response, and say how caches may keep a GET one."""
        key = getattr(request.state, "response_cache_key", None)
        context = getattr(request.state, "context", None)
        sub_response = getattr(request.state, "sub_response", None)
        cache = services_of(request.app).response_cache
        ttl = 0.0
        if key is not None and cache is not None and not result.errors:
            if isinstance(context, RequestContext):
                ttl = await cache.store(key, context, data)
        if key is not None and sub_response is not None:
            sub_response.headers["x-cache"] = "MISS" if ttl > 0 else "BYPASS"
        if sub_response is not None and request.method == "GET":
            if ttl > 0:
                sub_response.headers["cache-control"] = f"public, max-age={int(ttl)}"
                sub_response.headers["etag"] = etag_of(data.get("data"))
                sub_response.headers["vary"] = VARY
            else:
                sub_response.headers["cache-control"] = "no-store"

    async def render_graphql_ide(self, request: Any) -> Any:
        # Our own page over vendored assets (edge/graphiql.py): strawberry's loads a CDN.
        return graphiql_response(request.url.path, default_query=_example_query())
