/**
 * Stand-ins for workerd platform objects (an `Ai` binding, `DurableObjectStorage`, a SQL
 * cursor) in the Node test tier, which has none of them and cannot construct them. A fake
 * carries only the members the code under test touches; this one function states that, so
 * that the unit tests hold no casts of their own. A test whose code reaches a member the fake
 * lacks fails with a TypeError, which says the fake (or the tier) is wrong.
 */
export function platformFake<T extends object>(members: Partial<Record<keyof T, unknown>>): T {
  // The only cast of the unit tier: a platform type cannot be built outside workerd.
  return members as T;
}
