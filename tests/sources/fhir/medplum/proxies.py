"""An aiohttp proxy in front of the engine that makes it behave like a more lenient server.

    app = lenient_proxy(engine_url, Leniency(drop_include=True, reorder=True))
    async with serve(app) as proxy: ...   # the FHIR base is proxy.make_url("/fhir")

Each switch is a way real servers differ from the engine: no ``Bundle.link``, ``_include``
ignored, parameters the server does not know ignored (not answered with an empty
Bundle), another sort order, or only ever a first page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

# What a small server supports; with ``ignore_unknown`` every other parameter is dropped,
# as the FHIR default (lenient handling) has it. Chains (``schedule.actor``) and ``near``
# are among the dropped.
SUPPORTED = {
    "Slot": {"status", "start", "schedule", "appointment-type"},
    "Schedule": {"actor"},
    "Location": {"identifier", "name", "address-postalcode", "address-state"},
    "Practitioner": {"identifier"},
    "PractitionerRole": {"location", "practitioner"},
}
RESULT_PARAMETERS = {"_id", "_count", "_offset", "_sort", "_total", "_include", "_elements"}


@dataclass
class Leniency:
    drop_links: bool = False  # no Bundle.link at all
    drop_include: bool = False  # _include ignored: only the searched type comes back
    ignore_unknown: bool = False  # parameters outside SUPPORTED are ignored
    reorder: bool = False  # _sort ignored, each page in another order
    first_page_only: int | None = None  # _count capped to this, _offset ignored, no links
    # appointment-type:missing: "refuse" (400, as many servers do), "ignore" (dropped)
    missing: str | None = None
    requests: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)


def lenient_proxy(engine_base: str, leniency: Leniency) -> web.Application:
    """A proxy serving ``/fhir/...`` from ``engine_base`` (the engine's FHIR base URL)."""

    async def handle(request: web.Request) -> web.Response:
        path = request.match_info["path"]
        resource_type = path.split("/", 1)[0]
        params = list(request.query.items())
        if request.method == "POST":
            params += [(k, v) for k, v in (await request.post()).items() if isinstance(v, str)]
        leniency.requests.append((path, params))
        if leniency.missing == "refuse" and any(k.endswith(":missing") for k, _ in params):
            issue = {"severity": "error", "code": "not-supported", "diagnostics": "no :missing"}
            outcome = {"resourceType": "OperationOutcome", "issue": [issue]}
            return web.json_response(outcome, status=400, content_type="application/fhir+json")
        params = _rewrite(params, resource_type, leniency)
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                f"{engine_base}/{path}",
                data=params if request.method == "POST" else None,
                params=params if request.method == "GET" else None,
            ) as upstream,
        ):
            body = await upstream.json(content_type=None)
            status = upstream.status
        if body.get("resourceType") == "Bundle":
            body = _reshape(body, resource_type, leniency)
        return web.json_response(body, status=status, content_type="application/fhir+json")

    app = web.Application()
    app.router.add_route("*", "/fhir/{path:.+}", handle)
    return app


def _rewrite(
    params: list[tuple[str, str]], resource_type: str, leniency: Leniency
) -> list[tuple[str, str]]:
    out = []
    for name, value in params:
        base = name.split(":", 1)[0]
        if leniency.drop_include and base in ("_include", "_revinclude"):
            continue
        if leniency.missing == "ignore" and name.endswith(":missing"):
            continue
        if leniency.ignore_unknown and not (
            base in SUPPORTED.get(resource_type, ()) or base in RESULT_PARAMETERS
        ):
            continue
        if leniency.reorder and base == "_sort":
            continue
        if leniency.first_page_only is not None and base == "_offset":
            continue
        if leniency.first_page_only is not None and base == "_count":
            value = str(min(int(value), leniency.first_page_only))
        out.append((name, value))
    if leniency.first_page_only is not None and not any(n == "_count" for n, _ in out):
        out.append(("_count", str(leniency.first_page_only)))
    return out


def _reshape(bundle: dict[str, Any], resource_type: str, leniency: Leniency) -> dict[str, Any]:
    bundle = dict(bundle)
    entries = list(bundle.get("entry", []))
    if leniency.drop_include:
        entries = [e for e in entries if e["resource"]["resourceType"] == resource_type]
    if leniency.reorder:
        entries.reverse()
    bundle["entry"] = entries
    if leniency.drop_links or leniency.first_page_only is not None:
        bundle.pop("link", None)
    return bundle
