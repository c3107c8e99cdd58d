"""``sources check`` for the REST/JSON API: what the adapter would make of it, as checks
its vendor can act on (``sources.check`` holds the report and runs this). It covers the
demo's API format only (``examples/demo_rest/server.py``): the report says so.

In order:

1. one slot listing as the adapter asks it (``GET /disponibilites``, its key header):
   the API answers, in the paging envelope, and takes the key (or needs none); once more
   without the key, to say whether it is needed. Failing here (unreachable, another
   format, a refused key) is one failed check and the end;
2. the envelope (``page``, ``pages``, ``limite``, ``total``, consistent);
3. limits: the adapter's largest page (its ``page_size`` option) honoured, capped, or
   refused;
4. paging: four pages of 25 make up the page of 100, in order, without repeats or gaps,
   and a page past the last is empty;
5. the fields: the items of that page of 100, their clinics and physicians, read by the
   adapter's own readers (``payload``), what cannot be read counted by reason;
6. every free slot of the window, through ``RestJsonSource.search_slots``, one day at a
   time, against the API's own ``total``: what is not served is read again item by item
   to say why;
7. 429: one burst of ten small concurrent requests, no more. A 429 seen there (or
   before) must carry ``Retry-After``; the request after waiting it must be answered.
   No 429 seen: said so, and not exercised further.

The requests of steps 1 to 5 and 7 go through ``raw`` (statuses and headers as they came,
a short 429 waited out once); step 6's are the adapter's own. A failure past step 1 that
the transport maps (a timeout...) ends the check as one more failed check.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sources.errors import AnswerTooLarge, SourceError
from sources.problems import ProblemCode
from sources.rest_json.adapter import MAX_PAGES, RestJsonSource, local_bounds
from sources.rest_json.raw import LONGEST_WAIT_S, Answer, RawApi
from sources.rest_json.tally import FORMAT_FIX, WINDOW, check_fields, tally_window
from sources.timeutil import to_montreal
from sources.transport.failures import retry_after

if TYPE_CHECKING:
    from sources.base import SourceConfig, SourceContext
    from sources.check import CheckReport
    from sources.rest_json.payload import Page

__all__ = ["SCOPE", "check_source", "clock"]

SCOPE = "covers the demo's API format only (examples/demo_rest/server.py)"
_SMALL, _LARGE = 25, 100  # four small pages make up one large
_BURST = 10
_PAGING_FIX = "order listings by a stable key (debut, then id) and cut pages from it"


def clock() -> datetime:
    """Now, where the window of the slots counted starts (tests pin it)."""
    return datetime.now(UTC)


async def check_source(config: SourceConfig, context: SourceContext, report: CheckReport) -> None:
    """The REST/JSON checks (a ``sources.check.Checker``); see the module docstring."""
    report.notes.append(SCOPE)
    await _Check(RestJsonSource(config, context), report, clock()).run()


class _Check:
    def __init__(self, source: RestJsonSource, report: CheckReport, now: datetime) -> None:
        self.source = source
        self.report = report
        self.config = source.config
        self.api = RawApi(source)
        self.now = now
        low, high = local_bounds(now, now + WINDOW)  # as the adapter asks, for every zone
        self.window = [
            ("statut", "libre"),
            ("debut_min", low.isoformat(timespec="seconds")),
            ("debut_max", high.isoformat(timespec="seconds")),
        ]

    async def run(self) -> None:
        first = await self._contact()
        if first is None:
            return
        self.report.notes.append(
            f"free slots counted over the {WINDOW.days} days from "
            f"{to_montreal(self.now).isoformat(timespec='minutes')} (the API's default window)"
        )
        limits = self._envelope(first)
        limits.append(await self._limits())
        sample = await self._paging()
        limits.append("paging: " + [c for c in self.report.checks if c.name == "paging"][-1].detail)
        if sample is not None:
            await check_fields(self.api, self.report, sample)
        await tally_window(self.api, self.report, self.now)
        limits.append(await self._rate_limit())
        for found in self.source.problems:  # the places of the clinics the searches met
            if found.code != ProblemCode.OUTSIDE_QUEBEC:  # counted with the slots
                self.report.warned("places", found.message, "give every clinic its lat and lng")
        self.report.capabilities = limits
        page_size = self.source.options.page_size
        self.report.plan = [
            "slots: GET /disponibilites, every filter the API knows sent (cliniques, medecins, "
            f"types, region, lat/lng/rayon_km), pages of up to {page_size} read as far as "
            f"the query needs (at most {MAX_PAGES})",
            "clinics and physicians: GET /cliniques?ids= and /medecins?ids=, batched, concurrently",
            "times: Montreal local time without offset, to the second",
        ]

    # -- 1. the first listing, and the key ---------------------------------------------

    async def _contact(self) -> Page | None:
        report, asked = self.report, f"GET {self.api.base}/disponibilites"
        try:
            answer, page = await self.api.page("disponibilites", self.window, 1, 1)
        except AnswerTooLarge as exc:
            report.failed("reachable", f"{asked}: {exc.message}", "answer limite=1 with one item")
            return None
        except SourceError as exc:
            report.failed(
                "reachable", f"{asked}: {exc.message}",
                "make the URL answer from this network (check the URL, DNS, the firewall)",
            )  # fmt: skip
            return None
        if answer.status in (401, 403):
            given, sent = self.config.credentials_env, f"sent in the {self.api.header} header"
            said = f"HTTP {answer.status}{answer.said()}"
            if self.config.credentials:
                report.failed(
                    "auth", f"{asked} refused the key in ${given} ({said})",
                    f"check the key in ${given}; it is {sent}",
                )  # fmt: skip
            else:
                report.failed(
                    "auth", f"{asked} needs a key ({said})",
                    f"give the key in --credentials-env NAME ({sent})",
                )  # fmt: skip
            return None
        if answer.status != 200:
            report.failed(
                "reachable", f"{asked} answered HTTP {answer.status}{answer.said()}",
                "give the API's base URL (the one /disponibilites, /cliniques and /medecins "
                "are under)",
            )  # fmt: skip
            return None
        if page is None:
            body = answer.json()
            what = f"{answer.content_type} that is not JSON" if body is None else "other JSON"
            report.failed(
                "reachable", f"{asked} answered {what}, not the paging envelope", FORMAT_FIX
            )
            return None
        report.passed("reachable", f"{asked} answered the paging envelope")
        await self._key()
        return page

    async def _key(self) -> None:
        if not self.config.credentials:
            self.report.passed("auth", "none given, none needed")
            return
        try:
            bare = await self.api.get("disponibilites", [*self.window, ("limite", "1")], key=False)
            open_ = bare.status == 200
        except SourceError:
            open_ = False
        sent = f"the key in ${self.config.credentials_env} is sent ({self.api.header}) and accepted"
        if open_:
            self.report.passed("auth", f"{sent}; the API answers without it too")
            self.report.notes.append("the API answered without its key: the key is not needed")
        else:
            self.report.passed("auth", f"{sent}, and needed")

    # -- 2, 3. the envelope and the largest page ---------------------------------------

    def _envelope(self, first: Page) -> list[str]:
        missing = [k for k in ("page", "pages", "total") if getattr(first, k) is None]
        if missing:
            self.report.warned(
                "envelope", f"no {', '.join(missing)}: a short page is taken for the last",
                "send page, pages, limite and total in every list answer",
            )  # fmt: skip
        elif first.pages != math.ceil((first.total or 0) / 1):
            self.report.warned(
                "envelope", f"pages={first.pages} for total={first.total} at limite=1",
                "send pages = ceil(total / limite)",
            )  # fmt: skip
        else:
            self.report.passed("envelope", "page, pages, limite and total, consistent")
        return [f"envelope: {'without ' + ', '.join(missing) if missing else 'complete'}"]

    async def _limits(self) -> str:
        size = self.source.options.page_size
        fix = f"accept limite up to {size}, or set page_size in [sources.options] to your largest"
        answer, page = await self.api.page("disponibilites", self.window, 1, size)
        if page is None:
            self.report.failed(
                "limits", f"limite={size} answered HTTP {answer.status}{answer.said()}", fix
            )
            return f"largest page: limite={size} refused"
        body = answer.json()
        echoed = body.get("limite") if isinstance(body, dict) else None
        due = min(size, page.total) if page.total is not None else None
        if isinstance(echoed, int) and 0 < echoed < size:
            self.report.warned(
                "limits", f"limite={size} asked, capped at {echoed}: more calls per search",
                f"set page_size = {echoed} in [sources.options], or accept limite={size}",
            )  # fmt: skip
            return f"largest page: capped at {echoed}"
        if due is not None and len(page.items) < due:
            self.report.failed(
                "limits", f"limite={size} asked, {len(page.items)} items came of the "
                f"{due} due, with no word of a cap: the pages after would skip the rest", fix,
            )  # fmt: skip
            return f"largest page: {len(page.items)} items for limite={size}"
        self.report.passed("limits", f"limite={size} honoured")
        return f"largest page: limite={size} honoured"

    # -- 4, 5. paging and fields ---------------------------------------------------------

    async def _paging(self) -> list[object] | None:
        """Four pages of 25 against one of 100; the page of 100's items, for the fields."""
        _, large = await self.api.page("disponibilites", self.window, 1, _LARGE)
        if large is None:
            self.report.failed("paging", f"limite={_LARGE} was not answered", FORMAT_FIX)
            return None
        small: list[object] = []
        for number in range(1, _LARGE // _SMALL + 1):
            answer, page = await self.api.page("disponibilites", self.window, number, _SMALL)
            if page is None:
                self.report.failed(
                    "paging", f"page {number} answered HTTP {answer.status}", _PAGING_FIX
                )
                return large.items
            if page.page is not None and page.page != number:
                self.report.failed(
                    "paging", f"asked for page {number}, got page {page.page}", _PAGING_FIX
                )
                return large.items
            small += page.items
        ids, once = _ids(small), _ids(large.items)
        repeated = len(ids) - len(set(ids))
        # A large page capped by the API (told under limits) is compared as far as it goes.
        if repeated or ids[: len(once)] != once:
            gaps = len(set(once) - set(ids))
            self.report.failed(
                "paging", f"four pages of {_SMALL} do not make up the page of {_LARGE}: "
                f"{repeated} repeated, {gaps} missing", _PAGING_FIX,
            )  # fmt: skip
            return large.items
        if len(once) <= _SMALL:
            self.report.warned(
                "paging", f"not exercised: {len(once)} free slots in the window",
                "publish free slots (test data will do) and check again",
            )  # fmt: skip
            return large.items
        past = (large.pages or 0) + 1 if large.pages is not None else None
        if past is not None:
            _, after = await self.api.page("disponibilites", self.window, past, _LARGE)
            if after is None or after.items:
                self.report.warned(
                    "paging", f"page {past}, past the last, is not an empty list",
                    "answer a page past the last with an empty resultats",
                )  # fmt: skip
                return large.items
        self.report.passed(
            "paging", f"four pages of {_SMALL} make up the page of {_LARGE}, no repeat, no gap"
        )
        return large.items

    # -- 7. 429 -------------------------------------------------------------------------

    async def _rate_limit(self) -> str:
        params = [*self.window, ("page", "1"), ("limite", "1")]
        burst = await asyncio.gather(
            *(self.api.get("disponibilites", params, wait=False) for _ in range(_BURST)),
            return_exceptions=True,
        )
        refused = sum(isinstance(a, Answer) and a.status == 429 for a in burst)
        if not self.api.throttled:
            self.report.passed(
                "429", f"none in {self.api.sent} requests, {_BURST} of them at once: the rate "
                "limit was not reached (not exercised further)",
            )  # fmt: skip
            return "429: not seen"
        waits = [retry_after(v) for v in self.api.throttled]
        if any(w is None for w in waits):
            self.report.warned(
                "429", f"{len(self.api.throttled)} answers 429 without a usable Retry-After: the "
                "gateway backs off at random", "send Retry-After (seconds) with every 429",
            )  # fmt: skip
            return "429: without Retry-After"
        wait = max(w for w in waits if w is not None)
        seen = f"{len(self.api.throttled)} answers 429 ({refused} of a burst of {_BURST})"
        if wait >= self.config.timeout_s:
            self.report.warned(
                "429", f"{seen}, Retry-After {wait:g} s: no shorter than the source's timeout "
                f"({self.config.timeout_s:g} s), the gateway reports the API unavailable "
                "instead of waiting", "keep Retry-After short, or raise the gateway's rate",
            )  # fmt: skip
            return f"429: Retry-After {wait:g} s"
        if wait > LONGEST_WAIT_S:
            self.report.passed(
                "429", f"{seen}, Retry-After {wait:g} s: within the source's timeout, the "
                "gateway waits it out (not waited out here)",
            )  # fmt: skip
            return f"429: Retry-After {wait:g} s"
        await asyncio.sleep(wait)
        after = await self.api.get("disponibilites", params, wait=False)
        if after.status != 200:
            self.report.warned(
                "429", f"{seen}; after waiting Retry-After ({wait:g} s), HTTP {after.status}",
                "answer once Retry-After has passed",
            )  # fmt: skip
            return f"429: Retry-After {wait:g} s, not honoured"
        self.report.passed(
            "429", f"{seen}, Retry-After {wait:g} s; after waiting it, the next request "
            "was answered: the gateway waits it out and retries",
        )  # fmt: skip
        return f"429: Retry-After {wait:g} s, honoured"


def _ids(items: list[object]) -> list[object]:
    return [i.get("id") if isinstance(i, dict) else None for i in items]
