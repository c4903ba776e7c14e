/**
 * What the operating system says about a server process, for tests that bound what an attacker can make it hold:
 * its resident memory (`/proc/<pid>/status`) and the TCP connections of its port with their unsent bytes
 * (`/proc/net/tcp`).
 */
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

/** One TCP connection of a listening port, as the kernel reports it in `/proc/net/tcp`. */
export interface TcpConnection {
  /** `ESTAB`, `FIN-WAIT-1`, `CLOSE-WAIT`, … (named as `ss` names them). */
  readonly state: string;
  /** Bytes the kernel holds for the peer and has not sent (or not had acknowledged). */
  readonly sendQueue: number;
  /** The peer's address, `127.0.0.1:<port>`. */
  readonly peer: string;
}

/** `/proc/net/tcp` state codes (include/net/tcp_states.h). */
const TCP_STATES: Record<string, string> = {
  '01': 'ESTAB',
  '02': 'SYN-SENT',
  '03': 'SYN-RECV',
  '04': 'FIN-WAIT-1',
  '05': 'FIN-WAIT-2',
  '06': 'TIME-WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE-WAIT',
  '09': 'LAST-ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
};

/** An IPv4 `address:port` of `/proc/net/tcp` (hex, the address in host byte order) as `a.b.c.d:port`. */
function ipv4(hex: string): string {
  const [address, port] = hex.split(':');
  const bytes = [0, 2, 4, 6].map((i) => parseInt(address.slice(i, i + 2), 16)).reverse();
  return `${bytes.join('.')}:${parseInt(port, 16)}`;
}

/**
 * The IPv4 TCP connections whose local port is `port`, in any state that holds a socket — not LISTEN, and not
 * TIME-WAIT, which is only the kernel remembering a closed connection (no buffers, no descriptor).
 */
export function tcpConnections(port: number): TcpConnection[] {
  const connections: TcpConnection[] = [];
  for (const line of readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5) continue;
    const local = ipv4(fields[1]);
    if (!local.endsWith(`:${port}`)) continue;
    const state = TCP_STATES[fields[3]] ?? fields[3];
    if (state === 'LISTEN' || state === 'TIME-WAIT') continue;
    connections.push({ state, sendQueue: parseInt(fields[4].split(':')[0], 16), peer: ipv4(fields[2]) });
  }
  return connections;
}
