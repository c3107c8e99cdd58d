"""``GET /go/{slot_id}``: a slot's link checked at its source, then followed or replaced
by its clinic's next slots; hostile links never followed; the phantom-slot rate."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from edge.access_log import WithoutQueryStrings
from edge.handoff import web_link
from examples import demo_rest
from examples.churn import SERVED
from tests.conftest import REST_KEY, TEST_NOW, Gateway, GatewayFactory, rest_definition, serve
from tests.test_slot_check import clinics_of, free_slot, slot_id

PHANTOMS = "{ sources { id phantomSlots { handOffs gone rate } } }"


async def go(gw: Gateway, the_id: str, accept: str = "application/json") -> Any:
    url = gw.url.removesuffix("/graphql") + f"/go/{the_id}"
    return await gw.session.get(url, headers={"Accept": accept}, allow_redirects=False)


async def test_a_free_slot_is_handed_to_its_own_link_and_a_taken_one_to_the_next_slots(
    gateway_for: GatewayFactory, rest_server: TestServer, world: Any
) -> None:
    slot, point = free_slot(rest_server, clinics_of(rest_server, world, "rest"))
    async with gateway_for(rest_definition(rest_server)) as gw:
        the_id = await slot_id(gw, "demo-rest", slot, point)
        async with await go(gw, the_id, "text/html") as free:
            assert free.status == 303
            assert free.headers["Location"] == f"https://rdv.example.org/reserver/dispo-{slot.id}"
            assert free.headers["Cache-Control"] == "no-store"
            assert free.headers["Referrer-Policy"] == "no-referrer"
        rest_server.app[SERVED].set_free(slot, False)
        async with await go(gw, the_id) as gone:
            assert gone.status == 200
            answer = await gone.json()
        assert answer["state"] == "GONE" and answer["id"] == the_id
        offered = answer["nextSlots"]
        assert offered and the_id not in {s["id"] for s in offered}
        assert all(s["handOff"] == f"/go/{s['id']}" for s in offered)
        async with await go(gw, the_id, "text/html") as page:
            html = await page.text()
        assert page.status == 200 and "vient d&#x27;être pris" in html
        assert f'href="/go/{offered[0]["id"]}"' in html
        async with await go(gw, "not-an-id") as bad:
            assert bad.status == 400
            [error] = (await bad.json())["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_hostile_booking_link_is_never_followed(
    gateway_for: GatewayFactory, world: Any
) -> None:
    # A booking system whose links are scripts: the slot is shown, never redirected to.
    app = demo_rest.build_app(world, api_key=REST_KEY, booking_base_url="javascript:alert(1)//")
    async with serve(app) as server:
        slot, point = free_slot(server, clinics_of(server, world, "rest"))
        async with gateway_for(rest_definition(server)) as gw:
            the_id = await slot_id(gw, "demo-rest", slot, point)
            async with await go(gw, the_id, "text/html") as response:
                html = await response.text()
            assert response.status == 200 and "Location" not in response.headers
            assert "javascript" not in html
            assert "Téléphone" in html  # its booking phone instead


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " https://book.example/x",
        "https://book.example/x\n",
        "data:text/html,<script>alert(1)</script>",
        "https:///nohost",
        "//book.example/x",
        "ftp://book.example/x",
        "https://" + "a" * 3000 + ".example/",
    ],
)
def test_only_absolute_http_links_with_a_host_are_followed(link: str) -> None:
    assert web_link(link) is None


def test_plain_booking_links_are_followed() -> None:
    for link in ("https://book.example/s/1?x=1", "http://rdv.example.org/reserver/dispo-1"):
        assert web_link(link) == link


async def test_the_phantom_rate_is_counted_per_source_and_shown_from_five_physicians(
    gateway_for: GatewayFactory, rest_server: TestServer, world: Any
) -> None:
    served = rest_server.app[SERVED]
    # Free slots of distinct physicians, the test's own reading of what the API serves.
    picked: dict[str, Any] = {}
    for clinic_id, latitude, longitude in clinics_of(rest_server, world, "rest"):
        for slot in served.slots_of(clinic_id):
            later = slot.start > TEST_NOW + timedelta(days=1)
            if slot.free and later and slot.physician_id not in picked:
                picked[slot.physician_id] = (slot, (latitude, longitude))
                break
        if len(picked) == 6:
            break
    assert len(picked) == 6
    async with gateway_for(rest_definition(rest_server)) as gw:
        ids = [await slot_id(gw, "demo-rest", s, p) for s, p in picked.values()]
        first_slot = next(iter(picked.values()))[0]
        served.set_free(first_slot, False)  # the first one taken before its patient comes
        for n, the_id in enumerate(ids):
            async with await go(gw, the_id):
                pass
            rates = (await gw.query(PHANTOMS))["data"]["sources"]
            [rest] = [r["phantomSlots"] for r in rates if r["id"] == "demo-rest"]
            assert rest["handOffs"] == n + 1 and rest["gone"] == 1
            # Too few physicians known to show a rate until five have been met (the
            # slot gone from every listing tells none): at the sixth hand-off.
            assert rest["rate"] == (pytest.approx(1 / 6) if n == 5 else None)


def test_the_access_log_never_names_the_slot_a_patient_follows() -> None:
    # uvicorn's access line: (client, method, path, http version, status).
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/go/U2xvdDpb?x=1", "1.1", 303), None,
    )  # fmt: skip
    assert WithoutQueryStrings().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /go/… HTTP/1.1" 303'
