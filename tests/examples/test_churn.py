"""Churn: the demo systems' free slots change as time passes, the same ones for a seed,
and a subscription hears of them from the live demo servers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from edge.cli.parser import DEFAULT_DEMO_CHURN, build_parser
from examples import demo_fhir, demo_rest
from examples.churn import DEFAULT_RATE, Churn
from examples.demo_fhir.index import FhirIndex
from examples.demo_rest.catalogue import Catalogue
from examples.world import World
from resolvers.context import RequestContext
from schema import schema
from sources.base import SourceConfig
from sources.fhir.options import FhirOptions
from sources.pool import SourcePool
from sources.records import SourceProtocol
from sources.rest_json.options import RestJsonOptions
from sources.watch import SlotWatch
from tests.conftest import REST_KEY, REST_KEY_ENV, TEST_NOW, pinned_clock, serve
from tests.sources.watch.fakes import until


def test_the_same_seed_changes_the_same_slots_in_the_same_order(world: World) -> None:
    index = FhirIndex(world)
    clinic_ids = sorted(index.clinics)

    def picks(system: str) -> list[str]:
        churn = Churn(60, seed=world.seed, system=system, clock=pinned_clock)
        chosen = [churn.pick(clinic_ids, index.slots_of, opening=i % 2 == 0) for i in range(8)]
        return [s.id for s in chosen if s is not None]

    assert picks("fhir") == picks("fhir") and len(picks("fhir")) == 8
    assert picks("fhir") != picks("rest")


def test_a_slot_changed_is_served_so_by_both_live_demo_indexes(world: World) -> None:
    index, catalogue = FhirIndex(world), Catalogue.of(world)
    churn = Churn(60, seed=1, system="fhir", clock=pinned_clock)
    for slots_of, set_free, ids in (
        (index.slots_of, index.set_free, sorted(index.clinics)),
        (catalogue.slots_of, catalogue.set_free, [e.clinic.id for e in catalogue.clinics]),
    ):
        busy = churn.pick(ids, slots_of, opening=True)
        assert busy is not None and not busy.free and busy.start > TEST_NOW
        freed = set_free(busy, True)
        served = {s.id: s for s in slots_of(busy.clinic_id)}
        assert served[busy.id] == freed and freed.free
        starts = [(s.start, s.id) for s in slots_of(busy.clinic_id)]
        assert starts == sorted(starts) and len(starts) == len(served)
        set_free(freed, False)
        assert not {s.id: s for s in slots_of(busy.clinic_id)}[busy.id].free
    # The FHIR index's own buckets, free and busy, stay ordered for its searches.
    for buckets in index.buckets.values():
        for bucket in buckets.values():
            assert list(bucket.starts) == sorted(bucket.starts)


def test_python_app_py_churns_by_default_and_refuses_a_negative_rate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert build_parser().parse_args([]).demo_churn == DEFAULT_DEMO_CHURN == DEFAULT_RATE
    assert build_parser().parse_args(["--demo-churn", "0"]).demo_churn == 0
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--demo-churn", "-1"])
    assert capsys.readouterr().err.startswith("passerelle: --demo-churn: expected 0 or more")


@contextlib.asynccontextmanager
async def churning_demo(world: World) -> AsyncIterator[SourcePool]:
    """The FHIR and REST demo servers changing a slot every 50 ms each, in a pool."""
    fast = {"clock": pinned_clock, "seed": world.seed}
    fhir_app = demo_fhir.build_app(world, churn=Churn(1200, system="fhir", **fast))  # type: ignore[arg-type]
    rest_app = demo_rest.build_app(
        world,
        api_key=REST_KEY,
        churn=Churn(1200, system="rest", **fast),  # type: ignore[arg-type]
    )
    async with serve(fhir_app) as fhir, serve(rest_app) as rest, aiohttp.ClientSession() as session:
        pool = SourcePool(session)
        await pool.sync(
            [
                SourceConfig(
                    id="demo-fhir",
                    protocol=SourceProtocol.FHIR_R4,
                    url=str(fhir.make_url("/fhir")),
                    options=FhirOptions(watch_calls_per_minute=600),
                ),
                SourceConfig(
                    id="demo-rest",
                    protocol=SourceProtocol.REST_JSON,
                    url=str(rest.make_url("/api/v1")),
                    credentials=REST_KEY,
                    options=RestJsonOptions(watch_calls_per_minute=600),
                ),
            ]
        )
        try:
            yield pool
        finally:
            await pool.aclose()


async def test_a_subscription_hears_the_live_demo_servers_churn_and_no_log_holds_its_point(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(REST_KEY_ENV, REST_KEY)
    caplog.set_level(logging.DEBUG)
    # Downtown Montreal, 200 km around: most of the demo province.
    document = """subscription {
      slotAlerts(filter: {near: {latitude: 45.501689, longitude: -73.567256}, radiusKm: 200}) {
        opened { source { id } } goneIds
      }
    }"""
    async with churning_demo(world) as pool:
        watch = SlotWatch(pool, pinned_clock, sync_s=0.02)
        context = RequestContext(pool=pool, now=TEST_NOW, watch=watch)
        stream = await schema.subscribe(document, context_value=context)
        opened_by: set[str] = set()
        gone = 0

        async def listen() -> None:
            nonlocal gone
            async for result in stream:
                assert result.errors is None, result.errors
                alert = result.data["slotAlerts"]
                opened_by.update(s["source"]["id"] for s in alert["opened"])
                gone += len(alert["goneIds"])

        task = asyncio.create_task(listen())
        try:
            await until(lambda: opened_by == {"demo-fhir", "demo-rest"} and gone, within_s=8)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await watch.aclose()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/fhir/Slot" in text and "/api/v1/disponibilites" in text  # all the run logged
    for needle in ("45.501", "73.567", "45,501", "73,567"):
        assert needle not in text
