"""A demo proprietary booking API (REST/JSON) serving ``World.clinics_for("rest")``.

Run it::

    python -m examples.demo_rest --port 8102 --scale 0.01 --api-key KEY [--host 127.0.0.1]
        [--churn RATE]

The key may come from the environment variable ``PASSERELLE_DEMO_REST_KEY``
instead of ``--api-key``. The server stops cleanly on SIGINT/SIGTERM.

The API is deliberately unlike FHIR: French field names, local times without
offset, page/limit paging, numeric ids, an API key header.

Conventions
-----------
- Base path ``/api/v1``. Every ``/api/`` request needs the header
  ``X-Cle-Api: <key>``; a missing or wrong key gets ``401``.
- Times are **each clinic's local wall times without offset**, to the second:
  ``"2026-11-26T08:00:00"``. Most clinics keep America/Montreal; those of the
  Îles-de-la-Madeleine America/Halifax, those of the Basse-Côte-Nord
  America/Blanc-Sablon (the API does not say which: a client knows from where the
  clinic is). ``debut_min``/``debut_max`` are compared with each slot's local time,
  read in its clinic's zone. A parameter carrying an offset is refused (``400``). In
  the repeated hour of the autumn change a local time means its first occurrence
  (daylight time).
- Lists in parameters are comma-separated: ``cliniques=1012,1040``. Different
  parameters combine with AND, the values of one list with OR. Unknown
  parameters are ignored.
- Clinic and physician ids are integers; slot ids are opaque strings.
- Regions are the official codes of Quebec's administrative regions,
  ``"01"`` (Bas-Saint-Laurent) to ``"17"`` (Centre-du-Québec), in the order
  of ``sources.records.Region``: 01 Bas-Saint-Laurent, 02 Saguenay-Lac-Saint-Jean,
  03 Capitale-Nationale, 04 Mauricie, 05 Estrie, 06 Montréal, 07 Outaouais,
  08 Abitibi-Témiscamingue, 09 Côte-Nord, 10 Nord-du-Québec,
  11 Gaspésie-Îles-de-la-Madeleine, 12 Chaudière-Appalaches, 13 Laval,
  14 Lanaudière, 15 Laurentides, 16 Montérégie, 17 Centre-du-Québec.
- Geographic filter: ``lat``, ``lng`` (degrees) and ``rayon_km`` (0 < r <= 1000)
  come together or not at all; distance is great-circle to the clinic.

Paging
------
``page`` starts at 1 (default 1); ``limite`` is 1 to 500 (default 100; more is
a ``400``). Every list answer is the envelope::

    {"resultats": [...], "page": 2, "pages": 7, "limite": 100, "total": 642}

``pages`` is ``ceil(total / limite)`` (0 when nothing matches); a page past the
last one returns an empty ``resultats``.

Endpoints
---------
``GET /api/v1/cliniques`` -- clinics, ordered by ``id``.
    Filters: ``ids`` (ints), ``no_permis`` (permits), ``lat``+``lng``+``rayon_km``,
    ``region`` (codes), ``nom`` (contains; case and accents ignored),
    ``code_postal`` (codes or prefixes such as ``H2X``; spaces and case ignored).
    Item::

        {"id": 1012, "nom": "GMF Tremblay Montréal",
         "adresse": {"rue": "1234 rue Saint-Denis", "ville": "Montréal",
                     "code_postal": "H2X 1Y4"},
         "lat": 45.51, "lng": -73.57, "telephone": "+1-514-555-0101",
         "langues": ["fr", "en"], "no_permis": "54321-0012"}

``GET /api/v1/medecins`` -- physicians working in at least one listed clinic, by ``id``.
    Filters: ``ids`` (ints), ``no_licence`` (licences), ``clinique`` (clinic ids).
    Item::

        {"id": 50345, "titre": "Dr", "prenom": "Marie", "nom": "Tremblay",
         "langues": ["fr", "en"], "no_licence": "3-00345", "cliniques": [1012],
         "accepte_nouveaux_patients": false}

``GET /api/v1/disponibilites`` -- slots, ordered by the moment they start (a
    9:00 in Blanc-Sablon comes before an 8:30 in Montréal in winter), then ``id``.
    Filters: ``debut_min``, ``debut_max`` (local times, both **inclusive**),
    ``cliniques``, ``medecins`` (ids), ``types`` (codes below),
    ``lat``+``lng``+``rayon_km`` and ``region`` (of the clinic), ``langues``
    (language codes: slots whose physician speaks one of them),
    ``statut`` (``libre`` or ``reserve``; **absent means both**).
    Item::

        {"id": "dispo-C00012-P00345-03-7", "debut": "2026-11-26T08:00:00",
         "fin": "2026-11-26T08:20:00", "clinique_id": 1012, "medecin_id": 50345,
         "type_rdv": "regulier", "statut": "libre",
         "lien_reservation": "https://rdv.example.org/reserver/dispo-C00012-P00345-03-7",
         "telephone_reservation": "+1-514-555-0101"}

    A ``reserve`` slot has ``null`` booking link and phone.
    ``type_rdv`` codes: ``sans_rendez_vous``, ``urgent``, ``prioritaire``,
    ``regulier``, ``suivi``, ``bilan``, ``suivi_grossesse``, ``suivi_enfant``,
    ``nouveau_patient``.

``GET /api/v1/disponibilites/{id}`` -- one slot as the listing gives it, free or not
    (``statut``), as served now; ``404`` for an id it does not know.

``GET /_stats`` -- ``{"requests": N}``, the requests received except ``/_stats``
itself; no key needed.

Errors
------
Always JSON ``{"erreur": "<message in French>"}``:

- ``400`` bad parameter (wrong number, unknown code, offset in a time,
  ``debut_max`` before ``debut_min``, ``limite`` over 500...);
- ``401`` missing or wrong ``X-Cle-Api``;
- ``404``/``405`` unknown path or method;
- ``429`` too many requests for this key, with ``Retry-After`` (seconds). Each
  key has a token bucket (``rate_limit_rps`` tokens per second, ``rate_limit_burst``
  deep); ``build_app`` sets both.

The code: ``examples.demo_rest.catalogue`` indexes the world under this API's
ids and codes, ``examples.demo_rest.endpoints`` answers the three listings, and
this module adds the edge (key, rate limit, errors, stats) and the command line.
"""

