/**
 * The idempotency-key namespace of processors. A processor's side-effect appends are keyed
 * `<processor>/<key>@<source offset>` so that replays and retries collapse at the stream.
 * If anyone else could store such a key first, the processor's later append would be
 * answered with that earlier event as "already done", and its real effect would be lost.
 *
 * Decision: the namespace is reserved (rather than keys scoped per writer). Scoping would
 * need a writer identity on every append, which neither door has (HTTP clients of one tenant
 * are indistinguishable, RPC carries no caller), and it would change what a key means for
 * every existing client. Reserving keeps keys global and simple: any append that does not
 * declare itself a processor's (`asProcessor`, set only by ProcessorHost over RPC; the HTTP
 * door cannot set it) is refused with a 400 when a key has the processor shape. RPC callers
 * are code deployed in the same worker and trusted not to claim to be processors.
 */

/** `<name>/<anything>@<decimal offset>`, where the name has no `/` or `@` (processor names never do). */
const PROCESSOR_KEY = /^[^/@]+\/[\s\S]*@[0-9]+$/;

export const isProcessorKey = (key: string) => PROCESSOR_KEY.test(key);

export const processorKey = (processor: string, key: string, sourceOffset: number) =>
  `${processor}/${key}@${sourceOffset}`;
