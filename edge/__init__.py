"""The gateway's faces to the outside: HTTP and the command line.

- HTTP: GraphQL over HTTP, and what guards and serves it; ``app.py`` assembles it,
  and it calls down into ``schema``. ``operation`` (a request read once),
  ``exchange`` (one request's values, step to step), ``services`` (the app's parts,
  one typed value), ``middleware/`` (ASGI middleware, one per file: body limit,
  CSRF, rate limits, the response cache), ``documents/`` (partner admission,
  trusted documents, APQ), ``pipeline`` (the steps before execution, in order),
  ``graphql_view`` (strawberry's view, adapted), ``subscriptions/`` (WebSocket and
  multipart subscriptions, their caps), ``access_log`` (no query string in uvicorn's
  logs) and ``graphiql``;
- ``settings``: what a gateway process is told at start (light: standard library only);
- ``cli/``: ``python app.py`` and its commands (see its docstring for what it may
  import, and when).

Never imports ``app``; ``examples`` only from ``cli/``, inside the function that
starts the demo.
"""
