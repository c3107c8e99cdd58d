"""One FHIR Slot read now: ``check_slot(client, slot)``, for ``FhirSource.check_slot``.

``GET [base]/Slot/{id}`` (the FHIR read interaction, which every server implementing
Slot supports): ``free`` and the same start is ``FREE``; any other status (``busy``,
``busy-unavailable``, ``busy-tentative``, ``entered-in-error``), another start (the
slot was moved: another slot for the patient), 404 or 410 is ``GONE``. A body that is
not that Slot is ``SourceBadResponse``; the server unreachable, a ``SourceError``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from sources.errors import SourceBadResponse
from sources.records import SlotCheck, SlotState
from sources.timeutil import read_upstream_datetime

if TYPE_CHECKING:
    from sources.fhir.client import FhirClient
    from sources.records import SlotRecord

__all__ = ["check_slot"]


async def check_slot(client: FhirClient, slot: SlotRecord) -> SlotCheck:
    now = datetime.now(UTC)
    url = f"{client.base}/Slot/{quote(slot.local_id, safe='')}"
    body = await client.json("GET", url, absent=frozenset({404, 410}))
    if body is None:
        return SlotCheck(SlotState.GONE, now)
    if not isinstance(body, dict) or body.get("resourceType") != "Slot":
        raise SourceBadResponse(client.source_id, "a Slot read did not answer a Slot")
    if body.get("id") not in (None, slot.local_id):
        raise SourceBadResponse(client.source_id, "a Slot read answered another Slot")
    if body.get("status") != "free" or not _same_start(body.get("start"), slot.start):
        return SlotCheck(SlotState.GONE, now)
    return SlotCheck(SlotState.FREE, now)


def _same_start(value: object, start: datetime) -> bool:
    """Whether the Slot still starts when it did; a start without an offset (read in
    its clinic's zone when listed) is compared by its local time."""
    try:
        read = read_upstream_datetime(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return False
    if read.tzinfo is None:
        return read == start.replace(tzinfo=None)  # the record holds its clinic's zone
    return read == start
