/**
 * Durable Object names are scoped by tenant: a name joins the owning tenant and a name unique
 * within it, so the same stream path or session id under two tenants is two different objects
 * and one tenant can never address another's. Tenant ids cannot contain `:` (db/tenants.ts),
 * so the join is unambiguous. The stream and session objects both name themselves this way.
 */
export const tenantScopedName = (tenant: string, name: string): string => `${tenant}:${name}`;
