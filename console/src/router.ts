/**
 * Hash routes, so the worker serves one file (index.html) for every console page and no
 * console path can collide with an API route. Only ids and stream paths appear in the hash,
 * never a credential.
 */
import { useEffect, useState } from "preact/hooks";

export type SessionTab = "conversation" | "health" | "events";

export type Route =
  | { name: "sessions" }
  | { name: "session"; id: string; tab: SessionTab }
  | { name: "streams"; path: string | null }
  | { name: "not-found"; hash: string };

const SESSION = /^#\/sessions\/([0-9A-HJKMNP-TV-Z]{26})(?:\/(health|events))?$/;

export function parseHash(hash: string): Route {
  if (hash === "" || hash === "#" || hash === "#/" || hash === "#/sessions") {
    return { name: "sessions" };
  }
  const session = SESSION.exec(hash);
  if (session) {
    const tab = (session[2] as SessionTab | undefined) ?? "conversation";
    return { name: "session", id: session[1]!, tab };
  }
  if (hash === "#/streams") return { name: "streams", path: null };
  if (hash.startsWith("#/streams/")) {
    try {
      return { name: "streams", path: decodeURIComponent(hash.slice("#/streams/".length)) };
    } catch {
      return { name: "not-found", hash };
    }
  }
  return { name: "not-found", hash };
}

export function href(route: Route): string {
  switch (route.name) {
    case "sessions":
      return "#/";
    case "session":
      return `#/sessions/${route.id}${route.tab === "conversation" ? "" : `/${route.tab}`}`;
    case "streams":
      return route.path === null ? "#/streams" : `#/streams/${encodeURIComponent(route.path)}`;
    case "not-found":
      return route.hash;
  }
}

export function navigate(route: Route): void {
  location.hash = href(route);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseHash(location.hash));
    window.addEventListener("hashchange", update);
    return () => window.removeEventListener("hashchange", update);
  }, []);
  return route;
}
