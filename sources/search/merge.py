"""Cross-source identity: one clinic listed by two systems is one clinic.

Clinics match when they share an identifier of the same system, else when
they have the same normalized name and postal code. A merged clinic's key is
derived from what identifies it, never from which sources answered, so it is
stable whichever sources are up: the smallest shared identifier
(``i:SYSTEM|VALUE``), else ``n:NAME|POSTAL``. Where sources disagree on a
field, the first source in registry order that gives a value wins.

Physicians match on identifiers only (names are too ambiguous); one without an
identifier keeps a source-scoped key ``s:SOURCE|LOCAL_ID``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sources.geo import normalize_postal_code
from sources.names import normalize_name
from sources.records import (
    Address,
    ClinicRecord,
    GeoPoint,
    Identifier,
    PhysicianRecord,
    Region,
)

# Where they were (the federation imports them from here).
from sources.search.identity import EPOCH as EPOCH
from sources.search.identity import SlotIdentity as SlotIdentity
from sources.search.identity import micros as micros


def identifier_key(identifier: Identifier) -> str:
    return f"i:{identifier.system}|{identifier.value}"


def parse_identifier_key(key: str) -> Identifier | None:
    if not key.startswith("i:") or "|" not in key:
        return None
    system, _, value = key[2:].partition("|")  # system URIs hold no "|"; values may
    return Identifier(system, value) if system and value else None


def name_key(record: ClinicRecord) -> str | None:
    postal = normalize_postal_code(record.address.postal_code)
    name = normalize_name(record.name)
    return f"n:{name}|{postal}" if postal and name else None


def parse_name_key(key: str) -> tuple[str, str] | None:
    """``n:NAME|POSTAL`` -> (normalized name, postal code)."""
    if not key.startswith("n:") or "|" not in key:
        return None
    name, _, postal = key[2:].rpartition("|")
    return (name, postal) if name and postal else None


def _clinic_keys(record: ClinicRecord) -> list[str]:
    keys = [identifier_key(i) for i in record.identifiers if i.system and i.value]
    nk = name_key(record)
    if nk is not None:
        keys.append(nk)
    return keys


R = TypeVar("R", ClinicRecord, PhysicianRecord)


@dataclass(frozen=True, slots=True)
class _Merged(Generic[R]):
    """One real-world thing, as every source that lists it describes it (registry order)."""

    key: str
    records: tuple[R, ...]

    @property
    def primary(self) -> R:
        return self.records[0]

    @property
    def source_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.source_id for r in self.records))

    def local_ids(self, source_id: str) -> tuple[str, ...]:
        return tuple(r.local_id for r in self.records if r.source_id == source_id)


@dataclass(frozen=True, slots=True)
class MergedClinic(_Merged[ClinicRecord]):
    # Worked out once: every slot of the clinic asks for it (distances, radius, watch).
    _location: GeoPoint | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        points = [r.location for r in self.records if r.location is not None]
        location = next((p for p in points if not p.approximate), points[0] if points else None)
        object.__setattr__(self, "_location", location)

    @property
    def name(self) -> str:
        return self.primary.name

    @property
    def address(self) -> Address:
        return self.primary.address

    @property
    def region(self) -> Region:
        return self.primary.address.region

    @property
    def location(self) -> GeoPoint | None:
        """The first source's position, an upstream's own before one placed at its city."""
        return self._location

    @property
    def phone(self) -> str | None:
        return next((r.phone for r in self.records if r.phone), None)

    @property
    def languages(self) -> tuple[str, ...]:
        return next((r.languages for r in self.records if r.languages), ())

    @property
    def time_zone(self) -> str:
        return self.primary.time_zone


@dataclass(frozen=True, slots=True)
class MergedPhysician(_Merged[PhysicianRecord]):
    @property
    def display_name(self) -> str:
        return self.primary.display_name

    @property
    def languages(self) -> tuple[str, ...]:
        langs: dict[str, None] = {}
        for r in self.records:
            langs.update(dict.fromkeys(r.languages))
        return tuple(langs)

    @property
    def accepting_new_patients(self) -> bool | None:
        return next(
            (
                r.accepting_new_patients
                for r in self.records
                if r.accepting_new_patients is not None
            ),
            None,
        )


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _group(items: list[list[str]]) -> list[list[int]]:
    """Indices grouped when their key lists share a key (transitively).

    Identifier keys join unconditionally. Other keys (name + postal code) join
    two groups only when no identifier system gives them different values: two
    clinics with distinct permit numbers stay two clinics whatever their names.
    """
    uf = _UnionFind(len(items))
    # root -> identifier system -> values seen in that group
    systems: dict[int, dict[str, set[str]]] = {}
    for index, keys in enumerate(items):
        held: dict[str, set[str]] = {}
        for key in keys:
            identifier = parse_identifier_key(key)
            if identifier is not None:
                held.setdefault(identifier.system, set()).add(identifier.value)
        systems[index] = held

    def join(a: int, b: int) -> None:
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            return
        uf.union(ra, rb)  # the smaller index becomes the root
        root, other = min(ra, rb), max(ra, rb)
        merged = systems.pop(other)
        for system, values in merged.items():
            systems[root].setdefault(system, set()).update(values)

    def compatible(a: int, b: int) -> bool:
        sa, sb = systems[uf.find(a)], systems[uf.find(b)]
        return all(sa[k] & sb[k] for k in sa.keys() & sb.keys())

    for identifiers_first in (True, False):
        first_with: dict[str, int] = {}
        for index, keys in enumerate(items):
            for key in keys:
                if key.startswith("i:") != identifiers_first:
                    continue
                other = first_with.setdefault(key, index)
                if other != index and (identifiers_first or compatible(other, index)):
                    join(other, index)
    groups: dict[int, list[int]] = {}
    for index in range(len(items)):
        groups.setdefault(uf.find(index), []).append(index)
    return list(groups.values())


def _group_key(keys: Iterable[str], fallback: str) -> str:
    keys = set(keys)
    identifiers = sorted(k for k in keys if k.startswith("i:"))
    if identifiers:
        return identifiers[0]
    names = sorted(k for k in keys if k.startswith("n:"))
    return names[0] if names else fallback


def _merge(
    records: Iterable[R],
    order: Mapping[str, int],
    keys_of: Callable[[R], list[str]],
) -> list[tuple[str, tuple[R, ...]]]:
    """Group records sharing a key (transitively); each group with its stable key."""
    unique = list({(r.source_id, r.local_id): r for r in records}.values())
    unique.sort(key=lambda r: (order.get(r.source_id, len(order)), r.local_id))
    keys = [keys_of(r) for r in unique]
    merged = []
    for group in _group(keys):
        members = tuple(unique[i] for i in group)
        fallback = source_key(members[0].source_id, members[0].local_id)
        merged.append((_group_key((k for i in group for k in keys[i]), fallback), members))
    return merged


# The last merges, by the identity of the records merged: a source's cached answer gives
# the same record objects to every request, which would merge them again each time.
MERGES_KEPT = 512
_MERGES: OrderedDict[tuple[object, ...], tuple[list[Any], list[Any], dict[Any, Any]]] = (
    OrderedDict()
)
M = TypeVar("M", MergedClinic, MergedPhysician)


def _remembered(
    kind: Callable[[str, tuple[Any, ...]], M],
    records: Iterable[R],
    order: Mapping[str, int],
    keys_of: Callable[[R], list[str]],
) -> list[M]:
    """``kind`` of each group of ``_merge``, remembered for the same record objects (by
    identity: the entry holds them, so no identity is reused while it is kept) in the
    same order of sources. Records are frozen values, and so are the merged ones."""
    return list(_kept(kind, records, order, keys_of)[1])


def _kept(
    kind: Callable[[str, tuple[Any, ...]], M],
    records: Iterable[R],
    order: Mapping[str, int],
    keys_of: Callable[[R], list[str]],
) -> tuple[list[R], list[M], dict[tuple[str, str], M]]:
    """The remembered entry: the records, their merge, and each record's merged value by
    (source id, local id)."""
    given: list[R] = list(records)
    memo = (kind, tuple(order.items()), *map(id, given))
    kept = _MERGES.get(memo)
    if kept is not None:
        _MERGES.move_to_end(memo)
        return kept
    merged = [kind(key, group) for key, group in _merge(given, order, keys_of)]
    index = {(r.source_id, r.local_id): m for m in merged for r in m.records}
    kept = _MERGES[memo] = (given, merged, index)
    if len(_MERGES) > MERGES_KEPT:
        _MERGES.popitem(last=False)
    return kept


def merge_indexed(
    clinics: Iterable[ClinicRecord], physicians: Iterable[PhysicianRecord], order: Mapping[str, int]
) -> tuple[Mapping[tuple[str, str], MergedClinic], Mapping[tuple[str, str], MergedPhysician]]:
    """``merge_clinics`` and ``merge_physicians``, each record's merged value by (source
    id, local id): remembered with the merge (shared: read only)."""
    return (
        _kept(MergedClinic, clinics, order, _clinic_keys)[2],
        _kept(MergedPhysician, physicians, order, _physician_keys)[2],
    )


def merge_clinics(records: Iterable[ClinicRecord], order: Mapping[str, int]) -> list[MergedClinic]:
    """Group clinic records that describe the same clinic; ``order`` ranks source ids."""
    return _remembered(MergedClinic, records, order, _clinic_keys)


def merge_physicians(
    records: Iterable[PhysicianRecord], order: Mapping[str, int]
) -> list[MergedPhysician]:
    """Group physician records sharing an identifier."""
    return _remembered(MergedPhysician, records, order, _physician_keys)


def _physician_keys(record: PhysicianRecord) -> list[str]:
    return [identifier_key(i) for i in record.identifiers if i.system and i.value]


def source_key(source_id: str, local_id: str) -> str:
    """The key of something only one source knows: ``s:SOURCE|LOCAL``."""
    return f"s:{source_id}|{local_id}"


def parse_source_key(key: str) -> tuple[str, str] | None:
    """``s:SOURCE|LOCAL`` -> (source id, local id)."""
    if not key.startswith("s:") or "|" not in key:
        return None
    source_id, _, local_id = key[2:].partition("|")
    return (source_id, local_id) if source_id and local_id else None
