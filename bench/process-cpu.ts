/**
 * CPU time used by the workerd processes a `wrangler dev` started (Linux /proc), so that a
 * benchmark can report CPU per turn next to wall time: workerd's own clock stops during
 * compute, and on a busy machine wall time mixes in everyone else's load. Reads
 * utime + stime of every `workerd` process in the dev server's process group. Returns null
 * where /proc is not available.
 */
import { readdirSync, readFileSync } from "node:fs";

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** Milliseconds of CPU (user + system) used so far by the group's workerd processes. */
export function workerdCpuMs(processGroup: number | undefined): number | null {
  if (processGroup === undefined) return null;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return null;
  }
  let ticks = 0;
  let found = false;
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
    const fields = stat.slice(close + 2).split(" ");
    if (Number(fields[2]) !== processGroup) continue;
    ticks += Number(fields[11]) + Number(fields[12]);
    found = true;
  }
  return found ? ticks * TICK_MS : null;
}
