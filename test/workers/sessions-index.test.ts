/** The D1 session index: guarded upserts, newest-first pagination, status filter, cursors. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createDb } from "../../src/db/client";
import {
  deleteSessionRow,
  encodeCursor,
  getSessionRow,
  type IndexedStatus,
  listSessionRows,
  type SessionIndexRow,
  upsertSessionRow,
} from "../../src/db/sessions-index";
import { DomainError } from "../../src/errors/domain";
import { statusOf } from "../../src/errors/http";

const db = createDb(env.DB);
const tenantOf = (label: string) => `${label}-${crypto.randomUUID().slice(0, 8)}`;

function row(tenantId: string, id: string, over: Partial<SessionIndexRow> = {}): SessionIndexRow {
  return {
    id,
    tenantId,
    title: `session ${id}`,
    status: "idle",
    model: "scripted",
    createdAt: 1_000,
    updatedAt: 1_000,
    lastOffset: 1,
    pendingApprovalCount: 0,
    lastError: null,
    ...over,
  };
}

async function caught(promise: Promise<unknown>): Promise<DomainError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  return error as DomainError;
}

describe("session index", () => {
  it("inserts, updates forward, and never moves last_offset backwards", async () => {
    const t = tenantOf("up");
    expect(await upsertSessionRow(db, row(t, "s1", { lastOffset: 3 }))).toBe(true);
    expect(
      await upsertSessionRow(
        db,
        row(t, "s1", {
          lastOffset: 7,
          status: "awaiting_approval",
          pendingApprovalCount: 2,
          updatedAt: 2_000,
        }),
      ),
    ).toBe(true);
    // A replay of an older projection is ignored.
    expect(
      await upsertSessionRow(
        db,
        row(t, "s1", { lastOffset: 5, status: "running", updatedAt: 1_500 }),
      ),
    ).toBe(false);
    let stored = await getSessionRow(db, t, "s1");
    expect(stored).toMatchObject({
      lastOffset: 7,
      status: "awaiting_approval",
      pendingApprovalCount: 2,
    });
    // The same offset again (a redelivery) rewrites the same values: allowed, idempotent.
    expect(
      await upsertSessionRow(
        db,
        row(t, "s1", {
          lastOffset: 7,
          status: "awaiting_approval",
          pendingApprovalCount: 2,
          updatedAt: 2_000,
        }),
      ),
    ).toBe(true);
    expect(
      await upsertSessionRow(
        db,
        row(t, "s1", {
          lastOffset: 9,
          status: "failed",
          lastError: "model unavailable",
          createdAt: 99_999,
          updatedAt: 3_000,
        }),
      ),
    ).toBe(true);
    stored = await getSessionRow(db, t, "s1");
    expect(stored).toEqual(
      row(t, "s1", {
        lastOffset: 9,
        status: "failed",
        lastError: "model unavailable",
        pendingApprovalCount: 0,
        updatedAt: 3_000,
        createdAt: 1_000, // kept from the first insert
      }),
    );
  });

  it("scopes rows by tenant and deletes them", async () => {
    const a = tenantOf("a");
    const b = tenantOf("b");
    await upsertSessionRow(db, row(a, "same"));
    await upsertSessionRow(db, row(b, "same", { title: "b's" }));
    expect((await getSessionRow(db, a, "same"))?.title).toBe("session same");
    expect((await getSessionRow(db, b, "same"))?.title).toBe("b's");
    expect(await getSessionRow(db, a, "missing")).toBeNull();
    expect(await deleteSessionRow(db, a, "same")).toBe(true);
    expect(await deleteSessionRow(db, a, "same")).toBe(false);
    expect(await getSessionRow(db, a, "same")).toBeNull();
    expect(await getSessionRow(db, b, "same")).not.toBeNull();
  });

  it("rejects a stored row that fails validation when read back", async () => {
    const t = tenantOf("bad");
    await env.DB.prepare(
      "INSERT INTO sessions (id, tenant_id, title, status, model, created_at, updated_at, last_offset) VALUES (?, ?, 't', 'exploded', 'm', 1, 1, 1)",
    )
      .bind("x", t)
      .run();
    await expect(getSessionRow(db, t, "x")).rejects.toThrow();
  });

  it("lists newest first, one page at a time, with an opaque cursor", async () => {
    const t = tenantOf("list");
    // Seven sessions; two share a createdAt (ties are ordered by id, descending).
    const created = [10, 20, 30, 30, 40, 50, 60];
    await Promise.all(
      created.map((at, i) =>
        upsertSessionRow(db, row(t, `s${i}`, { createdAt: at, updatedAt: at })),
      ),
    );
    await upsertSessionRow(db, row(tenantOf("other"), "s9", { createdAt: 100 }));

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await listSessionRows(db, t, { limit: 3, ...(cursor ? { cursor } : {}) });
      pages++;
      seen.push(...page.sessions.map((s) => s.id));
      if (!page.nextCursor) break;
      expect(page.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
      cursor = page.nextCursor;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(["s6", "s5", "s4", "s3", "s2", "s1", "s0"]);

    const exact = await listSessionRows(db, t, { limit: 7 });
    expect(exact.sessions).toHaveLength(7);
    expect(exact.nextCursor).toBeNull();

    // A cursor made for a position between rows works as well.
    const mid = await listSessionRows(db, t, {
      limit: 10,
      cursor: encodeCursor({ createdAt: 30, id: "s3" }),
    });
    expect(mid.sessions.map((s) => s.id)).toEqual(["s2", "s1", "s0"]);
  });

  it("filters by status", async () => {
    const t = tenantOf("status");
    const statuses: IndexedStatus[] = ["idle", "running", "idle", "failed", "idle"];
    for (const [i, status] of statuses.entries()) {
      await upsertSessionRow(db, row(t, `s${i}`, { status, createdAt: 100 + i }));
    }
    const first = await listSessionRows(db, t, { status: "idle", limit: 2 });
    expect(first.sessions.map((s) => s.id)).toEqual(["s4", "s2"]);
    const second = await listSessionRows(db, t, {
      status: "idle",
      limit: 2,
      cursor: first.nextCursor!,
    });
    expect(second.sessions.map((s) => s.id)).toEqual(["s0"]);
    expect(second.nextCursor).toBeNull();
    const failed = await listSessionRows(db, t, { status: "failed", limit: 10 });
    expect(failed.sessions.map((s) => s.id)).toEqual(["s3"]);
    const bad = await caught(
      listSessionRows(db, t, { status: "exploded" as IndexedStatus, limit: 10 }),
    );
    expect(statusOf(bad)).toBe(400);
  });

  it.each([
    ["not base64url", "***"],
    ["base64url of garbage", btoa("garbage").replace(/=+$/, "")],
    ["a missing id", btoa("123:").replace(/=+$/, "")],
    ["a non-numeric time", btoa("abc:s1").replace(/=+$/, "")],
    ["invalid utf-8", "_w"],
    ["an empty string", ""],
  ])("answers 400 to a malformed cursor (%s)", async (_label, cursor) => {
    const error = await caught(listSessionRows(db, tenantOf("c"), { limit: 5, cursor }));
    expect(statusOf(error)).toBe(400);
    expect(error.toJSON().error.code).toBe("bad_request");
  });

  it("answers 400 to a limit out of range", async () => {
    for (const limit of [0, -1, 1.5, 101]) {
      const error = await caught(listSessionRows(db, tenantOf("l"), { limit }));
      expect(statusOf(error)).toBe(400);
    }
  });
});
