/**
 * Server-Sent Events framing for the Durable Streams live mode. Each batch of data is one
 * `data` event immediately followed by its `control` event, written as one chunk so that a
 * reader never sees data without the offset that resumes after it. Payload lines are split
 * on every line terminator (CR, LF, CRLF) and each piece becomes its own `data:` line, so a
 * payload can never inject an event boundary.
 */
export interface ControlEvent {
  streamNextOffset: string;
  streamCursor?: string;
  upToDate?: true;
  streamClosed?: true;
}

const encoder = new TextEncoder();

export function dataEvent(payload: string): string {
  return `event: data\n${payload
    .split(/\r\n|\r|\n/)
    .map((line) => `data:${line}`)
    .join("\n")}\n\n`;
}

export function controlEvent(control: ControlEvent): string {
  return `event: control\ndata:${JSON.stringify(control)}\n\n`;
}

/** A comment line: keeps proxies from timing out an idle connection; parsers ignore it. */
export const keepAlive = ": keep-alive\n\n";

export const utf8 = (text: string) => encoder.encode(text);

export function base64(bytes: Uint8Array): string {
  let binary = "";
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) {
    binary += String.fromCharCode(...bytes.subarray(i, i + step));
  }
  return btoa(binary);
}
