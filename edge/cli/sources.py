"""``python app.py sources add|list|disable|enable|remove|probe|check``: the source
registry, and what a source's upstream can do."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sources.base import SourceConfig
    from sources.records import SourceProblem

__all__ = ["run_sources_command"]


def run_sources_command(args: argparse.Namespace, database_url: str) -> int:
    """Run one ``sources`` action on the registry at ``database_url``; 0 when done."""
    # The registry store pulls in SQLAlchemy and Alembic: only for the commands using it.
    from sources.registry.definition import parse_definition
    from sources.registry.store import SourceStore

    if args.action == "probe":
        return _probe(args.id, database_url)
    if args.action == "check":
        return _check(args, database_url)
    with SourceStore(database_url) as store:
        if args.action == "add":
            raw: dict[str, object] = {
                "id": args.id,
                "protocol": args.protocol,
                "url": args.url,
                "timeout_s": _number(args.timeout_s),
                "enabled": not args.disabled,
            }
            if args.name:
                raw["name"] = args.name
            if args.credentials_env:
                raw["credentials_env"] = args.credentials_env
            definition = store.add(parse_definition(raw, where="command line"))
            print(f"added {definition.id} ({definition.protocol.value}) {definition.url}")
        elif args.action == "list":
            rows = store.list()
            if not rows:
                print("no sources registered")
            for d in rows:
                state = "enabled" if d.enabled else "disabled"
                print(f"{d.id}\t{d.protocol.value}\t{state}\t{d.timeout_s:g}s\t{d.url}\t{d.name}")
        elif args.action in ("disable", "enable"):
            store.set_enabled(args.id, args.action == "enable")
            print(f"{args.id} {args.action}d")
        elif args.action == "remove":
            store.remove(args.id)
            print(f"{args.id} removed")
    return 0


def _probe(source_id: str, database_url: str) -> int:
    """Open the source's adapter with a real session, run its probes, print one line
    per thing learnt and per problem; 1 with one line when it cannot be reached."""
    import asyncio
    import os

    from sources.errors import SourceError
    from sources.registry.store import SourceStore

    with SourceStore(database_url) as store:
        store.get(source_id)  # ConfigError (exit 2) when there is no such source
        config = next(c for c in store.configs(os.environ) if c.id == source_id)
    try:
        learnt, problems = asyncio.run(_probed(config))
    except SourceError as exc:
        print(f"passerelle: {source_id} could not be probed: {exc.message}", file=sys.stderr)
        return 1
    print(f"{config.id} ({config.protocol.value}) {config.url}")
    for line in learnt or ["nothing to probe for this protocol"]:
        print(f"  {line}")
    for p in problems:
        said = f" [{p.diagnostics}]" if p.diagnostics else ""
        print(f"  problem {p.code} ({p.severity.value}, {p.count}): {p.message}{said}")
    if not problems:
        print("  no problems")
    return 0


async def _probed(config: SourceConfig) -> tuple[list[str], tuple[SourceProblem, ...]]:
    import logging

    import aiohttp

    from sources.adapters import adapter_for
    from sources.base import SourceContext

    logger = logging.getLogger("passerelle.sources").getChild(config.id)
    async with aiohttp.ClientSession(headers={"User-Agent": "Passerelle/0.1"}) as session:
        adapter = adapter_for(config.protocol)(config, SourceContext(session, logger))
        try:
            return await adapter.probe(), adapter.problems
        finally:
            await adapter.aclose()


def _check(args: argparse.Namespace, database_url: str) -> int:
    """``sources check ID`` or ``sources check --protocol P --url URL``: the report of
    ``sources.check``, as text or ``--json``; its exit code (0 all can be served, 1 not)."""
    import asyncio
    import os

    from edge.cli.parser import UsageError
    from sources.check import run_check
    from sources.registry.definition import parse_definition
    from sources.registry.store import SourceStore

    either = "sources check: give a registered source's ID, or --protocol and --url"
    if args.id and (args.protocol or args.url):
        raise UsageError(either)
    if args.id:
        with SourceStore(database_url) as store:
            store.get(args.id)  # ConfigError (exit 2) when there is no such source
            config = next(c for c in store.configs(os.environ) if c.id == args.id)
        name = args.id
    else:
        if not (args.protocol and args.url):
            raise UsageError(either)
        raw: dict[str, object] = {"id": "checked", "protocol": args.protocol, "url": args.url}
        if args.credentials_env:
            raw["credentials_env"] = args.credentials_env
        config = parse_definition(raw, where="sources check")
        if config.credentials_env:
            secret = os.environ.get(config.credentials_env)
            if not secret:
                raise UsageError(f"sources check: ${config.credentials_env} is not set")
            from dataclasses import replace

            config = replace(config, credentials=secret)
        name = args.url
    report = asyncio.run(run_check(config, name))
    print(report.dumps() if args.json else report.text())
    return report.exit_code


def _number(text: str) -> object:
    try:
        return float(text)
    except ValueError:
        return text  # refused with a clear message by parse_definition
