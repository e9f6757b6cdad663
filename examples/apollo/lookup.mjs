// Looks up a customer's points balance through the loyalty gateway with Apollo Client.
// GATEWAY_URL (default http://127.0.0.1:8000/graphql) and LOYALTY_API_KEY come from the environment.
import { createHash } from 'node:crypto';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client/core/index.js';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries/index.js';

const url = process.env.GATEWAY_URL ?? 'http://127.0.0.1:8000/graphql';
const key = process.env.LOYALTY_API_KEY;
if (!key) {
  console.error('Set LOYALTY_API_KEY to the API key that `loyalty-gateway serve --demo` prints.');
  process.exit(1);
}

// Automatic persisted queries: after the first request the query travels as its SHA-256 only.
const persistedQueries = createPersistedQueryLink({
  sha256: (query) => createHash('sha256').update(query).digest('hex'),
});
const client = new ApolloClient({
  link: persistedQueries.concat(new HttpLink({ uri: url, headers: { authorization: `Bearer ${key}` } })),
  cache: new InMemoryCache(),
});

const BALANCE = gql`
  query Balance($email: String!) {
    pointsBalance(identifiers: [{ type: EMAIL, value: $email }], source: INSTORE) {
      entityId
      totalPoints
    }
  }
`;

try {
  const { data } = await client.query({ query: BALANCE, variables: { email: 'tom@example.com' } });
  console.log(`Customer ${data.pointsBalance.entityId} has ${data.pointsBalance.totalPoints} points.`);
} catch (error) {
  // A refusal (401 bad key, 429 rate limited) arrives as a network error whose result holds the gateway's errors.
  const errors = error.graphQLErrors?.length ? error.graphQLErrors : (error.networkError?.result?.errors ?? [error]);
  for (const { message, extensions } of errors) {
    console.error(`${extensions?.code ?? 'ERROR'}: ${message}`);
  }
  process.exitCode = 1;
}
