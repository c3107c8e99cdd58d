"""The REST/JSON API's answers as they come, for ``sources check``: statuses, headers and
bodies the adapter's own calls (retried, mapped to errors) would not show.

    api = RawApi(source)
    answer, page = await api.page("disponibilites", params, number=1, limit=25)
    api.throttled  # the Retry-After of every 429 seen

Each GET is sent as the adapter sends it (its key header, its timeouts, no redirect
followed, the body capped). A 429 is waited out once, its ``Retry-After`` if it is short,
unless the caller asks to see it (``wait=False``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from sources.errors import SourceBadResponse
from sources.rest_json.payload import ItemReader, read_page
from sources.transport.body import read_capped
from sources.transport.failures import map_errors, retry_after, sanitize_diagnostics

if TYPE_CHECKING:
    from sources.rest_json.adapter import RestJsonSource
    from sources.rest_json.payload import Page

__all__ = ["LONGEST_WAIT_S", "Answer", "RawApi"]

LONGEST_WAIT_S = 5.0  # a Retry-After waited out, at most


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    retry_after: str | None

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None

    def said(self) -> str:
        """The API's own ``erreur``, made safe, for the detail of a check."""
        body = self.json()
        text = body.get("erreur") if isinstance(body, dict) else None
        return f": {sanitize_diagnostics(text)[:200]}" if isinstance(text, str) else ""


class RawApi:
    """One source's API, called as its adapter calls it, answers kept as they came."""

    def __init__(self, source: RestJsonSource) -> None:
        self.source = source
        self.config = source.config
        self.base = source.config.url.rstrip("/")
        self.header = source.options.api_key_header
        options = source.options
        self.reader = ItemReader(
            source.id, options.clinic_permit_system, options.physician_licence_system
        )
        self.throttled: list[str | None] = []  # the Retry-After of every 429 seen
        self.sent = 0

    async def get(
        self, resource: str, params: list[tuple[str, str]], *, key: bool = True, wait: bool = True
    ) -> Answer:
        """One GET; a 429 is waited out once (its short Retry-After) unless ``wait`` is
        False. ``SourceError`` for what the transport maps (unreachable, too large...)."""
        answer = await self._once(resource, params, key=key)
        pause = retry_after(answer.retry_after) if answer.status == 429 else None
        if wait and pause is not None and pause <= LONGEST_WAIT_S:
            await asyncio.sleep(pause)
            answer = await self._once(resource, params, key=key)
        return answer

    async def page(
        self, resource: str, params: list[tuple[str, str]], number: int, limit: int
    ) -> tuple[Answer, Page | None]:
        """Page ``number`` of a listing and its envelope; None when it is not one."""
        answer = await self.get(resource, [*params, ("page", str(number)), ("limite", str(limit))])
        if answer.status != 200:
            return answer, None
        try:
            return answer, read_page(self.source.id, resource, answer.json())
        except SourceBadResponse:
            return answer, None

    async def _once(self, resource: str, params: list[tuple[str, str]], *, key: bool) -> Answer:
        config = self.config
        headers = {"Accept": "application/json"}
        if key and config.credentials:
            headers[self.header] = config.credentials
        timeout = aiohttp.ClientTimeout(
            total=config.timeout_s,
            sock_connect=config.effective_connect_timeout_s,
            sock_read=config.effective_read_timeout_s,
        )
        self.sent += 1
        url = f"{self.base}/{resource}"
        with map_errors(config.id, timeout):
            async with self.source.session.get(
                url, params=params, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                body = await read_capped(response, config.id)
                answer = Answer(
                    response.status,
                    response.content_type,
                    body,
                    response.headers.get("Retry-After"),
                )
        if answer.status == 429:
            self.throttled.append(answer.retry_after)
        return answer
