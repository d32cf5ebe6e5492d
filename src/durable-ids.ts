/**
 * Durable Object ids by name, remembered per namespace. `idFromName` is a pure function of the
 * namespace and the name (an HMAC workerd computes natively on every call: 16 calls a turn
 * when each stub was made from scratch), and a DurableObjectId is a plain value, not an I/O
 * object, so an id may be kept across requests. Stubs are never kept: a stub belongs to the
 * request that made it, and one that has thrown stays broken ("a Worker must recreate the
 * stub", Cloudflare's Durable Object Stub docs), so every caller still gets a fresh stub from
 * the remembered id. Bounded: at most MAX_IDS names per namespace, the least recently used
 * dropped first; a namespace object that is dropped takes its ids with it (WeakMap).
 */

/** The part of a Durable Object namespace binding this needs. */
export interface NamedNamespace {
  idFromName(name: string): DurableObjectId;
}

export const MAX_IDS = 1024;

const byNamespace = new WeakMap<object, Map<string, DurableObjectId>>();

/** `ns.idFromName(name)`, computed once per namespace and name (while remembered). */
export function durableIdFromName(ns: NamedNamespace, name: string): DurableObjectId {
  let ids = byNamespace.get(ns);
  if (ids === undefined) {
    ids = new Map();
    byNamespace.set(ns, ids);
  }
  const known = ids.get(name);
  if (known !== undefined) {
    // Most recently used last, so the first key is the one to drop.
    ids.delete(name);
    ids.set(name, known);
    return known;
  }
  const id = ns.idFromName(name);
  if (ids.size >= MAX_IDS) ids.delete(ids.keys().next().value as string);
  ids.set(name, id);
  return id;
}
