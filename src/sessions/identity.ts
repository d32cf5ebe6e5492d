/**
 * What a SessionAgent knows about itself in its own SQLite: which session it is (tenant, id,
 * creation time; written once by `create`) and the generation its session tokens carry
 * (bumped to revoke them all). Both rows are validated when read back.
 *
 * The identity row is written once and never changed or removed (a deleted session keeps it:
 * `session/deleted` is an event), and nearly every call asks for it, so it is read from storage
 * once per instance and kept; before `create` it is read each time (null is not kept). The
 * token generation (every request with a session token checks it) is kept the same way,
 * written through by `nextTokenGeneration`, the only writer.
 */
import { z } from "zod";
import { notFound } from "../errors/domain";

export interface SessionIdentity {
  tenant: string;
  sessionId: string;
  createdAt: number;
}

const identitySchema = z.object({
  tenant: z.string(),
  session_id: z.string(),
  created_at: z.number(),
});

const generationSchema = z.object({ generation: z.number().int().nonnegative() });

export class SessionIdentityStore {
  #known: SessionIdentity | null = null;
  /** The token generation as read or written by this instance (null: not read yet). */
  #generation: number | null = null;

  constructor(private readonly sql: SqlStorage) {
    sql.exec(
      "CREATE TABLE IF NOT EXISTS session_identity (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), tenant TEXT NOT NULL, session_id TEXT NOT NULL, created_at INTEGER NOT NULL)",
    );
    sql.exec(
      "CREATE TABLE IF NOT EXISTS session_token_generation (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), generation INTEGER NOT NULL)",
    );
  }

  /** This object's session, or null before `create`. */
  orNull(): SessionIdentity | null {
    if (this.#known) return this.#known;
    const row = this.sql
      .exec("SELECT tenant, session_id, created_at FROM session_identity")
      .toArray()[0];
    if (!row) return null;
    const parsed = identitySchema.parse(row);
    this.#known = Object.freeze({
      tenant: parsed.tenant,
      sessionId: parsed.session_id,
      createdAt: parsed.created_at,
    });
    return this.#known;
  }

  /** This object's session; 404 before `create`. */
  get(): SessionIdentity {
    const identity = this.orNull();
    if (!identity) throw notFound("session not found");
    return identity;
  }

  /** Records which session this object is (once). */
  claim(tenant: string, sessionId: string, createdAt: number): void {
    this.sql.exec(
      "INSERT INTO session_identity (singleton, tenant, session_id, created_at) VALUES (1, ?, ?, ?)",
      tenant,
      sessionId,
      createdAt,
    );
  }

  /** The generation session tokens are minted with and checked against (0 until a revoke). */
  tokenGeneration(): number {
    if (this.#generation !== null) return this.#generation;
    const row = this.sql.exec("SELECT generation FROM session_token_generation").toArray()[0];
    this.#generation = row ? generationSchema.parse(row).generation : 0;
    return this.#generation;
  }

  /** Moves to the next generation: every token minted so far carries an older one. */
  nextTokenGeneration(): number {
    const generation = this.tokenGeneration() + 1;
    this.sql.exec(
      "INSERT INTO session_token_generation (singleton, generation) VALUES (1, ?) ON CONFLICT (singleton) DO UPDATE SET generation = excluded.generation",
      generation,
    );
    // Kept once written (a failed write throws before this, leaving the stored value known).
    this.#generation = generation;
    return generation;
  }
}
