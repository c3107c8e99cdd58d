"""Name folding shared by the cross-source merge and the slot index's name search."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["normalize_name"]


@lru_cache(maxsize=65536)  # clinic names repeat across requests; NFKD is not cheap
def normalize_name(name: str) -> str:
    """Case, accents, punctuation and spacing removed.

    ``"Clinique  St-Éloi"`` -> ``"clinique st eloi"``
    """
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", bare).split())
