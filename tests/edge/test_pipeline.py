"""The steps before execution: run in order, from one place, the first answer ends them."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from starlette.responses import Response
from strawberry.types.execution import ExecutionResult

from edge import pipeline
from edge.operation import Operation
from schema.error_codes import ErrorCode, error_result

QUERY = "{ sources { id } }"


def exchange(timeout_s: float = 5.0) -> Any:
    settings = SimpleNamespace(operation_timeout_s=timeout_s)
    return SimpleNamespace(
        services=SimpleNamespace(settings=settings, metrics=None),
        sub_response=Response(),
        ran=[],
    )


def test_admission_comes_before_persisted_queries() -> None:
    assert pipeline.STEPS == (pipeline.admission, pipeline.persisted_queries)


async def test_each_step_takes_what_the_one_before_returned() -> None:
    seen: list[str | None] = []

    async def fill(operation: Operation, _: Any) -> Operation:
        seen.append(operation.query)
        return Operation(operation.method, QUERY)

    async def execute(operation: Operation) -> ExecutionResult:
        seen.append(operation.query)
        return ExecutionResult(data={"ok": True}, errors=None)

    result = await pipeline.run(Operation("POST"), exchange(), execute, steps=(fill,))
    assert result.data == {"ok": True} and seen == [None, QUERY]


async def test_a_step_that_answers_ends_the_request() -> None:
    refused = error_result(ErrorCode.PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
    later: list[str] = []

    async def refuse(operation: Operation, _: Any) -> ExecutionResult:
        return refused

    async def never(operation: Operation, _: Any) -> Operation:
        later.append("step")
        return operation

    async def execute(operation: Operation) -> ExecutionResult:
        later.append("execute")
        raise AssertionError

    result = await pipeline.run(Operation("POST"), exchange(), execute, steps=(refuse, never))
    assert result is refused and later == []


async def test_an_execution_past_the_deadline_is_a_504_operation_timeout() -> None:
    async def slow(operation: Operation) -> ExecutionResult:
        await asyncio.sleep(5)
        raise AssertionError

    late = exchange(timeout_s=0.01)
    result = await pipeline.run(Operation("POST", QUERY), late, slow, steps=())
    assert result.errors and result.errors[0].extensions["code"] == "OPERATION_TIMEOUT"
    assert late.sub_response.status_code == 504
