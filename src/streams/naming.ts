import { tenantScopedName } from "../tenant-names";

/**
 * A stream's Durable Object name joins the owning tenant and the stream path, so the same
 * path under two tenants is two different streams and one tenant can never address
 * another's. Paths are validated before they get here (see path.ts).
 */
export const streamName = (tenant: string, path: string) => tenantScopedName(tenant, path);
