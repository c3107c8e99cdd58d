"""``GET /go/{slot_id}``: a patient following a slot's link, through the gateway.

The slot is checked against its booking source first (``resolvers.checks.hand_off``,
which counts the hand-off for that source's phantom-slot rate). Then:

- free, or its source cannot tell (``UNKNOWN``), with an ``http(s)`` booking link of
  its own: ``303 See Other`` to that link (never another scheme: a hostile feed's
  ``javascript:`` or ``data:`` link is not followed, and the slot is shown as below);
- gone, or without a usable link: a page (HTML for a browser, JSON when asked) with
  the slot's state, its booking phone when it has one, and its clinic's next free
  slots, each with its own hand-off link.

Nothing here is cached (``Cache-Control: no-store``), and the booking site is not told
where the patient came from (``Referrer-Policy: no-referrer``). A request over its
rate (a hand-off costs ``CHECK_COST`` requests: it calls a booking source past every
cache) gets the GraphQL route's 429; an id that is not a slot's, a 400 saying so.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from edge.services import services_of
from resolvers import checks
from resolvers.context import RequestContext
from resolvers.errors import UserInputError
from resolvers.ids import to_global_id
from schema.error_codes import ErrorCode, envelope
from sources.records import SlotState
from sources.timeutil import zone_info

if TYPE_CHECKING:
    from starlette.requests import Request

    from sources.search import FoundSlot

__all__ = ["hand_off", "web_link"]

NEXT_SLOTS = 5
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
MAX_LINK = 2048


def web_link(link: str | None) -> str | None:
    """``link`` when it is an absolute http(s) URL a browser may be sent to, else None."""
    if not link or len(link) > MAX_LINK or any(c.isspace() or ord(c) < 32 for c in link):
        return None
    try:
        parts = urlsplit(link)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return link


async def hand_off(request: Request) -> Response:
    services = services_of(request.app)
    refused = await services.rate_guard.check(request, checks.CHECK_COST)
    if refused is not None:
        return refused
    context = RequestContext(
        pool=services.pool,
        now=services.settings.clock(),
        fanout_deadline_s=services.settings.fanout_deadline_s,
    )
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        checked = await checks.hand_off(context, request.path_params["slot_id"])
    except UserInputError as error:
        if wants_json:
            body = envelope(ErrorCode.BAD_USER_INPUT, error.message)
            return Response(body, 400, _HEADERS, media_type="application/json")
        return HTMLResponse(_page("Lien invalide", escape(error.message)), 400, _HEADERS)
    found = checked.found
    link = web_link(found.record.booking_url) if found is not None else None
    if checked.state is not SlotState.GONE and link is not None:
        return RedirectResponse(link, status_code=303, headers=_HEADERS)
    others = await checks.instead(context, checked, NEXT_SLOTS)
    phone = found.record.booking_phone if found is not None else None
    if wants_json:
        return JSONResponse(
            {
                "id": to_global_id("Slot", checked.key),
                "state": checked.state.value,
                "bookingPhone": phone,
                "nextSlots": [_slot_json(s) for s in others],
            },
            headers=_HEADERS,
        )
    return HTMLResponse(_html(checked.state, phone, others), headers=_HEADERS)


def _slot_json(slot: FoundSlot) -> dict[str, object]:
    slot_id = to_global_id("Slot", slot.key)
    return {
        "id": slot_id,
        "start": slot.record.start.isoformat(),
        "end": slot.record.end.isoformat(),
        "clinic": slot.clinic.name,
        "handOff": f"/go/{quote(slot_id, safe='')}",
        "bookingPhone": slot.record.booking_phone,
    }


def _html(state: SlotState, phone: str | None, others: list[FoundSlot]) -> str:
    title = "Ce rendez-vous vient d'être pris" if state is SlotState.GONE else "Rendez-vous"
    lines = []
    if phone:
        lines.append(f"<p>Téléphone : {escape(phone)}</p>")
    if others:
        lines.append("<p>Prochaines disponibilités à cette clinique :</p><ul>")
        for slot in others:
            item = _slot_json(slot)
            # In the clinic's own time, as a patient reads a clock there.
            local = slot.record.start.astimezone(zone_info(slot.clinic.time_zone))
            when = local.strftime("%Y-%m-%d %H:%M")
            lines.append(
                f'<li><a href="{escape(str(item["handOff"]))}">{escape(when)}</a> '
                f"{escape(slot.clinic.name)}</li>"
            )
        lines.append("</ul>")
    else:
        lines.append("<p>Aucune autre disponibilité à cette clinique pour le moment.</p>")
    return _page(title, "".join(lines))


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
