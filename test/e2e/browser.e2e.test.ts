/**
 * A chat page in Chromium (Debian's `chromium`, driven by playwright-core), served from
 * ANOTHER origin than the API, using the shipped client bundled for the browser by esbuild
 * and a session token minted by "its server" (this test, holding the API key): it streams a
 * reply, approves a tool call, reloads mid-reply and resumes from the saved offset with
 * nothing lost or repeated; a native EventSource with `?token=` receives live events; and
 * the capnweb client runs a turn over a WebSocket with the same token.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSessionClient, type SessionEvent } from "../../src/client";
import { chromiumLaunchOptions } from "../support/chromium";
import { type DevServer, freePort, startDevServer } from "../support/dev-server";

const KEY = "das_dev_local_development_key_0000";
const ARTIFACTS = join(process.cwd(), "test", "e2e", "artifacts");

let api: DevServer;
let site: Server;
let siteOrigin: string;
let browser: BrowserContext;
let profile: string;

/** The page's static server: index.html and the bundled client script. */
async function serveSite(port: number): Promise<Server> {
  const bundle = await build({
    entryPoints: [join(import.meta.dirname, "browser", "page.js")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
  });
  const script = bundle.outputFiles[0]!.text;
  const html = readFileSync(join(import.meta.dirname, "browser", "index.html"));
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path === "/app.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    } else if (path === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return server;
}

beforeAll(async () => {
  const sitePort = await freePort();
  siteOrigin = `http://127.0.0.1:${sitePort}`;
  [api, site] = await Promise.all([
    startDevServer({
      migrate: true,
      // Only the page's origin may call the API from a browser.
      vars: { CORS_ORIGINS: siteOrigin, SCRIPTED_MODEL_DELAY_MS: "40" },
    }),
    serveSite(sitePort),
  ]);
  mkdirSync(ARTIFACTS, { recursive: true });
  profile = mkdtempSync(join(tmpdir(), "das-chromium-"));
  // A fresh profile (--user-data-dir) per run.
  browser = await chromium.launchPersistentContext(profile, {
    ...chromiumLaunchOptions,
    headless: true,
  });
});

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => site?.close(resolve));
  await api?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

type AppWindow = {
  addEventListener(
    type: string,
    listener: (event: unknown) => void,
    options?: { once: boolean },
  ): void;
  app: {
    send(content: string): Promise<unknown>;
    view(): {
      status: string;
      lastOffset: number;
      messages: { kind: string; text?: string; status: string; toolName?: string }[];
      pendingApprovals: { toolCallId: string }[];
    };
    received(): number[];
    loads(): number;
    eventSource(
      after: number,
      untilType: string,
    ): Promise<{ id: string; offset: number; type: string }[]>;
    rpcTurn(
      content: string,
    ): Promise<{ offset: number; type: string; payload: { text?: string } }[]>;
  };
};
declare const window: AppWindow;

/** The client view of the whole session, read by "the server" with its API key. */
async function serverView(id: string, lastOffset: number): Promise<SessionEvent[]> {
  const server = createSessionClient({ baseUrl: api.url, token: KEY });
  const out: SessionEvent[] = [];
  for await (const event of server.events(id)) {
    out.push(event);
    if (event.offset >= lastOffset) break;
  }
  return out;
}

const lastAssistant = (page: Page) =>
  page.evaluate(() =>
    window.app
      .view()
      .messages.filter((m) => m.kind === "assistant")
      .at(-1),
  );

