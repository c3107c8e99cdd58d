"""``python app.py sources add|list|disable|enable|remove``: the source registry."""

from __future__ import annotations

import argparse

__all__ = ["run_sources_command"]


def run_sources_command(args: argparse.Namespace, database_url: str) -> int:
    """Run one ``sources`` action on the registry at ``database_url``; 0 when done."""
    # The registry store pulls in SQLAlchemy and Alembic: only for the commands using it.
    from sources.registry.definition import parse_definition
    from sources.registry.store import SourceStore

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


def _number(text: str) -> object:
    try:
        return float(text)
    except ValueError:
        return text  # refused with a clear message by parse_definition
