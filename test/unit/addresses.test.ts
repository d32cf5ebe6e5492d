/** IP literal parsing behind the outbound URL policy (src/callables/addresses.ts). */
import { describe, expect, it } from "vitest";
import { parseIpv4, parseIpv6, refusedIpv6 } from "../../src/callables/addresses";

describe("IP literals", () => {
  it.each([
    ["127.0.0.1", 0x7f000001],
    ["2130706433", 0x7f000001],
    ["0177.0.0.1", 0x7f000001],
    ["0x7f.1", 0x7f000001],
    ["0x7f000001", 0x7f000001],
    ["127.1", 0x7f000001],
    ["10.1", 0x0a000001],
    ["192.168.0x1.1", 0xc0a80101],
    ["8.8.8.8", 0x08080808],
  ])("IPv4 %s", (text, value) => {
    expect(parseIpv4(text)).toBe(value);
  });

  it.each(["256.0.0.1", "1.2.3.4.5", "08.1.1.1", "1..1", "4294967296", "a.b.c.d"])(
    "not IPv4: %s",
    (text) => {
      expect(parseIpv4(text)).toBeNull();
    },
  );

  it("IPv6 forms expand to eight groups", () => {
    expect(parseIpv6("::")).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIpv6("::1")).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(parseIpv6("::127.0.0.1")).toEqual([0, 0, 0, 0, 0, 0, 0x7f00, 1]);
    expect(parseIpv6("0:0:0:0:0:ffff:10.0.0.1")).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0a00, 1]);
    expect(parseIpv6("2606:4700::1111")).toEqual([0x2606, 0x4700, 0, 0, 0, 0, 0, 0x1111]);
    for (const bad of ["1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "::1.2.3", "::g", "1:2:3"])
      expect(parseIpv6(bad), bad).toBeNull();
  });

  it("public IPv6 unicast passes; IPv4-mapped public addresses pass", () => {
    expect(refusedIpv6(parseIpv6("2606:4700::1111")!)).toBeNull();
    expect(refusedIpv6(parseIpv6("::ffff:8.8.8.8")!)).toBeNull();
    expect(refusedIpv6(parseIpv6("64:ff9b::8.8.8.8")!)).toBeNull();
    expect(refusedIpv6(parseIpv6("2002:0808:0808::1")!)).toBeNull();
  });
});
