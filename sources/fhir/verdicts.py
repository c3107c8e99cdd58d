"""What the FHIR probes found (``capabilities``), told as checks of ``sources check``: each
with what it costs the gateway or loses, and what the vendor would change.

    tell_capabilities(report, capabilities, refusals)

A gap the adapter works around (``_offset`` paging, ``_include`` ignored, chains not
answered, unsorted) is a warning, with the work it costs; one that loses slots (no way
past a first page) fails. What the probes could not exercise (too few free slots) is
said so, in one warning, never passed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sources.fhir.capabilities import Claim, Support
from sources.transport.failures import redact_for_log

if TYPE_CHECKING:
    from sources.check import CheckReport
    from sources.fhir.capabilities import Capabilities, Refusal

__all__ = ["tell_capabilities"]

_SUPPORT = {Claim.NEAR: "near", Claim.INCLUDE: "_include", Claim.SORT: "_sort"}
_NEXT_LINKS = "send Bundle.link with relation next on every page that has more"


def tell_capabilities(report: CheckReport, found: Capabilities, refusals: list[Refusal]) -> None:
    """One check per capability the plans use, and one for the statement's claims."""
    untold: list[str] = []  # what the probes could not exercise
    _claims(report, found)
    if found.next_links:
        report.passed("paging", "next links")
    elif found.offset_paging:
        report.warned("paging", "no next links: pages are read by _offset", _NEXT_LINKS)
    elif found.first_page_only:
        report.failed(
            "paging", "no next link and _offset ignored: every search stops at its first page",
            _NEXT_LINKS,
        )  # fmt: skip
    else:
        untold.append("paging (one page holds every free slot)")
    if found.total is False:
        report.warned(
            "total", "no Bundle.total: counts shown to users are lower bounds",
            "send Bundle.total on search pages (at least with _total=accurate)",
        )  # fmt: skip
    elif found.total:
        report.passed("total", "Bundle.total sent")
    if found.sorted_by_instant:
        report.passed("sort", "_sort=start orders by instant, both ways")
    elif found.sorted_by_instant is False:
        report.warned(
            "sort", "_sort=start does not order slots by instant: every window is read in full",
            "sort on start as an instant, not as text (12:00Z comes after 11:00-05:00)",
        )  # fmt: skip
    else:
        untold.append("_sort (fewer than two free slots)")
    if found.include:
        report.passed("include", "_include=Slot:schedule honoured")
    elif found.include is False:
        report.warned(
            "include", "_include=Slot:schedule ignored: Schedules, Locations, roles and "
            "Practitioners are read by _id, more calls per page",
            "support _include=Slot:schedule and _include:iterate (Schedule:actor, "
            "PractitionerRole:practitioner)",
        )  # fmt: skip
    else:
        untold.append("_include (no free slot)")
    _chains(report, found.chained, _refusal(refusals, "schedule.actor="), untold)
    _near(report, found.near, _refusal(refusals, "near="), untold)
    if found.unknown_parameters is Support.NOTHING:
        report.warned(
            "unknown params", "an unknown search parameter matches nothing: a parameter the "
            "server does not support would hide slots without saying",
            "ignore unknown parameters (and say so in the self link), or refuse them with a "
            "400 OperationOutcome",
        )  # fmt: skip
    elif found.unknown_parameters is Support.UNKNOWN:
        untold.append("unknown parameters (no Location)")
    else:
        report.passed("unknown params", str(found.unknown_parameters))
    if untold:
        report.warned(
            "exercised", "not exercised: " + "; ".join(untold),
            "publish free slots (test data will do) and check again",
        )  # fmt: skip


def _claims(report: CheckReport, found: Capabilities) -> None:
    """The CapabilityStatement's claims against the probes (the probes are trusted)."""
    if not found.statement:
        return  # no statement: the metadata check said so
    wrong = found.contradictions()
    for line in wrong:
        claim = next(c for c in Claim if f"claims {c} " in line)
        report.warned(
            "claims", f"the CapabilityStatement {line.removeprefix('it ')}",
            f"correct your CapabilityStatement, or support {_SUPPORT[claim]} as it says",
        )  # fmt: skip
    if not wrong:
        claims = ", ".join(sorted(found.claims)) or "none of near, _include, _sort"
        report.passed("claims", f"the CapabilityStatement claims {claims}: true")


def _chains(
    report: CheckReport, chained: Support, refused: Refusal | None, untold: list[str]
) -> None:
    asked = "Slot?schedule.actor=Location/ID"
    if chained is Support.YES:
        report.passed("chains", f"{asked} answered")
    elif chained is Support.UNKNOWN:
        untold.append("chains (no clinic with free slots)")
    else:
        report.warned(
            "chains", f"{asked} {chained}{_said(refused)}: a clinic's or a physician's slots "
            "cost a Schedule search first", "support the chain schedule.actor on Slot",
        )  # fmt: skip


def _near(report: CheckReport, near: Support, refused: Refusal | None, untold: list[str]) -> None:
    if near is Support.YES:
        report.passed("near", "Location?near answered")
    elif near is Support.UNKNOWN:
        untold.append("near")
    else:
        # The adapter searches its own copy of the Locations whatever the server can do.
        report.passed(
            "near", f"Location?near {near}{_said(refused)}: not needed, near-me searches "
            "use the gateway's copy of the Locations",
        )  # fmt: skip


def _refusal(refusals: list[Refusal], asked: str) -> Refusal | None:
    return next((r for r in refusals if asked in r.asked), None)


def _said(refusal: Refusal | None) -> str:
    """A refusal's diagnostics, with what could locate a person masked."""
    if refusal is None or not refusal.diagnostics:
        return ""
    return f" ({redact_for_log(refusal.diagnostics)})"
