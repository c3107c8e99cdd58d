"""``GET /metrics``: the app's metrics in Prometheus' text format. Open in development;
in production only to an operator client's key (``clients create NAME --operator``):
401 without a valid key, 403 for a key that is not an operator's. With
``--metrics-port`` the metrics are served there only (``listener.py``): 404 here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import PlainTextResponse, Response

from edge.services import services_of

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = ["metrics_endpoint"]


async def metrics_endpoint(request: Request) -> Response:
    services = services_of(request.app)
    if services.settings.metrics_port is not None:
        return PlainTextResponse("metrics are served on their own port (--metrics-port)\n", 404)
    if services.settings.production:
        refused = await services.partners.operator_refusal(request.headers.get("authorization"))
        if refused is not None:
            return refused
    if services.metrics is None:
        return PlainTextResponse("metrics are off\n", 404)
    body = services.metrics.exposition()
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"cache-control": "no-store"})
