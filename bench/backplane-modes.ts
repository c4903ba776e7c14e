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
 * drift of the machine does not favour one. A last cell prices the publish queue: server CPU per broadcast queued
 * while Redis is stopped and replayed once it is back, against the same broadcasts published directly.
 * Nothing here asserts a time.
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

/** Broadcasts per batch of the publish-queue cell. */
const QUEUE_BATCH = QUICK ? 3000 : 10_000;

/** What one batch of the publish-queue cell cost: CPU seconds per server, from its first send to its last arrival. */
interface Batch {
  readonly queued: boolean;
  readonly senderMicrosecondsPerBroadcast: number;
  readonly serversMicrosecondsPerBroadcast: number;
}

/**
 * The publish queue's cost per message (pub/sub mode): the same batch of broadcasts sent with Redis up (each
 * published at once) and with Redis stopped (each kept in the sender's queue, then replayed once Redis is started
 * again on the same port), on the same two servers, alternating. CPU is counted from the first send until every
 * far receiver has every broadcast, so the queued figure includes the reconnection and the replay.
 */
async function queueCell(): Promise<Batch[]> {
  let redis = await startRedis(null);
  const port = redis.port;
  const servers = [
    await startNodeServer('ours.js', ['--redis', redis.url], null),
    await startNodeServer('ours.js', ['--redis', redis.url], null),
  ];
  const receivers: BenchClient[] = [];
  let delivered = 0;
  try {
    const far = { host: '127.0.0.1', port: servers[1].port };
    for (let i = 0; i < RECEIVERS; i++) {
      receivers.push(
        await connectClient(i % 2 === 0 ? 'signalr-json' : 'signalr-msgpack', far, {
          onDelivered: (count) => (delivered += count),
        }),
      );
    }
    let ownCopies = 0;
    let onOwnCopy: (() => void) | undefined;
    const sender = await connectClient(
      'signalr-json',
      { host: '127.0.0.1', port: servers[0].port },
      {
        onDelivered: (count) => {
          ownCopies += count;
          onOwnCopy?.();
        },
      },
    );
    receivers.push(sender);
    // Both servers listening before anything is measured.
    for (let number = 0; delivered < RECEIVERS; number++) {
      sender.broadcast(payloadFor(number));
      await sleep(50);
    }
    await sleep(500);
    let sequence = 1_000_000;
    const batches: Batch[] = [];
    for (let round = 0; round < ROUNDS + 1; round++) {
      for (const queued of [false, true]) {
        if (queued) {
          await redis.stop();
          // The servers see the connection closed at once on loopback; a moment for both to mark it down.
          await sleep(500);
        }
        const deliveredBefore = delivered;
        const cpuBefore = servers.map((server) => cpuSeconds(server.pid));
        // WINDOW in flight: a slot frees when the sender's own copy comes back (at once: local delivery does not
        // wait for Redis, queued or not).
        const copiesBefore = ownCopies;
        for (let sent = 0; sent < QUEUE_BATCH; sent++) {
          while (sent - (ownCopies - copiesBefore) >= WINDOW)
            await new Promise<void>((resolve) => (onOwnCopy = resolve));
          sender.broadcast(payloadFor(sequence++));
        }
        if (queued) redis = await startRedis(null, port);
        const deadline = Date.now() + 60_000;
        while (delivered < deliveredBefore + QUEUE_BATCH * RECEIVERS) {
          if (Date.now() > deadline)
            throw new Error(`only ${delivered - deliveredBefore} of ${QUEUE_BATCH * RECEIVERS} deliveries arrived`);
          await sleep(5);
        }
        const cpu = servers.map((server, i) => cpuSeconds(server.pid) - cpuBefore[i]);
        // The first round warms both paths up and is not counted.
        if (round > 0) {
          batches.push({
            queued,
            senderMicrosecondsPerBroadcast: (cpu[0] * 1e6) / QUEUE_BATCH,
            serversMicrosecondsPerBroadcast: ((cpu[0] + cpu[1]) * 1e6) / QUEUE_BATCH,
          });
        }
        await sleep(300);
      }
    }
    return batches;
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

  const batches = await queueCell();
  const perBroadcast = (queued: boolean, key: 'senderMicrosecondsPerBroadcast' | 'serversMicrosecondsPerBroadcast') =>
    median(batches.filter((batch) => batch.queued === queued).map((batch) => batch[key]));
  const queue = {
    direct: {
      sender: perBroadcast(false, 'senderMicrosecondsPerBroadcast'),
      servers: perBroadcast(false, 'serversMicrosecondsPerBroadcast'),
    },
    queued: {
      sender: perBroadcast(true, 'senderMicrosecondsPerBroadcast'),
      servers: perBroadcast(true, 'serversMicrosecondsPerBroadcast'),
    },
  };
  const queueTable = [
    '',
    `The publish queue (pub/sub mode): ${QUEUE_BATCH} broadcasts sent with Redis up, and the same with Redis stopped ` +
      `(queued on the sender's server, replayed once Redis is started again), ${RECEIVERS} receivers on the other server; ` +
      `CPU from the first send to the last arrival; median of ${ROUNDS} batch(es) each:`,
    '',
    "| publish | sender's server µs per broadcast | both servers µs per broadcast |",
    '| --- | --- | --- |',
    `| direct | ${queue.direct.sender.toFixed(0)} | ${queue.direct.servers.toFixed(0)} |`,
    `| queued + replayed | ${queue.queued.sender.toFixed(0)} | ${queue.queued.servers.toFixed(0)} |`,
    `| queued ÷ direct | ${ratio(queue.queued.sender, queue.direct.sender)} | ${ratio(queue.queued.servers, queue.direct.servers)} |`,
  ].join('\n');
  process.stdout.write(`${queueTable}\n`);
  const directory = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(directory, { recursive: true });
  writeFileSync(
    path.join(directory, `backplane-modes${QUICK ? '-quick' : ''}.json`),
    `${JSON.stringify({ date: new Date().toISOString(), quick: QUICK, receivers: RECEIVERS, window: WINDOW, seconds: SECONDS, runs, summary, queueBatch: QUEUE_BATCH, batches, queue }, null, 2)}\n`,
  );
}

void main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
    process.exit(1);
  },
);
