"""The real Quebec the demo world (``examples.world``) is drawn from.

Cities by administrative region, with coordinates, forward sortation areas and population
(which weighs where clinics go), street names, kinds of clinic, area codes, and given and
family names; the places on Atlantic time, each with its zone, and the postal code of
the clinics the world always has there. Data only: ``World`` draws from these tables
with its own seeded streams.
"""

from __future__ import annotations

from sources.records import Region

_R = Region
# (city, region, latitude, longitude, FSAs, population in thousands)
City = tuple[str, Region, float, float, tuple[str, ...], int]
CITIES: tuple[City, ...] = (
    ("Rimouski", _R.BAS_SAINT_LAURENT, 48.4490, -68.5240, ("G5L", "G5M", "G5N"), 49),
    ("Rivière-du-Loup", _R.BAS_SAINT_LAURENT, 47.8350, -69.5360, ("G5R",), 20),
    ("Matane", _R.BAS_SAINT_LAURENT, 48.8460, -67.5330, ("G4W",), 14),
    ("Saguenay", _R.SAGUENAY_LAC_SAINT_JEAN, 48.4280, -71.0680, ("G7H", "G7J", "G7S", "G7X"), 145),
    ("Alma", _R.SAGUENAY_LAC_SAINT_JEAN, 48.5500, -71.6500, ("G8B",), 31),
    ("Roberval", _R.SAGUENAY_LAC_SAINT_JEAN, 48.5200, -72.2300, ("G8H",), 10),
    ("Québec", _R.CAPITALE_NATIONALE, 46.8130, -71.2080, ("G1R", "G1K", "G1S", "G1V", "G2J"), 550),
    ("Baie-Saint-Paul", _R.CAPITALE_NATIONALE, 47.4400, -70.5000, ("G3Z",), 7),
    ("Trois-Rivières", _R.MAURICIE, 46.3430, -72.5430, ("G8T", "G8Y", "G9A"), 140),
    ("Shawinigan", _R.MAURICIE, 46.5660, -72.7450, ("G9N", "G9P"), 50),
    ("Sherbrooke", _R.ESTRIE, 45.4040, -71.8930, ("J1E", "J1H", "J1J", "J1L"), 172),
    ("Magog", _R.ESTRIE, 45.2670, -72.1490, ("J1X",), 28),
    (
        "Montréal",
        _R.MONTREAL,
        45.5017,
        -73.5673,
        ("H2X", "H2L", "H2J", "H3H", "H3A", "H2T", "H1V", "H4A", "H3T", "H2S"),
        1760,
    ),
    ("Dollard-des-Ormeaux", _R.MONTREAL, 45.4940, -73.8240, ("H9A", "H9B"), 50),
    ("Gatineau", _R.OUTAOUAIS, 45.4770, -75.7010, ("J8T", "J8Y", "J8Z", "J9H"), 290),
    ("Maniwaki", _R.OUTAOUAIS, 46.3800, -75.9700, ("J9E",), 4),
    ("Rouyn-Noranda", _R.ABITIBI_TEMISCAMINGUE, 48.2390, -79.0190, ("J9X", "J9Y"), 43),
    ("Val-d'Or", _R.ABITIBI_TEMISCAMINGUE, 48.0970, -77.7830, ("J9P",), 33),
    ("Sept-Îles", _R.COTE_NORD, 50.2180, -66.3810, ("G4R", "G4S"), 25),
    ("Baie-Comeau", _R.COTE_NORD, 49.2170, -68.1500, ("G4Z", "G5C"), 21),
    ("Chibougamau", _R.NORD_DU_QUEBEC, 49.9130, -74.3660, ("G8P",), 7),
    ("Gaspé", _R.GASPESIE_ILES_DE_LA_MADELEINE, 48.8310, -64.4870, ("G4X",), 15),
    ("Les Îles-de-la-Madeleine", _R.GASPESIE_ILES_DE_LA_MADELEINE, 47.3800, -61.8600, ("G4T",), 12),
    ("Lévis", _R.CHAUDIERE_APPALACHES, 46.8030, -71.1770, ("G6V", "G6W", "G6Z"), 150),
    ("Saint-Georges", _R.CHAUDIERE_APPALACHES, 46.1180, -70.6700, ("G5Y", "G5Z"), 33),
    ("Thetford Mines", _R.CHAUDIERE_APPALACHES, 46.0930, -71.3050, ("G6G",), 26),
    ("Laval", _R.LAVAL, 45.6060, -73.7120, ("H7N", "H7T", "H7V", "H7W", "H7G"), 440),
    ("Joliette", _R.LANAUDIERE, 46.0210, -73.4400, ("J6E",), 21),
    ("Terrebonne", _R.LANAUDIERE, 45.7000, -73.6400, ("J6W", "J6X", "J6Y"), 120),
    ("Repentigny", _R.LANAUDIERE, 45.7420, -73.4500, ("J5Y", "J5Z", "J6A"), 86),
    ("Saint-Jérôme", _R.LAURENTIDES, 45.7800, -74.0030, ("J7Y", "J7Z"), 80),
    ("Blainville", _R.LAURENTIDES, 45.6700, -73.8800, ("J7B", "J7C"), 60),
    ("Mont-Tremblant", _R.LAURENTIDES, 46.1180, -74.5960, ("J8E",), 10),
    ("Longueuil", _R.MONTEREGIE, 45.5370, -73.5100, ("J4H", "J4J", "J4K", "J4M"), 250),
    ("Brossard", _R.MONTEREGIE, 45.4580, -73.4660, ("J4W", "J4X", "J4Y", "J4Z"), 90),
    ("Saint-Jean-sur-Richelieu", _R.MONTEREGIE, 45.3070, -73.2620, ("J2W", "J3A", "J3B"), 98),
    ("Saint-Hyacinthe", _R.MONTEREGIE, 45.6300, -72.9560, ("J2R", "J2S", "J2T"), 57),
    ("Granby", _R.MONTEREGIE, 45.4000, -72.7330, ("J2G", "J2H", "J2J"), 70),
    ("Châteauguay", _R.MONTEREGIE, 45.3800, -73.7500, ("J6J", "J6K"), 50),
    ("Vaudreuil-Dorion", _R.MONTEREGIE, 45.4000, -74.0330, ("J7V",), 40),
    ("Drummondville", _R.CENTRE_DU_QUEBEC, 45.8800, -72.4840, ("J2A", "J2B", "J2C"), 80),
    ("Victoriaville", _R.CENTRE_DU_QUEBEC, 46.0550, -71.9580, ("G6P", "G6S", "G6T"), 48),
)

