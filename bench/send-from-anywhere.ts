/**
 * Sending from outside a hub: how many broadcasts per second reach every client, and what each costs the server,
 * when they come from the Redis emitter (`fastify-signalr/emitter`) or from the management REST API (a keep-alive
 * HTTP client), next to a hub method that broadcasts (a client invoking `SendMessage`) — one server on one Redis,
 * one run, the same receivers, the same window of sends in flight.
 *
 *   npm run bench:send -- [--quick]
 *
 * Figures per sender: broadcasts per second (each reaching every receiver), delivered messages per second, server
 * CPU per broadcast and per delivered message, and both as ratios to the hub-method broadcast. The server's CPU is
 * read from /proc (`lib/proc.ts`); the receivers, the emitter and the HTTP client run in this process.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import * as http from 'node:http';
import * as path from 'node:path';
import { createEmitter } from '../src/emitter';
import { connectClient, payloadFor, type BenchClient } from './lib/dialects';
import { cpuSeconds } from './lib/proc';
import { REPO_ROOT, startNodeServer, startRedis } from './lib/processes';

const QUICK = process.argv.includes('--quick');
const RECEIVERS = QUICK ? 100 : 500;
const SECONDS = QUICK ? 3 : 10;
const WINDOW = 16;
/** The fixed offered rate at which the senders' costs are compared (broadcasts per second). */
const PACED_RATE = 1000;
const KEY = 'bench-management-key';

