/**
 * Runs before every test file inside workerd: applies the D1 migrations that
 * vitest.config.ts read from ./migrations (idempotent: applyD1Migrations skips the ones
 * already recorded in d1_migrations).
 */
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
