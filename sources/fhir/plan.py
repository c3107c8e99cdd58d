"""The plan of a slot search on one server, chosen from its capabilities.

    plan = SlotPlan.for_query(capabilities, query)
    plan.lines()  # ["Slots sorted by the server, read until the limit", ...]

- Order is trusted only where verified (or not yet probed): such a server is read
  page by page, each page checked to be in order, until the query's limit; an
  unsorted one has its window read in full before any slot is served.
- Clinics and physicians narrow the search by ``schedule.actor`` chains where the
  server answers them, else by their Schedules (read by ``actor``), then Slots by
  ``schedule``.
- ROUTINE includes the slots with no ``appointmentType``, which no token search can
  "or" with a type: where the server was found to answer ``appointment-type:missing``
  (``Capabilities.splits_routine``, verified on its own counts) the search is split in
  two, the types pushed and ``:missing=true``, merged by start (``slots.merge_halves``);
  elsewhere ROUTINE is checked here.
- A filter the server cannot apply (languages; ROUTINE without the split) is applied
  here: the window is then read in full when the server counts it small
  (``FULL_READ_MAX``), so the answer is whole and its count exact, and page by page
  otherwise.

The search parameters are written here too (FHIR escaping, ``,`` for "or").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sources.fhir.resources import (
    APPOINTMENT_TYPE_SYSTEM,
    V2_APPOINTMENT_REASON,
    V2_APPOINTMENT_REASON_SYSTEM,
)
from sources.records import AppointmentType

if TYPE_CHECKING:
    from sources.fhir.capabilities import Capabilities
    from sources.records import Identifier, SlotQuery

__all__ = [
    "FULL_READ_MAX",
    "SlotPlan",
    "identifier_tokens",
    "or_refs",
    "or_values",
    "type_tokens",
]

# A search filtered in the gateway is read in full when the server counts at most
# this many matches (a few pages): its answer is then whole and its count exact.
FULL_READ_MAX = 5000
SPLIT_LINE = "ROUTINE: the types pushed, then appointment-type:missing=true, merged by start"


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """How one slot search is asked and read."""

    sorted: bool  # _sort=start trusted (checked page by page); else read in full
    chains: bool  # schedule.actor chains; else Schedules by actor, then Slots by schedule
    push_types: bool  # appointment-type sent to the server
    filtered_here: bool  # a filter the server cannot apply: read in full when small
    includes: bool = True  # _include and _total asked (dropped after a refusal)
    split_routine: bool = False  # ROUTINE read as the types pushed, then :missing=true

    @classmethod
    def for_query(cls, capabilities: Capabilities, query: SlotQuery) -> SlotPlan:
        types = query.appointment_types
        # v2-0276: a slot without appointmentType is ROUTINE, which a token cannot find.
        routine = types is not None and AppointmentType.ROUTINE in types
        split = routine and capabilities.splits_routine
        push_types = types is not None and (split or not routine)
        return cls(
            sorted=capabilities.sorted_by_instant is not False,
            chains=capabilities.chains,
            push_types=push_types,
            filtered_here=bool(query.languages) or (types is not None and not push_types),
            split_routine=split,
        )

    def fallback(self) -> SlotPlan:
        """The plan after a refusal: nothing optional asked, nothing trusted."""
        return SlotPlan(False, False, False, True, includes=False)

    def lines(self) -> list[str]:
        return [
            "slots: "
            + ("sorted by the server, read until the limit" if self.sorted else "read in full"),
            "clinics and physicians: "
            + ("schedule.actor chains" if self.chains else "Schedules by actor, then Slots"),
            *([SPLIT_LINE] if self.split_routine else []),
        ]


def _escape(value: str) -> str:
    """FHIR search escaping of ``\\``, ``,``, ``|`` and ``$`` inside one value."""
    return re.sub(r"([\\,|$])", r"\\\1", value)


def or_values(values: tuple[str, ...] | list[str]) -> str:
    return ",".join(_escape(v) for v in values)


def or_refs(resource_type: str, ids: tuple[str, ...] | list[str]) -> str:
    return ",".join(f"{resource_type}/{_escape(i)}" for i in ids)


def identifier_tokens(wanted: tuple[Identifier, ...]) -> str:
    return ",".join(f"{_escape(i.system)}|{_escape(i.value)}" for i in wanted)


def type_tokens(kinds: frozenset[AppointmentType]) -> str:
    """Both codings, so servers that know only v2-0276 filter too; we re-check locally."""
    tokens = [f"{APPOINTMENT_TYPE_SYSTEM}|{k.value}" for k in sorted(kinds, key=lambda k: k.value)]
    tokens += sorted(
        f"{V2_APPOINTMENT_REASON_SYSTEM}|{V2_APPOINTMENT_REASON[k]}"
        for k in kinds
        if k in V2_APPOINTMENT_REASON
    )
    return ",".join(tokens)
