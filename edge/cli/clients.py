"""``python app.py clients create|update|list|revoke``: partner clients and their keys."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sources.registry.partners import Client

__all__ = ["run_clients_command"]


def run_clients_command(args: argparse.Namespace, database_url: str) -> int:
    """Run one ``clients`` action on the partner registry at ``database_url``; 0 when done."""
    # The partner store pulls in SQLAlchemy and Alembic: only for the commands using it.
    from sources.registry.partners import KEY_PEPPER_ENV, PartnerStore

    with PartnerStore(database_url, pepper=os.environ.get(KEY_PEPPER_ENV) or None) as store:
        if args.action == "create":
            client, key = store.create_client(
                args.name,
                persisted_only=args.persisted_only,
                log_only=args.log_only,
                allow_introspection=args.allow_introspection,
                operator=args.operator,
                rate_limit_rps=args.rate_limit,
                max_subscriptions=args.max_subscriptions,
            )
            print(key)  # alone on stdout: KEY=$(python app.py clients create NAME)
            print(
                f"created client {client.name} ({_client_options(client)}); its key, above, "
                "is shown only this once: only a hash of it is kept",
                file=sys.stderr,
            )
        elif args.action == "update":
            changes = {
                option: getattr(args, option)
                for option in ("persisted_only", "log_only", "allow_introspection", "operator")
                if getattr(args, option) is not None
            }
            if args.rate_limit is not None or args.no_rate_limit:
                changes["rate_limit_rps"] = None if args.no_rate_limit else args.rate_limit
            if args.max_subscriptions is not None or args.no_max_subscriptions:
                changes["max_subscriptions"] = (
                    None if args.no_max_subscriptions else args.max_subscriptions
                )
            client = store.update_client(args.name, **changes)
            print(f"{client.name}: {_client_options(client)}")
        elif args.action == "list":
            rows = store.clients()
            if not rows:
                print("no clients")
            for c in rows:
                state = f"revoked {c.revoked_at:%Y-%m-%d %H:%M}Z" if c.revoked_at else "active"
                other = "\tkey hashed with another pepper" if c.pepper_id != store.pepper_id else ""
                print(
                    f"{c.name}\t{_client_options(c)}\tcreated {c.created_at:%Y-%m-%d %H:%M}Z"
                    f"\t{state}{other}"
                )
        elif args.action == "revoke":
            revoked = store.revoke_client(args.name)
            print(f"{args.name} {'revoked' if revoked else 'was already revoked'}")
    return 0


def _client_options(client: Client) -> str:
    options = list(client.flags)
    if client.rate_limit_rps is not None:
        options.append(f"rate limit {client.rate_limit_rps:g}/s")
    if client.max_subscriptions is not None:
        options.append(f"at most {client.max_subscriptions} subscriptions")
    return ", ".join(options) or "no options"
