/**
 * What the operating system says about a server process, for tests that bound what an attacker can make it hold:
 * its resident memory (`/proc/<pid>/status`) and the TCP connections of its port with their unsent bytes (`ss`).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

/** Resident memory of a process, now and at its peak, in bytes. */
export interface ResidentMemory {
  readonly rss: number;
  readonly peak: number;
}

export function residentMemory(pid: number): ResidentMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** Starts a new peak: `peak` of {@link residentMemory} counts from now (Linux's `clear_refs` 5). */
export function resetPeakMemory(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** One TCP connection of a listening port, as `ss` reports it. */
export interface TcpConnection {
  readonly state: string;
  /** Bytes the kernel holds for the peer and has not sent (or not had acknowledged). */
  readonly sendQueue: number;
  readonly peer: string;
}

/** The TCP connections, in any state but LISTEN, whose local port is `port`. */
export function tcpConnections(port: number): TcpConnection[] {
  const output = execFileSync('ss', ['-tanH', `( sport = :${port} )`], { encoding: 'utf8' });
  const connections: TcpConnection[] = [];
  for (const line of output.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5 || fields[0] === 'LISTEN') continue;
    connections.push({ state: fields[0], sendQueue: Number(fields[2]), peer: fields[4] });
  }
  return connections;
}
