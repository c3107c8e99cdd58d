"""Field resolvers and the per-request context.

GraphQL arguments in, sources called, merged records out.
"""
