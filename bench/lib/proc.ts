/**
 * Reading a process's cost from Linux's /proc, the same way for every server whatever its runtime: CPU time as
 * user + system clock ticks of all its threads (`/proc/<pid>/stat`), resident memory as `VmRSS`
 * (`/proc/<pid>/status`). Node's own `process.cpuUsage()` would not cover the .NET server or Redis.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of `/proc/<pid>/stat` (USER_HZ; 100 on every Linux build in practice). */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system, all threads) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/**
 * CPU seconds the process's live threads have run, to the nanosecond: the first field of each
 * `/proc/<pid>/task/<tid>/schedstat`. {@link cpuSeconds} counts 10 ms ticks, too coarse for a Redis that spends a
 * few microseconds per message over a window of seconds; this is not, though threads that have exited are not in it
 * (Redis's and Node's threads live as long as the process). Falls back to {@link cpuSeconds} where the kernel keeps
 * no schedstat.
 */
export function preciseCpuSeconds(pid: number): number {
  let tasks: string[];
  try {
    readFileSync(`/proc/${pid}/schedstat`, 'latin1');
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return cpuSeconds(pid);
  }
  let nanoseconds = 0;
  for (const task of tasks) {
    try {
      nanoseconds += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'latin1').split(' ', 1)[0]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return nanoseconds / 1e9;
}

/** Resident set size in bytes. */
export function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match === null ? Number.NaN : Number(match[1]) * 1024;
}

/**
 * Seconds each thread of the process has spent runnable but waiting for a CPU, by thread id, from
 * `/proc/<pid>/task/<tid>/schedstat` (its second field, in nanoseconds): on a shared machine, the part of a
 * wall-clock figure that was spent waiting for a core rather than working.
 */
export function runQueueWaits(pid: number): Map<string, number> {
  const waits = new Map<string, number>();
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      waits.set(task, Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'latin1').split(' ')[1]) / 1e9);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return waits;
}

/**
 * Seconds the threads waited for a CPU between two {@link runQueueWaits} readings: threads that started meanwhile
 * count in full, threads that ended meanwhile (a thread pool shrinking) drop out, so it is a lower bound there.
 */
export function runQueueWaitBetween(before: Map<string, number>, after: Map<string, number>): number {
  let waited = 0;
  for (const [task, seconds] of after) waited += seconds - (before.get(task) ?? 0);
  return waited;
}

/** CPU seconds summed over several processes. */
export function totalCpuSeconds(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) total += cpuSeconds(pid);
  return total;
}

/**
 * CPU seconds the whole machine has been busy (all CPUs: user, nice, system, irq, steal), from `/proc/stat`,
 * leaving out softirq time: on loopback most of that is the network stack carrying the benchmark's own traffic,
 * charged to no process. Compared with the measured processes' own time over a window, it shows how much other
 * programs ran.
 */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0];
  const [user, nice, system, , , irq, , steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + steal) / TICKS_PER_SECOND;
}
