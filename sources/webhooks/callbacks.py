"""Where a webhook may call: the rules of a callback URL, and of the addresses its host
resolves to, applied when an alert is made and again at every connection.

- **https only**, a host name or address, no user or password, at most
  ``MAX_URL_LENGTH`` characters: ``check_callback_url`` (at creation, and before each
  delivery).
- **Never the inside**: an address that is private, loopback, link-local, multicast,
  reserved, unspecified, shared (CGNAT, 100.64.0.0/10), site-local, an IPv4-mapped or
  6to4/Teredo IPv6 whose IPv4 is one of those, is refused (``refused_address``).
  ``GuardedResolver`` applies the rule to what DNS answers *when aiohttp connects*, so
  a name that re-binds to an inside address after the alert was made is still refused;
  an address written in the URL is checked by ``check_target`` (aiohttp does not
  resolve those).
- **An operator's allow-list** (``--webhook-allow-host HOST``) lifts the address rule
  for exactly those hosts; never the https rule.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

__all__ = [
    "MAX_URL_LENGTH",
    "CallbackRefused",
    "GuardedResolver",
    "check_callback_url",
    "check_target",
    "refused_address",
]

MAX_URL_LENGTH = 2048
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# Not global, though Python's ``is_private`` misses them on some versions.
_EXTRA_REFUSED = (
    _CGNAT,
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("198.18.0.0/15"),
    ipaddress.ip_network("64:ff9b:1::/48"),
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class CallbackRefused(ValueError):
    """A callback URL or address the gateway will not call; the message says why
    (without the URL: it is never logged)."""


def refused_address(address: IPAddress) -> str | None:
    """Why the gateway never connects to ``address``, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None:
            inner = refused_address(embedded)
            return None if inner is None else f"an IPv6 address embedding {inner}"
    checks = (
        ("an unspecified address", address.is_unspecified),
        ("a loopback address", address.is_loopback),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a shared (CGNAT) address", address in _CGNAT),
        ("a private address", address.is_private),
        ("a reserved address", address.is_reserved),
        (
            "a site-local address",
            isinstance(address, ipaddress.IPv6Address) and address.is_site_local,
        ),
        (
            "an address that is not global",
            any(address in n for n in _EXTRA_REFUSED) or not address.is_global,
        ),
    )
    for reason, refused in checks:
        if refused:
            return reason
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_callback_url(url: str, allowed_hosts: Collection[str] = ()) -> URL:
    """The URL, parsed, when a webhook may call it; ``CallbackRefused`` otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"the callback URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise CallbackRefused("the callback URL is not a URL") from None
    if parsed.scheme != "https":
        raise CallbackRefused("the callback URL must be https")
    host = parsed.host
    if not host or not parsed.is_absolute():
        raise CallbackRefused("the callback URL has no host")
    if parsed.user is not None or parsed.password is not None:
        raise CallbackRefused("the callback URL may not carry a user or password")
    if parsed.fragment:
        raise CallbackRefused("the callback URL may not have a fragment")
    check_target(parsed, allowed_hosts)
    return parsed


def check_target(url: URL, allowed_hosts: Collection[str]) -> None:
    """An address written as the URL's host obeys the address rule (unless allowed)."""
    host = (url.host or "").lower()
    if host in allowed_hosts:
        return
    if host == "localhost" or host.endswith((".localhost", ".internal", ".local")):
        raise CallbackRefused("the callback host is a local name")
    literal = _literal(host)
    if literal is not None:
        reason = refused_address(literal)
        if reason is not None:
            raise CallbackRefused(f"the callback host is {reason}")


class GuardedResolver(AbstractResolver):
    """A resolver that answers only addresses a webhook may reach: those of ``inner``
    (aiohttp's default resolver unless given) minus the refused ones; a host with none
    left is refused (``CallbackRefused``) before any socket is opened. Hosts in
    ``allowed_hosts`` are answered as ``inner`` answers them."""

    def __init__(
        self, inner: AbstractResolver | None = None, allowed_hosts: Collection[str] = ()
    ) -> None:
        from aiohttp.resolver import DefaultResolver

        self.inner = inner if inner is not None else DefaultResolver()
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self.inner.resolve(host, port, family)
        if host.lower() in self.allowed_hosts:
            return answers
        kept = [a for a in answers if refused_address(ipaddress.ip_address(a["host"])) is None]
        if not kept:
            reasons = {refused_address(ipaddress.ip_address(a["host"])) for a in answers}
            raise CallbackRefused(
                "the callback host resolves to "
                + (", ".join(sorted(r for r in reasons if r)) or "no address")
            )
        return kept

    async def close(self) -> None:
        await self.inner.close()
