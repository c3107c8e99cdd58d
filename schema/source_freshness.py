"""``SourceFreshness``: ``extensions.sources`` says how fresh each source's part of a response is.

For every source the request asked, in the order first asked:
``{"id", "status", "fromCache", "ageSeconds"}`` — ``status`` the ``SourceStatus``
value as seen by this request (a source that failed in it is at least
``DEGRADED``), ``fromCache`` whether some of its answers came from the
gateway's cache, ``ageSeconds`` how old its oldest answer was (a cached
answer: since it was fetched; a bulk feed's copy: since the feed's own time; a
live call: 0). Front-ends can then say "availability as of 2 minutes ago".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from strawberry.extensions import SchemaExtension

from resolvers.context import RequestContext
from sources.records import SourceStatus


class SourceFreshness(SchemaExtension):
    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        if not isinstance(context, RequestContext) or not context.federation.asked:
            return {}
        failed = {r.error.source_id for r in context.reported}
        now = datetime.now(UTC)
        views = {v.id: v for v in context.views_now()}
        sources = []
        for source_id, use in context.federation.asked.items():
            view = views.get(source_id)
            if view is None:
                continue
            status = view.status
            if source_id in failed and status is SourceStatus.UP:
                status = SourceStatus.DEGRADED
            age = (now - view.data_as_of).total_seconds() if view.data_as_of else use.age_s
            sources.append(
                {
                    "id": source_id,
                    "status": status.value,
                    "fromCache": use.from_cache,
                    "ageSeconds": round(max(0.0, age), 1),
                }
            )
        return {"sources": sources}
