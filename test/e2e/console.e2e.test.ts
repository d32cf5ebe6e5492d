/**
 * The web console in Chromium (playwright-core driving Debian's /usr/bin/chromium) against
 * the real `wrangler dev`, which serves the console as the worker's static assets: sign in,
 * the sessions list (awaiting approval first, filter, pages, live updates), a session with a
 * streamed reply, approve and deny with reasons, cancel, a reload that resumes after the last
 * event it had, the raw event inspector, and a parked webhook subscription resumed from the
 * stream-health page. Screenshots at 1280×800 and at a narrow width go to test/e2e/artifacts/console/.
 */
import { mkdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromiumLaunchOptions } from "../support/chromium";
import { type DevServer, startDevServer } from "../support/dev-server";

const KEY = "das_dev_local_development_key_0000";
const AUTH = { authorization: `Bearer ${KEY}` };
const ARTIFACTS = join(process.cwd(), "test", "e2e", "artifacts", "console");
const WIDE = { width: 1280, height: 800 };
const NARROW = { width: 390, height: 844 };

let server: DevServer;
let browser: Browser;
let hook: Server;
let hookUrl: string;
/** The fake webhook answers 500 until this is true. */
let hookHealthy = false;
const hookCalls: number[] = [];

async function api<T = unknown>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`${server.url}${path}`, {
    ...init,
    headers: { ...AUTH, "content-type": "application/json", ...init.headers },
  });
  if (!res.ok)
    throw new Error(`${init.method ?? "GET"} ${path} → ${res.status}: ${await res.text()}`);
  return (res.status === 204 ? null : await res.json()) as T;
}

async function createSession(title: string): Promise<string> {
  const { session } = await api<{ session: { id: string } }>("/v1/sessions", {
    method: "POST",
    body: JSON.stringify({ title }),
  });
  return session.id;
}

const send = (id: string, content: string) =>
  api(`/v1/sessions/${id}/messages`, { method: "POST", body: JSON.stringify({ content }) });

