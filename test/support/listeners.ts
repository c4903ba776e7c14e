/**
 * Whether a given process is the one listening on a port. A port taken from `freePort()` is free only at that
 * instant: on a busy machine another program's server may bind it before the child meant for it does, and a plain
 * TCP connect would then take the other program for the child. Linux's `/proc` tells which process holds the
 * listening socket: its inode appears in `/proc/net/tcp` (or `tcp6`) in state LISTEN and among the process's fds.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

const LISTEN = '0A';

/** The inodes of the sockets listening on `port` (any address), from `/proc/net/tcp` and `/proc/net/tcp6`. */
function listeningInodes(port: number): Set<string> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== LISTEN) continue;
      if (fields[1].slice(fields[1].lastIndexOf(':') + 1) === hexPort) inodes.add(fields[9]);
    }
  }
  return inodes;
}

/** Whether process `pid` holds a socket listening on `port`. */
export function listensOn(pid: number, port: number): boolean {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return false;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match !== null && inodes.has(match[1])) return true;
  }
  return false;
}

/** Resolves once process `pid` listens on `port`; rejects when `isDead()` or after `timeoutMs`. */
export async function waitForListener(
  pid: number,
  port: number,
  timeoutMs: number,
  isDead: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (listensOn(pid, port)) return;
    if (isDead()) throw new Error(`the process meant to listen on port ${port} exited`);
    if (Date.now() > deadline) throw new Error(`process ${pid} did not listen on port ${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
