// One live subscription through a stock client, printed as it goes: one JSON line per event on stdout.
//
//   node live.mjs ws|sse URL KEY PAYLOAD
//
// ws: graphql-ws (graphql-transport-ws), the key in connection_init's payload; sse: graphql-sse (distinct
// connections mode), the key in the Authorization header. PAYLOAD: {"query": …, "variables": …}.
// Lines: {"next": result} for each message, then {"complete": true} or {"error": …} when the stream ends.
import { createClient as createWebSocketClient } from 'graphql-ws';
import { createClient as createEventStreamClient } from 'graphql-sse';
import WebSocket from 'ws';

const [transport, url, key, payload] = process.argv.slice(2);
const print = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

const client =
  transport === 'ws'
    ? createWebSocketClient({
        url: url.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${key}` },
        retryAttempts: 0,
      })
    : createEventStreamClient({
        url,
        headers: { authorization: `Bearer ${key}` },
        singleConnection: false,
        retryAttempts: 0,
      });

client.subscribe(JSON.parse(payload), {
  next: (result) => print({ next: result }),
  error: (error) => {
    // graphql-ws gives a CloseEvent or GraphQL errors, graphql-sse an Error or a Response.
    const detail = Array.isArray(error)
      ? error
      : { message: error?.message ?? error?.reason ?? String(error), code: error?.code ?? error?.status };
    print({ error: detail });
    process.exit(0);
  },
  complete: () => {
    print({ complete: true });
    process.exit(0);
  },
});
