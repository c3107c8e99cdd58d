// Hive Gateway over the composed demo REST API (supergraph.graphql, see mesh.config.ts).
// benchmarks/peer.py chooses a case with PEER_CASE:
//   executed   no cache, no deduplication: each request does its own work
//   dedup      inbound in-flight request deduplication (identical concurrent requests)
//   cached     response cache plugin + automatic persisted queries, APQ first
import { defineConfig, type GatewayPlugin } from '@graphql-hive/gateway';
import { createInMemoryAPQStore, useAPQ } from '@graphql-yoga/plugin-apq';
import { useResponseCache } from '@graphql-yoga/plugin-response-cache';

const CASE = process.env.PEER_CASE ?? 'executed';
// How long a cached response lives (ms), as Passerelle keeps the REST source's answers.
const TTL_MS = Number(process.env.PEER_TTL_MS ?? 30_000);

// The slot's clinic and physician: batched lookups through Mesh's in-context SDK (one
// /cliniques?ids=... and one /medecins?ids=... call per request, whatever the slots).
const lookup =
  (field: 'cliniques' | 'medecins', keyOf: (root: any) => number | null | undefined) =>
  (root: any, _args: unknown, context: any, info: any) =>
    context.rest.Query[field]({
      root,
      context,
      info,
      key: keyOf(root),
      argsFromKeys: (ids: number[]) => ({ ids: ids.join(',') }),
      selectionSet: (subtree: any) => ({
        kind: 'SelectionSet',
        selections: [
          {
            kind: 'Field',
            name: { kind: 'Name', value: 'resultats' },
            selectionSet: {
              kind: 'SelectionSet',
              selections: [
                { kind: 'Field', name: { kind: 'Name', value: 'id' } },
                ...subtree.selections,
              ],
            },
          },
        ],
      }),
      valuesFromResults: (data: any, ids: number[]) =>
        ids.map((id) => (data?.resultats ?? []).find((item: any) => item.id === id) ?? null),
    });

const plugins: GatewayPlugin[] = [];
if (CASE === 'cached') {
  // In this order: APQ turns a hash into its document before the cache looks it up.
  // The plugin's store forgets a hash after 36 s by default: keep them for the run.
  plugins.push(useAPQ({ store: createInMemoryAPQStore({ ttl: 24 * 3600 * 1000 }) }) as GatewayPlugin);
  plugins.push(useResponseCache({ session: () => null, ttl: TTL_MS }) as GatewayPlugin);
}

export const gatewayConfig = defineConfig({
  supergraph: process.env.PEER_SUPERGRAPH ?? './supergraph.graphql',
  additionalTypeDefs: /* GraphQL */ `
    extend type Disponibilite {
      clinique: Clinique
      medecin: Medecin
    }
  `,
  additionalResolvers: {
    Disponibilite: {
      clinique: {
        selectionSet: '{ clinique_id }',
        resolve: lookup('cliniques', (root) => root.clinique_id),
      },
      medecin: {
        selectionSet: '{ medecin_id }',
        resolve: lookup('medecins', (root) => root.medecin_id),
      },
    },
  },
  inboundInflightRequestDeduplication: CASE === 'dedup',
  plugins: () => plugins,
  logging: 'warn',
});
