"""The gateway's faces to the outside: HTTP and the command line.

- HTTP: GraphQL over HTTP, and what guards and serves it (GraphiQL, persisted
  queries, CSRF, rate limits, the response cache); ``app.py`` assembles it, and it
  calls down into ``schema``;
- ``settings``: what a gateway process is told at start (light: standard library only);
- ``cli/``: ``python app.py`` and its commands (see its docstring for what it may
  import, and when).

Never imports ``app``; ``examples`` only from ``cli/``, inside the function that
starts the demo.
"""
