"""The JSON body of a webhook delivery: ``{type, timestamp, data}`` as Standard Webhooks
suggests, ``data`` holding what a ``slotAlerts`` event holds (the same ids, codes and
Montreal times), for the selection most partners would ask."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from resolvers.ids import to_global_id
from schema.subscription import SourceFailure
from sources.timeutil import to_montreal

if TYPE_CHECKING:
    from sources.watch import Alert

__all__ = ["PAYLOAD_TYPE", "alert_payload"]

PAYLOAD_TYPE = "slot.alert"


def _time(value: datetime) -> str:
    return to_montreal(value).isoformat()


def alert_payload(alert_id: str, alert: Alert) -> bytes:
    """A delivery's body: ``{type, timestamp, data}`` as Standard Webhooks suggests,
    ``data`` holding what a ``slotAlerts`` event holds (the same ids, codes and times)."""
    opened: list[dict[str, Any]] = []
    for slot in alert.opened:
        record = slot.record
        physician = slot.physician
        opened.append(
            {
                "id": to_global_id("Slot", slot.key),
                "start": _time(record.start),
                "end": _time(record.end),
                "appointmentType": record.appointment_type.value,
                "bookingUrl": record.booking_url,
                "bookingPhone": record.booking_phone,
                "distanceKm": None if slot.distance_km is None else round(slot.distance_km, 2),
                "clinic": {
                    "id": to_global_id("Clinic", slot.clinic.key),
                    "name": slot.clinic.name,
                },
                "physician": None
                if physician is None
                else {
                    "id": to_global_id("Physician", physician.key),
                    "displayName": physician.display_name,
                },
            }
        )
    failing = [SourceFailure.from_error(e) for e in alert.failing]
    data = {
        "webhookId": alert_id,
        "opened": opened,
        "goneIds": [to_global_id("Slot", key) for key in alert.gone],
        "seenAt": _time(alert.seen_at),
        "failingSources": [
            {"sourceId": str(f.source_id), "code": f.code, "message": f.message} for f in failing
        ],
    }
    return orjson.dumps({"type": PAYLOAD_TYPE, "timestamp": _time(alert.seen_at), "data": data})
