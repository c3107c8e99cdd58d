// Apollo Client's persisted-queries link (useGETForHashedQueries) against a live
// gateway: the same query twice, then prints what was sent and received as JSON.
//   node tests/apollo/apq_check.mjs http://127.0.0.1:8000/graphql
import { createHash } from 'node:crypto';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';

const url = process.argv[2];
const requests = [];
async function recordingFetch(input, init = {}) {
  const response = await fetch(input, init);
  const target = new URL(String(input));
  const body = typeof init.body === 'string' ? JSON.parse(init.body) : null;
  requests.push({
    method: init.method ?? 'GET',
    status: response.status,
    sentQuery: Boolean(body?.query ?? target.searchParams.get('query')),
    sentHash: Boolean(
      body?.extensions?.persistedQuery ?? target.searchParams.get('extensions'),
    ),
  });
  return response;
}

const link = new PersistedQueryLink({
  sha256: (text) => createHash('sha256').update(text).digest('hex'),
  useGETForHashedQueries: true,
}).concat(new HttpLink({ uri: url, fetch: recordingFetch }));
const client = new ApolloClient({ link, cache: new InMemoryCache() });
const query = gql`
  query SlotsNearMe($first: Int!) {
    slots(filter: { near: { latitude: 45.5017, longitude: -73.5673 }, radiusKm: 30 }, first: $first) {
      edges { node { id start clinic { name } } }
    }
  }
`;
const first = await client.query({ query, variables: { first: 3 }, fetchPolicy: 'network-only' });
const second = await client.query({ query, variables: { first: 3 }, fetchPolicy: 'network-only' });
console.log(JSON.stringify({ first: first.data, second: second.data, requests }));
