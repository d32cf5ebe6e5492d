/**
 * The pure half of fused appends (src/processors/fused-appends.ts): events predicted at the
 * offsets they will get, reduced ahead, and what the processor then owes, keyed as its own
 * appends would be.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { defineContract, type StateOf } from "../../src/processors/contract";
import { owedAfter, predictedBatch } from "../../src/processors/fused-appends";
import { type ReduceArgs, StreamProcessor } from "../../src/processors/processor";

const contract = defineContract({
  name: "echoer",
  version: 1,
  events: {
    "test/asked": z.object({ text: z.string() }),
    "test/answered": z.object({ text: z.string() }),
    "test/noise": z.object({}),
  },
  consumes: ["test/asked", "test/answered"],
  emits: ["test/answered"],
  state: z.object({ pending: z.object({ at: z.number(), text: z.string() }).nullable() }),
  initialState: { pending: null },
});

/** Owes an answer to the last question until it sees one. */
class Echoer extends StreamProcessor<typeof contract> {
  readonly contract = contract;
  reduce({ state, event }: ReduceArgs<typeof contract>): StateOf<typeof contract> {
    if (event.type === "test/asked")
      return { pending: { at: event.offset, text: event.payload.text } };
    return event.type === "test/answered" ? { pending: null } : state;
  }
  override owed(state: StateOf<typeof contract>) {
    return state.pending
      ? [
          {
            type: "test/answered" as const,
            payload: { text: `re: ${state.pending.text}` },
            key: "answer",
            causeOffset: state.pending.at,
          },
        ]
      : [];
  }
}

const target = { stream: "/s", streamName: "t:/s" };
const at = "2026-12-02T00:00:00.000Z";

describe("fused appends", () => {
  it("predicts the events at the offsets after the tail", () => {
    const batch = predictedBatch(
      target,
      [{ type: "test/asked", payload: { text: "hi" } }],
      7,
      2,
      at,
    );
    expect(batch.events.map((e) => e.offset)).toEqual([8]);
    expect(batch.nextOffset).toBe(9);
    expect(batch.anchorOffset).toBe(2);
  });

  it("answers what the processor owes after reducing them, keyed by their predicted cause", () => {
    const batch = predictedBatch(
      target,
      [
        { type: "test/noise", payload: {} },
        { type: "test/asked", payload: { text: "hi" } },
      ],
      7,
      2,
      at,
    );
    expect(owedAfter("echoer", new Echoer(), { pending: null }, 7, batch)).toEqual([
      { type: "test/answered", payload: { text: "re: hi" }, idempotencyKey: "echoer/answer@9" },
    ]);
  });

  it("owes nothing for events it does not consume, or once they settle what was owed", () => {
    const noise = predictedBatch(target, [{ type: "test/noise", payload: {} }], 7, 2, at);
    expect(owedAfter("echoer", new Echoer(), { pending: { at: 5, text: "x" } }, 7, noise)).toEqual(
      [],
    );
    const answered = predictedBatch(
      target,
      [{ type: "test/answered", payload: { text: "done" } }],
      7,
      2,
      at,
    );
    expect(
      owedAfter("echoer", new Echoer(), { pending: { at: 5, text: "x" } }, 7, answered),
    ).toEqual([]);
  });

  it("throws on an event its contract refuses (the host then appends unfused)", () => {
    const bad = predictedBatch(target, [{ type: "test/asked", payload: { text: 1 } }], 7, 2, at);
    expect(() => owedAfter("echoer", new Echoer(), { pending: null }, 7, bad)).toThrow(
      /payload invalid/,
    );
  });
});
