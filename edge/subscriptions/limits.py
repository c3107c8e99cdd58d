"""How many subscriptions may be open at once: :class:`SubscriptionLimits`.

Three caps, as the rate limits count: per WebSocket connection (checked by the
connection itself, :func:`connection_refusal`), per partner key (its own
``--max-subscriptions``, else the gateway's default), and per IP for clients
without a key. A keyed client is not held to its IP's cap: a partner's server may
relay many citizens' subscriptions from one address, and its key is what it
answers for. A subscription past a cap is refused with ``SUBSCRIPTION_LIMIT``;
the message says which cap, never whose address.

The counts live in this process: with several instances, each holds its own (as
the rate limits do without Redis).

    limits = SubscriptionLimits(per_ip=50, per_key=500)
    lease = limits.claim(address="203.0.113.9", key=None, key_limit=None)
    if isinstance(lease, str): ...  # refused: the message
    lease.release()  # when the subscription ends, however it ends (idempotent)
"""

from __future__ import annotations

from collections import Counter

__all__ = ["Lease", "SubscriptionLimits", "connection_refusal"]


class Lease:
    """One subscription's place under the caps, given back by :meth:`release`."""

    __slots__ = ("_counter", "_holder")

    def __init__(self, counter: Counter[str], holder: str) -> None:
        self._counter: Counter[str] | None = counter
        self._holder = holder

    def release(self) -> None:
        """Give the place back; later calls do nothing."""
        counter, self._counter = self._counter, None
        if counter is not None:
            counter[self._holder] -= 1
            if counter[self._holder] <= 0:
                del counter[self._holder]


class SubscriptionLimits:
    """Open subscriptions per key and per anonymous IP, each under its cap."""

    def __init__(self, *, per_ip: int, per_key: int) -> None:
        self.per_ip = per_ip
        self.per_key = per_key
        self._by_ip: Counter[str] = Counter()
        self._by_key: Counter[str] = Counter()

    def claim(self, *, address: str, key: str | None, key_limit: int | None) -> Lease | str:
        """A lease for one more subscription of ``key`` (a partner's name, its own limit
        ``key_limit`` if it has one) or, without a key, of ``address``; or why not."""
        if key is not None:
            cap = key_limit if key_limit is not None else self.per_key
            counter, holder, whose = self._by_key, key, "this API key"
        else:
            cap, counter, holder, whose = self.per_ip, self._by_ip, address, "this address"
        if counter[holder] >= cap:
            return (
                f"Too many open subscriptions: at most {cap} for {whose}; "
                "complete one before subscribing again"
            )
        counter[holder] += 1
        return Lease(counter, holder)

    def open_count(self) -> int:
        """Subscriptions holding a lease now, on this instance."""
        return sum(self._by_ip.values()) + sum(self._by_key.values())


def connection_refusal(open_now: int, cap: int) -> str | None:
    """Why one more operation may not start on a connection running ``open_now``."""
    if open_now < cap:
        return None
    return (
        f"Too many open subscriptions: at most {cap} on one connection; "
        "complete one before subscribing again"
    )
