/**
 * Large content in the view: `content/chunk-added` events are buffered per content id until
 * the event whose ref names them takes the text (see the rules in view.ts). Kept apart from
 * the reducer because it is the one part with bounds (bytes, ids) and integrity checks.
 */
import {
  MAX_BUFFERED_BYTES,
  MAX_BUFFERED_CONTENTS,
  type NotLoaded,
  type PayloadOf,
  type SessionView,
} from "./view-model";

interface ContentRefLike {
  contentId: string;
  bytes: number;
  chunks: number;
  offsets: number[];
}

const encoder = new TextEncoder();
const utf8Bytes = (text: string) => encoder.encode(text).byteLength;

export function addChunk(
  view: SessionView,
  offset: number,
  p: PayloadOf<"content/chunk-added">,
): SessionView {
  const chunks = new Map(view.chunks);
  const buffer = chunks.get(p.contentId) ?? { pieces: [], bytes: 0, overflowed: false };
  if (buffer.pieces[p.index] !== undefined || buffer.overflowed) return view; // repeated / refused
  const bytes = utf8Bytes(p.text);
  chunks.delete(p.contentId); // re-added below, so it counts as the newest
  // Make room: the oldest buffers are orphans (their referencing event never came).
  let total = bytes + buffer.bytes;
  for (const b of chunks.values()) total += b.bytes;
  for (const [id, b] of chunks) {
    if (total <= MAX_BUFFERED_BYTES && chunks.size < MAX_BUFFERED_CONTENTS) break;
    chunks.delete(id);
    total -= b.bytes;
  }
  if (total > MAX_BUFFERED_BYTES) {
    // This content alone exceeds the bound: keep only the marker that it did.
    chunks.set(p.contentId, { pieces: [], bytes: 0, overflowed: true });
  } else {
    const pieces = [...buffer.pieces];
    pieces[p.index] = { text: p.text, offset };
    chunks.set(p.contentId, { pieces, bytes: buffer.bytes + bytes, overflowed: false });
  }
  return { ...view, chunks };
}

/**
 * Takes the buffered content a ref names out of the view (the buffer is dropped either way):
 * its text, or why it cannot be shown.
 */
export function takeContent(
  view: SessionView,
  ref: ContentRefLike,
): { view: SessionView; text: string | null; notLoaded: NotLoaded | null } {
  const buffer = view.chunks.get(ref.contentId);
  let next = view;
  if (buffer) {
    const chunks = new Map(view.chunks);
    chunks.delete(ref.contentId);
    next = { ...view, chunks };
  }
  const fail = (reason: NotLoaded["reason"]) => ({
    view: next,
    text: null,
    notLoaded: { reason, bytes: ref.bytes },
  });
  if (!buffer) return fail("missing");
  if (buffer.overflowed) return fail("too_large");
  const parts: string[] = [];
  for (let index = 0; index < ref.chunks; index++) {
    const piece = buffer.pieces[index];
    if (piece === undefined) return fail("missing");
    if (piece.offset !== ref.offsets[index]) return fail("invalid");
    parts.push(piece.text);
  }
  if (buffer.pieces.length !== ref.chunks || buffer.bytes !== ref.bytes) return fail("invalid");
  return { view: next, text: parts.join(""), notLoaded: null };
}
