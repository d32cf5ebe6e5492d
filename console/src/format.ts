/** Small display helpers shared by the console's views. */
import type { Callable } from "@server/callables/descriptor";

export function formatTime(value: number | string | null | undefined): string {
  if (value === null || value === undefined) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

export function formatClock(value: number | string): string {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleTimeString(undefined, { hour12: false });
}

/** Pretty JSON, cut at `limit` characters so one huge payload cannot freeze the page. */
export function prettyJson(value: unknown, limit = 20_000): string {
  let text: string;
  try {
    text = typeof value === "string" ? value : (JSON.stringify(value, null, 2) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > limit
    ? `${text.slice(0, limit)}\n… (${text.length - limit} more characters)`
    : text;
}

/** Tool arguments arrive as JSON text: show them indented when they parse. */
export function prettyArgs(input: string): string {
  try {
    return JSON.stringify(JSON.parse(input), null, 2);
  } catch {
    return input;
  }
}

export function describeCallable(callable: Callable): string {
  switch (callable.kind) {
    case "durable-object":
      return `${callable.binding}/${callable.name} · ${callable.method}()`;
    case "service":
      return `${callable.binding} · ${callable.method}()`;
    case "webhook":
      return callable.url;
  }
}

export const statusLabel: Record<string, string> = {
  idle: "Idle",
  running: "Running",
  awaiting_approval: "Awaiting approval",
  failed: "Failed",
  cancelled: "Cancelled",
  deleted: "Deleted",
  active: "Active",
  failing: "Failing",
  parked: "Parked",
  approved: "Approved",
  denied: "Denied",
  completed: "Completed",
  streaming: "Streaming",
};

export function label(status: string): string {
  return Object.hasOwn(statusLabel, status) ? statusLabel[status]! : status;
}
