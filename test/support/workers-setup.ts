/**
 * Runs before every test file inside workerd: applies the D1 migrations that
 * vitest.config.ts read from ./migrations (idempotent: applyD1Migrations skips the ones
 * already recorded in d1_migrations).
 */
import { applyD1Migrations, type D1Migration } from "cloudflare:test";
import { env } from "cloudflare:workers";

const { TEST_MIGRATIONS } = env as unknown as { TEST_MIGRATIONS: D1Migration[] };
await applyD1Migrations(env.DB, TEST_MIGRATIONS);