async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 60_000;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await get();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not reached; last: ${JSON.stringify(last)?.slice(0, 300)}`);
}

async function newPage(viewport = WIDE): Promise<Page> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error("page error:", error));
  return page;
}

async function signIn(page: Page, credential = KEY): Promise<void> {
  await page.goto(server.url); // `/` redirects to /console/
  await page.getByLabel("API key or session token").fill(credential);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function shot(page: Page, name: string): Promise<void> {
  await page.evaluate("window.scrollTo(0, 0)");
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: false });
}

/**
 * Waits until the assistant message that is still streaming shows text matching `pattern`,
 * and returns that text as it was at that moment (read in the page, in one step).
 */
async function streamingText(page: Page, pattern: RegExp): Promise<string> {
  // Evaluated by the DevTools protocol (the page's CSP forbids string eval in the page).
  const read = `document.querySelector('li.msg[data-kind="assistant"][data-status="streaming"] .text')?.textContent ?? ""`;
  let seen = "";
  await expect
    .poll(
      async () => {
        seen = await page.evaluate<string>(read);
        return pattern.test(seen);
      },
      { timeout: 30_000, interval: 20 },
    )
    .toBe(true);
  return seen;
}

const words = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => `word${from + i}`).join(" ");

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  hook = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      hookCalls.push(Date.now());
      res.writeHead(hookHealthy ? 200 : 500, { "content-type": "text/plain" });
      res.end(hookHealthy ? "" : "receiver is down");
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  [server, browser] = await Promise.all([
    startDevServer({
      migrate: true,
      vars: {
        // Slow enough that a reply is seen streaming, cancelled and reloaded mid-way.
        SCRIPTED_MODEL_DELAY_MS: "60",
        // The fake webhook runs on loopback; park after 2 failed attempts, retried quickly.
        ALLOW_LOOPBACK_WEBHOOKS: "true",
        DELIVERY_MAX_ATTEMPTS: "2",
        DELIVERY_RETRY_BASE_MS: "50",
        DELIVERY_RETRY_MAX_MS: "200",
      },
    }),
    chromium.launch(chromiumLaunchOptions),
  ]);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((resolve) => hook?.close(resolve));
});

describe("web console", () => {
  it("is served by the worker, offline, with the API still reaching the worker", async () => {
    const root = await fetch(`${server.url}/`, { redirect: "manual" });
    expect(root.status).toBe(302);
    expect(new URL(root.headers.get("location")!, server.url).pathname).toBe("/console/");
    await root.body?.cancel();
    const page = await fetch(`${server.url}/console/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<div id="app">');
    // Nothing is loaded from another origin.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(page.headers.get("content-security-policy")).toContain("connect-src 'self'");
    const missing = await fetch(`${server.url}/no-such-page`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("not_found");
    const unauth = await fetch(`${server.url}/v1/sessions`);
    expect(unauth.status).toBe(401);
    await unauth.body?.cancel();
  });

  it("signs in, lists sessions awaiting approval first, filters, pages and updates live", async () => {
    const waiting = await createSession("needs a decision");
    await send(waiting, 'call notes_write {"key":"k","text":"t"}');
    const idle: string[] = [];
    for (let i = 0; i < 11; i++) idle.push(await createSession(`idle ${i}`));
    await until(
      "the session awaiting approval in the index",
      () => api<{ sessions: unknown[] }>("/v1/sessions?status=awaiting_approval"),
      (page) => page.sessions.length === 1,
    );

    const page = await newPage();
    // A wrong key is refused plainly and not kept.
    await signIn(page, "das_wrong_key_000000000000000000000");
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/Sign-in failed.*401/);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    await page.getByLabel("API key or session token").fill(KEY);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Sessions", level: 1 }).waitFor();
    // The key is in sessionStorage only: not in the URL, not in localStorage.
    expect(page.url()).not.toContain(KEY);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);

    const attention = page.locator("#waiting");
    await attention.locator(`tr[data-session-id="${waiting}"]`).waitFor();
    expect(await attention.locator("tbody tr").count()).toBe(1);

    // Pages of 10: the newest 10 first, then the rest (12 sessions in all).
    await page.getByLabel("Per page").selectOption("10");
    await expect.poll(() => page.locator("#sessions tbody tr").count()).toBe(10);
    await expect
      .poll(() => page.locator(`#sessions tr[data-session-id="${idle[10]}"]`).count())
      .toBe(1);
    await page.getByRole("button", { name: "Older →" }).click();
    await expect.poll(() => page.locator("#sessions tbody tr").count()).toBe(2);
    await expect
      .poll(() => page.locator(`#sessions tr[data-session-id="${waiting}"]`).count())
      .toBe(1);
    await page.getByRole("button", { name: "← Newer" }).click();
    await expect.poll(() => page.locator("#sessions tbody tr").count()).toBe(10);

    // Filter by status: awaiting approval is the first choice.
    const options = await page.locator("#status-filter option").allTextContents();
    expect(options[0]).toBe("Awaiting approval");
    await page.getByLabel("Status").selectOption("awaiting_approval");
    await expect.poll(() => page.locator("#sessions tbody tr").count()).toBe(1);
    await page.getByLabel("Status").selectOption("failed");
    await page.getByText("No sessions with this status.").waitFor();
    await page.getByLabel("Status").selectOption("all");

    // Live: a session created elsewhere appears without a reload.
    const later = await createSession("created while watching");
    await page.locator(`#sessions tr[data-session-id="${later}"]`).waitFor({ timeout: 20_000 });
    await shot(page, "sessions-1280x800");

    // Keyboard: arrow keys move between rows, Enter opens the session.
    await page.locator(`#sessions tr[data-session-id="${later}"] a`).focus();
    await page.keyboard.press("ArrowDown");
    expect(await page.locator("#sessions tr:has(a:focus)").getAttribute("data-session-id")).toBe(
      idle[10],
    );
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "idle 10", level: 1 }).waitFor();

    await page.setViewportSize(NARROW);
    await page.goto(`${server.url}/console/#/`);
    await page.locator(`#waiting tr[data-session-id="${waiting}"]`).waitFor();
    await shot(page, "sessions-narrow");
    await page.context().close();
  });

  it("streams a reply, approves and denies tool calls, cancels, and resumes after a reload", async () => {
    const id = await createSession("console walkthrough");
    const page = await newPage();
    await signIn(page);
    await page.locator(`#sessions tr[data-session-id="${id}"] a`).click();
    await page.getByRole("heading", { name: "console walkthrough" }).waitFor();

    const message = page.getByLabel("Message");
    const assistant = page.locator('li.msg[data-kind="assistant"]');
    const status = page.getByTestId("session-status");

    // A streamed reply: seen part-way (still streaming, some words), then whole.
    const said = words(25);
    await message.fill(said);
    await page.getByRole("button", { name: "Send" }).click();
    const partial = await streamingText(page, /word\d/);
    expect(partial.length).toBeLessThan(`You said: ${said}`.length);
    expect(`You said: ${said}`.startsWith(partial)).toBe(true);
    await page.locator('li.msg[data-kind="assistant"][data-status="completed"]').waitFor();
    expect(await assistant.last().locator(".text").textContent()).toBe(`You said: ${said}`);
    await expect.poll(() => status.textContent()).toBe("Idle");

    // Approve, with a reason: the tool runs and its arguments and result are shown.
    await message.fill('call notes_write {"key":"k","text":"t"}');
    await page.getByRole("button", { name: "Send" }).click();
    const approval = page.locator("article.approval");
    await approval.waitFor();
    await expect.poll(() => status.textContent()).toBe("Awaiting approval");
    expect(await approval.locator("pre").textContent()).toContain('"key": "k"');
    await shot(page, "approval-1280x800");
    await approval.getByLabel(/Reason/).fill("looks right");
    await approval.getByRole("button", { name: "Approve" }).click();
    const tools = page.locator('li.msg[data-kind="tool"]');
    await page.locator('li.msg[data-kind="tool"][data-status="completed"]').waitFor();
    const approved = tools.last();
    expect(await approved.locator("pre").first().textContent()).toContain('"text": "t"');
    expect(await approved.textContent()).toContain("looks right");
    expect(await approved.locator("details").nth(1).textContent()).toMatch(/Result/);
    await expect.poll(() => status.textContent()).toBe("Idle");

    // Deny, with a reason.
    await message.fill('call notes_write {"key":"k2","text":"no"}');
    await page.getByRole("button", { name: "Send" }).click();
    await approval.waitFor();
    await approval.getByLabel(/Reason/).fill("not this one");
    await approval.getByRole("button", { name: "Deny" }).click();
    await page.locator('li.msg[data-kind="tool"][data-status="denied"]').waitFor();
    expect(await tools.last().textContent()).toContain("not this one");
    await expect.poll(() => status.textContent()).toBe("Idle");
    // Still shown as denied once the model has been told (its error result arrived).
    await tools.last().getByText("the user denied this call").waitFor();
    expect(await tools.last().getAttribute("data-status")).toBe("denied");

    // Cancel a reply while it streams.
    await message.fill(words(80, 100));
    await page.getByRole("button", { name: "Send" }).click();
    await streamingText(page, /word1\d\d/);
    await page.getByRole("button", { name: "Cancel turn" }).click();
    await expect.poll(() => status.textContent(), { timeout: 20_000 }).toBe("Cancelled");
    expect(await assistant.last().getAttribute("data-status")).toBe("cancelled");

    // Reload mid-reply: the page shows what it had at once and reads only later events.
    const long = words(40, 300);
    await message.fill(long);
    await page.getByRole("button", { name: "Send" }).click();
    await streamingText(page, /word30\d/);
    const before = await page.locator("li.msg").count();
    const resumedFrom: number[] = [];
    page.on("request", (request) => {
      if (request.url().includes(`/v1/sessions/${id}/events`)) {
        resumedFrom.push(Number(request.headers()["last-event-id"] ?? 0));
      }
    });
    await page.reload();
    await page.locator('li.msg[data-kind="assistant"][data-status="completed"]').last().waitFor();
    await assistant
      .locator(".text")
      .filter({ hasText: new RegExp(`^You said: ${long}$`) })
      .waitFor();
    expect(resumedFrom.length).toBeGreaterThan(0);
    expect(resumedFrom[0]).toBeGreaterThan(0); // resumed after its last event, not replayed
    // Nothing lost or repeated: every message once, the reply whole.
    expect(await page.locator("li.msg").count()).toBe(before);
    expect(await page.locator('li.msg[data-kind="user"]').count()).toBe(5);
    expect(await page.locator('li.msg[data-kind="assistant"] .text').allTextContents()).toContain(
      `You said: ${long}`,
    );
    await expect.poll(() => status.textContent()).toBe("Idle");
    await shot(page, "session-1280x800");

    // An unknown session: the server's 404 is shown plainly.
    await page.goto(`${server.url}/console/#/sessions/01ARZ3NDEKTSV4RRFFQ69G5FAV`);
    await page.getByTestId("connection").filter({ hasText: /404/ }).waitFor();

    // Narrow window: the same session stays readable.
    await page.setViewportSize(NARROW);
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    await page.locator('li.msg[data-kind="tool"]').first().waitFor();
    await shot(page, "session-narrow");

    // The raw event inspector: offsets, types, payloads.
    await page.setViewportSize(WIDE);
    await page.getByRole("link", { name: "Events" }).click();
    await page.locator('table.events tr[data-type="tool/approval-decided"]').first().waitFor();
    const offsets = await page.evaluate<number[]>(
      "[...document.querySelectorAll('table.events tbody tr')].map((r) => Number(r.dataset.offset))",
    );
    expect(offsets.slice(0, 3)).toEqual([1, 2, 3]);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    await page.getByLabel("Type contains").fill("approval-decided");
    await expect.poll(() => page.locator("table.events tbody tr").count()).toBe(2);
    const row = page.locator("table.events tbody tr").first();
    await row.locator("summary").click();
    expect(await row.locator("pre").first().textContent()).toContain('"approved": true');
    await shot(page, "events-1280x800");
    await page.setViewportSize(NARROW);
    await shot(page, "events-narrow");
    await page.setViewportSize(WIDE);

    // Stream health of the session: its processors' subscriptions, all caught up.
    await page.getByRole("link", { name: "Stream health" }).click();
    await page.locator('li.subscription[data-status="active"]').first().waitFor();
    expect(await page.locator("li.subscription").count()).toBeGreaterThanOrEqual(3);
    await shot(page, "session-health-1280x800");
    await page.context().close();
  });

  it("opens one session with a scoped token, with only what its scopes allow", async () => {
    // A read+write token that is then revoked: the refused send is shown plainly.
    const writable = await createSession("revoked token");
    const rw = await api<{ token: string }>(`/v1/sessions/${writable}/tokens`, {
      method: "POST",
      body: JSON.stringify({ scopes: ["read", "write"], ttlSeconds: 600 }),
    });
    const revoked = await newPage();
    await signIn(revoked, rw.token);
    await revoked.getByRole("heading", { name: "revoked token" }).waitFor();
    await api(`/v1/sessions/${writable}/tokens/revoke`, { method: "POST" });
    await revoked.getByLabel("Message").fill("hello?");
    await revoked.getByRole("button", { name: "Send" }).click();
    await expect
      .poll(() => revoked.getByTestId("action-error").textContent())
      .toMatch(/Sending failed: .*HTTP 401/);
    await revoked.context().close();

    const id = await createSession("token holder");
    await send(id, "hello from the operator");
    const minted = await api<{ token: string }>(`/v1/sessions/${id}/tokens`, {
      method: "POST",
      body: JSON.stringify({ scopes: ["read"], ttlSeconds: 600 }),
    });
    const page = await newPage();
    await signIn(page, minted.token);
    await page.getByRole("heading", { name: "token holder" }).waitFor();
    expect(page.url()).not.toContain(minted.token);
    await page.locator('li.msg[data-kind="assistant"][data-status="completed"]').waitFor();
    expect(await page.getByLabel("Message").isDisabled()).toBe(true);
    await page.getByText("This token has no write scope").waitFor();
    // No list for a token: the sessions route sends it back to its session.
    await page.goto(`${server.url}/console/#/`);
    await page.waitForURL(new RegExp(`#/sessions/${id}$`));
    await page.context().close();
  });

  it("shows a session at work (the README's screenshot)", async () => {
    const id = await createSession("Weekend groceries");
    const page = await newPage();
    await signIn(page);
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    const message = page.getByLabel("Message");
    await message.fill("Hello! Please keep a note of what to buy.");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator('li.msg[data-kind="assistant"][data-status="completed"]').waitFor();
    await message.fill('call notes_write {"key":"groceries","text":"milk, bread, coffee"}');
    await page.getByRole("button", { name: "Send" }).click();
    const approval = page.locator("article.approval");
    await approval.getByLabel(/Reason/).fill("fine to store");
    await approval.getByRole("button", { name: "Approve" }).click();
    await page.locator('li.msg[data-kind="tool"][data-status="completed"]').waitFor();
    await page.locator('li.msg[data-kind="assistant"][data-status="completed"]').nth(1).waitFor();
    await message.fill('call notes_write {"key":"todo","text":"book the train"}');
    await page.getByRole("button", { name: "Send" }).click();
    await approval.waitFor();
    await expect
      .poll(() => page.getByTestId("session-status").textContent())
      .toBe("Awaiting approval");
    await shot(page, "readme-session");
    await page.context().close();
  });

  it("shows a parked subscription with its error and resumes it", async () => {
    const stream = "/console-e2e/orders";
    const put = await fetch(`${server.url}/v1/stream${stream}`, {
      method: "PUT",
      headers: { ...AUTH, "content-type": "application/json" },
    });
    expect(put.status).toBe(201);
    await api("/v1/subscriptions", {
      method: "PUT",
      body: JSON.stringify({
        stream,
        key: "billing-hook",
        callable: { kind: "webhook", url: hookUrl },
        eventTypes: ["order/placed"],
        startAt: "beginning",
      }),
    });
    for (let i = 1; i <= 3; i++) {
      const res = await fetch(`${server.url}/v1/stream${stream}`, {
        method: "POST",
        headers: { ...AUTH, "content-type": "application/json" },
        body: JSON.stringify({ type: "order/placed", payload: { order: i } }),
      });
      expect(res.ok).toBe(true);
      await res.body?.cancel();
    }

    const page = await newPage();
    await signIn(page);
    await page.getByRole("link", { name: "Streams" }).click();
    await page.getByLabel("Stream path").fill(stream);
    await page.getByRole("button", { name: "Show subscriptions" }).click();
    const card = page.locator('li.subscription[data-key="billing-hook"]');
    await card.and(page.locator('[data-status="parked"]')).waitFor({ timeout: 30_000 });
    expect(await card.getByTestId("last-error").textContent()).toContain("webhook answered 500");
    expect(
      Number(
        await card
          .getByTestId("lag")
          .textContent()
          .then((t) => t?.split(" ")[0]),
      ),
    ).toBeGreaterThan(0);
    await shot(page, "parked-1280x800");
    await page.setViewportSize(NARROW);
    await shot(page, "parked-narrow");
    await page.setViewportSize(WIDE);

    const callsBefore = hookCalls.length;
    hookHealthy = true;
    await card.getByRole("button", { name: "Resume" }).click();
    await card.and(page.locator('[data-status="active"]')).waitFor({ timeout: 30_000 });
    await expect
      .poll(() => card.getByTestId("lag").textContent(), { timeout: 30_000 })
      .toBe("0 events");
    expect(hookCalls.length).toBeGreaterThan(callsBefore);
    const status = await api<{ subscriptions: { key: string; status: string; lag: number }[] }>(
      `/v1/subscriptions?stream=${encodeURIComponent(stream)}`,
    );
    expect(status.subscriptions.find((s) => s.key === "billing-hook")).toMatchObject({
      status: "active",
      lag: 0,
    });
    await page.context().close();
  });
});
