"""The filter matrix of ``benchmarks/filters.py`` at scale 0.05, through one gateway over
the three demo systems (FHIR, REST, the SMART Scheduling Links feed): every case's
three pages answer without an error, with every source ``UP``, slots in order and
none twice, and the same ``totalCount`` on every page. Codes and statuses, not times.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.filters import QUERY, Case, Walked, matrix, sample_ids, walk
from examples import demo_fhir, demo_rest
from examples.demo_ssl import build_app as ssl_app
from examples.demo_ssl.publisher import Publisher
from examples.world import World
from sources.base import SourceConfig
from sources.records import SourceProtocol
from tests.conftest import (
    REST_KEY,
    TEST_FIRST_DAY,
    TEST_NOW,
    GatewayFactory,
    fhir_definition,
    rest_definition,
    serve,
)

MATRIX_SCALE = 0.05


async def test_every_filter_and_pair_answers_with_every_source_up_and_a_steady_count(
    gateway_for: GatewayFactory, tmp_path: Path
) -> None:
    world = World(MATRIX_SCALE, first_day=TEST_FIRST_DAY)
    async with (
        serve(demo_fhir.build_app(world)) as fhir,
        serve(demo_rest.build_app(world, api_key=REST_KEY)) as rest,
        serve(ssl_app(Publisher(world, tmp_path), max_age_s=0)) as feed,
    ):
        smart = SourceConfig(
            id="demo-ssl",
            name="Demo SSL",
            protocol=SourceProtocol.SMART_SCHEDULING_LINKS,
            url=str(feed.make_url("/$bulk-publish")),
        )
        definitions = (fhir_definition(fhir), rest_definition(rest), smart)
        async with gateway_for(*definitions) as gateway:
            await _until_the_feed_is_loaded(gateway.query)

            async def post(values: dict[str, Any]) -> tuple[float, dict[str, Any]]:
                began = time.perf_counter()
                answer = await gateway.query(QUERY, values)
                return (time.perf_counter() - began) * 1000, answer

            clinics, physicians = await sample_ids(gateway.query)
            assert len(clinics) == 10 and len(physicians) == 10, (clinics, physicians)
            cases = matrix(clinics, physicians)
            assert len(cases) == 178  # 16 alone, 1 empty, 1 window, 73 pairs; by 2 sizes
            start = TEST_NOW + timedelta(hours=1)
            await walk(post, Case("warm-up", {}, 20), start, Walked())  # live sources called
            problems = []
            for case in cases:
                walked = Walked()
                await walk(post, case, start, walked)
                trouble = [*sorted(walked.codes), *sorted(walked.not_up)]
                if not walked.steady_total:
                    trouble.append(f"totalCount by page {walked.totals}")
                if walked.order_errors:
                    trouble.append("pages out of order or repeating a slot")
                if trouble:
                    problems.append(f"{case.name} first={case.first}: {', '.join(trouble)}")
    assert not problems, "\n".join(problems)


async def _until_the_feed_is_loaded(query: Any) -> None:
    """The bulk feed is UP once its index is loaded (live sources are called later)."""
    for _ in range(200):
        answer = await query("{ sources { id status } }")
        statuses = {s["id"]: s["status"] for s in answer["data"]["sources"]}
        if statuses.get("demo-ssl") == "UP":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the feed did not load: {statuses}")
