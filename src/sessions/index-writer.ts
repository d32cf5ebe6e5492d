/**
 * Writes a session's line in the D1 session list (the index processor's projection): a
 * deleted session loses its row, any other status upserts it (guarded by the offset it
 * reflects, in db/sessions-index.ts, so a replay can only rewrite the same row).
 */
import { createDb } from "../db/client";
import { deleteSessionRow, upsertSessionRow } from "../db/sessions-index";
import type { SessionIdentity } from "./identity";
import type { IndexRow } from "./processors/index-mirror";

export async function writeIndexRow(
  d1: D1Database,
  { tenant, sessionId }: Pick<SessionIdentity, "tenant" | "sessionId">,
  row: IndexRow,
): Promise<void> {
  const db = createDb(d1);
  if (row.status === "deleted") {
    await deleteSessionRow(db, tenant, sessionId);
    return;
  }
  await upsertSessionRow(db, {
    id: sessionId,
    tenantId: tenant,
    title: row.title,
    status: row.status,
    model: row.model,
    createdAt: Date.parse(row.createdAt),
    updatedAt: Date.parse(row.updatedAt),
    lastOffset: row.lastOffset,
    pendingApprovalCount: row.pendingApprovalCount,
    lastError: row.lastError,
  });
}
