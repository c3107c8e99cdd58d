"""The public status page, ``/status`` (French first, English), and its JSON twin,
``/status.json``: each booking system's status, freshness, problem codes and latency,
and the coverage by region that ``sources.coverage`` counts in the background. See
``edge/status/README.md``.
"""

from edge.status.endpoint import status_json, status_page

__all__ = ["status_json", "status_page"]
