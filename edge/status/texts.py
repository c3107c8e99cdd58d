"""The status page's words, in French (first) and English, and the choice between them:
``?lang=fr|en``, else the browser's ``Accept-Language``, else French."""

# The official regions' names are written with an en dash, and French with its own
# apostrophe and quotation marks: the characters ruff would take for look-alikes are meant.
# ruff: noqa: RUF001

from __future__ import annotations

from typing import Final

from sources.records import Region, SourceStatus

__all__ = ["LANGUAGES", "REGION_NAMES", "STATUS_LABELS", "TEXTS", "choose_language"]

LANGUAGES: Final = ("fr", "en")

# Quebec's administrative regions: their official numbers and names (the same in English).
REGION_NAMES: Final[dict[Region, tuple[str, str]]] = {
    Region.BAS_SAINT_LAURENT: ("01", "Bas-Saint-Laurent"),
    Region.SAGUENAY_LAC_SAINT_JEAN: ("02", "Saguenay–Lac-Saint-Jean"),
    Region.CAPITALE_NATIONALE: ("03", "Capitale-Nationale"),
    Region.MAURICIE: ("04", "Mauricie"),
    Region.ESTRIE: ("05", "Estrie"),
    Region.MONTREAL: ("06", "Montréal"),
    Region.OUTAOUAIS: ("07", "Outaouais"),
    Region.ABITIBI_TEMISCAMINGUE: ("08", "Abitibi-Témiscamingue"),
    Region.COTE_NORD: ("09", "Côte-Nord"),
    Region.NORD_DU_QUEBEC: ("10", "Nord-du-Québec"),
    Region.GASPESIE_ILES_DE_LA_MADELEINE: ("11", "Gaspésie–Îles-de-la-Madeleine"),
    Region.CHAUDIERE_APPALACHES: ("12", "Chaudière-Appalaches"),
    Region.LAVAL: ("13", "Laval"),
    Region.LANAUDIERE: ("14", "Lanaudière"),
    Region.LAURENTIDES: ("15", "Laurentides"),
    Region.MONTEREGIE: ("16", "Montérégie"),
    Region.CENTRE_DU_QUEBEC: ("17", "Centre-du-Québec"),
}

STATUS_LABELS: Final[dict[str, dict[SourceStatus, str]]] = {
    "fr": {
        SourceStatus.UP: "En service",
        SourceStatus.DEGRADED: "Dégradé",
        SourceStatus.DOWN: "En panne",
        SourceStatus.DISABLED: "Désactivé",
    },
    "en": {
        SourceStatus.UP: "Operational",
        SourceStatus.DEGRADED: "Degraded",
        SourceStatus.DOWN: "Down",
        SourceStatus.DISABLED: "Disabled",
    },
}

TEXTS: Final[dict[str, dict[str, str]]] = {
    "fr": {
        "title": "État du service",
        "lead": "Passerelle réunit les rendez-vous libres de médecins de famille de plusieurs "
        "systèmes de réservation du Québec.",
        "switch": "English",
        "sources": "Systèmes de réservation",
        "freshness": "Données",
        "latency": "Temps de réponse",
        "problems": "Problèmes",
        "none": "aucun",
        "never": "jamais",
        "ago": "il y a {}",
        "coverage": "Couverture par région",
        "coverage_lead": "Cliniques et rendez-vous libres dans les 7 prochains jours, "
        "comptés toutes les minutes à partir des données déjà reçues.",
        "region": "Région",
        "clinics": "Cliniques",
        "slots": "Rendez-vous libres",
        "at_least": "au moins {}",
        "at_least_note": "« au moins » : certains systèmes ne peuvent être comptés en entier ; "
        "seules les réponses récentes en cache sont comptées.",
        "not_counted": "Couverture en cours de calcul.",
        "computed": "Calculé {}",
        "updated": "Page générée le {} (UTC). Elle se met à jour chaque minute.",
        "no_sources": "Aucun système de réservation n’est configuré.",
        "operator": "Vue des opérateurs",
        "samples": "Exemples",
        "diagnostics": "Diagnostic",
        "changes": "Changements du registre",
        "no_changes": "Aucun changement vu depuis le démarrage.",
        "counted_by": "Compté par",
        "json": "Version JSON",
    },
    "en": {
        "title": "Service status",
        "lead": "Passerelle gathers the free family-doctor appointments of several Quebec "
        "booking systems.",
        "switch": "Français",
        "sources": "Booking systems",
        "freshness": "Data",
        "latency": "Response time",
        "problems": "Problems",
        "none": "none",
        "never": "never",
        "ago": "{} ago",
        "coverage": "Coverage by region",
        "coverage_lead": "Clinics and free appointments in the next 7 days, counted every "
        "minute from the data already received.",
        "region": "Region",
        "clinics": "Clinics",
        "slots": "Free appointments",
        "at_least": "at least {}",
        "at_least_note": "“at least”: some systems cannot be counted in full; only their "
        "recent cached answers are counted.",
        "not_counted": "Coverage is being computed.",
        "computed": "Computed {}",
        "updated": "Page generated {} (UTC). It refreshes every minute.",
        "no_sources": "No booking system is configured.",
        "operator": "Operator view",
        "samples": "Samples",
        "diagnostics": "Diagnostics",
        "changes": "Registry changes",
        "no_changes": "No change seen since start-up.",
        "counted_by": "Counted from",
        "json": "JSON version",
    },
}


def choose_language(asked: str | None, accept_language: str | None) -> str:
    """``asked`` (``?lang=``) when it is one of :data:`LANGUAGES`, else the first of them
    the ``Accept-Language`` header prefers (by q-value), else French."""
    if asked in LANGUAGES:
        return asked
    best, best_q = "fr", 0.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best
