/**
 * The Stream Durable Object's RPC surface, declared once: `StreamRpc` is what the class
 * implements and what every caller (worker routes, other Durable Objects, tests) holds, via
 * `streamStub`. Methods answer the result envelope of src/rpc/result.ts; wrap the stub in
 * `rpcClient` to get values (or thrown errors) instead. The input schemas and answer shapes
 * live here too, so the interface, the validation and the callers cannot drift.
 */
import { z } from "zod";
import { callableSchema } from "../callables/descriptor";
import { parseWith } from "../errors/parse";
import type { RpcResult } from "../rpc/result";
import type { ForkSnapshot, ForkSnapshotRequest } from "./forks";
import type { StoredMessage, StreamMeta } from "./log";
import type { EventInput, StreamEvent } from "./messages";
import { encodeOffset } from "./offsets";
import type { Subscription } from "./subscriptions";
import {
  eventTypesSchema,
  type Principal,
  startAtSchema,
  subscriptionKeySchema,
} from "./system-events";

export interface StreamHead {
  path: string;
  contentType: string;
  /** Offset of the last event (0 when empty). */
  lastOffset: number;
  /** Offset the next event will receive. */
  nextOffset: number;
  /** Stream-Next-Offset on the wire. */
  wireOffset: string;
  eventCount: number;
  closed: boolean;
  closeStatus: "ended" | "failed" | null;
  closeReason: string | null;
  createdAt: string;
  expiresAt: string | null;
}

export const createOptionsSchema = z.strictObject({
  contentType: z.string().min(1).max(200).default("application/json"),
  // Range and calendar checks are ../expiry.ts, shared with the HTTP headers.
  ttlSeconds: z.number().optional(),
  expiresAt: z.string().max(100).optional(),
});
export type CreateOptions = z.input<typeof createOptionsSchema>;

/** A self-feeding subscriber has durably processed everything at or below `offset` (feed-leases.ts). */
export const feedAckSchema = z.strictObject({
  key: subscriptionKeySchema,
  /** The subscription's anchor as the subscriber knows it: an ack for an older configuration is ignored. */
  anchorOffset: z.number().int().nonnegative(),
  offset: z.number().int().nonnegative(),
});
export type FeedAck = z.infer<typeof feedAckSchema>;

/** Bounded by the subscriptions one writer can hold on a stream. */
const FEED_KEYS_MAX = 64;

/** What a writer that feeds itself says with an append (feed-leases.ts). */
export const selfFeedSchema = z.strictObject({
  /** Subscriptions whose subscriber is this writer and is fed this append by it. */
  keys: z.array(subscriptionKeySchema).max(FEED_KEYS_MAX),
  /** What it has durably processed since it last said (at most the tail before this append). */
  acks: z.array(feedAckSchema).max(FEED_KEYS_MAX),
});
export type SelfFeed = z.infer<typeof selfFeedSchema>;

/** Acknowledgements without an append, and leases given back (`acknowledgeFeeds`). */
export const feedReportSchema = z.strictObject({
  acks: z.array(feedAckSchema).max(FEED_KEYS_MAX),
  release: z.array(subscriptionKeySchema).max(FEED_KEYS_MAX),
});
export type FeedReport = z.infer<typeof feedReportSchema>;

export const appendOptionsSchema = z.strictObject({
  expectedOffset: z.number().int().positive().optional(),
  /** Set by ProcessorHost only: allows processor idempotency keys (see idempotency-keys.ts). */
  asProcessor: z.boolean().optional(),
  /** Set by a processor host that feeds itself what it appends (feed-leases.ts). */
  selfFeed: selfFeedSchema.optional(),
  /**
   * All or nothing new: refuse the batch (409 conflict) if any of its idempotency keys is
   * already stored, instead of answering that event's original. With `expectedOffset`, the
   * batch then lands exactly at the predicted offsets or not at all (processors/fused-appends.ts).
   */
  onlyNew: z.boolean().optional(),
});
export type AppendOptions = z.input<typeof appendOptionsSchema>;

export const readOptionsSchema = z.strictObject({
  after: z.number().int().nonnegative().default(0),
  limit: z.number().int().min(1).max(10_000).default(1_000),
});
export type ReadOptions = z.input<typeof readOptionsSchema>;

export const skipOptionsSchema = z.strictObject({
  /** The stuck offset the operator saw; a different one is a 409 (never skip blindly). */
  offset: z.number().int().positive().optional(),
  reason: z.string().max(2_000).nullable().default(null),
});
export type SkipOptions = z.input<typeof skipOptionsSchema>;

export const closeOptionsSchema = z.strictObject({
  status: z.enum(["ended", "failed"]).default("ended"),
  reason: z.string().max(2_000).nullable().default(null),
});
export type CloseOptions = z.input<typeof closeOptionsSchema>;

