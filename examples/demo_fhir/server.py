"""A demo FHIR R4 scheduling server for the clinics the demo world lists on ``"fhir"``.

    python -m examples.demo_fhir --port 8101 --scale 0.01 [--host 127.0.0.1] [--churn RATE]

Base URL ``http://HOST:PORT/fhir``; answers are ``application/fhir+json``. It serves
``Location`` (a clinic), ``Practitioner``, ``PractitionerRole`` (one per physician and
clinic), ``Schedule`` (one per clinic and physician, ``actor`` = [Location,
PractitionerRole]) and ``Slot``, encoded as ``sources.fhir.resources`` describes. Reads are
``GET /fhir/{type}/{id}``; searches are ``GET /fhir/{type}?...`` or
``POST /fhir/{type}/_search`` with a form body:

- ``Location``: ``_id``, ``identifier``, ``near=lat|lon|dist|unit`` (km, m, mi),
  ``address-postalcode``, ``address-state``, ``address-city`` (starts with), ``name`` and
  ``name:contains`` (both contain; case- and accent-insensitive).
- ``Practitioner``: ``_id``, ``identifier``.
- ``PractitionerRole``: ``_id``, ``location``, ``practitioner``.
- ``Schedule``: ``_id``, ``actor``.
- ``Slot``: ``status``, ``start`` (ge/gt/le/lt/eq, repeatable), ``appointment-type`` (and
  ``appointment-type:missing``: every slot here has a type),
  ``schedule``, ``schedule.actor`` (also ``:Location``/``:PractitionerRole``), ``_sort=start``.
- Everywhere: ``_count`` (at most 1000), ``_total``, ``_include`` and ``_include:iterate``
  with ``Slot:schedule``, ``Schedule:actor``, ``PractitionerRole:practitioner`` and
  ``PractitionerRole:location``. Commas OR, repeated parameters AND.

Like a real server, a Slot search without ``status`` returns busy slots too. Pages are
linked by ``next`` URLs carrying an opaque ``_page_token``. Unknown parameters, bad
values and modifiers it does not know are a 400 ``OperationOutcome``.
``GET /fhir/metadata`` is a minimal CapabilityStatement; ``GET /_stats`` counts requests.

This module is the HTTP face; the index and search engine is ``examples.demo_fhir.index``,
the parameters it accepts ``examples.demo_fhir.params`` and the resources it writes
``examples.demo_fhir.resources``.
"""

from __future__ import annotations

import argparse
import gc
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from examples import request_stats
from examples.churn import CHURN_HELP, SERVED, Churn, churn_argument, churning
from examples.demo_fhir.index import FhirIndex
from examples.demo_fhir.params import INCLUDES, PARAMS, RESOURCE_TYPES, BadRequest, Params
from examples.faults import FAULTS_HELP, Faults, faults_argument
from examples.faults import install as install_faults
from examples.world import World

FHIR_JSON = "application/fhir+json"


def build_app(world: World, *, churn: Churn | None = None) -> web.Application:
    """The aiohttp application serving ``world``'s FHIR clinics under ``/fhir``; with a
    ``churn``, its free slots change as time passes (``examples.churn``)."""
    index = FhirIndex(world)
    # Next links carry the whole search; long reference lists need more than 8 KiB lines.
    app = web.Application(
        handler_args={"max_line_size": 65536, "max_field_size": 65536},
    )

    def base_of(request: web.Request) -> str:
        return f"{request.url.origin()}/fhir"

    async def search(request: web.Request) -> web.Response:
        rtype = request.match_info["type"]
        if rtype not in RESOURCE_TYPES:
            return _outcome(404, "not-supported", f"unknown resource type {rtype!r}")
        params: Params = list(request.query.items())
        if request.method == "POST":
            form = await request.post()
            params += [(k, v) for k, v in form.items() if isinstance(v, str)]
        base = base_of(request)
        self_url = f"{base}/{rtype}?{urlencode(params)}"
        try:
            return _fhir(index.search(rtype, params, base, self_url))
        except BadRequest as exc:
            return _outcome(400, "invalid", str(exc))

    async def read(request: web.Request) -> web.Response:
        rtype, rid = request.match_info["type"], request.match_info["id"]
        if rtype not in RESOURCE_TYPES:
            return _outcome(404, "not-supported", f"unknown resource type {rtype!r}")
        try:
            return _fhir(index.render(rtype, rid))
        except (KeyError, StopIteration):
            return _outcome(404, "not-found", f"{rtype}/{rid} does not exist")

    async def metadata(request: web.Request) -> web.Response:
        return _fhir(_capability_statement())

    app[SERVED] = index
    if churn is not None:
        clinic_ids = sorted(index.clinics)

        def step(opening: bool) -> None:
            slot = churn.pick(clinic_ids, index.slots_of, opening=opening)
            if slot is not None:
                index.set_free(slot, opening)

        app.cleanup_ctx.append(churning(churn, step))
    request_stats.install(app)
    app.router.add_get("/fhir/metadata", metadata)
    app.router.add_post("/fhir/{type}/_search", search)
    app.router.add_get("/fhir/{type}", search)
    app.router.add_get("/fhir/{type}/{id}", read)
    return app


def _fhir(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=FHIR_JSON)


def _outcome(status: int, code: str, message: str) -> web.Response:
    issue = {"severity": "error", "code": code, "diagnostics": message}
    return _fhir({"resourceType": "OperationOutcome", "issue": [issue]}, status)


def _capability_statement() -> dict[str, Any]:
    resources = []
    for rtype in RESOURCE_TYPES:
        names = sorted(p for p in PARAMS[rtype] if not p.startswith("_") and ":" not in p)
        resources.append(
            {
                "type": rtype,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": [
                    {"name": n, "type": "special" if n == "near" else "string"} for n in names
                ],
                "searchInclude": sorted(n for n, (src, _) in INCLUDES.items() if src == rtype),
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-01",
        "kind": "instance",
        "software": {"name": "Passerelle FHIR demo"},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{"mode": "server", "resource": resources}],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m examples.demo_fhir", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--faults", type=faults_argument, default=Faults(), help=FAULTS_HELP)
    parser.add_argument("--churn", type=churn_argument, default=0.0, help=CHURN_HELP)
    args = parser.parse_args(argv)
    churn = Churn(args.churn, seed=args.seed, system="fhir") if args.churn else None
    app = build_app(World(scale=args.scale, seed=args.seed), churn=churn)
    install_faults(app, args.faults)
    # The index is built once and lives forever: keep the collector from walking it.
    gc.collect()
    gc.freeze()
    print(f"FHIR demo on http://{args.host}:{args.port}/fhir", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None)  # exits cleanly on SIGTERM
