// PostGraphile 5 as a bench contender: amber preset, production settings, a
// fixed pool, only the `bench` schema (one SQL function) exposed. No auth.
// The bench copies this file next to its node_modules and runs it with Node 22.
import { createServer } from "node:http";

import pg from "pg";
import { postgraphile } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";

const env = (name) => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const pool = new pg.Pool({
  host: env("BENCH_PG_HOST"),
  port: Number(process.env.BENCH_PG_PORT ?? "5432"),
  user: env("BENCH_PG_USER"),
  database: env("BENCH_PG_DATABASE"),
  max: Number(env("BENCH_POOL_SIZE")),
  application_name: "postgraphile-bench",
});

const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [makePgService({ pool, schemas: ["bench"] })],
  grafserv: { graphqlPath: "/graphql", graphiql: false, watch: false, websockets: false },
  grafast: { explain: false },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
const server = createServer();
server.on("error", (error) => {
  console.error(error);
  process.exit(1);
});
serv.addTo(server).then(() => {
  server.listen(Number(env("PORT")), env("HOST"), () => console.log(`postgraphile listening on ${env("PORT")}`));
});

const stop = () => {
  server.close();
  pgl.release().finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
