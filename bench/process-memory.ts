/**
 * Resident memory of the workerd processes a `wrangler dev` started (Linux /proc), for
 * bench/sessions-memory.ts. workerd hosts the worker and every Durable Object in one process,
 * so memory per object can only be measured as a difference of process RSS between two
 * states. Finds `workerd` processes by process group (bench/support/workerd-processes.ts), and reads
 * VmRSS and VmHWM from /proc/<pid>/status. `resetPeak` writes 5 to /proc/<pid>/clear_refs,
 * which resets VmHWM to the current RSS (Linux ≥ 4.0, own processes), so that VmHWM read
 * after a phase is that phase's peak even between samples. Returns null where /proc is not
 * available.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { workerdProcesses } from "./support/workerd-processes.ts";

export interface ProcessMemory {
  pid: number;
  rssKiB: number;
  hwmKiB: number;
}

/** Pids of the `workerd` processes in `processGroup`. */
export function workerdPids(processGroup: number | undefined): number[] {
  return (workerdProcesses(processGroup) ?? []).map((p) => p.pid);
}

function statusKiB(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
  return match ? Number(match[1]) : 0;
}

/** VmRSS and VmHWM of each workerd process of the group; null if none can be read. */
export function workerdMemory(processGroup: number | undefined): ProcessMemory[] | null {
  const out: ProcessMemory[] = [];
  for (const pid of workerdPids(processGroup)) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      out.push({ pid, rssKiB: statusKiB(status, "VmRSS"), hwmKiB: statusKiB(status, "VmHWM") });
    } catch {
      // exited meanwhile
    }
  }
  return out.length > 0 ? out : null;
}

/** Resets VmHWM to the current RSS for the group's workerd processes; false if not allowed. */
export function resetPeak(processGroup: number | undefined): boolean {
  let ok = true;
  const pids = workerdPids(processGroup);
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, "5");
    } catch {
      ok = false;
    }
  }
  return ok && pids.length > 0;
}
