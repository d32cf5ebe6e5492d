/**
 * How the e2e tests launch Chromium with playwright-core: Debian's /usr/bin/chromium (or
 * CHROMIUM_PATH), headless, sandbox and background traffic off, so that a run is offline and
 * works as root in a container. Shared by test/e2e/browser.e2e.test.ts and
 * test/e2e/console.e2e.test.ts.
 */
export const chromiumLaunchOptions = {
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
};
