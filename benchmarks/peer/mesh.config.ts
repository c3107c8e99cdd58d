// GraphQL Mesh composition of the demo REST API (examples/demo_rest) for Hive Gateway.
// benchmarks/peer.py runs `mesh-compose -o supergraph.graphql` with DEMO_REST_URL set
// (http://127.0.0.1:PORT/api/v1); the key is read at run time from the environment.
import { defineConfig } from '@graphql-mesh/compose-cli';
import { loadJSONSchemaSubgraph } from '@omnigraph/json-schema';

const envelope = (title: string, item: object) => ({
  type: 'object',
  title,
  properties: {
    resultats: { type: 'array', items: item },
    page: { type: 'integer' },
    pages: { type: 'integer' },
    limite: { type: 'integer' },
    total: { type: 'integer' },
  },
});

const clinique = {
  type: 'object',
  title: 'Clinique',
  properties: {
    id: { type: 'integer' },
    nom: { type: 'string' },
    adresse: {
      type: 'object',
      title: 'Adresse',
      properties: {
        rue: { type: 'string' },
        ville: { type: 'string' },
        code_postal: { type: 'string' },
      },
    },
    lat: { type: 'number' },
    lng: { type: 'number' },
    telephone: { type: 'string' },
    langues: { type: 'array', items: { type: 'string' } },
    no_permis: { type: 'string' },
  },
};

const medecin = {
  type: 'object',
  title: 'Medecin',
  properties: {
    id: { type: 'integer' },
    titre: { type: 'string' },
    prenom: { type: 'string' },
    nom: { type: 'string' },
    langues: { type: 'array', items: { type: 'string' } },
    no_licence: { type: 'string' },
    cliniques: { type: 'array', items: { type: 'integer' } },
    accepte_nouveaux_patients: { type: 'boolean' },
  },
};

const disponibilite = {
  type: 'object',
  title: 'Disponibilite',
  properties: {
    id: { type: 'string' },
    debut: { type: 'string' },
    fin: { type: 'string' },
    clinique_id: { type: 'integer' },
    medecin_id: { type: 'integer' },
    type_rdv: { type: 'string' },
    statut: { type: 'string' },
    lien_reservation: { type: 'string' },
    telephone_reservation: { type: 'string' },
  },
};

export const composeConfig = defineConfig({
  subgraphs: [
    {
      sourceHandler: loadJSONSchemaSubgraph('rest', {
        endpoint: process.env.DEMO_REST_URL ?? 'http://127.0.0.1:8102/api/v1',
        operationHeaders: { 'X-Cle-Api': '{env.PASSERELLE_DEMO_REST_KEY}' },
        operations: [
          {
            type: 'Query',
            field: 'disponibilites',
            path:
              '/disponibilites?statut=libre&lat={args.lat}&lng={args.lng}&rayon_km={args.rayon_km}' +
              '&debut_min={args.debut_min}&debut_max={args.debut_max}&limite={args.limite}',
            method: 'GET',
            argTypeMap: {
              lat: { type: 'number' },
              lng: { type: 'number' },
              rayon_km: { type: 'number' },
              debut_min: { type: 'string' },
              debut_max: { type: 'string' },
              limite: { type: 'integer' },
            },
            requiredArgs: ['lat', 'lng', 'rayon_km', 'debut_min', 'debut_max', 'limite'],
            responseSchema: envelope('Disponibilites', disponibilite),
          },
          {
            type: 'Query',
            field: 'cliniques',
            path: '/cliniques?ids={args.ids}&limite=500',
            method: 'GET',
            argTypeMap: { ids: { type: 'string' } },
            requiredArgs: ['ids'],
            responseSchema: envelope('Cliniques', clinique),
          },
          {
            type: 'Query',
            field: 'medecins',
            path: '/medecins?ids={args.ids}&limite=500',
            method: 'GET',
            argTypeMap: { ids: { type: 'string' } },
            requiredArgs: ['ids'],
            responseSchema: envelope('Medecins', medecin),
          },
        ],
      }),
    },
  ],
});