interface Result {
  readonly sender: string;
  /** `paced`: PACED_RATE broadcasts/s offered; `saturated`: as fast as the window allows. */
  readonly load: 'paced' | 'saturated';
  readonly broadcastsPerSecond: number;
  readonly deliveredPerSecond: number;
  readonly serverMicrosecondsPerBroadcast: number;
  readonly serverMicrosecondsPerDelivered: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const redis = await startRedis(null);
  const server = await startNodeServer('ours.js', ['--redis', redis.url, '--management-key', KEY], null);
  const target = { host: '127.0.0.1', port: server.port };
  let delivered = 0;
  const receivers: BenchClient[] = [];
  const emitter = createEmitter({
    redis: redis.url,
    hub: 'ChatHub',
    logger: { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} },
  });
  try {
    for (let i = 0; i < RECEIVERS; i++) {
      receivers.push(
        await connectClient(i % 2 === 0 ? 'signalr-json' : 'signalr-msgpack', target, {
          onDelivered: (count) => (delivered += count),
        }),
      );
    }
    await emitter.ready();

    // The hub-method sender: its own copy of each broadcast coming back frees a place in the window.
    let onOwnCopy: (() => void) | undefined;
    const sender = await connectClient('signalr-json', target, {
      onDelivered: () => undefined,
      onPayload: () => onOwnCopy?.(),
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: WINDOW });
    const restPath = '/api/hubs/ChatHub/:send?api-version=2024-12-01';
    const audience = `http://127.0.0.1:${server.port}${restPath.split('?')[0]}`;
    const restBody = (payload: string) => JSON.stringify({ target: 'ReceiveMessage', arguments: ['bench', payload] });
    const token = (() => {
      const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ aud: audience, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
      return `${unsigned}.${createHmac('sha256', KEY).update(unsigned).digest('base64url')}`;
    })();
    const restSend = (payload: string) =>
      new Promise<void>((resolve, reject) => {
        const body = restBody(payload);
        const request = http.request(
          {
            agent,
            host: '127.0.0.1',
            port: server.port,
            path: restPath,
            method: 'POST',
            headers: {
              authorization: `Bearer ${token}`,
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
            },
          },
          (response) => {
            response.resume();
            response.on('end', () =>
              response.statusCode === 202 ? resolve() : reject(new Error(`REST send answered ${response.statusCode}`)),
            );
          },
        );
        request.on('error', reject);
        request.end(body);
      });

    const senders: [string, (payload: string) => Promise<void>][] = [
      [
        'hub method (client invokes SendMessage)',
        (payload) =>
          new Promise<void>((resolve) => {
            // One broadcast at a time per window slot: a slot frees when a copy comes back to the sender.
            const previous = onOwnCopy;
            onOwnCopy = () => {
              onOwnCopy = previous;
              resolve();
            };
            sender.broadcast(payload);
          }),
      ],
      ['emitter (fastify-signalr/emitter)', (payload) => emitter.clients.all.send('ReceiveMessage', 'bench', payload)],
      ['REST API (POST …/:send, keep-alive)', restSend],
    ];

    const results: Result[] = [];
    for (const load of ['paced', 'saturated'] as const) {
      for (const [name, send] of senders) {
        // Warm-up, then the measured period.
        for (const measured of [false, true]) {
          const seconds = measured ? SECONDS : 1;
          let sent = 0;
          let sequence = 0;
          const deliveredBefore = delivered;
          const cpuBefore = cpuSeconds(server.pid);
          const started = Date.now();
          const deadline = started + seconds * 1000;
          await Promise.all(
            Array.from({ length: WINDOW }, async () => {
              while (Date.now() < deadline) {
                const number = sequence++;
                if (load === 'paced') {
                  // The broadcast's slot in a steady schedule of PACED_RATE per second.
                  const due = started + (number * 1000) / PACED_RATE;
                  if (due >= deadline) break;
                  if (due > Date.now()) await sleep(due - Date.now());
                }
                await send(payloadFor(number));
                sent++;
              }
            }),
          );
          const elapsed = (Date.now() - started) / 1000;
          // Let the last broadcasts reach everyone before counting what arrived.
          await sleep(300);
          if (!measured) continue;
          const cpu = cpuSeconds(server.pid) - cpuBefore;
          const deliveredNow = delivered - deliveredBefore;
          results.push({
            sender: name,
            load,
            broadcastsPerSecond: sent / elapsed,
            deliveredPerSecond: deliveredNow / elapsed,
            serverMicrosecondsPerBroadcast: (cpu * 1e6) / Math.max(sent, 1),
            serverMicrosecondsPerDelivered: (cpu * 1e6) / Math.max(deliveredNow, 1),
          });
        }
      }
    }
    agent.destroy();
    sender.close();

    const row = (result: Result, base: Result) =>
      `| ${result.sender} | ${result.load === 'paced' ? `${PACED_RATE}/s offered` : 'as fast as it goes'} | ` +
      `${result.broadcastsPerSecond.toFixed(0)} | ${result.deliveredPerSecond.toFixed(0)} | ` +
      `${result.serverMicrosecondsPerBroadcast.toFixed(1)} | ${result.serverMicrosecondsPerDelivered.toFixed(2)} | ` +
      `${(result.broadcastsPerSecond / base.broadcastsPerSecond).toFixed(2)}× | ` +
      `${(result.serverMicrosecondsPerBroadcast / base.serverMicrosecondsPerBroadcast).toFixed(2)}× |`;
    const rows = (['paced', 'saturated'] as const).flatMap((load) => {
      const ofLoad = results.filter((result) => result.load === load);
      return ofLoad.map((result) => row(result, ofLoad[0]));
    });
    const table = [
      `${RECEIVERS} receivers (half JSON, half MessagePack), ${WINDOW} sends in flight, ${SECONDS} s per sender${QUICK ? ' (quick mode)' : ''}, one server on Redis:`,
      '',
      '| sender | load | broadcasts/s | delivered/s | server µs per broadcast | server µs per delivered | broadcasts/s vs hub method | server cost vs hub method |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      ...rows,
    ].join('\n');
    process.stdout.write(`${table}\n`);
    const directory = path.join(REPO_ROOT, 'bench', 'results');
    mkdirSync(directory, { recursive: true });
    writeFileSync(
      path.join(directory, `send-from-anywhere${QUICK ? '-quick' : ''}.json`),
      `${JSON.stringify({ date: new Date().toISOString(), quick: QUICK, receivers: RECEIVERS, window: WINDOW, seconds: SECONDS, results }, null, 2)}\n`,
    );
  } finally {
    for (const receiver of receivers) receiver.close();
    await emitter.close();
    await server.stop();
    await redis.stop();
  }
}

void main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
    process.exit(1);
  },
);
