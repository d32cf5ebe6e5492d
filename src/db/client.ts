/**
 * The drizzle client over the D1 binding, one per binding object: a drizzle client is a
 * stateless wrapper (no logger, no cache) whose construction walks the schema, so it is built
 * once rather than per request or per write. Bindings live as long as the isolate or object
 * whose env holds them; a WeakMap lets a dropped binding take its client with it.
 */
import { drizzle } from "drizzle-orm/d1";
import * as schema from "./schema";

const build = (d1: D1Database) => drizzle(d1, { schema });

export type Db = ReturnType<typeof build>;

const clients = new WeakMap<D1Database, Db>();

export function createDb(d1: D1Database): Db {
  let db = clients.get(d1);
  if (db === undefined) {
    db = build(d1);
    clients.set(d1, db);
  }
  return db;
}

/** The client for a worker or Durable Object env (anything with the `DB` binding). */
export function dbOf(env: { DB: D1Database }): Db {
  return createDb(env.DB);
}
