"""The HTTP edge: GraphQL over HTTP, and what guards and serves it (GraphiQL, persisted
queries, CSRF). ``app.py`` assembles it; it calls down into ``schema``."""
