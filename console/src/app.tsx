/**
 * The console shell: sign-in, navigation and the page for the current hash route. A tenant
 * API key sees the sessions list and any stream's health; a scoped session token sees only
 * its own session, with what its scopes allow.
 */
import { useEffect, useMemo, useState } from "preact/hooks";
import { ConsoleApi, describeError } from "./api";
import {
  type Credential,
  clearCredential,
  loadCredential,
  parseCredential,
  saveCredential,
} from "./credential";
import { href, navigate, type Route, useRoute } from "./router";
import { SessionPage } from "./session-page";
import { forgetSnapshots } from "./session-snapshot";
import { SessionsPage } from "./sessions-page";
import { StreamsPage } from "./streams-page";

export function App() {
  const [credential, setCredential] = useState<Credential | null>(() => loadCredential());
  const api = useMemo(() => (credential ? new ConsoleApi(credential) : null), [credential]);
  const route = useRoute();

  const signOut = () => {
    clearCredential();
    forgetSnapshots();
    setCredential(null);
    navigate({ name: "sessions" });
  };

  if (credential === null || api === null) {
    return <SignIn onSignedIn={setCredential} />;
  }

  return (
    <div class="shell">
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href={credential.kind === "api-key" ? "#/" : href(tokenHome(credential))}>
          Sessions console
        </a>
        <nav aria-label="Main">
          <ul>
            {credential.kind === "api-key" ? (
              <>
                <li>
                  <NavLink route={{ name: "sessions" }} current={route} text="Sessions" />
                </li>
                <li>
                  <NavLink route={{ name: "streams", path: null }} current={route} text="Streams" />
                </li>
              </>
            ) : (
              <li>
                <NavLink route={tokenHome(credential)} current={route} text="My session" />
              </li>
            )}
          </ul>
        </nav>
        <div class="whoami">
          <span>
            {credential.kind === "api-key"
              ? "Signed in with an API key"
              : `Session token · ${credential.scopes.join(", ")}`}
          </span>
          <button type="button" class="secondary" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Page api={api} route={route} />
      </main>
    </div>
  );
}

function tokenHome(credential: Extract<Credential, { kind: "session-token" }>): Route {
  return { name: "session", id: credential.sessionId, tab: "conversation" };
}

function NavLink({ route, current, text }: { route: Route; current: Route; text: string }) {
  const active =
    route.name === current.name || (route.name === "sessions" && current.name === "session");
  return (
    <a href={href(route)} aria-current={active ? "page" : undefined}>
      {text}
    </a>
  );
}

function Page({ api, route }: { api: ConsoleApi; route: Route }) {
  const credential = api.credential;
  // A session token opens its own session only.
  useEffect(() => {
    if (credential.kind !== "session-token") return;
    if (route.name !== "session" || route.id !== credential.sessionId) {
      navigate(tokenHome(credential));
    }
  }, [credential, route]);

  switch (route.name) {
    case "sessions":
      return credential.kind === "api-key" ? <SessionsPage api={api} /> : null;
    case "session":
      return <SessionPage key={route.id} api={api} id={route.id} tab={route.tab} />;
    case "streams":
      return credential.kind === "api-key" ? <StreamsPage api={api} path={route.path} /> : null;
    case "not-found":
      return (
        <section class="panel">
          <h1>Page not found</h1>
          <p>
            Nothing lives at <code>{route.hash}</code>. <a href="#/">Back to the sessions</a>.
          </p>
        </section>
      );
  }
}

function SignIn({ onSignedIn }: { onSignedIn: (credential: Credential) => void }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    let credential: Credential;
    try {
      credential = parseCredential(value);
    } catch (e) {
      setError((e as Error).message);
      return;
    }
    if (credential.kind === "session-token" && credential.expiresAt <= Date.now()) {
      setError("This session token has expired. Ask for a new one.");
      return;
    }
    setBusy(true);
    try {
      // Check the credential against the server before keeping it.
      const api = new ConsoleApi(credential);
      if (credential.kind === "api-key") await api.sessions.list({ limit: 1 });
      else await api.sessions.get(credential.sessionId);
      saveCredential(credential);
      setValue("");
      if (credential.kind === "session-token") navigate(tokenHome(credential));
      onSignedIn(credential);
    } catch (e) {
      setError(`Sign-in failed: ${describeError(e)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin" id="main">
      <form class="panel" onSubmit={submit} aria-labelledby="signin-title" autocomplete="off">
        <h1 id="signin-title">Sessions console</h1>
        <p>
          Sign in with a tenant API key (operators: every session and stream of the tenant) or a
          session token minted with <code>POST /v1/sessions/:id/tokens</code> (one session, with the
          scopes it carries). It is kept in this tab only and sent in the Authorization header,
          never in a URL.
        </p>
        <label for="credential">API key or session token</label>
        <input
          id="credential"
          name="credential"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={value}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
          aria-describedby={error ? "signin-error" : "signin-hint"}
          required
        />
        <p id="signin-hint" class="hint">
          Local development: the API key in <code>.dev.vars</code> (<code>DEV_API_KEY</code>).
        </p>
        {error && (
          <p id="signin-error" class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
