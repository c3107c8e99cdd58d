"""The command line's validators: argparse types, each a mistake told in one line.

Light on purpose (argparse, math): ``--help`` and a mistyped flag must answer in well
under 0.3 s. ``--port http`` is told ``passerelle: --port: not a port number: 'http'``.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ipaddress

__all__ = [
    "churn",
    "network",
    "port",
    "positive_int",
    "rate",
    "requests_per_second",
    "scale",
    "seconds",
]


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, got {value}")
    return value


def requests_per_second(text: str) -> float:
    """A number; whether it is a usable rate is for whoever receives it to say."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of requests per second"
        ) from None


def rate(text: str) -> float:
    value = requests_per_second(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be 0 or more requests per second, got {text}")
    return value


def seconds(text: str, low: float = 0, high: float = 300) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise argparse.ArgumentTypeError(f"must be {low:g} to {high:g} seconds, got {text}")
    return value


def network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    import ipaddress  # 15 ms: only when the flag is given

    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an address or network such as 10.0.0.0/8, got {text!r}"
        ) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def churn(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected slots a minute, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected 0 or more slots a minute, got {text!r}")
    return value


def scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 10:
        raise argparse.ArgumentTypeError(f"scale must be in (0, 10], got {value:g}")
    return value
