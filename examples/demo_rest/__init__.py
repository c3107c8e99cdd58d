"""The demo proprietary REST/JSON booking API: the demo world's ``"rest"`` clinics, in French.

``server`` documents the API and holds its edge (API key, rate limit, errors) and the
command line (``python -m examples.demo_rest``), ``catalogue`` indexes the world under
the API's ids and codes, and ``endpoints`` answers the three listings.

    app = build_app(World(scale=0.01), api_key="secret")
"""

from __future__ import annotations

from examples.demo_rest.catalogue import (
    REGION_CODES,
    TYPE_CODES,
    clinic_api_id,
    physician_api_id,
    slot_api_id,
)
from examples.demo_rest.server import (
    API_KEY_ENV,
    API_KEY_HEADER,
    DEFAULT_BOOKING_BASE_URL,
    build_app,
    main,
)

__all__ = [
    "API_KEY_ENV",
    "API_KEY_HEADER",
    "DEFAULT_BOOKING_BASE_URL",
    "REGION_CODES",
    "TYPE_CODES",
    "build_app",
    "clinic_api_id",
    "main",
    "physician_api_id",
    "slot_api_id",
]
