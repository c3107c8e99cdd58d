"""Strawberry's ASGI view, made ours: our request context, orjson, stable error codes,
and GraphiQL preloaded with the example query."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types.execution import ExecutionResult

from resolvers.context import RequestContext
from schema import with_code

EXAMPLE_QUERY = Path(__file__).parents[1] / "examples" / "queries" / "slots_near_me.graphql"


class GatewayGraphQL(GraphQL[RequestContext, None]):
    """Strawberry's ASGI view, with our context, orjson and a preloaded GraphiQL."""

    async def get_context(self, request: Any, response: Any) -> RequestContext:
        return RequestContext(
            pool=request.app.state.pool,
            request=request,
            fanout_deadline_s=request.app.state.settings.fanout_deadline_s,
        )

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        # orjson refuses what the stdlib chokes on with a 500: nesting deeper
        # than 1024 levels, lone surrogates. Both become a 400 "not JSON".
        return orjson.loads(data)

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        if result.errors:
            result.errors = [with_code(e) for e in result.errors]
        return await super().process_result(request, result)

    async def render_graphql_ide(self, request: Any) -> Any:
        response = await super().render_graphql_ide(request)
        example = EXAMPLE_QUERY.read_text(encoding="utf-8") if EXAMPLE_QUERY.exists() else ""
        html = (
            bytes(response.body)
            .decode()
            .replace(
                "defaultEditorToolsVisibility: true,",
                "defaultEditorToolsVisibility: true,\n"
                f"          defaultQuery: {json.dumps(example)},",
            )
        )
        return type(response)(html, status_code=response.status_code)
