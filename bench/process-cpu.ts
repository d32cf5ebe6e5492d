/**
 * CPU time used by the workerd processes a `wrangler dev` started (Linux /proc), so that a
 * benchmark can report CPU per turn next to wall time: workerd's own clock stops during
 * compute, and on a busy machine wall time mixes in everyone else's load. Reads
 * utime + stime of every `workerd` process in the dev server's process group. Returns null
 * where /proc is not available.
 */
import { workerdProcesses } from "./support/workerd-processes.ts";

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** Milliseconds of CPU (user + system) used so far by the group's workerd processes. */
export function workerdCpuMs(processGroup: number | undefined): number | null {
  const processes = workerdProcesses(processGroup);
  if (processes === null || processes.length === 0) return null;
  let ticks = 0;
  // utime is field 14 and stime field 15 of /proc/<pid>/stat.
  for (const { statFields } of processes) ticks += Number(statFields[11]) + Number(statFields[12]);
  return ticks * TICK_MS;
}
