/** Durable Object ids remembered per namespace and name (src/durable-ids.ts), bounded. */
import { describe, expect, it } from "vitest";
import { durableIdFromName, MAX_IDS } from "../../src/durable-ids";

/** A namespace that counts its idFromName calls; ids are distinct objects per call. */
function countingNamespace(label: string) {
  const calls: string[] = [];
  return {
    calls,
    idFromName(name: string): DurableObjectId {
      calls.push(name);
      return { label, name, call: calls.length } as unknown as DurableObjectId;
    },
  };
}

describe("durableIdFromName", () => {
  it("computes an id once per name and answers the same id after", () => {
    const ns = countingNamespace("a");
    const first = durableIdFromName(ns, "t:/sessions/1");
    expect(durableIdFromName(ns, "t:/sessions/1")).toBe(first);
    expect(durableIdFromName(ns, "t:/sessions/2")).not.toBe(first);
    expect(ns.calls).toEqual(["t:/sessions/1", "t:/sessions/2"]);
  });

  it("keeps namespaces apart: the same name in another namespace is that namespace's id", () => {
    const a = countingNamespace("a");
    const b = countingNamespace("b");
    const fromA = durableIdFromName(a, "same");
    const fromB = durableIdFromName(b, "same");
    expect(fromB).not.toBe(fromA);
    expect(fromB).toMatchObject({ label: "b", name: "same" });
    expect(a.calls).toEqual(["same"]);
    expect(b.calls).toEqual(["same"]);
  });

  it("remembers at most MAX_IDS names, dropping the least recently used", () => {
    const ns = countingNamespace("bounded");
    const kept = durableIdFromName(ns, "name-0");
    for (let i = 1; i < MAX_IDS; i++) durableIdFromName(ns, `name-${i}`);
    // name-0 is used again, so name-1 is now the least recently used.
    expect(durableIdFromName(ns, "name-0")).toBe(kept);
    durableIdFromName(ns, "one-more");
    expect(ns.calls).toHaveLength(MAX_IDS + 1);
    expect(durableIdFromName(ns, "name-0")).toBe(kept);
    expect(ns.calls).toHaveLength(MAX_IDS + 1);
    durableIdFromName(ns, "name-1"); // dropped: computed again
    expect(ns.calls).toHaveLength(MAX_IDS + 2);
    expect(ns.calls.at(-1)).toBe("name-1");
  });
});
