// Real clients subscribing to a live gateway, each printing what it hears as one JSON
// line on stdout (tests/edge/subscriptions/ read them as they come):
//   apollo-ws         Apollo Client with GraphQLWsLink (graphql-ws over WebSocket)
//   apollo-multipart  Apollo Client with HttpLink (multipart HTTP subscriptions)
//   graphql-ws        the graphql-ws client alone, which also reports the server's pings
//
//   node subscriptions_check.mjs SPEC_JSON
//
// SPEC_JSON: {"url": "http://127.0.0.1:PORT/graphql", "query": "subscription ...",
//   "variables": {...}, "clients": ["apollo-ws", ...], "key": "psk_..." (optional: sent in
//   connection_init's payload and as the Authorization header), "extensions": {...}
//   (optional, graphql-ws only: sent as the subscribe message's extensions, e.g. a
//   persisted document's hash), "noQuery": true (optional, graphql-ws only: no text)}.
// Lines: {"client", "event": "connected" | "next" | "error" | "complete" | "ping" |
// "closed", ...}. Stdin closing (or the line "stop") disposes every client and exits.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const spec = JSON.parse(process.argv[2]);
const wsUrl = spec.url.replace(/^http/, "ws");
const authorization = spec.key ? `Bearer ${spec.key}` : undefined;
const say = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const disposers = [];

function wsClient(name) {
  return createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: authorization ? { Authorization: authorization } : {},
    retryAttempts: 0,
    lazy: false,
    on: {
      connected: () => say({ client: name, event: "connected" }),
      ping: (received) => received && say({ client: name, event: "ping" }),
      closed: (event) => say({ client: name, event: "closed", code: event?.code, reason: event?.reason }),
    },
  });
}

function apollo(name, link) {
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  const observable = client.subscribe({ query: gql(spec.query), variables: spec.variables ?? {} });
  const subscription = observable.subscribe({
    next: (result) =>
      result.error
        ? say({ client: name, event: "error", error: describe(result.error) })
        : say({ client: name, event: "next", data: result.data }),
    error: (error) => say({ client: name, event: "error", error: describe(error) }),
    complete: () => say({ client: name, event: "complete" }),
  });
  disposers.push(() => subscription.unsubscribe());
  disposers.push(() => client.stop());
}

function describe(error) {
  const errors = error?.errors ?? error?.graphQLErrors ?? [];
  return {
    name: error?.name,
    message: error?.message,
    codes: errors.map((e) => e?.extensions?.code ?? null),
    statusCode: error?.statusCode ?? null,
  };
}

for (const name of spec.clients) {
  if (name === "apollo-ws") {
    const ws = wsClient(name);
    disposers.push(() => ws.dispose());
    apollo(name, new GraphQLWsLink(ws));
  } else if (name === "apollo-multipart") {
    const headers = authorization ? { Authorization: authorization } : {};
    apollo(name, new HttpLink({ uri: spec.url, headers }));
  } else if (name === "graphql-ws") {
    const ws = wsClient(name);
    disposers.push(() => ws.dispose());
    const payload = { variables: spec.variables ?? {}, extensions: spec.extensions };
    if (!spec.noQuery) payload.query = spec.query;
    const unsubscribe = ws.subscribe(payload, {
      next: (result) =>
        result.errors
          ? say({ client: name, event: "error", error: describe(result) })
          : say({ client: name, event: "next", data: result.data }),
      error: (error) =>
        say({
          client: name,
          event: "error",
          error: Array.isArray(error) ? describe({ errors: error }) : { message: String(error?.reason ?? error), code: error?.code },
        }),
      complete: () => say({ client: name, event: "complete" }),
    });
    disposers.push(unsubscribe);
  } else {
    throw new Error(`unknown client ${name}`);
  }
}

function stop() {
  for (const dispose of disposers.reverse()) {
    try {
      dispose();
    } catch {}
  }
  setTimeout(() => process.exit(0), 100);
}
process.stdin.on("data", (chunk) => String(chunk).includes("stop") && stop());
process.stdin.on("end", stop);
