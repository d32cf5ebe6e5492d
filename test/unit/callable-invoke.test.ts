/** What counts as a webhook's acknowledgement (src/callables/invoke.ts `webhookAck`). */
import { describe, expect, it } from "vitest";
import { webhookAck } from "../../src/callables/invoke";

describe("webhook acknowledgements", () => {
  it("an empty 2xx body acks the batch; {ackOffset} acks that offset", () => {
    expect(webhookAck("", 7)).toEqual({ ackOffset: 7 });
    expect(webhookAck("  \n", 7)).toEqual({ ackOffset: 7 });
    expect(webhookAck('{"ackOffset":3}', 7)).toEqual({ ackOffset: 3 });
  });

  it.each([
    "OK",
    "<html>login</html>",
    "{}",
    "null",
    "[]",
    '{"ackOffset":"3"}',
    '{"ackOffset":-1}',
  ])("%s is not an acknowledgement", (text) => {
    expect(() => webhookAck(text, 7)).toThrow(/not an acknowledgement/);
  });
});
