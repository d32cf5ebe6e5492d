/** drizzle-kit: `npm run db:generate` turns src/db/schema.ts into SQL migrations. */
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./src/db/schema.ts",
  out: "./migrations",
});
