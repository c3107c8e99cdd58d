"""Protocol name -> its adapter class and its options model.

Adding a protocol is one package under ``sources/`` (its adapter and its
``options`` model) and one line in ``_protocols``. Adapters are imported on first
use (they pull in aiohttp and their parsers); options models at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sources.errors import UnknownProtocol
from sources.fhir.options import FhirOptions
from sources.records import SourceProtocol
from sources.rest_json.options import RestJsonOptions
from sources.smart_scheduling.options import SmartSchedulingOptions

if TYPE_CHECKING:
    from sources.base import Source
    from sources.check import Checker
    from sources.settings import ProtocolOptions

__all__ = ["adapter_for", "checker_for", "options_for", "top_level_option_keys"]


def _protocols() -> dict[SourceProtocol, tuple[type[Source], type[ProtocolOptions]]]:
    # Adapters pull in aiohttp and their parsers: imported when first asked for.
    from sources.fhir.adapter import FhirSource
    from sources.rest_json.adapter import RestJsonSource
    from sources.smart_scheduling.adapter import SmartSchedulingSource

    return {
        SourceProtocol.FHIR_R4: (FhirSource, FhirOptions),
        SourceProtocol.REST_JSON: (RestJsonSource, RestJsonOptions),
        SourceProtocol.SMART_SCHEDULING_LINKS: (SmartSchedulingSource, SmartSchedulingOptions),
    }


def adapter_for(protocol: SourceProtocol | str) -> type[Source]:
    """The adapter class for a protocol; ``UnknownProtocol`` names the known ones."""
    return _protocol(protocol)[0]


def options_for(protocol: SourceProtocol | str) -> type[ProtocolOptions]:
    """The options model of a protocol; ``UnknownProtocol`` names the known ones."""
    return _protocol(protocol)[1]


def checker_for(protocol: SourceProtocol | str) -> Checker:
    """The checks of ``sources check`` for a protocol (``sources/<protocol>/check.py``),
    imported when first asked for."""
    from sources.fhir.check import check_source as check_fhir
    from sources.rest_json.check import check_source as check_rest_json
    from sources.smart_scheduling.check import check_source as check_smart_scheduling

    adapter = adapter_for(protocol)  # UnknownProtocol for a name we do not know
    checkers: dict[SourceProtocol, Checker] = {
        SourceProtocol.FHIR_R4: check_fhir,
        SourceProtocol.REST_JSON: check_rest_json,
        SourceProtocol.SMART_SCHEDULING_LINKS: check_smart_scheduling,
    }
    try:
        return checkers[adapter.protocol]
    except KeyError:
        raise UnknownProtocol(
            f"sources check has no checks for {adapter.protocol.value} yet"
        ) from None


def top_level_option_keys() -> dict[str, tuple[SourceProtocol, ...]]:
    """Options that may be written at the top level of a source's table -> the
    protocols that know them (``poll_interval_s`` -> SMART Scheduling Links)."""
    keys: dict[str, tuple[SourceProtocol, ...]] = {}
    for protocol, (_, options) in _protocols().items():
        for key in options.TOP_LEVEL_KEYS:
            keys[key] = (*keys.get(key, ()), protocol)
    return keys


def _protocol(protocol: SourceProtocol | str) -> tuple[type[Source], type[ProtocolOptions]]:
    protocols = _protocols()
    try:
        key = protocol if isinstance(protocol, SourceProtocol) else SourceProtocol(protocol)
        return protocols[key]
    except (ValueError, KeyError):
        known = ", ".join(sorted(p.value for p in protocols))
        raise UnknownProtocol(
            f"unknown source protocol {getattr(protocol, 'value', protocol)!r} (known: {known})"
        ) from None
