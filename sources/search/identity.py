"""A slot's identity across sources: its merged clinic and physician, its start and
end in UTC, its type (``SlotIdentity``); what a ``Slot`` id holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from sources.records import AppointmentType, SlotRecord

__all__ = ["EPOCH", "SlotIdentity", "micros"]

# Slot identities hold their instants in UTC, so that equal instants compare equal
# whatever zone a source wrote them in.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(value: datetime) -> int:
    """Microseconds since the epoch."""
    return (value - EPOCH) // _MICROSECOND


@dataclass(frozen=True)
class SlotIdentity:
    """What makes two slots the same slot, whichever source lists it: its merged
    clinic and physician, its start and end, its type.

    ``sort_key()`` is its sortable form (the last tie-breaker of slot order, in
    cursors); ``encode()`` its text form, what a ``Slot`` id holds, and
    ``decode()`` reads it back (None for anything else)::

        identity = SlotIdentity.of(record, clinic.key, None)
        assert SlotIdentity.decode(identity.encode()) == identity
    """

    # Its fields, and two worked out when first asked and kept (not fields: never
    # encoded, compared or copied): its hash, which every search's merge asks twice a
    # slot (a dataclass's hash builds a tuple and asks the enum's Python ``__hash__``),
    # and its text.
    __slots__ = (
        "_hash",
        "_text",
        "appointment_type",
        "clinic_key",
        "end",
        "physician_key",
        "start",
    )

    clinic_key: str
    physician_key: str | None
    start: datetime
    end: datetime
    appointment_type: AppointmentType

    def __hash__(self) -> int:
        try:
            return self._hash  # type: ignore[attr-defined,no-any-return]
        except AttributeError:
            found = hash(
                (
                    self.clinic_key,
                    self.physician_key,
                    self.start,
                    self.end,
                    self.appointment_type,
                )
            )
            object.__setattr__(self, "_hash", found)
            return found

    def __reduce__(self) -> tuple[object, ...]:
        # Its fields only: a hash is this process's (strings hash per process).
        return (
            type(self),
            (self.clinic_key, self.physician_key, self.start, self.end, self.appointment_type),
        )

    @classmethod
    def of(cls, record: SlotRecord, clinic_key: str, physician_key: str | None) -> SlotIdentity:
        return cls(
            clinic_key,
            physician_key,
            record.start.astimezone(UTC),
            record.end.astimezone(UTC),
            record.appointment_type,
        )

    def sort_key(self) -> tuple[str, str, int, int, str]:
        return (
            self.clinic_key,
            self.physician_key or "",
            micros(self.start),
            micros(self.end),
            self.appointment_type.value,
        )

    def encode(self) -> str:
        try:
            return self._text  # type: ignore[attr-defined,no-any-return]
        except AttributeError:
            text = self._encode()
            object.__setattr__(self, "_text", text)
            return text

    def _encode(self) -> str:
        # The format of ids already handed out: it must not change (ids are stable).
        return orjson.dumps(
            [
                self.clinic_key,
                self.physician_key,
                self.start.astimezone(UTC).isoformat(),
                self.end.astimezone(UTC).isoformat(),
                self.appointment_type.value,
            ]
        ).decode()

    @classmethod
    def decode(cls, text: str) -> SlotIdentity | None:
        try:
            parts = orjson.loads(text)
            if not isinstance(parts, list) or len(parts) != 5:
                return None
            clinic, physician, start, end, kind = parts
            if not (
                isinstance(clinic, str)
                and (physician is None or isinstance(physician, str))
                and isinstance(start, str)
                and isinstance(end, str)
                and isinstance(kind, str)
            ):
                return None
            begin, finish = datetime.fromisoformat(start), datetime.fromisoformat(end)
            if begin.tzinfo is None or finish.tzinfo is None:
                return None
            return cls(
                clinic,
                physician,
                begin.astimezone(UTC),
                finish.astimezone(UTC),
                AppointmentType(kind),
            )
        # orjson.JSONDecodeError is a ValueError; an instant at the edge of datetime's
        # range with an offset (0001-01-01T00:00+14:00) overflows in UTC.
        except (ValueError, TypeError, OverflowError):
            return None
