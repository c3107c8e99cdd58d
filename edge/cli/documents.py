"""``python app.py documents push|list``: partners' trusted documents."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from edge.settings import DEFAULT_MAX_COST

if TYPE_CHECKING:
    from edge.cli.parser import PasserelleParser

__all__ = ["add_documents_commands", "run_documents_command"]


def run_documents_command(args: argparse.Namespace, database_url: str) -> int:
    """Run one ``documents`` action for ``args.client``; 0 when done."""
    # The partner store (SQLAlchemy) and the manifest checks (the schema, strawberry)
    # are heavy: only for the commands using them.
    from edge.documents.trusted import read_manifest
    from sources.registry.partners import KEY_PEPPER_ENV, PartnerStore

    with PartnerStore(database_url, pepper=os.environ.get(KEY_PEPPER_ENV) or None) as store:
        if args.action == "push":
            store.client(args.client)  # an unknown client before a long manifest's problems
            # Checked against the limits the server is given by the same flags.
            max_cost = None if args.measure_cost else args.max_cost
            documents = read_manifest(args.manifest, max_cost=max_cost)
            summary = store.push_documents(args.client, documents)
            print(
                f"{args.client}: {len(summary.added)} new document(s) registered, "
                f"{len(summary.unchanged)} already there"
            )
        elif args.action == "list":
            rows = store.documents(args.client)
            if not rows:
                print(f"no documents registered for {args.client}")
            for d in rows:
                name = d.operation_name or "(anonymous)"
                print(f"{d.id}\t{d.operation_type}\t{name}\tadded {d.created_at:%Y-%m-%d %H:%M}Z")
    return 0


def add_documents_commands(
    commands: argparse._SubParsersAction[PasserelleParser], shared: PasserelleParser
) -> None:
    """The grammar of ``documents``."""
    from edge.cli.arg_types import positive_int

    documents = commands.add_parser("documents", help="manage partners' trusted documents")
    actions = documents.add_subparsers(dest="action", metavar="ACTION", required=True)
    push = actions.add_parser(
        "push",
        help="register the operations of an Apollo persisted-query manifest or a Relay "
        "{id: text} map for a client (each checked against the schema)",
        parents=[shared],
    )
    push.add_argument("manifest", type=Path, metavar="MANIFEST")
    # The gateway's own cost limit: a document it would refuse is never registered.
    # (SUPPRESS: the flags given before the command, as for serving, count too.)
    push.add_argument(
        "--max-cost",
        type=positive_int,
        default=argparse.SUPPRESS,
        help=f"the --max-cost the gateway serves with ({DEFAULT_MAX_COST})",
    )
    push.add_argument(
        "--measure-cost",
        action="store_true",
        default=argparse.SUPPRESS,
        help="the gateway serves with --measure-cost: register costly documents too",
    )
    listing = actions.add_parser("list", help="list a client's documents", parents=[shared])
    for command in (push, listing):
        command.add_argument("--client", required=True, metavar="NAME")
