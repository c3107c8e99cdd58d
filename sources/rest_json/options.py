"""The options of a REST/JSON source, checked when its definition is read.

[sources.options]
page_size = 100
api_key_header = "X-Api-Key"
slot_languages_param = "langues"
directory_ttl_s = 300
"""

from __future__ import annotations

from typing import Final

from pydantic import Field

from sources.settings import LiveOptions

__all__ = [
    "DEFAULT_API_KEY_HEADER",
    "DEFAULT_CLINIC_PERMIT_SYSTEM",
    "DEFAULT_DIRECTORY_TTL_S",
    "DEFAULT_PHYSICIAN_LICENCE_SYSTEM",
    "MAX_DIRECTORY_TTL_S",
    "MAX_PAGE_SIZE",
    "RestJsonOptions",
]

MAX_PAGE_SIZE: Final = 500
DEFAULT_DIRECTORY_TTL_S: Final = 300.0
MAX_DIRECTORY_TTL_S: Final = 86_400.0
DEFAULT_API_KEY_HEADER: Final = "X-Cle-Api"
DEFAULT_CLINIC_PERMIT_SYSTEM: Final = "urn:passerelle:demo:clinic-permit"
DEFAULT_PHYSICIAN_LICENCE_SYSTEM: Final = "urn:passerelle:demo:physician-licence"
_TEXT = "a non-empty string"


class RestJsonOptions(LiveOptions):
    """What a REST/JSON source may set beyond the common settings (and ``LiveOptions``'s
    ``watch_calls_per_minute``).

    RestJsonOptions(page_size=100).api_key_header  # "X-Cle-Api"
    """

    page_size: int = Field(
        MAX_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"a whole number between 1 and {MAX_PAGE_SIZE}",
    )
    """The largest page asked for; slot searches ask for no more than their limit."""
    api_key_header: str = Field(DEFAULT_API_KEY_HEADER, min_length=1, description=_TEXT)
    """The header carrying the API key (the source's credentials)."""
    clinic_permit_system: str = Field(DEFAULT_CLINIC_PERMIT_SYSTEM, min_length=1, description=_TEXT)
    """The identifier system of the clinics' ``no_permis``."""
    physician_licence_system: str = Field(
        DEFAULT_PHYSICIAN_LICENCE_SYSTEM, min_length=1, description=_TEXT
    )
    """The identifier system of the physicians' ``no_licence``."""
    slot_path: str | None = Field(
        None,
        min_length=4,
        pattern=r"^[^?#]*\{id\}[^?#]*$",
        description="a path relative to the source URL holding {id}, e.g. disponibilites/{id}",
    )
    """Where one slot is read (``GET``, its ``statut`` read as in the listing; 404 or
    410: gone), for a slot checked at the moment of choice; None: the API has no such
    read, and checks answer ``UNKNOWN``."""
    slot_languages_param: str | None = Field(
        None, min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="a query parameter name"
    )
    """The slot listing's parameter keeping the slots whose physician speaks one of some
    languages (comma-separated codes such as ``es,it``), e.g. ``langues``; None: the API
    has none, and the gateway filters languages on what it reads. A 400 to a search
    carrying it is taken as "not supported": the search is asked again without it, and
    it is no longer sent (logged once)."""
    directory_ttl_s: float = Field(
        DEFAULT_DIRECTORY_TTL_S,
        ge=0,
        le=MAX_DIRECTORY_TTL_S,
        allow_inf_nan=False,
        description=f"a number of seconds from 0 to {MAX_DIRECTORY_TTL_S:.0f}",
    )
    """How long the clinics and physicians read by id are kept and used again
    (``sources.rest_json.directory``): a search asks only for those not held fresh; what
    the API did not serve (unknown, outside Quebec) is kept at most 60 s. 0: asked
    every search. Not the answer cache: ``cache_ttl_s`` and ``--cache off`` leave it."""