from __future__ import annotations

import argparse
import gc
import hmac
import math
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import date

from aiohttp import web
from aiohttp.typedefs import Middleware

from examples import request_stats
from examples.churn import CHURN_HELP, SERVED, Churn, churn_argument, churning
from examples.demo_rest.catalogue import Catalogue
from examples.demo_rest.endpoints import BadRequest, Endpoints, json_response
from examples.faults import FAULTS_HELP, Faults, faults_argument
from examples.faults import install as install_faults
from examples.world import World

API_KEY_HEADER = "X-Cle-Api"
API_KEY_ENV = "PASSERELLE_DEMO_REST_KEY"
DEFAULT_BOOKING_BASE_URL = "https://rdv.example.org/reserver"


# ---------------------------------------------------------------------------
# Edge: stats, errors, authentication, rate limit.


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"erreur": message}, status, headers)


class _TokenBucket:
    """``rate`` tokens per second, at most ``burst`` banked; one request takes one."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _middleware(api_key: str, rate: float | None, burst: float) -> Middleware:
    buckets: dict[str, _TokenBucket] = {}
    expected = api_key.encode()

    @web.middleware
    async def edge(request: web.Request, handler: _Handler) -> web.StreamResponse:
        try:
            if request.path.startswith("/api/"):
                key = request.headers.get(API_KEY_HEADER)
                if key is None or not hmac.compare_digest(key.encode(), expected):
                    return _error(401, f"clé d'API absente ou invalide (en-tête {API_KEY_HEADER})")
                if rate is not None:
                    bucket = buckets.get(key)
                    if bucket is None:
                        bucket = buckets[key] = _TokenBucket(rate, burst)
                    wait = bucket.take()
                    if wait > 0:
                        return _error(
                            429,
                            "trop de requêtes, réessayez plus tard",
                            {"Retry-After": str(max(1, math.ceil(wait)))},
                        )
            return await handler(request)
        except BadRequest as exc:
            return _error(400, str(exc))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(exc.status, exc.reason)

    return edge


def build_app(
    world: World,
    *,
    api_key: str,
    rate_limit_rps: float | None = 100.0,
    rate_limit_burst: float | None = None,
    booking_base_url: str = DEFAULT_BOOKING_BASE_URL,
    churn: Churn | None = None,
) -> web.Application:
    """The demo API over ``world``'s ``"rest"`` clinics; their slots are generated here,
    and change as time passes with a ``churn`` (``examples.churn``).

    ``rate_limit_rps`` tokens per second per key (``None``: no limit), banked up
    to ``rate_limit_burst`` (default: two seconds' worth, at least one).

        app = build_app(World(scale=0.02), api_key="secret", rate_limit_rps=5)
    """
    if not api_key:
        raise ValueError("api_key must not be empty")
    if rate_limit_rps is not None and rate_limit_rps <= 0:
        raise ValueError("rate_limit_rps must be positive (or None for no limit)")
    burst = (
        rate_limit_burst if rate_limit_burst is not None else max(1.0, 2 * (rate_limit_rps or 0))
    )
    catalogue = Catalogue.of(world)
    endpoints = Endpoints(catalogue, booking_base_url.rstrip("/"))

    app = web.Application(middlewares=[_middleware(api_key, rate_limit_rps, burst)])
    app.router.add_get("/api/v1/cliniques", endpoints.clinics)
    app.router.add_get("/api/v1/medecins", endpoints.physicians)
    app.router.add_get("/api/v1/disponibilites", endpoints.slots)
    app.router.add_get("/api/v1/disponibilites/{id}", endpoints.slot)
    app[SERVED] = catalogue
    request_stats.install(app)
    if churn is not None:
        clinic_ids = [entry.clinic.id for entry in catalogue.clinics]

        def step(opening: bool) -> None:
            slot = churn.pick(clinic_ids, catalogue.slots_of, opening=opening)
            if slot is not None:
                catalogue.set_free(slot, opening)

        app.cleanup_ctx.append(churning(churn, step))
    return app


# The default of ``--rate-limit-rps`` when set (``app.py``'s demo passes no option).
RATE_LIMIT_ENV = "PASSERELLE_DEMO_REST_RPS"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m examples.demo_rest",
        description="Demo proprietary REST/JSON booking API over the synthetic world.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--first-day", type=date.fromisoformat, default=None)
    parser.add_argument("--api-key", default=None, help=f"required; defaults to ${API_KEY_ENV}")
    # A benchmark's one client may go past the default through the demo launcher.
    default_rps = float(os.environ.get(RATE_LIMIT_ENV) or 100.0)
    parser.add_argument("--rate-limit-rps", type=float, default=default_rps)
    parser.add_argument("--faults", type=faults_argument, default=Faults(), help=FAULTS_HELP)
    parser.add_argument("--churn", type=churn_argument, default=0.0, help=CHURN_HELP)
    args = parser.parse_args(argv)
    api_key = args.api_key or os.environ.get(API_KEY_ENV)
    if not api_key:
        parser.error(f"an API key is required: --api-key or ${API_KEY_ENV}")
    world = World(args.scale, seed=args.seed, first_day=args.first_day)
    churn = Churn(args.churn, seed=args.seed, system="rest") if args.churn else None
    app = build_app(world, api_key=api_key, rate_limit_rps=args.rate_limit_rps, churn=churn)
    install_faults(app, args.faults)
    # The world lives forever: kept from the collector, as the FHIR demo's is (a full
    # collection walked its million objects, 110-130 ms, in the middle of answers).
    gc.collect()
    gc.freeze()
    web.run_app(app, host=args.host, port=args.port, access_log=None)


__all__ = ["API_KEY_ENV", "API_KEY_HEADER", "DEFAULT_BOOKING_BASE_URL", "build_app", "main"]
