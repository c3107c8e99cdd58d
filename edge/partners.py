"""Partner clients: API keys, trusted documents, persisted-only access.

``Partners.admit`` decides, before anything else, what a request may run.
"""

from __future__ import annotations

from typing import Any

from strawberry.http import GraphQLRequestData
from strawberry.types.execution import ExecutionResult

from resolvers.context import RequestContext


class Partners:
    async def admit(
        self,
        request: Any,
        request_data: GraphQLRequestData,
        context: RequestContext,
        sub_response: Any,
    ) -> GraphQLRequestData | ExecutionResult:
        """The request to run (its document resolved), or the error to answer with."""
        return request_data

    async def aclose(self) -> None:
        """Release what the partner registry holds."""
