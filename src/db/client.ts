/** The drizzle client over the D1 binding. Cheap to create: make one per request. */
import { drizzle } from "drizzle-orm/d1";
import * as schema from "./schema";

export type Db = ReturnType<typeof createDb>;

export function createDb(d1: D1Database) {
  return drizzle(d1, { schema });
}

/** The client for a worker or Durable Object env (anything with the `DB` binding). */
export function dbOf(env: { DB: D1Database }): Db {
  return createDb(env.DB);
}
