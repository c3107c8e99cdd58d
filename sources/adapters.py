"""Protocol name -> adapter class. Adding a protocol is one module and one line here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sources.errors import UnknownProtocol
from sources.records import SourceProtocol

if TYPE_CHECKING:
    from sources.base import Source


def _adapters() -> dict[SourceProtocol, type[Source]]:
    from sources.fhir.adapter import FhirSource
    from sources.rest_json.adapter import RestJsonSource
    from sources.smart_scheduling.adapter import SmartSchedulingSource

    return {
        SourceProtocol.FHIR_R4: FhirSource,
        SourceProtocol.REST_JSON: RestJsonSource,
        SourceProtocol.SMART_SCHEDULING_LINKS: SmartSchedulingSource,
    }


def adapter_for(protocol: SourceProtocol | str) -> type[Source]:
    """The adapter class for a protocol; ``UnknownProtocol`` names the known ones."""
    adapters = _adapters()
    try:
        key = protocol if isinstance(protocol, SourceProtocol) else SourceProtocol(protocol)
        return adapters[key]
    except (ValueError, KeyError):
        known = ", ".join(sorted(p.value for p in adapters))
        raise UnknownProtocol(
            f"unknown source protocol {getattr(protocol, 'value', protocol)!r} (known: {known})"
        ) from None