describe("a web app on another origin, in Chromium", () => {
  it("streams, approves, reloads and resumes, with EventSource and capnweb", async () => {
    // "The server": creates the session and mints a token for the page.
    const server = createSessionClient({ baseUrl: api.url, token: KEY });
    const session = await server.create({ title: "browser" });
    const { token } = await server.mintToken(session.id, {
      scopes: ["read", "write", "approve"],
      ttlSeconds: 600,
    });
    expect(token).not.toContain(KEY);

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    const query = new URLSearchParams({ base: api.url, session: session.id, token });
    await page.goto(`${siteOrigin}/?${query}`);
    await page.waitForFunction(() => typeof window.app === "object");

    // 1. A streamed reply.
    await page.evaluate(() => window.app.send("hello from the browser"));
    await page.waitForFunction(() =>
      window.app
        .view()
        .messages.some(
          (m) =>
            m.kind === "assistant" &&
            m.status === "completed" &&
            m.text === "You said: hello from the browser",
        ),
    );

    // 2. A tool call that needs approval, approved by clicking the page's button.
    await page.evaluate(() => window.app.send('call notes_write {"key":"k","text":"t"}'));
    await page.waitForFunction(() => window.app.view().pendingApprovals.length > 0);
    await page.screenshot({ path: join(ARTIFACTS, "approval.png") });
    await page.click("#approvals button");
    await page.waitForFunction(() => {
      const v = window.app.view();
      return (
        v.status === "idle" && v.messages.some((m) => m.kind === "tool" && m.status === "completed")
      );
    });

    // 3. Reload in the middle of a streamed reply: the page resumes after its saved offset.
    const long = Array.from({ length: 30 }, (_, i) => `word${i}`).join(" ");
    await page.evaluate((text) => window.app.send(text), long);
    await page.waitForFunction(() =>
      window.app
        .view()
        .messages.some(
          (m) => m.kind === "assistant" && m.status === "streaming" && (m.text ?? "").length > 0,
        ),
    );
    await page.reload();
    await page.waitForFunction(() => typeof window.app === "object" && window.app.loads() === 2);
    await page.waitForFunction(
      (text) =>
        window.app.view().status === "idle" &&
        window.app
          .view()
          .messages.some(
            (m) =>
              m.kind === "assistant" && m.status === "completed" && m.text === `You said: ${text}`,
          ),
      long,
    );
    const received = await page.evaluate(() => window.app.received());
    const reference = await serverView(session.id, received.at(-1)!);
    expect(received).toEqual(reference.map((e) => e.offset)); // nothing lost, nothing repeated
    expect(await lastAssistant(page)).toMatchObject({ text: `You said: ${long}` });
    await page.screenshot({ path: join(ARTIFACTS, "after-reload.png"), fullPage: true });

    // 4. A native EventSource with ?token= receives live events from an offset.
    const from = await page.evaluate(() => window.app.view().lastOffset);
    const opened = page.evaluate(
      () => new Promise((r) => window.addEventListener("eventsource-open", r, { once: true })),
    );
    const live = page.evaluate((after) => window.app.eventSource(after, "turn/completed"), from);
    await opened;
    await server.send(session.id, "seen by EventSource");
    const sourced = await live;
    expect(sourced[0]!.offset).toBeGreaterThan(from);
    expect(sourced.map((e) => Number(e.id))).toEqual(sourced.map((e) => e.offset));
    expect(sourced.map((e) => e.type)).toContain("model/delta-produced");
    expect(sourced.some((e) => e.type.startsWith("stream/"))).toBe(false);

    // 5. capnweb from the page, authenticated in-band with the same token.
    await page.waitForFunction(() => window.app.view().status === "idle");
    const rpcEvents = await page.evaluate(() => window.app.rpcTurn("over capnweb"));
    expect(rpcEvents.at(-1)?.type).toBe("turn/completed");
    // The reply is the turn's model/request-completed (turn/completed references it).
    expect(rpcEvents.filter((e) => e.type === "model/request-completed").at(-1)).toMatchObject({
      payload: { text: "You said: over capnweb" },
    });
    const offsets = rpcEvents.map((e) => e.offset);
    expect([...new Set(offsets)].sort((a, b) => a - b)).toEqual(offsets);

    expect(errors).toEqual([]);
    await page.close();
  });
});
