"""Fault knobs for the demo booking systems, so tests and benchmarks can break them.

A spec is a comma-separated list of ``key:value`` (or a bare ``hang``):

    latency:D      answer every request D later (D: a number with ms or s)
    jitter:D       plus a uniform random delay in [0, D)
    errors:P       answer a fraction P (0..1) of requests with 503
    malformed:P    answer a fraction P with a corrupt body (status 200)
    ratelimit:R    above R requests/s, answer 429 with Retry-After
    hang           accept the connection and never answer

``python app.py --demo-faults demo-rest=latency:50ms,errors:0.2 --demo-faults demo-fhir=hang``;
options given twice for the same source merge (the later value wins per key).
``/_stats`` is never faulted.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace

from aiohttp import web

FAULTS_HELP = (
    "inject faults: latency:D, jitter:D, errors:P, malformed:P, ratelimit:R, hang "
    "(e.g. latency:50ms,errors:0.2)"
)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)$")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Faults:
    latency_s: float = 0.0
    jitter_s: float = 0.0
    errors: float = 0.0
    malformed: float = 0.0
    ratelimit_rps: float | None = None
    hang: bool = False

    def __bool__(self) -> bool:
        return self != Faults()

    def to_spec(self) -> str:
        """The spec that parses back to these faults (for a child process's argv)."""
        parts = []
        if self.latency_s:
            parts.append(f"latency:{self.latency_s * 1000:g}ms")
        if self.jitter_s:
            parts.append(f"jitter:{self.jitter_s * 1000:g}ms")
        if self.errors:
            parts.append(f"errors:{self.errors:g}")
        if self.malformed:
            parts.append(f"malformed:{self.malformed:g}")
        if self.ratelimit_rps is not None:
            parts.append(f"ratelimit:{self.ratelimit_rps:g}")
        if self.hang:
            parts.append("hang")
        return ",".join(parts)


def _duration(key: str, text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{key} needs a duration such as 50ms or 2s, got {text!r}")
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


def _fraction(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        raise ValueError(f"{key} needs a fraction between 0 and 1, got {text!r}")
    return value


def parse_faults(spec: str, base: Faults | None = None) -> Faults:
    """Faults from a spec (merged over ``base``); ``ValueError`` says what is wrong."""
    faults = base or Faults()
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, _, value = item.partition(":")
        if key == "hang" and not value:
            faults = replace(faults, hang=True)
        elif key == "latency":
            faults = replace(faults, latency_s=_duration(key, value))
        elif key == "jitter":
            faults = replace(faults, jitter_s=_duration(key, value))
        elif key == "errors":
            faults = replace(faults, errors=_fraction(key, value))
        elif key == "malformed":
            faults = replace(faults, malformed=_fraction(key, value))
        elif key == "ratelimit":
            try:
                rate = float(value)
            except ValueError:
                rate = math.nan
            if not (math.isfinite(rate) and rate > 0):
                raise ValueError(f"ratelimit needs requests per second above 0, got {value!r}")
            faults = replace(faults, ratelimit_rps=rate)
        else:
            known = "latency, jitter, errors, malformed, ratelimit, hang"
            raise ValueError(f"unknown fault {item!r} (known: {known})")
    return faults


def faults_argument(spec: str) -> Faults:
    """``argparse`` type for a ``--faults SPEC`` option."""
    import argparse

    try:
        return parse_faults(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_demo_faults(values: Iterable[str], known: Iterable[str]) -> dict[str, Faults]:
    """``["demo-rest=latency:50ms", ...]`` -> faults per source id (merged per source)."""
    known = tuple(known)
    out: dict[str, Faults] = {}
    for value in values:
        source, sep, spec = value.partition("=")
        if not sep or not spec:
            raise ValueError(f"expected SOURCE=SPEC such as demo-rest=latency:50ms, got {value!r}")
        if source not in known:
            raise ValueError(f"unknown demo source {source!r} (known: {', '.join(known)})")
        out[source] = parse_faults(spec, out.get(source))
    return out


class _Bucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.at = time.monotonic()

    def take(self) -> float:
        """0 when a request may pass, else the seconds until one may."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def install(app: web.Application, faults: Faults, *, seed: int | None = None) -> None:
    """Add the faults to a demo app (after its own middlewares, so /_stats still counts)."""
    if not faults:
        return
    rng = random.Random(seed)
    bucket = _Bucket(faults.ratelimit_rps) if faults.ratelimit_rps else None

    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/_stats":
            return await handler(request)
        if faults.hang:
            await asyncio.sleep(3600)
        delay = faults.latency_s + (rng.uniform(0, faults.jitter_s) if faults.jitter_s else 0)
        if delay:
            await asyncio.sleep(delay)
        if bucket is not None and (wait := bucket.take()):
            return web.json_response(
                {"error": "rate limited"}, status=429, headers={"Retry-After": str(math.ceil(wait))}
            )
        if faults.errors and rng.random() < faults.errors:
            return web.json_response({"error": "injected failure"}, status=503)
        response = await handler(request)
        if faults.malformed and rng.random() < faults.malformed:
            return web.Response(
                body=b'{"resourceType": "Bundle", "entry": [{"resou',
                status=200,
                content_type=response.content_type or "application/json",
            )
        return response

    app.middlewares.append(inject)
