/**
 * IP address literals as numbers, for the outbound URL policy (policy.ts). Parsed, not
 * pattern-matched: the same address has many spellings (`127.1`, `0x7f.0.0.1`, `2130706433`,
 * `::ffff:7f00:1`, `::127.0.0.1`, `0:0:0:0:0:ffff:127.0.0.1`), and only its value says where
 * it points. The WHATWG URL parser already canonicalises IPv4 spellings and compresses IPv6
 * (`new URL("https://[::127.0.0.1]").hostname` is `[::7f00:1]`), but these parsers accept the
 * raw spellings too so that the policy does not depend on who built the string.
 */

/** One IPv4 part as WHATWG reads it: decimal, octal (leading 0) or hex (0x). */
function ipv4Part(text: string): number | null {
  let digits = text;
  let radix = 10;
  if (/^0[xX]/.test(digits)) {
    digits = digits.slice(2);
    radix = 16;
    if (digits === "") return 0;
    if (!/^[0-9a-fA-F]+$/.test(digits)) return null;
  } else if (digits.length > 1 && digits.startsWith("0")) {
    digits = digits.slice(1);
    radix = 8;
    if (!/^[0-7]+$/.test(digits)) return null;
  } else if (!/^[0-9]+$/.test(digits)) return null;
  const value = Number.parseInt(digits, radix);
  return Number.isSafeInteger(value) ? value : null;
}

/**
 * An IPv4 address in any spelling `inet_aton` and WHATWG accept (1–4 parts, each decimal,
 * octal or hex; the last part fills the remaining bytes), as an unsigned 32-bit number.
 */
export function parseIpv4(text: string): number | null {
  const parts = text.endsWith(".") ? text.slice(0, -1).split(".") : text.split(".");
  if (parts.length < 1 || parts.length > 4 || parts.some((p) => p === "")) return null;
  const values = parts.map(ipv4Part);
  if (values.some((v) => v === null)) return null;
  const nums = values as number[];
  const last = nums.pop()!;
  if (nums.some((v) => v > 255)) return null;
  if (last >= 256 ** (4 - nums.length)) return null;
  let value = last;
  nums.forEach((v, i) => {
    value += v * 256 ** (3 - i);
  });
  return value;
}

export const ipv4Text = (value: number) =>
  [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join(".");

/** An IPv6 address (no brackets, no zone) as its eight 16-bit groups. */
export function parseIpv6(text: string): number[] | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groupsOf = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (const [i, piece] of pieces.entries()) {
      if (piece.includes(".")) {
        // An embedded dotted quad, only as the last piece, strictly four decimal parts.
        if (i !== pieces.length - 1 || !/^\d{1,3}(\.\d{1,3}){3}$/.test(piece)) return null;
        const bytes = piece.split(".").map(Number);
        if (bytes.some((b) => b > 255)) return null;
        out.push((bytes[0]! << 8) | bytes[1]!, (bytes[2]! << 8) | bytes[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return null;
        out.push(Number.parseInt(piece, 16));
      }
    }
    return out;
  };
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (head === null || tail === null) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return null;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

/** The IPv4 address held by groups i and i+1. */
const v4At = (groups: number[], i: number) => groups[i]! * 65536 + groups[i + 1]!;

const inV4 = (value: number, base: string, bits: number) => {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (value & mask) >>> 0 === (parseIpv4(base)! & mask) >>> 0;
};

/** IPv4 ranges that are not the public internet (RFC 6890 special-purpose and multicast). */
const REFUSED_V4: [string, number, string][] = [
  ["0.0.0.0", 8, "this network"],
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "shared address space (CGNAT)"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "IETF protocol assignments"],
  ["192.0.2.0", 24, "documentation"],
  ["192.88.99.0", 24, "6to4 relay anycast"],
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "benchmarking"],
  ["198.51.100.0", 24, "documentation"],
  ["203.0.113.0", 24, "documentation"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved"],
];

/** Why an IPv4 address is not a public internet address, or null when it is one. */
export function refusedIpv4(value: number): string | null {
  for (const [base, bits, why] of REFUSED_V4) if (inV4(value, base, bits)) return why;
  return null;
}

/**
 * Why an IPv6 address is not a public internet address (or embeds an IPv4 address that is
 * not), or null when it is one. Only global unicast (2000::/3) outside the special ranges is
 * public; IPv4-mapped, -compatible and -translated addresses are judged by their IPv4 part.
 */
export function refusedIpv6(groups: number[]): string | null {
  const [g0, g1, g2, g4, g5] = [groups[0]!, groups[1]!, groups[2]!, groups[4]!, groups[5]!];
  const embedded = (v4: number, how: string) => {
    const why = refusedIpv4(v4);
    return why ? `${how} ${ipv4Text(v4)} (${why})` : null;
  };
  const zeros = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  if (zeros(0, 8)) return "unspecified address";
  if (zeros(0, 7) && groups[7] === 1) return "loopback";
  if (zeros(0, 5) && g5 === 0xffff) return embedded(v4At(groups, 6), "IPv4-mapped");
  if (zeros(0, 4) && g4 === 0xffff && g5 === 0) return embedded(v4At(groups, 6), "IPv4-translated");
  if (zeros(0, 6)) return embedded(v4At(groups, 6), "IPv4-compatible");
  if (g0 === 0x64 && g1 === 0xff9b && zeros(2, 6)) return embedded(v4At(groups, 6), "NAT64");
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 1) return "local-use NAT64 (64:ff9b:1::/48)";
  if (g0 === 0x2002) return embedded(v4At(groups, 1), "6to4");
  if (g0 === 0x2001 && g1 === 0) {
    // Teredo: the server's IPv4 in groups 2–3, the client's (inverted) in groups 6–7.
    return (
      embedded(v4At(groups, 2), "Teredo server") ??
      embedded(~v4At(groups, 6) >>> 0, "Teredo client")
    );
  }
  if (g0 === 0x2001 && g1 === 0x0db8) return "documentation (2001:db8::/32)";
  if (g0 === 0x0100 && zeros(1, 4)) return "discard-only (100::/64)";
  if ((g0 & 0xfe00) === 0xfc00) return "unique local address (fc00::/7)";
  if ((g0 & 0xffc0) === 0xfe80) return "link-local (fe80::/10)";
  if ((g0 & 0xffc0) === 0xfec0) return "site-local (fec0::/10)";
  if ((g0 & 0xff00) === 0xff00) return "multicast (ff00::/8)";
  if ((g0 & 0xe000) !== 0x2000) return "not a global unicast address (outside 2000::/3)";
  return null;
}
