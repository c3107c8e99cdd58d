"""``GET /status`` (HTML, or JSON when the client asks only for ``application/json``)
and ``GET /status.json``: the public status page and its twin for monitoring tools.

``?view=operator`` adds what is for operators only (problem messages, samples and
diagnostics, how each source was counted, the registry's changes): open in
development, in production only to an operator client's key, as ``/metrics``
(401 without a valid key, 403 for a key that is not an operator's). ``?lang=fr|en``
chooses the page's language, else ``Accept-Language``, else French.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.responses import HTMLResponse, JSONResponse, Response

from edge.services import services_of
from edge.status.page import CSP, render_page
from edge.status.snapshot import status_snapshot
from edge.status.texts import choose_language

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = ["status_json", "status_page"]

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Vary": "Accept, Accept-Language, Authorization",
}


async def status_page(request: Request) -> Response:
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return await status_json(request)
    operator = await _operator_view(request)
    if isinstance(operator, Response):
        return operator
    snapshot = _snapshot(request, operator)
    lang = choose_language(request.query_params.get("lang"), request.headers.get("accept-language"))
    html = render_page(snapshot, lang, operator_link="&view=operator" if operator else "")
    headers = {**_HEADERS, "Content-Security-Policy": CSP, "Content-Language": lang}
    return HTMLResponse(html, headers=headers)


async def status_json(request: Request) -> Response:
    operator = await _operator_view(request)
    if isinstance(operator, Response):
        return operator
    return JSONResponse(_snapshot(request, operator), headers=_HEADERS)


def _snapshot(request: Request, operator: bool) -> dict[str, object]:
    services = services_of(request.app)
    return status_snapshot(
        services.pool, services.coverage, operator=operator, now=datetime.now(UTC)
    )


async def _operator_view(request: Request) -> bool | Response:
    """Whether the operator view was asked for and may be shown, or the refusal."""
    if request.query_params.get("view") != "operator":
        return False
    services = services_of(request.app)
    if not services.settings.production:
        return True
    refused = await services.partners.operator_refusal(request.headers.get("authorization"))
    return True if refused is None else refused
