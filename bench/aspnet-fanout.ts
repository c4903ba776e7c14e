/**
 * Fan-out to ASP.NET SignalR 2.x clients next to Core clients: one server process with the 2.x endpoint, the same
 * broadcasts (a Core client invoking `SendMessage`, which sends `ReceiveMessage` to every connection), received in
 * one phase by Core JSON clients over WebSockets and in the next by as many 2.x clients over WebSockets (raw
 * sockets speaking each protocol, so the receivers cost the server what real ones do and little here).
 *
 *   npm run bench:aspnet -- [--quick]
 *
 * Figures per generation: broadcasts per second, delivered messages per second, and server CPU per delivered
 * message, with the 2.x figures as ratios to the Core ones. The server's CPU is read from /proc (`lib/proc.ts`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { WebSocket } from 'ws';
import { connectClient, payloadFor, type BenchClient } from './lib/dialects';
import { cpuSeconds } from './lib/proc';
import { REPO_ROOT, startNodeServer } from './lib/processes';

const QUICK = process.argv.includes('--quick');
const RECEIVERS = QUICK ? 100 : 500;
const SECONDS = QUICK ? 3 : 10;
const HUBS = encodeURIComponent(JSON.stringify([{ name: 'chathub' }]));

interface Result {
  readonly receivers: string;
  readonly broadcastsPerSecond: number;
  readonly deliveredPerSecond: number;
  readonly serverMicrosecondsPerDelivered: number;
}

/** A 2.x client over WebSockets, counting the client calls in each persistent response. */
async function connectLegacy(port: number, onDelivered: (count: number) => void): Promise<WebSocket> {
  const negotiated = (await (
    await fetch(`http://127.0.0.1:${port}/signalr/negotiate?clientProtocol=2.1&connectionData=${HUBS}`)
  ).json()) as {
    ConnectionToken: string;
  };
  const token = encodeURIComponent(negotiated.ConnectionToken);
  const socket = new WebSocket(
    `ws://127.0.0.1:${port}/signalr/connect?transport=webSockets&clientProtocol=2.1&connectionToken=${token}&connectionData=${HUBS}`,
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('message', () => resolve());
    socket.once('error', reject);
  });
  socket.on('message', (data: Buffer) => {
    const text = data.toString();
    if (text === '{}') return;
    const response = JSON.parse(text) as { M?: unknown[] };
    if (response.M !== undefined && response.M.length > 0) onDelivered(response.M.length);
  });
  await fetch(
    `http://127.0.0.1:${port}/signalr/start?transport=webSockets&clientProtocol=2.1&connectionToken=${token}&connectionData=${HUBS}`,
  );
  return socket;
}

async function main(): Promise<void> {
  const server = await startNodeServer('ours.js', ['--aspnet'], null);
  const target = { host: '127.0.0.1', port: server.port };
  let delivered = 0;
  let onOwnCopy: (() => void) | undefined;
  const sender = await connectClient('signalr-json', target, {
    onDelivered: () => undefined,
    onPayload: () => onOwnCopy?.(),
  });
  /** One broadcast, resolved when its copy comes back to the sender (everyone else got theirs queued before). */
  const broadcast = (payload: string) =>
    new Promise<void>((resolve) => {
      onOwnCopy = resolve;
      sender.broadcast(payload);
    });
  const results: Result[] = [];
  try {
    const phases: [string, () => Promise<() => void>][] = [
      [
        `${RECEIVERS} Core JSON clients (WebSockets)`,
        async () => {
          const clients: BenchClient[] = [];
          for (let i = 0; i < RECEIVERS; i++)
            clients.push(await connectClient('signalr-json', target, { onDelivered: (count) => (delivered += count) }));
          return () => clients.forEach((client) => client.close());
        },
      ],
      [
        `${RECEIVERS} ASP.NET SignalR 2.x clients (WebSockets)`,
        async () => {
          const sockets: WebSocket[] = [];
          for (let i = 0; i < RECEIVERS; i++)
            sockets.push(await connectLegacy(server.port, (count) => (delivered += count)));
          return () => sockets.forEach((socket) => socket.close());
        },
      ],
    ];
    for (const [name, connect] of phases) {
      const disconnect = await connect();
      let sequence = 0;
      for (const measured of [false, true]) {
        const seconds = measured ? SECONDS : 1;
        const deliveredBefore = delivered;
        const cpuBefore = cpuSeconds(server.pid);
        const started = Date.now();
        let sent = 0;
        while (Date.now() < started + seconds * 1000) {
          await broadcast(payloadFor(sequence++));
          sent++;
        }
        // The last broadcast's copies to the receivers may still be on their way.
        await new Promise((resolve) => setTimeout(resolve, 200));
        if (!measured) continue;
        const elapsed = (Date.now() - started) / 1000;
        const count = delivered - deliveredBefore;
        results.push({
          receivers: name,
          broadcastsPerSecond: sent / elapsed,
          deliveredPerSecond: count / elapsed,
          serverMicrosecondsPerDelivered: ((cpuSeconds(server.pid) - cpuBefore) * 1e6) / count,
        });
      }
      disconnect();
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } finally {
    sender.close();
    await server.stop();
  }
  const [core, legacy] = results;
  const lines = [
    `fan-out of one broadcast at a time to ${RECEIVERS} receivers, ${SECONDS} s per phase${QUICK ? ' (quick)' : ''}`,
    '',
    '| receivers | broadcasts/s | delivered/s | server µs per delivered | ratio to Core (µs) |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...results.map(
      (result) =>
        `| ${result.receivers} | ${result.broadcastsPerSecond.toFixed(0)} | ${result.deliveredPerSecond.toFixed(0)} | ${result.serverMicrosecondsPerDelivered.toFixed(2)} | ${(result.serverMicrosecondsPerDelivered / core.serverMicrosecondsPerDelivered).toFixed(2)} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const directory = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(directory, { recursive: true });
  writeFileSync(
    path.join(directory, 'aspnet-fanout.json'),
    `${JSON.stringify({ receivers: RECEIVERS, seconds: SECONDS, results, legacyToCore: legacy.serverMicrosecondsPerDelivered / core.serverMicrosecondsPerDelivered }, null, 2)}\n`,
  );
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
