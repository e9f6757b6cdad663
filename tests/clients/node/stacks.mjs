// Runs GraphQL operations through one stock client stack and prints, as JSON, what the client surfaced.
//
//   node stacks.mjs STACK < input.json
//
// STACK: apollo | apollo-apq | apollo-batch | urql | graphql-request.
// input: {url, cases: [{name, query, variables, key, breakDocument}]}; key null sends no Authorization header;
// breakDocument makes the client send a document that does not parse (clients parse what they are given first,
// so an AST whose printed text is not GraphQL is how a parse error reaches the server through them).
// output: {results: [{name, data, errors, where}], requests: [{method, query, body, status, contentType, answer}]}
// where `where` says which property of the client's result or error held the errors.
import { createHash } from 'node:crypto';
import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client/core/index.js';
import { BatchHttpLink } from '@apollo/client/link/batch-http/index.js';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries/index.js';
import { Client, fetchExchange } from '@urql/core';
import { GraphQLClient } from 'graphql-request';
import { parse } from 'graphql';

const requests = [];

// The stock fetch, recording what went over the wire (the APQ test counts requests that carried a `query`).
async function recordingFetch(input, init = {}) {
  const response = await fetch(input, init);
  const url = new URL(input.url ?? String(input)); // a Request, a URL or a string
  const body = typeof init.body === 'string' ? JSON.parse(init.body) : null;
  const contentType = response.headers.get('content-type');
  const answer = /json/.test(contentType ?? '') ? await response.clone().json() : null;
  requests.push({
    method: init.method ?? 'GET',
    query: Object.fromEntries(url.searchParams),
    body,
    status: response.status,
    contentType,
    answer,
  });
  return response;
}

function authorization(key) {
  return key === null ? {} : { authorization: `Bearer ${key}` };
}

function documentOf(testCase) {
  const document = parse(testCase.query, { noLocation: true });
  if (testCase.breakDocument) {
    // A field name that no GraphQL parser accepts: the printed document has a syntax error.
    document.definitions[0].selectionSet.selections[0].name = { kind: 'Name', value: 'pointsBalance !' };
  }
  return document;
}

function plainErrors(errors) {
  return (errors ?? []).map((error) => ({ message: error.message, extensions: error.extensions ?? null }));
}

// Apollo Client 3 puts the errors of a 2xx answer in graphQLErrors, those of a non-2xx JSON answer in
// networkError.result.errors.
function apolloOutcome(name, result, error) {
  if (error === undefined) {
    return { name, data: result.data ?? null, errors: [], where: null };
  }
  if (error.graphQLErrors?.length) {
    return { name, data: null, errors: plainErrors(error.graphQLErrors), where: 'error.graphQLErrors' };
  }
  const network = error.networkError;
  if (network?.result?.errors) {
    return { name, data: null, errors: plainErrors(network.result.errors), where: 'error.networkError.result.errors' };
  }
  return { name, data: null, errors: [{ message: error.message, extensions: null }], where: 'error.message' };
}

function apolloStack(makeLink) {
  const clients = new Map();
  return async (testCase) => {
    if (!clients.has(testCase.key)) {
      clients.set(testCase.key, new ApolloClient({ link: makeLink(testCase.key), cache: new InMemoryCache() }));
    }
    const client = clients.get(testCase.key);
    try {
      // no-cache: every case goes to the server, the repeated APQ query included.
      const result = await client.query({
        query: documentOf(testCase),
        variables: testCase.variables ?? undefined,
        fetchPolicy: 'no-cache',
      });
      return apolloOutcome(testCase.name, result, undefined);
    } catch (error) {
      return apolloOutcome(testCase.name, undefined, error);
    }
  };
}

function sha256(text) {
  return createHash('sha256').update(text).digest('hex');
}

function urqlStack(url) {
  const clients = new Map();
  return async (testCase) => {
    if (!clients.has(testCase.key)) {
      const headers = authorization(testCase.key);
      const client = new Client({ url, exchanges: [fetchExchange], fetch: recordingFetch, fetchOptions: { headers } });
      clients.set(testCase.key, client);
    }
    const client = clients.get(testCase.key);
    const result = await client
      .query(documentOf(testCase), testCase.variables ?? {}, { requestPolicy: 'network-only' })
      .toPromise();
    const error = result.error;
    if (error === undefined) {
      return { name: testCase.name, data: result.data ?? null, errors: [], where: null };
    }
    if (error.graphQLErrors.length) {
      const errors = plainErrors(error.graphQLErrors);
      return { name: testCase.name, data: result.data ?? null, errors, where: 'result.error.graphQLErrors' };
    }
    const errors = [{ message: error.message, extensions: null }];
    return { name: testCase.name, data: null, errors, where: 'result.error.networkError' };
  };
}

function graphqlRequestStack(url) {
  return async (testCase) => {
    const client = new GraphQLClient(url, { headers: authorization(testCase.key), fetch: recordingFetch });
    // graphql-request sends a string document as it is.
    const { query, breakDocument } = testCase;
    const document = breakDocument ? query.replace('pointsBalance', 'pointsBalance !') : query;
    try {
      const data = await client.request(document, testCase.variables ?? undefined);
      return { name: testCase.name, data, errors: [], where: null };
    } catch (error) {
      if (error.response?.errors) {
        const errors = plainErrors(error.response.errors);
        return { name: testCase.name, data: error.response.data ?? null, errors, where: 'error.response.errors' };
      }
      const errors = [{ message: error.message, extensions: null }];
      return { name: testCase.name, data: null, errors, where: 'error.message' };
    }
  };
}

function stack(name, url) {
  const http = (key) => new HttpLink({ uri: url, headers: authorization(key), fetch: recordingFetch });
  switch (name) {
    case 'apollo':
      return apolloStack(http);
    case 'apollo-apq':
      return apolloStack((key) => createPersistedQueryLink({ sha256 }).concat(http(key)));
    case 'apollo-batch':
      return apolloStack((key) => new BatchHttpLink({ uri: url, headers: authorization(key), fetch: recordingFetch }));
    case 'urql':
      return urqlStack(url);
    case 'graphql-request':
      return graphqlRequestStack(url);
    default:
      throw new Error(`unknown stack ${name}`);
  }
}

const chunks = [];
for await (const chunk of process.stdin) {
  chunks.push(chunk);
}
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const run = stack(process.argv[2], input.url);
const results = [];
if (process.argv[2] === 'apollo-batch') {
  // A batching link batches the operations that are in flight together: send them all at once.
  results.push(...(await Promise.all(input.cases.map(run))));
} else {
  for (const testCase of input.cases) {
    results.push(await run(testCase));
  }
}
process.stdout.write(JSON.stringify({ results, requests }));
