"""``python app.py documents push|list``: partners' trusted documents."""

from __future__ import annotations

import argparse
import os

__all__ = ["run_documents_command"]


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