# The time zone of a city off Eastern time (the Loi sur le temps légal; every other city
# keeps America/Montreal).
TIME_ZONES: dict[str, str] = {
    "Les Îles-de-la-Madeleine": "America/Halifax",
    "Cap-aux-Meules": "America/Halifax",
    "Blanc-Sablon": "America/Blanc-Sablon",
}
# Places on Atlantic time the world always has a clinic in, whatever its scale: the
# Îles-de-la-Madeleine (Atlantic time, with daylight saving) and the Basse-Côte-Nord
# (Atlantic Standard Time all year). (city, postal code).
ATLANTIC_PLACES: tuple[tuple[City, str], ...] = (
    (
        ("Cap-aux-Meules", _R.GASPESIE_ILES_DE_LA_MADELEINE, 47.3800, -61.8600, ("G4T",), 1),
        "G4T 1B2",
    ),
    (("Blanc-Sablon", _R.COTE_NORD, 51.4260, -57.1310, ("G0G",), 1), "G0G 1W0"),
)

AREA_CODES = ("514", "450", "418", "819", "438")
STREETS = (
    "rue Saint-Denis",
    "boulevard Saint-Laurent",
    "rue Sherbrooke",
    "rue Principale",
    "boulevard René-Lévesque",
    "rue Notre-Dame",
    "chemin du Roy",
    "avenue du Parc",
    "rue King Ouest",
    "boulevard Taschereau",
    "rue des Érables",
    "avenue Cartier",
    "rue Wellington",
    "boulevard de la Concorde",
    "rue Racine",
    "boulevard Talbot",
)
CLINIC_KINDS = (
    "Clinique médicale",
    "GMF",
    "Centre médical",
    "Polyclinique",
    "Clinique familiale",
    "Médecine familiale",
)
GIVEN = (
    "Marie",
    "Louis",
    "Sophie",
    "Jean",
    "Isabelle",
    "Mathieu",
    "Catherine",
    "Olivier",
    "Nathalie",
    "Alexandre",
    "Julie",
    "François",
    "Émilie",
    "Samuel",
    "Amira",
    "Karim",
    "Mei",
    "David",
    "Sarah",
    "Gabriel",
    "Chloé",
    "Antoine",
    "Fatima",
    "Nguyen",
)
FAMILY = (
    "Tremblay",
    "Gagnon",
    "Roy",
    "Côté",
    "Bouchard",
    "Gauthier",
    "Morin",
    "Lavoie",
    "Fortin",
    "Gagné",
    "Ouellet",
    "Pelletier",
    "Bélanger",
    "Lévesque",
    "Bergeron",
    "Leblanc",
    "Paquette",
    "Girard",
    "Simard",
    "Boucher",
    "Caron",
    "Beaulieu",
    "Nguyen",
    "Haddad",
    "Smith",
    "Cohen",
    "Benali",
    "Chen",
)

__all__ = [
    "AREA_CODES",
    "ATLANTIC_PLACES",
    "CITIES",
    "CLINIC_KINDS",
    "FAMILY",
    "GIVEN",
    "STREETS",
    "TIME_ZONES",
    "City",
]
