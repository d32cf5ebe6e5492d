/**
 * Finds the `workerd` processes a `wrangler dev` started (Linux /proc), for the CPU and memory
 * readers (bench/process-cpu.ts, bench/process-memory.ts): workerd hosts the worker and every
 * Durable Object, so a benchmark measures those processes, found by the dev server's process
 * group. Returns null where /proc is not available.
 */
import { readdirSync, readFileSync } from "node:fs";

export interface WorkerdProcess {
  pid: number;
  /** The fields of /proc/<pid>/stat after `pid (comm)`: [0] is state, [2] pgrp, [11] utime. */
  statFields: string[];
}

/** The `workerd` processes in `processGroup`; null if there is no group or no /proc. */
export function workerdProcesses(processGroup: number | undefined): WorkerdProcess[] | null {
  if (processGroup === undefined) return null;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return null;
  }
  const found: WorkerdProcess[] = [];
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp … utime(14) stime(15); comm may contain spaces.
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    if (comm !== "workerd") continue;
    const statFields = stat.slice(close + 2).split(" ");
    if (Number(statFields[2]) === processGroup) found.push({ pid: Number(entry), statFields });
  }
  return found;
}
