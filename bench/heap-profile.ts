/**
 * Where an idle connection's memory goes: runs our server in this process, opens connections from a generator
 * process, and prints the JavaScript heap growth per connection by constructor (two heap snapshots, diffed).
 *
 * Run after `npx tsc -p bench/tsconfig.json`:
 * `node --expose-gc bench/.build/bench/heap-profile.js [connections] [ours|ws]` (`ws`: a bare `ws` server, the
 * baseline of the idle-memory target). With `KEEP_SNAPSHOT=1` the two snapshots stay in the temporary directory (their
 * paths are printed) for a closer look in Chrome's DevTools.
 * Not part of `npm run bench`; it is the tool behind the idle-memory fixes.
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import Fastify from 'fastify';
import { WebSocketServer } from 'ws';
import { ChatHub } from '../samples/chat/chat-hub';
import { fastifySignalR } from '../src/index';
import type { ConnectResult } from './generator';
import { Generator } from './lib/processes';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size and count of heap objects by `type:name`. */
function summarize(file: string): Map<string, { size: number; count: number }> {
  const data = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = data.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = data.snapshot.meta.node_types[0];
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < data.nodes.length; i += width) {
    const type = types[data.nodes[i + typeAt]];
    const name = type === 'object' || type === 'closure' ? data.strings[data.nodes[i + nameAt]] : `(${type})`;
    const key = `${type}:${name}`;
    const entry = out.get(key) ?? { size: 0, count: 0 };
    entry.size += data.nodes[i + sizeAt];
    entry.count++;
    out.set(key, entry);
  }
  return out;
}

function snapshot(label: string): Map<string, { size: number; count: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const file = path.join(tmpdir(), `bench-heap-${process.pid}-${label}.heapsnapshot`);
  writeHeapSnapshot(file);
  const summary = summarize(file);
  if (process.env.KEEP_SNAPSHOT === undefined) rmSync(file);
  else console.log(file);
  return summary;
}

async function main(): Promise<void> {
  const connections = Number(process.argv[2] ?? 1000);
  const bare = process.argv[3] === 'ws';
  const app = Fastify({ logger: false });
  let port: number;
  let wss: WebSocketServer | undefined;
  if (bare) {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await new Promise((resolve) => wss!.once('listening', resolve));
    port = (wss.address() as { port: number }).port;
  } else {
    await app.register(fastifySignalR, { hubs: [{ path: '/chathub', hub: ChatHub }] });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
  }
  const dialect = bare ? ('ws' as const) : ('signalr-json' as const);
  const generator = Generator.start(null);
  // Warm every code path once so compiled code and caches are in the baseline.
  await generator.call<ConnectResult>({
    op: 'connect',
    dialect,
    targets: [{ host: '127.0.0.1', port }],
    count: 10,
    concurrency: 10,
    localAddresses: ['127.0.0.2'],
  });
  const before = snapshot('before');
  const heapBefore = process.memoryUsage();
  const result = await generator.call<ConnectResult>({
    op: 'connect',
    dialect,
    targets: [{ host: '127.0.0.1', port }],
    count: connections,
    concurrency: 50,
    localAddresses: Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`),
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const after = snapshot('after');
  const heapAfter = process.memoryUsage();
  const per = (a: number, b: number) => ((b - a) / result.connected).toFixed(0);
  console.log(
    `${result.connected} connections: heapUsed +${per(heapBefore.heapUsed, heapAfter.heapUsed)} B, ` +
      `external +${per(heapBefore.external, heapAfter.external)} B, arrayBuffers +${per(heapBefore.arrayBuffers, heapAfter.arrayBuffers)} B, ` +
      `rss +${per(heapBefore.rss, heapAfter.rss)} B per connection`,
  );
  const rows = [...after.entries()]
    .map(([key, entry]) => {
      const old = before.get(key) ?? { size: 0, count: 0 };
      return {
        key,
        size: (entry.size - old.size) / result.connected,
        count: (entry.count - old.count) / result.connected,
      };
    })
    .filter((row) => row.size > 8)
    .sort((a, b) => b.size - a.size)
    .slice(0, 40);
  for (const row of rows)
    console.log(`${row.size.toFixed(0).padStart(7)} B  ${row.count.toFixed(2).padStart(6)} ×  ${row.key}`);
  await generator.stop();
  await app.close();
  wss?.close();
  process.exit(0);
}

void main();
