"""The request context: what one GraphQL request may see."""

from __future__ import annotations

import aiohttp

from resolvers.context import RequestContext
from schema import schema
from sources.base import SourceConfig
from sources.errors import SourceRefusedRequest
from sources.pool.fanout import SourcePool
from sources.records import SourceProtocol
from tests.sources.transport.test_retry import Probe

PROBLEMS = "{ sources { problems { code samples diagnostics } } }"


async def test_a_context_shows_operators_only_what_it_is_told_to() -> None:
    async with aiohttp.ClientSession() as session:
        pool = SourcePool(session, lambda config, context: Probe(config, context))
        config = SourceConfig(id="fhir", protocol=SourceProtocol.FHIR_R4, url="http://x.invalid/")
        await pool.sync([config])
        refusal = SourceRefusedRequest("fhir", "refused", diagnostics="near=45.50|-73.56")
        pool.health("fhir").refused(refusal)
        # Built without saying: the safe side, as for an anonymous production client.
        hidden = await schema.execute(PROBLEMS, context_value=RequestContext(pool=pool))
        shown = await schema.execute(
            PROBLEMS, context_value=RequestContext(pool=pool, operator_view=True)
        )
        await pool.aclose()
    assert hidden.errors is None and shown.errors is None
    assert hidden.data == {
        "sources": [
            {"problems": [{"code": "REQUEST_REFUSED", "samples": None, "diagnostics": None}]}
        ]
    }
    assert shown.data is not None
    [[problem]] = [s["problems"] for s in shown.data["sources"]]
    assert problem["diagnostics"] == "near=45.50|-73.56"
