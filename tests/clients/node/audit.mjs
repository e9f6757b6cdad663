// Runs graphql-http's GraphQL-over-HTTP server audits against the gateway and prints the results as JSON.
//
//   LOYALTY_API_KEY=KEY node audit.mjs URL
//
// Every audit request carries the API key: without it the gateway answers 401 before any GraphQL is read.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
const key = process.env.LOYALTY_API_KEY;

function fetchWithKey(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${key}`);
  return fetch(input, { ...init, headers });
}

const results = [];
for (const audit of serverAudits({ url, fetchFn: fetchWithKey })) {
  const result = await audit.fn();
  results.push({ id: result.id, name: result.name, status: result.status, reason: result.reason ?? null });
}
process.stdout.write(JSON.stringify(results));
