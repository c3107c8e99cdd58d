"""``python -m examples.demo_fhir``: the command line of ``examples.demo_fhir.server``."""

from __future__ import annotations

from examples.demo_fhir.server import main

main()
