"""What every adapter's HTTP calls share: ``failures`` (aiohttp exceptions and HTTP
statuses mapped to our errors, and which of them are retried: the one place),
``body`` (the one capped body reader), ``http`` (a JSON call, for FHIR and REST
JSON) and ``retry`` (retries within a call's deadline, tenacity, counted in the
call's ``CallStats`` with its last HTTP status, for the metrics and the traces).

May import ``sources.errors`` only.
"""
