"""Places: whether a location is served, and where (the same rule for every adapter).

- ``locate``: the rule (:func:`locate`): outside Quebec, not served; in Quebec, at its
  own position, else at its municipality's centre (approximate), else without one;
- ``municipalities``: the table of Quebec municipalities' positions (GeoNames, CC BY
  4.0; ``README.md`` says where it comes from and how to rebuild it with
  ``make_table``) and the lookup of a city name in it;
- ``tally``: the places counted as adapters read them, and the problems they make
  (``OUTSIDE_QUEBEC``, ``NO_POSITION``, ``APPROXIMATE_POSITION``).

Whether a place is in Quebec at all is ``sources.quebec``'s rule.
"""

from sources.places.locate import Place, PlaceKind, locate
from sources.places.municipalities import Municipality, municipality, place_key
from sources.places.tally import NO_PLACES, Places, PlaceTally, RecentPlaces, place_problems

__all__ = [
    "NO_PLACES",
    "Municipality",
    "Place",
    "PlaceKind",
    "PlaceTally",
    "Places",
    "RecentPlaces",
    "locate",
    "municipality",
    "place_key",
    "place_problems",
]
