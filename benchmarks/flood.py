"""Flood: one partner key sends 100 requests/s for 60 s; another key keeps being served.

    python benchmarks/flood.py              # 60 s
    python benchmarks/flood.py --seconds 10

Run by hand, not by CI (its short version is ``tests/edge/test_rate_limit.py``).
Starts ``python app.py --env production`` over the demo (small world) with a
throw-away registry holding two clients: ``flooder`` (``--rate-limit 10``) and
``calm`` (``--rate-limit 50``). ``flooder`` sends 100 requests/s open loop,
``calm`` 5 requests/s, both for ``--seconds``. Prints what each got: the
flooder must be held to its budget (10/s plus its burst of 20) with 429s
carrying ``Retry-After``, and every ``calm`` request must be served.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fanout import Gateway
from sources.registry.partners import PartnerStore

QUERY = {"query": "{ sources { id status } }"}
FLOOD_RPS, FLOOD_BUDGET = 100.0, 10.0
CALM_RPS, CALM_BUDGET = 5.0, 50.0


async def send(
    session: aiohttp.ClientSession, url: str, key: str, rate: float, seconds: float
) -> collections.Counter[int]:
    """Open loop: a request every 1/rate s whatever the answers, statuses counted."""
    counts: collections.Counter[int] = collections.Counter()
    headers = {"Authorization": f"Bearer {key}"}

    async def one() -> None:
        try:
            async with session.post(url, json=QUERY, headers=headers) as response:
                if response.status == 429:
                    assert int(response.headers["Retry-After"]) >= 1
                await response.read()
                counts[response.status] += 1
        except aiohttp.ClientError:
            counts[0] += 1

    tasks = []
    start = time.monotonic()
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return counts


async def main(seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="passerelle-flood-") as workdir:
        registry = Path(workdir) / "registry.sqlite3"
        with PartnerStore(f"sqlite:///{registry}") as store:
            _, flooder = store.create_client("flooder", rate_limit_rps=FLOOD_BUDGET)
            _, calm = store.create_client("calm", rate_limit_rps=CALM_BUDGET)
        gateway = Gateway(faults={}, scale=0.02, extra=["--env", "production"])
        # The registry above, not a new one: Gateway.start names registry.sqlite3 there.
        gateway.start(Path(workdir))
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=500)) as session:
                await gateway.wait_ready(session, 120)
                flood, served = await asyncio.gather(
                    send(session, gateway.url, flooder, FLOOD_RPS, seconds),
                    send(session, gateway.url, calm, CALM_RPS, seconds),
                )
        finally:
            gateway.stop()
    allowed = FLOOD_BUDGET * seconds + 2 * FLOOD_BUDGET
    print("| key | sent/s | budget/s | 200 | 429 | other | verdict |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    other = sum(v for k, v in flood.items() if k not in (200, 429))
    verdict = "held" if flood[200] <= allowed * 1.05 and other == 0 else "NOT held"
    print(f"| flooder | {FLOOD_RPS:g} | {FLOOD_BUDGET:g} | {flood[200]} | {flood[429]} | "
          f"{other} | {verdict} (at most {allowed:.0f} allowed) |")  # fmt: skip
    calm_other = sum(v for k, v in served.items() if k != 200)
    verdict = "all served" if calm_other == 0 else "NOT all served"
    print(f"| calm | {CALM_RPS:g} | {CALM_BUDGET:g} | {served[200]} | {served[429]} | "
          f"{calm_other - served[429]} | {verdict} |")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    asyncio.run(main(parser.parse_args().seconds))
