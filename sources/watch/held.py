"""What a group holds of one source (``Watched``), how a read compares with it
(``compare``), and how it travels between instances (``encode_held``/``decode_held``).

What is held: the identities of the source's free slots at the last read (clinic and
physician keys, start, end, type) with their merged clinic (a public record: its
position is the clinic's), by the source's own clinic id, what that read covered, the
source's failure if it fails, whether the read was capped. No subscriber's filter: a
coverage is the group's coarse search (its cell's centre, a radius rounded up).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from sources.search import FoundSlot, MergedClinic, SlotIdentity
from sources.watch.changes import GoneSlot, SourceFailure
from sources.watch.scope import Coverage

if TYPE_CHECKING:
    from sources.base import CopyChanges
    from sources.watch.scope import Scope

__all__ = ["Watched", "compare", "decode_held", "encode_held"]


@dataclass(slots=True)
class Watched:
    """One source, as the group watches it: the free slots it held at the last read,
    with their merged clinic, and by the source's own clinic id."""

    held: dict[SlotIdentity, MergedClinic] | None = None  # None: no baseline yet
    by_clinic: dict[str, list[SlotIdentity]] = field(default_factory=dict)
    coverage: Coverage | None = None
    failing: SourceFailure | None = None
    loaded: asyncio.Event = field(default_factory=asyncio.Event)
    # What a copy's loads changed since its last read; None: read it all.
    pending: CopyChanges | None = None
    capped: bool = False


def compare(
    watched: Watched,
    others: list[dict[SlotIdentity, MergedClinic]],
    found: dict[SlotIdentity, FoundSlot],
    coverage: Coverage,
    now: datetime,
    scope: Scope | None = None,
) -> tuple[list[FoundSlot], list[GoneSlot]]:
    """What changed at a source since its last read (``watched``, updated to this one);
    a read of a ``scope`` only compares the slots in it, and keeps the others. A slot
    that another source of the group holds (``others``) is neither opened nor gone."""
    before, covered = watched.held, watched.coverage
    held: dict[SlotIdentity, MergedClinic]
    if scope is None or before is None:
        # Every clinic read: what was held is what is compared.
        held, by_clinic, compared = {}, {}, before
    else:
        # Only the scope was read: its slots are compared, the others stand.
        held, by_clinic, compared = before, watched.by_clinic, {}
        starts = scope.starts
        for local_id in scope.clinics:
            listed = by_clinic.pop(local_id, ())
            if starts is not None:
                if stay := [i for i in listed if i.start not in starts]:
                    by_clinic[local_id] = stay
                listed = [i for i in listed if i.start in starts]
            for identity in listed:
                clinic = held.pop(identity, None)
                if clinic is not None:
                    compared[identity] = clinic
    for identity, slot in found.items():
        held[identity] = slot.clinic
        by_clinic.setdefault(slot.record.clinic_local_id, []).append(identity)
    watched.held, watched.by_clinic, watched.coverage = held, by_clinic, coverage
    if compared is None or covered is None:
        return [], []  # the baseline
    opened = [
        slot
        for identity, slot in found.items()
        if identity not in compared
        and covered.covers(identity.start, slot.clinic.location)
        and not any(identity in held for held in others)
    ]
    gone = [
        GoneSlot(identity.encode(), identity.start, clinic.location)
        for identity, clinic in compared.items()
        if identity not in found
        and identity.start > now
        and coverage.covers(identity.start, clinic.location)
        and not any(identity in held for held in others)
    ]
    return opened, gone


class _Held(msgspec.Struct, array_like=True):
    """``Watched`` as it travels: each clinic once, slots by their clinic's index."""

    clinics: list[MergedClinic]
    slots: list[tuple[SlotIdentity, int]] | None
    by_clinic: dict[str, list[int]]
    coverage: Coverage | None
    failing: SourceFailure | None
    capped: bool


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Held)


def encode_held(watched: Watched) -> bytes:
    clinics: dict[int, int] = {}
    listed: list[MergedClinic] = []
    slots: list[tuple[SlotIdentity, int]] | None = None
    index: dict[SlotIdentity, int] = {}
    if watched.held is not None:
        slots = []
        for identity, clinic in watched.held.items():
            at = clinics.get(id(clinic))
            if at is None:
                at = clinics[id(clinic)] = len(listed)
                listed.append(clinic)
            index[identity] = len(slots)
            slots.append((identity, at))
    by_clinic = {
        local_id: [index[i] for i in identities if i in index]
        for local_id, identities in watched.by_clinic.items()
    }
    held = _Held(listed, slots, by_clinic, watched.coverage, watched.failing, watched.capped)
    return _ENCODER.encode(held)


def decode_held(data: bytes) -> Watched:
    """What ``encode_held`` encoded; ``msgspec.DecodeError`` for anything else."""
    held = _DECODER.decode(data)
    watched = Watched(coverage=held.coverage, failing=held.failing, capped=held.capped)
    if held.slots is not None:
        identities = [identity for identity, _ in held.slots]
        watched.held = {identity: held.clinics[at] for identity, at in held.slots}
        watched.by_clinic = {
            local_id: [identities[i] for i in indices]
            for local_id, indices in held.by_clinic.items()
        }
    return watched
