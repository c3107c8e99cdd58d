"""``sources check`` for a FHIR R4 server: what the adapter would make of it, as checks
its vendor can act on (``sources.check`` holds the report and runs this).

In order, each step on what the adapter itself runs:

1. one Slot search as the adapter sends it (``POST [base]/Slot/_search``, its headers and
   credentials): the server answers, with a FHIR Bundle, and takes the credentials (or
   needs none); one more without them, to say whether they are needed. Failing here
   (unreachable, not FHIR, refused credentials) is one failed check and the end;
2. ``[base]/metadata``: an R4 ``CapabilityStatement`` (``fhirVersion`` 4.0.x);
3. the adapter's probes (``capabilities.learn``): paging, ``Bundle.total``, ``_sort``,
   ``_include``, ``schedule.actor`` chains, ``near``, unknown parameters, each with what
   it costs or loses; every claim of the statement set against what its probe found;
   then its clinics, read whole as the adapter keeps them (``directory``);
4. every free slot of the window (``tally``): served, or not and why;
5. the typical searches through ``FhirSource.search_slots``, with the plan each chose,
   compared with the window's tally.

A step the server does not make possible (no free slot to probe with) is said to be not
exercised, never passed. The report quotes no slot nor Location, only counts; a refusal's
diagnostics are shown with what could locate a person masked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from sources.errors import AnswerTooLarge, SourceError
from sources.fhir.adapter import MAX_PAGES, PAGE_SIZE, FhirSource
from sources.fhir.capabilities import learn
from sources.fhir.tally import WINDOW, searches, tally_window
from sources.fhir.verdicts import tell_capabilities
from sources.problems import ProblemCode
from sources.records import ProblemSeverity
from sources.timeutil import to_montreal
from sources.transport.body import read_capped
from sources.transport.failures import map_errors, redact_for_log, refusal_for

if TYPE_CHECKING:
    from sources.base import SourceConfig, SourceContext
    from sources.check import CheckReport
    from sources.fhir.capabilities import Capabilities

__all__ = ["check_source", "clock"]

# The adapter's problems the checks tell in their own words.
_TOLD = frozenset(
    {
        ProblemCode.FHIR_STATEMENT_WRONG,
        ProblemCode.FHIR_NO_NEXT_LINK,
        ProblemCode.FHIR_UNSORTED,
        ProblemCode.FHIR_WORKAROUNDS,
        ProblemCode.INCOMPLETE_SEARCH,
        ProblemCode.OUTSIDE_QUEBEC,
        ProblemCode.NO_POSITION,
        ProblemCode.APPROXIMATE_POSITION,
    }
)
_BEARER_FIX = "give the key in --credentials-env NAME (it is sent as Authorization: Bearer)"


def clock() -> datetime:
    """Now, where the window of the slots counted starts (tests pin it)."""
    return datetime.now(UTC)


async def check_source(config: SourceConfig, context: SourceContext, report: CheckReport) -> None:
    """The FHIR checks (a ``sources.check.Checker``); see the module docstring."""
    source = FhirSource(config, context)
    try:
        await _Check(source, report).run()
    finally:
        await source.aclose()


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    content_type: str
    body: bytes
    ms: float

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None

    def kind(self) -> str:
        """What the body is, in a few words: a FHIR resource type, or its media type."""
        body = self.json()
        if isinstance(body, dict) and isinstance(body.get("resourceType"), str):
            return f"a {body['resourceType'][:40]}"
        if body is not None:
            return f"JSON that is not a FHIR resource ({type(body).__name__})"
        return f"{self.content_type or 'a body'} that is not JSON"


class _Check:
    def __init__(self, source: FhirSource, report: CheckReport) -> None:
        self.source = source
        self.report = report
        self.config = source.config
        self.base = source.client.base

    async def run(self) -> None:
        if not await self._contact():
            return
        await self._metadata()
        try:
            capabilities, refusals = await learn(self.source.client)
        except SourceError as exc:
            self.report.failed(
                "probes", f"the probes failed: {exc.message}", "make Slot, Schedule and "
                "Location searches answer as the first one did",
            )  # fmt: skip
            return
        self.source.capabilities = capabilities
        tell_capabilities(self.report, capabilities, refusals)
        kept = await self._clinics(capabilities)
        self.report.capabilities = [*capabilities.lines(), f"clinic directory: {kept}"]
        now = clock()
        self.report.notes.append(
            f"free slots counted over the {WINDOW.days} days from "
            f"{to_montreal(now).isoformat(timespec='minutes')} (the API's default window), "
            "read day by day as the adapter reads them"
        )
        window = await tally_window(self.source, self.report, now)
        if window is not None:
            await searches(self.source, self.report, window)
        self._other_problems()

    def _other_problems(self) -> None:
        """The adapter's problems the checks above do not already tell."""
        for found in self.source.problems:
            if found.code in _TOLD:
                continue
            tell = (
                self.report.failed if found.severity is ProblemSeverity.LOSS else self.report.warned
            )
            tell(
                "problem", f"{found.code}: {found.message}", "see sources/fhir/README.md, Problems"
            )

    # -- 1. the first search, and the credentials ------------------------------------

    async def _send(self, method: str, url: str, data: Any = None, *, key: bool = True) -> _Answer:
        """One request as the adapter sends it (redirects not followed), its body capped;
        ``SourceError`` for what the transport maps (unreachable, too large...)."""
        config = self.config
        headers = {"Accept": "application/fhir+json"}
        if key and config.credentials:
            headers["Authorization"] = f"Bearer {config.credentials}"
        timeout = aiohttp.ClientTimeout(
            total=config.timeout_s,
            sock_connect=config.effective_connect_timeout_s,
            sock_read=config.effective_read_timeout_s,
        )
        started = time.perf_counter()
        with map_errors(config.id, timeout):
            async with self.source.session.request(
                method, url, data=data, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                body = await read_capped(response, config.id)
                return _Answer(
                    response.status,
                    response.content_type,
                    body,
                    (time.perf_counter() - started) * 1000,
                )

    async def _contact(self) -> bool:
        """One Slot search of one free slot: False (with one failed check) when the server
        cannot be used at all."""
        report, url = self.report, f"{self.base}/Slot/_search"
        search = [("status", "free"), ("_count", "1")]
        asked = f"a Slot search (POST {url})"
        try:
            answer = await self._send("POST", url, search)
        except AnswerTooLarge as exc:
            report.failed("reachable", f"{asked}: {exc.message}", "answer _count=1 with one slot")
            return False
        except SourceError as exc:
            report.failed(
                "reachable", f"{asked}: {exc.message}",
                "make the URL answer from this network (check the URL, DNS, the firewall)",
            )  # fmt: skip
            return False
        if answer.status in (401, 403):
            given = self.config.credentials_env
            if self.config.credentials:
                report.failed(
                    "auth", f"{asked} refused the credentials in ${given} (HTTP {answer.status})",
                    f"check the token in ${given}; it is sent as Authorization: Bearer",
                )  # fmt: skip
            else:
                report.failed(
                    "auth", f"{asked} needs credentials (HTTP {answer.status})", _BEARER_FIX
                )
            return False
        body = answer.json()
        if not 200 <= answer.status < 300:
            said = ""
            if (refusal := refusal_for(self.config.id, answer.status, answer.body)) is not None:
                said = f": {redact_for_log(refusal.diagnostics)}" if refusal.diagnostics else ""
            moved = 300 <= answer.status < 400
            report.failed(
                "reachable",
                f"{asked} answered HTTP {answer.status}{said}",
                "give the final URL: redirects are not followed"
                if moved
                else "give the FHIR R4 base URL, of a server with Slot search by POST "
                "([base]/Slot/_search, status=free)",
            )
            return False
        if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
            report.failed(
                "reachable",
                f"the URL does not answer FHIR: {asked} answered {answer.kind()}, "
                "not a FHIR Bundle",
                "give the FHIR R4 base URL (the one [base]/metadata and [base]/Slot are under)",
            )
            return False
        report.passed("reachable", f"{asked} answered a Bundle in {answer.ms:.0f} ms")
        await self._credentials(url, search)
        return True

    async def _credentials(self, url: str, search: list[tuple[str, str]]) -> None:
        if not self.config.credentials:
            self.report.passed("auth", "none given, none needed")
            return
        try:
            bare = await self._send("POST", url, search, key=False)
            open_ = 200 <= bare.status < 300
        except SourceError:
            open_ = False
        sent = f"the token in ${self.config.credentials_env} is sent and accepted"
        if open_:
            self.report.passed("auth", f"{sent}; the server answers without it too")
            self.report.notes.append(
                "the server answered a Slot search without credentials: the token is not needed"
            )
        else:
            self.report.passed("auth", f"{sent}, and needed")

    # -- 2. the CapabilityStatement --------------------------------------------------

    async def _metadata(self) -> None:
        url = f"{self.base}/metadata"
        fix = (
            f"serve your CapabilityStatement at {url}, as FHIR R4 requires (the gateway "
            "probes what it needs either way)"
        )
        try:
            answer = await self._send("GET", url)
        except SourceError as exc:
            self.report.warned("metadata", f"GET {url}: {exc.message}", fix)
            return
        body = answer.json()
        if answer.status != 200 or not isinstance(body, dict):
            said = f"HTTP {answer.status}" if answer.status != 200 else answer.kind()
            self.report.warned("metadata", f"no CapabilityStatement at /metadata ({said})", fix)
            return
        if body.get("resourceType") != "CapabilityStatement":
            self.report.warned(
                "metadata", f"no CapabilityStatement at /metadata ({answer.kind()})", fix
            )
            return
        version = body.get("fhirVersion")
        software = body.get("software")
        name = software.get("name") if isinstance(software, dict) else None
        by = f", {name[:60]}" if isinstance(name, str) and name.strip() else ""
        if not isinstance(version, str):
            self.report.warned(
                "metadata",
                f"a CapabilityStatement{by} without fhirVersion",
                "state fhirVersion 4.0.1 in your CapabilityStatement",
            )
        elif not version.startswith("4.0."):
            self.report.warned(
                "metadata",
                f"a CapabilityStatement of FHIR {version[:20]}{by}: the gateway reads R4 (4.0.x)",
                "serve FHIR R4 (fhirVersion 4.0.1); the searches below tell what is read",
            )
        else:
            self.report.passed("metadata", f"a CapabilityStatement of FHIR {version}{by}")

    # -- 3. the clinics, read whole as the adapter keeps them ------------------------

    async def _clinics(self, found: Capabilities) -> str:
        """The clinics read whole, as the adapter keeps them: how many, where."""
        directory = self.source.directory
        page_size = min(PAGE_SIZE, self.source.options.page_size)
        try:
            await directory.load(
                self.source.client,
                page_size=page_size,
                max_pages=MAX_PAGES,
                offset_paging=found.offset_paging,
            )
        except SourceError as exc:
            self.report.warned(
                "clinics", f"the Locations could not be read whole: {exc.message}",
                "make Location searches page to the end",
            )  # fmt: skip
            return "not kept (searched per request)"
        locations = directory.locations
        if locations is None:
            self.report.warned(
                "clinics", "the Locations could not be read whole (no way past a page): "
                "each search asks the server", "send next links on Location searches",
            )  # fmt: skip
            return "not kept (searched per request)"
        places = directory.tally.places
        detail = f"{len(locations)} Locations read whole"
        detail += f", {places.outside} outside Quebec (not served)" if places.outside else ""
        if places.no_position or places.approximate:
            self.report.warned(
                "clinics",
                f"{detail}; without a position: {places.approximate} placed at their city's "
                f"centre (distances approximate), {places.no_position} served by every search "
                "but near-me",
                "give every Location a position (latitude, longitude)",
            )
        else:
            self.report.passed("clinics", detail)
        return f"{len(locations)} kept"
