/**
 * The backplane's two layouts side by side: pub/sub (`redis.mode` `'pubsub'`, ASP.NET Core's) and Redis Streams
 * (`'streams'`), in one run on one machine. Each cell is one Redis and two of our servers; a sender on the first
 * server broadcasts, receivers on the second get every broadcast through Redis.
 *
 *   npm run bench:modes -- [--quick]
 *
 * Figures per mode: broadcasts per second with 16 in flight (a slot frees when the sender's own copy comes back),
 * delivered messages per second, both servers' and Redis's CPU per broadcast, and the latency from send to arrival at
 * a receiver on the other server at a fixed 200 broadcasts/s (p50, p99) — and each as a ratio of streams to pub/sub.
 * The modes alternate (pub/sub, streams, pub/sub, streams) and each figure is the median of its mode's runs, so a
 * drift of the machine does not favour one. Nothing here asserts a time.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { connectClient, payloadFor, sequenceOf, type BenchClient } from './lib/dialects';
import { cpuSeconds } from './lib/proc';
import { REPO_ROOT, startNodeServer, startRedis } from './lib/processes';
import { median, percentile } from './lib/stats';

const QUICK = process.argv.includes('--quick');
const RECEIVERS = QUICK ? 50 : 200;
const SECONDS = QUICK ? 3 : 8;
const WINDOW = 16;
/** The fixed rate of the latency measurement (broadcasts per second). */
const PACED_RATE = 200;
const MODES = ['pubsub', 'streams'] as const;
type Mode = (typeof MODES)[number];
const ROUNDS = QUICK ? 1 : 2;

