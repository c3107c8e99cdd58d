"""GraphQL types and the Schema. No I/O here: fields delegate to ``resolvers``."""
