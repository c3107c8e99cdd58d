"""``sources check``: what the gateway would make of a booking system, as a report its
vendor can act on, before the system is registered or after.

Each protocol's checks live in its package (``sources/<protocol>/check.py``), as one
coroutine registered in ``sources.adapters.checker_for``::

    async def check_source(
        config: SourceConfig, context: SourceContext, report: CheckReport
    ) -> None: ...

It runs what the adapter would run, against the real upstream, and writes into the
report: each check with its outcome and, unless it passed, what to change; the
capabilities found and the plan chosen; how many free slots the gateway would serve
and how many it would not, by reason. ``run_check`` gives it an aiohttp session whose
requests are timed, so the report also holds the latency of every request the checks
sent (p50/p95), and turns a ``SourceError`` escaping the checks into one failed
check rather than a traceback.

The report never holds what a slot or a location said, only counts and the names of
files and fields: a vendor may send it on.
"""

from __future__ import annotations

import enum
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from sources.errors import SourceError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sources.base import SourceConfig, SourceContext

__all__ = [
    "Check",
    "CheckReport",
    "NotServed",
    "Outcome",
    "percentile",
    "run_check",
]


class Outcome(enum.StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    """One thing checked: ``fix`` says what to change, when it did not pass."""

    name: str
    outcome: Outcome
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class NotServed:
    """Free slots the gateway would not serve, for one reason. ``loss``: they are the
    system's to serve and would be missed (a failed file, a malformed slot); not a
    loss: they are outside what the gateway serves (a location outside Quebec)."""

    reason: str
    slots: int
    loss: bool
    detail: str = ""


@dataclass(slots=True)
class CheckReport:
    """What ``sources check`` found about one booking system."""

    source: str  # the registered id, or the URL when checked before registration
    protocol: str
    url: str
    checks: list[Check] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    served: int | None = None  # free slots the gateway would serve; None: not known
    not_served: list[NotServed] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # scope of the checks, for the reader

    def add(self, name: str, outcome: Outcome, detail: str, fix: str = "") -> Check:
        check = Check(name, outcome, detail, fix)
        self.checks.append(check)
        return check

    def passed(self, name: str, detail: str) -> Check:
        return self.add(name, Outcome.PASS, detail)

    def warned(self, name: str, detail: str, fix: str) -> Check:
        return self.add(name, Outcome.WARN, detail, fix)

    def failed(self, name: str, detail: str, fix: str) -> Check:
        return self.add(name, Outcome.FAIL, detail, fix)

    def not_served_for(self, reason: str, slots: int, *, loss: bool, detail: str = "") -> None:
        if slots:
            self.not_served.append(NotServed(reason, slots, loss, detail))

    @property
    def lost(self) -> int:
        return sum(n.slots for n in self.not_served if n.loss)

    @property
    def exit_code(self) -> int:
        """0: everything the system publishes can be served (warnings allowed); 1:
        slots would be lost, or the system cannot be used."""
        failed = any(c.outcome is Outcome.FAIL for c in self.checks)
        return 1 if failed or self.lost else 0

    def latency(self) -> dict[str, float] | None:
        if not self.latencies_ms:
            return None
        values = sorted(self.latencies_ms)
        return {
            "requests": len(values),
            "p50": round(percentile(values, 50), 1),
            "p95": round(percentile(values, 95), 1),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "protocol": self.protocol,
            "url": self.url,
            "result": "fail" if self.exit_code else "pass",
            "checks": [
                {"name": c.name, "outcome": c.outcome.value, "detail": c.detail, "fix": c.fix}
                for c in self.checks
            ],
            "capabilities": self.capabilities,
            "plan": self.plan,
            "slots": {
                "served": self.served,
                "notServed": [
                    {"reason": n.reason, "slots": n.slots, "loss": n.loss, "detail": n.detail}
                    for n in self.not_served
                ],
            },
            "latencyMs": self.latency(),
            "notes": self.notes,
        }

    def text(self) -> str:
        where = "" if self.source == self.url else f" {self.url}"  # checked by its URL
        lines = [f"{self.source} ({self.protocol}){where}"]
        lines += [f"  note: {n}" for n in self.notes]
        width = max((len(c.name) for c in self.checks), default=0)
        for c in self.checks:
            lines.append(f"  {c.outcome.value:<4}  {c.name:<{width}}  {c.detail}")
            if c.fix and c.outcome is not Outcome.PASS:
                lines.append(f"  {'':<4}  {'':<{width}}  fix: {c.fix}")
        for title, items in (("capabilities", self.capabilities), ("plan", self.plan)):
            if items:
                lines.append(f"  {title}:")
                lines += [f"    {item}" for item in items]
        if self.served is not None:
            lines.append(f"  free slots the gateway would serve: {self.served}")
        for n in self.not_served:
            kind = "lost" if n.loss else "not served"
            said = f" ({n.detail})" if n.detail else ""
            lines.append(f"  free slots {kind}: {n.slots}, {n.reason}{said}")
        timing = self.latency()
        if timing:
            lines.append(
                f"  latency of the {timing['requests']:g} requests sent: "
                f"p50 {timing['p50']:g} ms, p95 {timing['p95']:g} ms"
            )
        counts = {o: sum(c.outcome is o for c in self.checks) for o in Outcome}
        verdict = "FAIL" if self.exit_code else "PASS"
        why = f", {self.lost} free slots would be lost" if self.lost else ""
        lines.append(
            f"  result: {verdict} ({counts[Outcome.PASS]} passed, {counts[Outcome.WARN]} "
            f"warnings, {counts[Outcome.FAIL]} failed{why})"
        )
        return "\n".join(lines)

    def dumps(self) -> str:
        return json.dumps(self.as_json(), indent=2, ensure_ascii=False)


# A protocol's checks (``sources.adapters.checker_for``).
Checker: TypeAlias = "Callable[[SourceConfig, SourceContext, CheckReport], Awaitable[None]]"


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


async def run_check(config: SourceConfig, source: str | None = None) -> CheckReport:
    """Check ``config``'s upstream with its protocol's checker, over a session of its
    own whose requests are timed. A ``SourceError`` the checks did not catch becomes
    one failed check (the system cannot be used), never a traceback."""
    import aiohttp

    from sources.adapters import checker_for
    from sources.base import SourceContext

    report = CheckReport(source or config.id, config.protocol.value, config.url)
    checker: Checker = checker_for(config.protocol)
    timing = aiohttp.TraceConfig()
    started: dict[int, float] = {}

    async def on_start(_s: object, ctx: Any, _p: object) -> None:
        started[id(ctx)] = time.perf_counter()

    async def on_end(_s: object, ctx: Any, _p: object) -> None:
        begun = started.pop(id(ctx), None)
        if begun is not None:
            report.latencies_ms.append((time.perf_counter() - begun) * 1000)

    timing.on_request_start.append(on_start)
    timing.on_request_end.append(on_end)
    logger = logging.getLogger("passerelle.check").getChild(config.id)
    async with aiohttp.ClientSession(
        headers={"User-Agent": "Passerelle/0.1 (sources check)"}, trace_configs=[timing]
    ) as session:
        try:
            await checker(config, SourceContext(session, logger), report)
        except SourceError as exc:
            report.failed(
                "reachable",
                f"the system could not be used: {exc.message}",
                "make the URL answer the protocol's requests from this gateway's network",
            )
    return report
