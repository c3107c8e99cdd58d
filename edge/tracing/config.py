"""Whether traces are on, read from the standard ``OTEL_*`` variables, without importing
the OpenTelemetry SDK: with tracing off (the default) it is never imported.

On when an OTLP endpoint is given (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or ``OTEL_TRACES_EXPORTER=otlp``; off when
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``, whatever else is set.
A value the gateway cannot honour (another exporter or protocol, an endpoint that is
not an http(s) URL, an unknown sampler) is refused at start with a ``ConfigError``
that says what to set, rather than silently dropping traces.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from sources.errors import ConfigError

__all__ = ["ENDPOINT_VARIABLES", "SAMPLERS", "tracing_wanted"]

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


def _value(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip()


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether to trace, as the ``OTEL_*`` variables of ``environ`` say (``ConfigError``:
    a value that cannot be honoured)."""
    if _value(environ, "OTEL_SDK_DISABLED").lower() == "true":
        return False
    exporter = _value(environ, "OTEL_TRACES_EXPORTER").lower()
    if exporter == "none":
        return False
    if exporter not in ("", "otlp"):
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={exporter!r} is not supported: Passerelle exports traces "
            "over OTLP/HTTP only (set it to otlp, or none to turn traces off)"
        )
    endpoints = [name for name in ENDPOINT_VARIABLES if _value(environ, name)]
    if exporter != "otlp" and not endpoints:
        return False
    for name in _PROTOCOL_VARIABLES:
        protocol = _value(environ, name)
        if protocol and protocol != "http/protobuf":
            raise ConfigError(
                f"{name}={protocol!r} is not supported: Passerelle sends traces over "
                "OTLP/HTTP with protobuf (set it to http/protobuf, or unset it)"
            )
    for name in endpoints:
        parts = urlsplit(_value(environ, name))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # The value is not echoed: a collector URL may carry a token.
            raise ConfigError(
                f"{name} must be an http(s) URL such as http://collector:4318 "
                "(the OTLP/HTTP receiver of an OpenTelemetry collector)"
            )
    sampler = _value(environ, "OTEL_TRACES_SAMPLER").lower()
    if sampler and sampler not in SAMPLERS:
        raise ConfigError(
            f"OTEL_TRACES_SAMPLER={sampler!r} is not a sampler: use one of {', '.join(SAMPLERS)}"
        )
    if sampler.endswith("traceidratio"):
        ratio = _value(environ, "OTEL_TRACES_SAMPLER_ARG") or "1.0"
        try:
            valid = 0.0 <= float(ratio) <= 1.0
        except ValueError:
            valid = False
        if not valid:
            raise ConfigError(
                f"OTEL_TRACES_SAMPLER_ARG={ratio!r}: the ratio of traces kept must be a "
                "number from 0 to 1, such as 0.1"
            )
    return True
