"""Strawberry's ASGI view, made ours: our request context, orjson, stable error codes,
and GraphiQL preloaded with the example query."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.base import BaseSchema
from strawberry.types.execution import ExecutionResult
from strawberry.types.unset import UNSET

from edge.graphiql import graphiql_response
from edge.persisted import NOT_FOUND
from edge.response_cache import Hit, ResponseCache, etag_of
from resolvers.context import RequestContext
from schema import with_code
from sources.pool import answer_ttl_s

logger = logging.getLogger("passerelle.http")

JSON = "application/json"
OPERATION_TIMEOUT = "OPERATION_TIMEOUT"
# A shared cache must keep answers apart by media type, and never answer a request
# with a key (admission and its own limits must run) from an anonymous copy.
VARY = "Accept, Authorization"
GRAPHQL_RESPONSE = "application/graphql-response+json"


def response_media_type(accept: str | None) -> str:
    """``application/graphql-response+json`` when the client prefers it (or accepts it
    and not ``application/json``), else ``application/json`` (GraphQL over HTTP)."""
    if not accept:
        return JSON
    weights: dict[str, float] = {}
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        weights[kind.lower()] = max(q, weights.get(kind.lower(), 0.0))
    graphql_q = weights.get(GRAPHQL_RESPONSE, 0.0)
    json_q = weights.get(JSON, 0.0)
    return GRAPHQL_RESPONSE if graphql_q > 0 and graphql_q >= json_q else JSON


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


async def _payload(request: Request) -> dict[str, Any]:
    """What a request asks: its query parameters (GET) or its JSON body (POST)."""
    if request.method == "GET":
        return dict(request.query_params)
    if "json" not in request.headers.get("content-type", ""):
        return {}
    try:
        payload = orjson.loads(await request.body())  # Starlette keeps the body for the view
    except orjson.JSONDecodeError:
        return {}
    return payload if isinstance(payload, dict) else {}


def hit_response(request: Request, hit: Hit) -> Response:
    media_type = response_media_type(request.headers.get("accept"))
    headers = {"content-type": f"{media_type}; charset=utf-8", "x-cache": "HIT"}
    if request.method == "GET":
        headers["cache-control"] = f"public, max-age={hit.max_age_s}"
        headers["etag"] = hit.etag
        headers["vary"] = VARY
        if hit.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
    return Response(hit.body, headers=headers)


def is_request_error(result: ExecutionResult) -> bool:
    """Whether the operation never ran: no data, and only errors from before execution.

    ``PersistedQueryNotFound`` is not one: it stays a 200, which Apollo Client's
    persisted-queries link expects (a 400 would make it give up on APQ); nor is a
    timeout (a 504).
    """
    errors = result.errors or []
    return (
        result.data is None
        and bool(errors)
        and all(error.path is None for error in errors)
        and not any(
            (error.extensions or {}).get("code") in (NOT_FOUND, OPERATION_TIMEOUT)
            for error in errors
        )
    )


# Package data (pyproject.toml), so that an installed gateway has it too; the tests run it
# with the queries of examples/queries/ (tests/examples/test_queries.py).
EXAMPLE_QUERY = Path(__file__).parent / "static" / "example_query.graphql"


@functools.cache
def _example_query() -> str:
    return EXAMPLE_QUERY.read_text(encoding="utf-8")


class GatewayGraphQL(GraphQL[RequestContext, None]):
    """Strawberry's ASGI view, with our context, orjson and a preloaded GraphiQL.

    ``production=True``: no GraphiQL (404), no introspection, no field suggestions.
    """

    def __init__(self, schema: BaseSchema, *, production: bool = False) -> None:
        super().__init__(schema, graphql_ide=None if production else "graphiql")
        self.production = production

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Rate limits first (edge/rate_limit.py), then the response cache
        (edge/response_cache.py), then strawberry."""
        if isinstance(request, Request):
            refusal = await request.app.state.rate_guard.check(request)
            if refusal is not None:
                return refusal
        cache: ResponseCache | None = getattr(request.app.state, "response_cache", None)
        # Already looked up (and missed) by the fast path in front (edge/cached_hits.py)?
        if cache is not None and getattr(request.state, "response_cache_key", None) is None:
            key = cache.key(
                await _payload(request),
                request.headers.get("authorization"),
                request.app.state.pool.fingerprint,
            )
            if key is not None:
                hit = await cache.get(key)
                if hit is not None:
                    return hit_response(request, hit)
                request.state.response_cache_key = key
        return await super().run(request, context, root_value)

    async def get_context(self, request: Any, response: Any) -> RequestContext:
        # The media type the answer will have, chosen from the Accept header now, and
        # kept on the sub-response, which create_response turns into the real one.
        response.media_type = response_media_type(request.headers.get("accept"))
        request.state.sub_response = response
        settings = request.app.state.settings
        context = RequestContext(
            pool=request.app.state.pool,
            now=settings.clock(),
            fanout_deadline_s=settings.fanout_deadline_s,
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
        # Partner keys and trusted documents first (edge/partners.py), then automatic
        # persisted queries: a hash instead of the query (edge/persisted.py).
        admitted = await request.app.state.partners.admit(
            request, request_data, context, sub_response
        )
        if isinstance(admitted, ExecutionResult):
            return admitted
        resolved = await request.app.state.persisted.resolve(admitted)
        if isinstance(resolved, ExecutionResult):
            return resolved
        limit = request.app.state.settings.operation_timeout_s
        try:
            # The fan-out deadline (3 s) normally answers long before this one.
            async with asyncio.timeout(limit):
                return await super().execute_single(
                    request, request_adapter, sub_response, context, root_value, resolved
                )
        except TimeoutError:
            logger.warning("operation cancelled after %.0f s", limit)
            sub_response.status_code = 504
            message = f"The operation took longer than {limit:g} s and was cancelled"
            error = GraphQLError(message, extensions={"code": OPERATION_TIMEOUT})
            return ExecutionResult(data=None, errors=[error])

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        # orjson refuses what the stdlib chokes on with a 500: nesting deeper
        # than 1024 levels, lone surrogates. Both become a 400 "not JSON".
        return orjson.loads(data)

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        if result.errors:
            result.errors = [with_code(e) for e in result.errors]
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
        ttl = 0.0
        if key is not None and not result.errors and isinstance(context, RequestContext):
            sources = {s.id: s for s in context.federation.sources}
            ttls = {
                sid: answer_ttl_s(sources[sid]) - (use.age_s if use.from_cache else 0.0)
                for sid, use in context.federation.asked.items()
                if sid in sources
            }
            cache: ResponseCache = request.app.state.response_cache
            ttl = await cache.put(key, data.get("data"), dict(data.get("extensions") or {}), ttls)
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
