"""``quick_init``: the records made by the hundred per request keep a frozen dataclass's
signature, defaults, equality, hash, immutability, copies and encodings."""

from __future__ import annotations

import inspect
import pickle
from dataclasses import FrozenInstanceError, dataclass, field, replace
from datetime import UTC, datetime

import msgspec
import pytest

from sources.records import AppointmentType, SlotRecord, quick_init
from sources.search.results import FoundSlot

AT = datetime(2026, 12, 1, 13, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Plain:
    source_id: str
    local_id: str
    start: datetime
    end: datetime
    appointment_type: AppointmentType
    clinic_local_id: str
    physician_local_id: str | None = None
    booking_url: str | None = None
    booking_phone: str | None = None
    capacity: int | None = None


def test_a_quick_record_is_the_frozen_dataclass_it_was() -> None:
    assert str(inspect.signature(SlotRecord)) == str(inspect.signature(Plain))
    args = ("s", "1", AT, AT, AppointmentType.ROUTINE, "c")
    record = SlotRecord(*args, booking_url="https://book.example/1")
    assert repr(record).replace("SlotRecord", "Plain") == repr(
        Plain(*args, booking_url="https://book.example/1")
    )
    assert record == SlotRecord(*args, None, "https://book.example/1")
    assert hash(record) == hash(SlotRecord(*args, booking_url="https://book.example/1"))
    assert record != SlotRecord(*args)
    with pytest.raises(FrozenInstanceError):
        record.local_id = "2"  # type: ignore[misc]
    assert replace(record, capacity=3).capacity == 3 and record.capacity is None
    assert pickle.loads(pickle.dumps(record)) == record
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(record), type=SlotRecord) == record
    assert msgspec.msgpack.encode(record) == msgspec.msgpack.encode(
        Plain(*args, booking_url="https://book.example/1")
    )
    with pytest.raises(TypeError, match="missing"):
        SlotRecord("s")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected"):
        SlotRecord(*args, colour="red")  # type: ignore[call-arg]
    assert "FoundSlot" in FoundSlot.__init__.__qualname__


def test_quick_init_refuses_what_it_cannot_make_alike() -> None:
    with pytest.raises(TypeError, match="plain fields only"):

        @quick_init
        @dataclass(frozen=True, slots=True)
        class Listed:
            items: list[int] = field(default_factory=list)