interface Result {
  readonly mode: Mode;
  readonly broadcastsPerSecond: number;
  readonly deliveredPerSecond: number;
  readonly serverMicrosecondsPerBroadcast: number;
  readonly redisMicrosecondsPerBroadcast: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function cell(mode: Mode): Promise<Result> {
  const redis = await startRedis(null);
  const servers = [
    await startNodeServer('ours.js', ['--redis', redis.url, '--redis-mode', mode], null),
    await startNodeServer('ours.js', ['--redis', redis.url, '--redis-mode', mode], null),
  ];
  const receivers: BenchClient[] = [];
  let delivered = 0;
  try {
    const far = { host: '127.0.0.1', port: servers[1].port };
    const near = { host: '127.0.0.1', port: servers[0].port };
    for (let i = 0; i < RECEIVERS; i++) {
      receivers.push(
        await connectClient(i % 2 === 0 ? 'signalr-json' : 'signalr-msgpack', far, {
          onDelivered: (count) => (delivered += count),
        }),
      );
    }
    // The latency probe: one receiver on the far server that reads each payload's sequence number.
    const sentAt = new Map<number, number>();
    const latencies: number[] = [];
    const probe = await connectClient('signalr-json', far, {
      onDelivered: () => undefined,
      onPayload: (payload) => {
        const at = sentAt.get(sequenceOf(payload));
        if (at !== undefined) latencies.push(performance.now() - at);
      },
    });
    receivers.push(probe);
    let onOwnCopy: (() => void) | undefined;
    const sender = await connectClient('signalr-json', near, {
      onDelivered: () => undefined,
      onPayload: () => onOwnCopy?.(),
    });
    receivers.push(sender);
    const send = (payload: string) =>
      new Promise<void>((resolve) => {
        const previous = onOwnCopy;
        onOwnCopy = () => {
          onOwnCopy = previous;
          resolve();
        };
        sender.broadcast(payload);
      });
    // Every receiver gets a first broadcast before anything is measured (both servers listening).
    const ready = delivered;
    for (let number = 0; delivered < ready + RECEIVERS; number++) {
      await send(payloadFor(number));
      await sleep(50);
    }

    let sequence = 1_000_000;
    const cpu = () => servers.reduce((total, server) => total + cpuSeconds(server.pid), 0);
    // Saturated: a warm-up second, then the measured period.
    let measured: { sent: number; elapsed: number; delivered: number; cpu: number; redis: number } | undefined;
    for (const seconds of [1, SECONDS]) {
      let sent = 0;
      const deliveredBefore = delivered;
      const cpuBefore = cpu();
      const redisBefore = cpuSeconds(redis.pid);
      const started = Date.now();
      const deadline = started + seconds * 1000;
      await Promise.all(
        Array.from({ length: WINDOW }, async () => {
          while (Date.now() < deadline) {
            await send(payloadFor(sequence++));
            sent++;
          }
        }),
      );
      const elapsed = (Date.now() - started) / 1000;
      await sleep(300);
      measured = {
        sent,
        elapsed,
        delivered: delivered - deliveredBefore,
        cpu: cpu() - cpuBefore,
        redis: cpuSeconds(redis.pid) - redisBefore,
      };
    }
    // Paced: PACED_RATE broadcasts/s, one at a time on schedule, timed at the far probe.
    const started = performance.now();
    for (let number = 0; number < PACED_RATE * SECONDS; number++) {
      const due = started + (number * 1000) / PACED_RATE;
      if (due > performance.now()) await sleep(due - performance.now());
      const id = sequence++;
      sentAt.set(id, performance.now());
      void send(payloadFor(id));
    }
    await sleep(500);
    const sorted = Float64Array.from(latencies).sort();
    const m = measured!;
    return {
      mode,
      broadcastsPerSecond: m.sent / m.elapsed,
      deliveredPerSecond: m.delivered / m.elapsed,
      serverMicrosecondsPerBroadcast: (m.cpu * 1e6) / Math.max(m.sent, 1),
      redisMicrosecondsPerBroadcast: (m.redis * 1e6) / Math.max(m.sent, 1),
      latencyP50Ms: percentile(sorted, 0.5),
      latencyP99Ms: percentile(sorted, 0.99),
    };
  } finally {
    for (const receiver of receivers) receiver.close();
    for (const server of servers) await server.stop();
    await redis.stop();
  }
}

async function main(): Promise<void> {
  const runs: Result[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of MODES) {
      const result = await cell(mode);
      process.stderr.write(
        `${mode}: ${result.broadcastsPerSecond.toFixed(0)} broadcasts/s, p50 ${result.latencyP50Ms.toFixed(2)} ms\n`,
      );
      runs.push(result);
    }
  }
  const summary = MODES.map((mode) => {
    const ofMode = runs.filter((run) => run.mode === mode);
    const pick = (key: keyof Omit<Result, 'mode'>) => median(ofMode.map((run) => run[key]));
    return {
      mode,
      broadcastsPerSecond: pick('broadcastsPerSecond'),
      deliveredPerSecond: pick('deliveredPerSecond'),
      serverMicrosecondsPerBroadcast: pick('serverMicrosecondsPerBroadcast'),
      redisMicrosecondsPerBroadcast: pick('redisMicrosecondsPerBroadcast'),
      latencyP50Ms: pick('latencyP50Ms'),
      latencyP99Ms: pick('latencyP99Ms'),
    };
  });
  const [pubsub, streams] = summary;
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const row = (result: (typeof summary)[number]) =>
    `| ${result.mode} | ${result.broadcastsPerSecond.toFixed(0)} | ${result.deliveredPerSecond.toFixed(0)} | ` +
    `${result.serverMicrosecondsPerBroadcast.toFixed(0)} | ${result.redisMicrosecondsPerBroadcast.toFixed(1)} | ` +
    `${result.latencyP50Ms.toFixed(2)} | ${result.latencyP99Ms.toFixed(2)} |`;
  const table = [
    `Two servers on one Redis, ${RECEIVERS} receivers on the second (half JSON, half MessagePack), the sender on the first; ` +
      `${WINDOW} broadcasts in flight for ${SECONDS} s, latency at ${PACED_RATE}/s; median of ${ROUNDS} run(s) per mode${QUICK ? ' (quick mode)' : ''}:`,
    '',
    '| mode | broadcasts/s | delivered/s | servers µs per broadcast | Redis µs per broadcast | latency p50 ms | latency p99 ms |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    row(pubsub),
    row(streams),
    `| streams ÷ pub/sub | ${ratio(streams.broadcastsPerSecond, pubsub.broadcastsPerSecond)} | ${ratio(streams.deliveredPerSecond, pubsub.deliveredPerSecond)} | ` +
      `${ratio(streams.serverMicrosecondsPerBroadcast, pubsub.serverMicrosecondsPerBroadcast)} | ${ratio(streams.redisMicrosecondsPerBroadcast, pubsub.redisMicrosecondsPerBroadcast)} | ` +
      `${ratio(streams.latencyP50Ms, pubsub.latencyP50Ms)} | ${ratio(streams.latencyP99Ms, pubsub.latencyP99Ms)} |`,
  ].join('\n');
  process.stdout.write(`${table}\n`);
  const directory = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(directory, { recursive: true });
  writeFileSync(
    path.join(directory, `backplane-modes${QUICK ? '-quick' : ''}.json`),
    `${JSON.stringify({ date: new Date().toISOString(), quick: QUICK, receivers: RECEIVERS, window: WINDOW, seconds: SECONDS, runs, summary }, null, 2)}\n`,
  );
}

void main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
    process.exit(1);
  },
);
