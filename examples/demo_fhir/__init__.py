"""The demo FHIR R4 scheduling server: the demo world's ``"fhir"`` clinics over HTTP.

``server`` is the HTTP face and the command line (``python -m examples.demo_fhir``),
``index`` the in-memory index and search engine, ``params`` the search parameters it
accepts and ``resources`` the FHIR resources it writes.

    app = build_app(World(scale=0.01))
"""

from __future__ import annotations

from examples.demo_fhir.index import FhirIndex
from examples.demo_fhir.server import FHIR_JSON, build_app, main

__all__ = ["FHIR_JSON", "FhirIndex", "build_app", "main"]
