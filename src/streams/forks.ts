/**
 * Forks: a fork is a new stream that starts as a copy of a source stream up to an offset
 * (and sub-offset, within one append). The fork reaches its source by name through
 * `StreamPeers`; the source registers a reference per fork, so that deleting it only
 * soft-deletes it while forks still read it. A reference the fork owes back is recorded in
 * a durable outbox (log.ts) and delivered by `flushOutbox`, which the alarm retries.
 */
import { conflict, invalidInput } from "../errors/domain";
import { isJsonType } from "./content-type";
import type { StoredMessage, StreamLog, StreamMeta } from "./log";

export interface ForkSnapshotRequest {
  offset: string | null;
  subOffset: number;
  contentType: string | null;
}

export interface ForkSnapshot {
  contentType: string;
  ttlSeconds: number | null;
  expiresAt: number | null;
  /** Messages 1..base are inherited as they are. */
  base: number;
  /** The materialised sub-offset prefix of the append that starts at base + 1. */
  prefix: StoredMessage[];
}

/** What a stream needs from the streams around it (forks reach their sources by name). */
export interface StreamPeers {
  forkSnapshot(source: string, fork: string, request: ForkSnapshotRequest): Promise<ForkSnapshot>;
  exportMessages(source: string, after: number, upTo: number): Promise<StoredMessage[]>;
  releaseFork(source: string, fork: string): Promise<void>;
}

/** Page size of the messages a fork copies from its source. */
export const EXPORT_PAGE = 2_000;

/**
 * Source side: the first `subOffset` messages (JSON) or bytes (other types) of the append
 * that starts at `base + 1`, materialised for the fork.
 */
export function subOffsetPrefix(
  log: StreamLog,
  meta: StreamMeta,
  base: number,
  subOffset: number,
): StoredMessage[] {
  if (subOffset === 0) return [];
  const record = log.appendRecord(base + 1);
  if (record.length === 0)
    throw invalidInput("fork sub-offset: no append starts at the fork offset");
  if (isJsonType(meta.content_type)) {
    if (subOffset > record.length) {
      throw invalidInput(
        `fork sub-offset ${subOffset} exceeds the ${record.length} messages of that append`,
      );
    }
    return record.slice(0, subOffset);
  }
  const first = record[0]!;
  const bytes =
    typeof first.body === "string"
      ? new TextEncoder().encode(first.body)
      : new Uint8Array(first.body);
  if (subOffset > bytes.byteLength) {
    throw invalidInput(
      `fork sub-offset ${subOffset} exceeds the ${bytes.byteLength} bytes of that append`,
    );
  }
  return [{ ...first, type: null, idempotencyKey: null, body: bytes.slice(0, subOffset).buffer }];
}

/** Fork side: copies the inherited messages from the source, page by page. */
export async function copyFrom(
  peers: StreamPeers,
  source: string,
  snapshot: ForkSnapshot,
): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  while (out.length < snapshot.base) {
    const page = await peers.exportMessages(source, out.length, snapshot.base);
    if (page.length === 0) throw conflict("fork source changed while it was copied");
    out.push(...page);
  }
  return [...out, ...snapshot.prefix];
}

/** Delivers owed fork releases; undelivered ones stay for the alarm to retry. */
export async function flushOutbox(log: StreamLog, peers: StreamPeers): Promise<boolean> {
  let pending = false;
  for (const owed of log.owed()) {
    try {
      await peers.releaseFork(owed.source, owed.fork);
      log.transaction(() => log.settle(owed.source, owed.fork, true));
    } catch (error) {
      console.error(
        JSON.stringify({ msg: "fork release failed", source: owed.source, error: String(error) }),
      );
      log.transaction(() => log.settle(owed.source, owed.fork, false));
      pending = true;
    }
  }
  return pending;
}
