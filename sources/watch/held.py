"""What a group holds of one source (``Watched``), how a read compares with it
(``compare``), and how it travels between instances (``encode_held``/``decode_held``).

What is held: the identities of the source's free slots at the last read (clinic and
physician keys, start, end, type), packed (``sources.watch.compact``: an int a slot),
with their merged clinic (a public record: its
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
from sources.watch.compact import HeldKey, pack, start_of, unpack
from sources.watch.scope import Coverage

if TYPE_CHECKING:
    from sources.base import CopyChanges
    from sources.watch.scope import Scope

__all__ = ["Watched", "compare", "decode_held", "encode_held"]


@dataclass(slots=True)
class Watched:
    """One source, as the group watches it: the free slots it held at the last read,
    with their merged clinic, and by the source's own clinic id."""

    # By packed identity (``sources.watch.compact``); None: no baseline yet.
    held: dict[HeldKey, MergedClinic] | None = None
    by_clinic: dict[str, list[HeldKey]] = field(default_factory=dict)
    coverage: Coverage | None = None
    failing: SourceFailure | None = None
    loaded: asyncio.Event = field(default_factory=asyncio.Event)
    # What a copy's loads changed since its last read; None: read it all.
    pending: CopyChanges | None = None
    capped: bool = False


def compare(
    watched: Watched,
    others: list[dict[HeldKey, MergedClinic]],
    found: dict[SlotIdentity, FoundSlot],
    coverage: Coverage,
    now: datetime,
    scope: Scope | None = None,
) -> tuple[list[FoundSlot], list[GoneSlot]]:
    """What changed at a source since its last read (``watched``, updated to this one);
    a read of a ``scope`` only compares the slots in it, and keeps the others. A slot
    that another source of the group holds (``others``) is neither opened nor gone."""
    before, covered = watched.held, watched.coverage
    held: dict[HeldKey, MergedClinic]
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
                if stay := [k for k in listed if start_of(k) not in starts]:
                    by_clinic[local_id] = stay
                listed = [k for k in listed if start_of(k) in starts]
            for key in listed:
                clinic = held.pop(key, None)
                if clinic is not None:
                    compared[key] = clinic
    keys = {pack(identity): slot for identity, slot in found.items()}
    for key, slot in keys.items():
        held[key] = slot.clinic
        by_clinic.setdefault(slot.record.clinic_local_id, []).append(key)
    watched.held, watched.by_clinic, watched.coverage = held, by_clinic, coverage
    if compared is None or covered is None:
        return [], []  # the baseline
    opened = [
        slot
        for key, slot in keys.items()
        if key not in compared
        and covered.covers(slot.identity.start, slot.clinic.location)
        and not any(key in held for held in others)
    ]
    gone = []
    for key, clinic in compared.items():
        if key in keys or any(key in held for held in others):
            continue
        identity = unpack(key)
        if identity.start > now and coverage.covers(identity.start, clinic.location):
            gone.append(GoneSlot(identity.encode(), identity.start, clinic.location))
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
    index: dict[HeldKey, int] = {}
    if watched.held is not None:
        slots = []
        for key, clinic in watched.held.items():
            at = clinics.get(id(clinic))
            if at is None:
                at = clinics[id(clinic)] = len(listed)
                listed.append(clinic)
            index[key] = len(slots)
            slots.append((unpack(key), at))
    by_clinic = {
        local_id: [index[k] for k in keys if k in index]
        for local_id, keys in watched.by_clinic.items()
    }
    held = _Held(listed, slots, by_clinic, watched.coverage, watched.failing, watched.capped)
    return _ENCODER.encode(held)


def decode_held(data: bytes) -> Watched:
    """What ``encode_held`` encoded; ``msgspec.DecodeError`` for anything else."""
    held = _DECODER.decode(data)
    watched = Watched(coverage=held.coverage, failing=held.failing, capped=held.capped)
    if held.slots is not None:
        keys = [pack(identity) for identity, _ in held.slots]
        watched.held = {keys[n]: held.clinics[at] for n, (_, at) in enumerate(held.slots)}
        watched.by_clinic = {
            local_id: [keys[i] for i in indices] for local_id, indices in held.by_clinic.items()
        }
    return watched
