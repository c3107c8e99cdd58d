"""What runs between reading an operation and executing it, in this order: partner
admission, automatic persisted queries, then the execution, within the deadline.

Each :class:`Step` takes the operation and returns the one to go on with (its
document found, say) or the answer that ends the request early (an
``ExecutionResult`` with its error); :func:`run` is the one place that runs them,
for each operation of a request (each of a batch too), and :func:`subscribe` for a
subscription, whatever carries it (a multipart stream, a WebSocket)::

    result = await run(operation, exchange, execute)
    opened = await subscribe(operation, exchange, start)  # start: its place, its stream

The deadline is the last stage rather than a step: it does not answer before the
execution, it bounds it. A subscription lives as long as its client wants: the
deadline bounds its setup (the steps, and ``start``), never its life.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from strawberry.types.execution import ExecutionResult

from edge.metrics import ANONYMOUS, outcome_of
from schema.error_codes import ErrorCode, error_result

if TYPE_CHECKING:
    from edge.exchange import Exchange
    from edge.operation import Operation

__all__ = ["STEPS", "Execute", "Step", "admission", "persisted_queries", "run", "subscribe"]

logger = logging.getLogger("passerelle.http")

Execute = Callable[["Operation"], Awaitable[ExecutionResult]]
Opened = TypeVar("Opened")


class Step(Protocol):
    """One step: the operation to go on with, or the answer that ends the request."""

    async def __call__(
        self, operation: Operation, exchange: Exchange, /
    ) -> Operation | ExecutionResult: ...


async def admission(operation: Operation, exchange: Exchange) -> Operation | ExecutionResult:
    """Partner keys, trusted documents, persisted-only clients (edge/documents/partners.py)."""
    return await exchange.services.partners.admit(
        operation, exchange.context, exchange.sub_response
    )


async def persisted_queries(
    operation: Operation, exchange: Exchange
) -> Operation | ExecutionResult:
    """Automatic persisted queries: the query of a hash, or its registration
    (edge/documents/apq.py)."""
    return await exchange.services.persisted.resolve(operation)


# Admission first: a partner's trusted document is found before APQ looks a hash up.
STEPS: tuple[Step, ...] = (admission, persisted_queries)


async def run(
    operation: Operation, exchange: Exchange, execute: Execute, steps: Sequence[Step] = STEPS
) -> ExecutionResult:
    """The steps, in order, then ``execute`` within the operation deadline; counted in
    the app's metrics by operation (its trusted document's name) and outcome."""
    started = time.perf_counter()
    outcome = await _through(steps, operation, exchange)
    if isinstance(outcome, ExecutionResult):
        result = outcome
    else:
        operation = outcome
        exchange.ran.append(outcome)
        result = await _within_deadline(exchange, execute(outcome))
    metrics = exchange.services.metrics
    if metrics is not None:
        name = operation.trusted_name or ANONYMOUS
        metrics.observe_request(name, outcome_of(result), time.perf_counter() - started)
    return result


async def subscribe(
    operation: Operation,
    exchange: Exchange,
    start: Callable[[Operation], Awaitable[Opened | ExecutionResult]],
    steps: Sequence[Step] = STEPS,
) -> Opened | ExecutionResult:
    """The steps, in order, then ``start`` (the subscription's place under the caps, and
    its stream, not yet read), all within the operation deadline."""

    async def setup() -> Opened | ExecutionResult:
        outcome = await _through(steps, operation, exchange)
        if isinstance(outcome, ExecutionResult):
            return outcome
        exchange.ran.append(outcome)
        return await start(outcome)

    return await _within_deadline(exchange, setup())


async def _through(
    steps: Sequence[Step], operation: Operation, exchange: Exchange
) -> Operation | ExecutionResult:
    for step in steps:
        outcome = await step(operation, exchange)
        if isinstance(outcome, ExecutionResult):
            return outcome
        operation = outcome
    return operation


async def _within_deadline(
    exchange: Exchange, work: Awaitable[Opened | ExecutionResult]
) -> Opened | ExecutionResult:
    limit = exchange.services.settings.operation_timeout_s
    try:
        # The fan-out deadline (3 s) normally answers long before this one.
        async with asyncio.timeout(limit):
            return await work
    except TimeoutError:
        logger.warning("operation cancelled after %.0f s", limit)
        exchange.sub_response.status_code = ErrorCode.OPERATION_TIMEOUT.http_status
        message = f"The operation took longer than {limit:g} s and was cancelled"
        return error_result(ErrorCode.OPERATION_TIMEOUT, message)
