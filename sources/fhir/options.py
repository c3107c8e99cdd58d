"""The options of a FHIR R4 source, checked when its definition is read.

[sources.options]
page_size = 200   # the largest _count asked for (default 1000)
"""

from __future__ import annotations

from typing import Final

from pydantic import Field

from sources.settings import LiveOptions

__all__ = ["MAX_PAGE_SIZE", "FhirOptions"]

MAX_PAGE_SIZE: Final = 1000  # the largest _count the demo (and most servers) honour


class FhirOptions(LiveOptions):
    """What a FHIR source may set beyond the common settings (and ``LiveOptions``'s
    ``watch_calls_per_minute``).

    FhirOptions(page_size=200).page_size  # 200
    """

    page_size: int = Field(
        MAX_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"a whole number between 1 and {MAX_PAGE_SIZE}",
    )
    """The largest page (``_count``) asked for; slot searches ask for no more than their
    limit. Lower it for a server that refuses large pages."""
