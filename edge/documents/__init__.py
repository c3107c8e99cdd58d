"""Which document an operation runs, and whether its client may run it.

``partners`` (``Partners``: admission by API key, trusted documents, persisted-only
clients), ``trusted`` (a partner's manifest read, and ``check_document``, the one
check that a document may be registered) and ``apq`` (``PersistedQueries``:
Apollo's automatic persisted queries).

May import ``edge.operation``, ``schema`` (to check documents against the
gateway's own limits), ``resolvers.context`` and the registry and key/value stores
of ``sources``; never the middleware or the view, which run them.
"""

from edge.documents.apq import PersistedQueries
from edge.documents.partners import Partners
from edge.documents.trusted import check_document, parse_manifest, read_manifest

__all__ = ["Partners", "PersistedQueries", "check_document", "parse_manifest", "read_manifest"]