/** Parses RPC input with zod, refusing it (validation_failed) with the offending path named. */
export const parse = parseWith;

export const subscriptionInputSchema = z.strictObject({
  key: subscriptionKeySchema,
  callable: callableSchema,
  eventTypes: eventTypesSchema,
  startAt: startAtSchema.default("beginning"),
});
export type SubscriptionInput = z.input<typeof subscriptionInputSchema>;

/** A subscription as the API shows it: configuration and delivery status, never the secret. */
export type SubscriptionStatus = Omit<Subscription, "secret" | "health" | "nextRetryAt"> & {
  /** `active`, `failing` (retrying with backoff) or `parked` (stopped: resume or skip it). */
  lag: number;
  status: Subscription["health"];
  nextRetryAt: string | null;
};

export function toStatus(sub: Subscription, tail: number): SubscriptionStatus {
  return {
    key: sub.key,
    callable: sub.callable,
    eventTypes: sub.eventTypes,
    startAt: sub.startAt,
    anchorOffset: sub.anchorOffset,
    cursor: sub.cursor,
    lag: Math.max(0, tail - sub.cursor),
    status: sub.health,
    attempts: sub.attempts,
    lastError: sub.lastError,
    lastErrorRetryable: sub.lastErrorRetryable,
    nextRetryAt: sub.nextRetryAt === null ? null : new Date(sub.nextRetryAt).toISOString(),
    stuckOffset: sub.stuckOffset,
    stuckThrough: sub.stuckThrough,
  };
}

export function toHead(meta: StreamMeta): StreamHead {
  return {
    path: meta.path,
    contentType: meta.content_type,
    lastOffset: meta.tail,
    nextOffset: meta.tail + 1,
    wireOffset: encodeOffset(meta.tail),
    eventCount: meta.tail,
    closed: meta.closed_at !== null,
    closeStatus: meta.close_status,
    closeReason: meta.close_reason,
    createdAt: new Date(meta.created_at).toISOString(),
    expiresAt: meta.expires_at === null ? null : new Date(meta.expires_at).toISOString(),
  };
}

export interface StorageStats {
  databaseSize: number;
  eventBytes: number;
  events: number;
  byType: { type: string | null; events: number; bytes: number }[];
}

/** The Stream Durable Object's RPC methods (see stream-do.ts for what each does). */
export interface StreamRpc {
  create(
    name: string,
    path: string,
    options?: CreateOptions,
  ): Promise<RpcResult<{ created: boolean; head: StreamHead }>>;
  appendBatch(events: EventInput[], options?: AppendOptions): Promise<RpcResult<StreamEvent[]>>;
  append(event: EventInput, options?: AppendOptions): Promise<RpcResult<StreamEvent>>;
  read(
    options?: ReadOptions,
  ): Promise<RpcResult<{ events: StreamEvent[]; head: StreamHead; upToDate: boolean }>>;
  getByIdempotencyKey(key: string): Promise<RpcResult<StreamEvent | null>>;
  head(): Promise<RpcResult<StreamHead>>;
  close(options?: CloseOptions): Promise<RpcResult<StreamHead>>;
  configureSubscription(
    input: SubscriptionInput,
  ): Promise<RpcResult<{ created: boolean; subscription: SubscriptionStatus; secret?: string }>>;
  removeSubscription(key: string): Promise<RpcResult<void>>;
  resumeSubscription(key: string, by: Principal): Promise<RpcResult<SubscriptionStatus>>;
  skipSubscription(
    key: string,
    by: Principal,
    options?: SkipOptions,
  ): Promise<RpcResult<{ skipped: number[]; subscription: SubscriptionStatus }>>;
  resumeDeliveries(): Promise<RpcResult<void>>;
  acknowledgeFeeds(report: FeedReport): Promise<RpcResult<void>>;
  listSubscriptions(): Promise<RpcResult<SubscriptionStatus[]>>;
  storageStats(): Promise<RpcResult<StorageStats>>;
  /** Stream-to-stream (forks): the source side of creating a fork. */
  forkSnapshot(fork: string, request: ForkSnapshotRequest): Promise<RpcResult<ForkSnapshot>>;
  exportMessages(after: number, upTo: number): Promise<RpcResult<StoredMessage[]>>;
  releaseFork(fork: string): Promise<RpcResult<void>>;
}

/** A stub of one stream: its RPC methods and its Durable Streams HTTP face (`fetch`). */
export type StreamStub = StreamRpc & DurableObjectStub;

/**
 * The STREAMS binding, typed by the declared interface. (workerd's generated stub type of the
 * class, `DurableObjectStub<StreamDurableObject>`, exceeds TypeScript's instantiation depth.)
 */
export type StreamNamespace = Omit<DurableObjectNamespace, "get" | "getByName"> & {
  get(id: DurableObjectId, options?: DurableObjectNamespaceGetDurableObjectOptions): StreamStub;
};
