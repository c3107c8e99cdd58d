"""Compiled plans: a query's root fields completed by a function compiled once per
document, rather than field by field (``executor.py``, ``compiler.py``)."""

from __future__ import annotations

from schema.plan.compiler import PURE_RESOLVERS, Bail, Unsupported, compile_field
from schema.plan.executor import KEEP, STATS, PlannedExecutor, plan_of

__all__ = [
    "KEEP",
    "PURE_RESOLVERS",
    "STATS",
    "Bail",
    "PlannedExecutor",
    "Unsupported",
    "compile_field",
    "plan_of",
]
