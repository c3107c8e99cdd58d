"""Booking sources: the Source contract, one adapter per protocol, the registry, the fan-out.

Nothing here knows GraphQL; ``resolvers`` calls into this package, never the reverse.
"""
