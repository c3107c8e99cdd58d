"""One FHIR server's HTTP side: Bundles fetched and checked, and a search's pages.

    client = FhirClient(config, session, logger)
    pages = client.pages("Slot", params, max_pages=50)
    while (bundle := await pages.next()) is not None:
        ...
    pages.complete  # True once the server has nothing more for this search

A search is paged by ``Bundle.link[next]`` when the server sends one, else by
``_offset`` (many servers, Medplum's engine among them, send no links at all).
"No next link" is never taken for "no more" while ``Bundle.total`` says more, or
while a page came back full without a total: the next page is asked by
``_offset``, and a page that brings nothing new (the server ignores ``_offset``)
leaves the search ``incomplete``: the caller then says its answer is partial.

Next links are followed only on the origin of ``config.url``, never twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from yarl import URL

from sources.errors import SourceBadResponse
from sources.transport.failures import shape_error
from sources.transport.http import request_json

if TYPE_CHECKING:
    import logging

    import aiohttp

    from sources.base import SourceConfig

__all__ = ["FhirClient", "Pages", "bundle_total", "matches_of"]

_MAX_URL = 64 * 1024


class FhirClient:
    """The HTTP calls of one FHIR source, with its credentials and its timeouts."""

    def __init__(
        self, config: SourceConfig, session: aiohttp.ClientSession, logger: logging.Logger
    ) -> None:
        self.config = config
        self.session = session
        self.logger = logger
        self.base = config.url.rstrip("/")
        self.origin: URL | None
        try:
            self.origin = URL(self.base).origin()
        except ValueError:
            self.origin = None  # every call then fails with SourceBadResponse

    @property
    def source_id(self) -> str:
        return self.config.id

    async def json(
        self,
        method: str,
        url: str,
        data: list[tuple[str, str]] | None = None,
        absent: frozenset[int] = frozenset(),
    ) -> Any:
        """One call's decoded JSON body, whatever its shape; None for a status in
        ``absent``."""
        if self.origin is None:
            raise SourceBadResponse(self.source_id, "configured URL is not an absolute http(s) URL")
        headers = {"Accept": "application/fhir+json"}
        if self.config.credentials:
            headers["Authorization"] = f"Bearer {self.config.credentials}"
        return await request_json(
            self.session,
            self.source_id,
            method,
            url,
            timeout_s=self.config.timeout_s,
            connect_timeout_s=self.config.effective_connect_timeout_s,
            read_timeout_s=self.config.effective_read_timeout_s,
            data=data,
            headers=headers,
            absent=absent,
        )

    async def bundle(
        self, method: str, url: str, data: list[tuple[str, str]] | None = None
    ) -> dict[str, Any]:
        """A Bundle, or ``SourceBadResponse`` for any other answer."""
        body = await self.json(method, url, data)
        if not isinstance(body, dict):
            raise shape_error(
                self.source_id, f"expected a Bundle, got a JSON {type(body).__name__}"
            )
        kind = body.get("resourceType")
        if kind != "Bundle":
            raise shape_error(self.source_id, f"expected a Bundle, got {_short(kind)}")
        if not all(isinstance(body.get(key, []), list) for key in ("entry", "link")):
            raise shape_error(self.source_id, "Bundle.entry or Bundle.link is not a list")
        return body

    async def search(self, resource_type: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        """The first page of a search (``POST [base]/<type>/_search``)."""
        return await self.bundle("POST", f"{self.base}/{resource_type}/_search", params)

    def pages(
        self,
        resource_type: str,
        params: list[tuple[str, str]],
        *,
        max_pages: int,
        offset_paging: bool | None = None,
    ) -> Pages:
        """The pages of one search, read as asked; ``offset_paging`` False: never try it."""
        return Pages(self, resource_type, params, max_pages, offset_paging)

    def follow(self, link: object, visited: set[str]) -> str:
        """The absolute next-page URL, refused off our origin (SSRF) or when seen before."""
        if not isinstance(link, str) or not link.strip() or len(link) > _MAX_URL:
            raise shape_error(self.source_id, "Bundle next link is not a usable URL")
        try:
            url = URL(self.base + "/").join(URL(link.strip()))
            same_origin = url.scheme in ("http", "https") and url.origin() == self.origin
        except (ValueError, TypeError):
            same_origin = False
        if not same_origin:
            raise SourceBadResponse(self.source_id, "next link points outside the source's origin")
        text = str(url)
        if text in visited:
            raise SourceBadResponse(self.source_id, "next links loop")
        visited.add(text)
        return text


class Pages:
    """The pages of one search, one at a time, by next link, else by ``_offset``.

    ``complete``: every page was read; ``incomplete``: the server says there is more
    (``Bundle.total``, or a full page) but gave no way to it; ``offset_ignored``:
    an ``_offset`` page brought nothing new; ``total``: the first page's count.
    """

    def __init__(
        self,
        client: FhirClient,
        resource_type: str,
        params: list[tuple[str, str]],
        max_pages: int,
        offset_paging: bool | None,
    ) -> None:
        self.client = client
        self.resource_type = resource_type
        self.params = params
        self.max_pages = max_pages
        self.offset_paging = offset_paging
        self.total: int | None = None
        self.read = 0  # pages
        self.matches = 0
        self.complete = False
        self.incomplete = False
        self.offset_ignored = False
        self.used_offset = False
        self.capped = False
        self._asked = next((int(v) for k, v in params if k == "_count" and v.isdigit()), None)
        self._seen: set[str] = set()
        self._visited: set[str] = set()
        self._last: dict[str, Any] | None = None

    async def next(self) -> dict[str, Any] | None:
        """The next page, or None once the search is done (``complete`` or not)."""
        if self.complete or self.incomplete or self.capped:
            return None
        if self._last is None:
            bundle = await self.client.search(self.resource_type, self.params)
            self.total = bundle_total(bundle)
            return self._took(bundle)
        link = _next_link(self._last)
        if self.read >= self.max_pages and (link is not None or self._more()):
            self.capped = True
            self.client.logger.warning(
                "stopped after %d pages of %s", self.max_pages, self.resource_type
            )
            return None
        if link is not None:
            url = self.client.follow(link, self._visited)
            return self._took(await self.client.bundle("GET", url))
        if not self._more():
            self.complete = True
            return None
        if self.offset_paging is False:
            self.incomplete = True
            return None
        # No next link, but the server said there is more: ask for it by _offset.
        params = [(k, v) for k, v in self.params if k != "_offset"]
        params.append(("_offset", str(self.matches)))
        bundle = await self.client.search(self.resource_type, params)
        before = self.matches
        page = self._took(bundle)
        if self.matches == before:
            # Nothing new: the same entries again (the server ignores _offset), or an
            # empty page, which ends the search exactly only when no total said more.
            self.offset_ignored = bool(matches_of(bundle, self.resource_type))
            self.incomplete = self.offset_ignored or self.total is not None
            self.complete = not self.incomplete
            return None
        self.used_offset = True
        return page

    def _more(self) -> bool:
        """Whether the server said there is more than what was read, without a link."""
        if self._last is None:
            return True
        if self.total is not None:
            return self.matches < self.total
        page = len(matches_of(self._last, self.resource_type))
        return self._asked is not None and page >= self._asked > 0

    def _took(self, bundle: dict[str, Any]) -> dict[str, Any]:
        self.read += 1
        self._last = bundle
        for resource in matches_of(bundle, self.resource_type):
            rid = resource.get("id")
            key = rid if isinstance(rid, str) else f"#{self.matches}"
            if key not in self._seen:
                self._seen.add(key)
                self.matches += 1
        return bundle


def matches_of(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    """The resources of ``resource_type`` a Bundle holds as matches (not includes)."""
    out = []
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
            continue
        search = entry.get("search")
        if (search.get("mode") if isinstance(search, dict) else None) in (None, "match"):
            out.append(resource)
    return out


def bundle_total(bundle: dict[str, Any]) -> int | None:
    total = bundle.get("total")
    return total if type(total) is int and 0 <= total < 2**31 else None


def _next_link(bundle: dict[str, Any]) -> object:
    """The ``url`` of the ``next`` link, whatever its type (``follow`` checks it), or None."""
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next":
            return link.get("url", "")
    return None


def _short(value: object) -> str:
    return repr(value)[:40] if isinstance(value, str) else type(value).__name__
