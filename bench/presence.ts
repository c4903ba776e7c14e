/**
 * What presence costs and how it scales, on one real redis-server:
 *
 * 1. Connects with presence on vs off, side by side in alternating rounds on one server built in this process (the
 *    official client connecting over WebSockets; then again with each connection joining a group): connections per
 *    second, and per connect the Redis round trips (pipelines sent), commands and bytes Redis received (`INFO stats`).
 * 2. Listing 10,000 members of one group, paged, with 100,000 registered connections: the registrations written with
 *    the presence module's own writer (`RedisPresence.connected` / `joined`, the pipelines a server sends), not
 *    100,000 sockets; time per full listing, Redis memory per registered connection (`INFO memory`), and how long
 *    the script that removes a dead server's entries takes for a server of 100,000 connections.
 *
 *   npm run bench:presence -- [--quick]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { HttpTransportType, HubConnectionBuilder, LogLevel, type HubConnection } from '@microsoft/signalr';
import Fastify from 'fastify';
import Redis from 'ioredis';
import { fastifySignalR, Hub } from '../src/index';
import type { ManagedConnection } from '../src/lifetime/hub-lifetime-manager';
import { RedisBus } from '../src/redis/redis-bus';
import { resolveRedisTarget } from '../src/redis/redis-config';
import { RedisPresence } from '../src/redis/redis-presence';
import { REPO_ROOT, startRedis } from './lib/processes';

const QUICK = process.argv.includes('--quick');
const CONNECTS_PER_ROUND = QUICK ? 200 : 1000;
const ROUNDS = QUICK ? 2 : 4;
const CONCURRENCY = 20;
const REGISTERED = 100_000;
const GROUP_MEMBERS = 10_000;
const IN_FLIGHT = 64;

const silent = { error() {}, warn() {}, info() {}, debug() {} };

class BenchHub extends Hub {
  async join(room: string): Promise<void> {
    await this.groups.addToGroup(this.context.connectionId, room);
  }
}

/** Counts the pipelines (each one round trip) and commands the backplane's keyed storage sends. */
function countPipelines(): { pipelines: number; commands: number } {
  const counts = { pipelines: 0, commands: 0 };
  const original = RedisBus.prototype.pipeline;
  RedisBus.prototype.pipeline = function (this: RedisBus, commands) {
    counts.pipelines++;
    counts.commands += commands.length;
    return original.call(this, commands);
  };
  return counts;
}

async function redisInfo(admin: Redis, section: string, field: string): Promise<number> {
  const text = await admin.info(section);
  const match = new RegExp(`^${field}:(\\d+)`, 'm').exec(text);
  return Number(match?.[1] ?? 0);
}

interface ConnectResult {
  readonly presence: boolean;
  /** Whether each connection also joined a group (one more round trip with presence; none without). */
  readonly join: boolean;
  readonly connectsPerSecond: number;
  readonly pipelinesPerConnect: number;
  readonly commandsPerConnect: number;
  readonly redisBytesInPerConnect: number;
}

async function connectRound(
  redisUrl: string,
  admin: Redis,
  presence: boolean,
  join: boolean,
  counts: { pipelines: number; commands: number },
): Promise<ConnectResult> {
  const app = Fastify();
  await app.register(fastifySignalR, {
    hubs: [
      {
        path: '/bench',
        hub: BenchHub,
        name: 'Bench.PresenceHub',
        userIdProvider: (request) => (request.query as Record<string, string>).user,
      },
    ],
    redis: { url: redisUrl, presence },
  });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const before = { ...counts, bytes: await redisInfo(admin, 'stats', 'total_net_input_bytes') };
  const connections: HubConnection[] = [];
  const started = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < CONNECTS_PER_ROUND) {
        const index = next++;
        const connection = new HubConnectionBuilder()
          .withUrl(`${base}/bench?user=user${index % 100}`, {
            transport: HttpTransportType.WebSockets,
            skipNegotiation: true,
          })
          .configureLogging(LogLevel.None)
          .build();
        await connection.start();
        if (join) await connection.invoke('Join', `room${index % 10}`);
        connections.push(connection);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const bytes = (await redisInfo(admin, 'stats', 'total_net_input_bytes')) - before.bytes;
  const result = {
    presence,
    join,
    connectsPerSecond: CONNECTS_PER_ROUND / seconds,
    pipelinesPerConnect: (counts.pipelines - before.pipelines) / CONNECTS_PER_ROUND,
    commandsPerConnect: (counts.commands - before.commands) / CONNECTS_PER_ROUND,
    redisBytesInPerConnect: bytes / CONNECTS_PER_ROUND,
  };
  await Promise.all(connections.map((connection) => connection.stop()));
  await app.close();
  await admin.flushall();
  return result;
}

function fakeConnection(index: number): ManagedConnection {
  return {
    connectionId: `c${index.toString(36).padStart(8, '0')}-${'x'.repeat(13)}`,
    userIdentifier: `user${index % 50_000}`,
    protocol: 'json',
    transport: 'WebSockets',
    write() {},
    connectionAborted: new AbortController().signal,
  };
}

async function listingAtScale(redisUrl: string, admin: Redis): Promise<Record<string, number>> {
  await admin.flushall();
  const memoryBefore = await redisInfo(admin, 'memory', 'used_memory');
  const bus = new RedisBus({ target: resolveRedisTarget({ url: redisUrl }), log: silent });
  await bus.ready();
  const presence = new RedisPresence({
    bus,
    channelPrefix: '',
    hubName: 'Bench.PresenceHub',
    heartbeatIntervalMs: 60_000,
    log: silent,
  });
  await presence.start({
    serverName: 'bench-writer',
    localEntries: () => [],
    localUserConnections: () => [],
    joinLocally: async () => undefined,
    leaveLocally: async () => undefined,
  });
  const writeStarted = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < REGISTERED) {
        const index = next++;
        const connection = fakeConnection(index);
        await presence.connected(connection, Date.now());
        if (index % (REGISTERED / GROUP_MEMBERS) === 0) await presence.joined(connection, 'big');
        else await presence.joined(connection, `room${index % 1000}`);
      }
    }),
  );
  const writeSeconds = Number(process.hrtime.bigint() - writeStarted) / 1e9;
  const memoryAfter = await redisInfo(admin, 'memory', 'used_memory');
  const timings: Record<string, number> = {};
  for (const limit of [100, 1000]) {
    const started = process.hrtime.bigint();
    let cursor: string | undefined;
    let listed = 0;
    do {
      const page = await presence.group('big').connections({ limit, ...(cursor !== undefined && { cursor }) });
      listed += page.connections.length;
      cursor = page.cursor;
    } while (cursor !== undefined);
    if (listed !== GROUP_MEMBERS) throw new Error(`listed ${listed} of ${GROUP_MEMBERS}`);
    timings[`listMsPage${limit}`] = Number(process.hrtime.bigint() - started) / 1e6;
  }
  const countStarted = process.hrtime.bigint();
  const count = await presence.group('big').count();
  if (count !== GROUP_MEMBERS) throw new Error(`count ${count}`);
  timings.countMs = Number(process.hrtime.bigint() - countStarted) / 1e6;
  // A clean stop removes this server's entries with the script survivors run for a dead server: its time is how long
  // Redis is busy removing a server of 100,000 connections.
  const sweepStarted = process.hrtime.bigint();
  await presence.close();
  timings.removeServerOf100000Ms = Number(process.hrtime.bigint() - sweepStarted) / 1e6;
  if ((await admin.dbsize()) > 1) throw new Error(`${await admin.dbsize()} keys left after the removal`);
  await bus.close();
  return {
    registered: REGISTERED,
    groupMembers: GROUP_MEMBERS,
    registrationsPerSecond: REGISTERED / writeSeconds,
    redisBytesPerRegisteredConnection: (memoryAfter - memoryBefore) / REGISTERED,
    redisMemoryMiB: (memoryAfter - memoryBefore) / 1024 / 1024,
    ...timings,
  };
}

async function main(): Promise<void> {
  const redis = await startRedis(null);
  const admin = new Redis(redis.url);
  const counts = countPipelines();
  try {
    const rounds: ConnectResult[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const join of [false, true]) {
        for (const presence of round % 2 === 0 ? [false, true] : [true, false])
          rounds.push(await connectRound(redis.url, admin, presence, join, counts));
      }
    }
    const mean = (presence: boolean, join: boolean, key: keyof ConnectResult) => {
      const values = rounds
        .filter((round) => round.presence === presence && round.join === join)
        .map((round) => round[key] as number);
      return values.reduce((sum, value) => sum + value, 0) / values.length;
    };
    const summary = (presence: boolean, join: boolean) => ({
      connectsPerSecond: mean(presence, join, 'connectsPerSecond'),
      pipelinesPerConnect: mean(presence, join, 'pipelinesPerConnect'),
      commandsPerConnect: mean(presence, join, 'commandsPerConnect'),
      redisBytesInPerConnect: mean(presence, join, 'redisBytesInPerConnect'),
    });
    const connect = { off: summary(false, false), on: summary(true, false) };
    const connectAndJoin = { off: summary(false, true), on: summary(true, true) };
    const scale = await listingAtScale(redis.url, admin);
    const report = {
      quick: QUICK,
      connectsPerRound: CONNECTS_PER_ROUND,
      rounds: ROUNDS,
      connect: { ...connect, rateRatio: connect.on.connectsPerSecond / connect.off.connectsPerSecond },
      connectAndJoin: {
        ...connectAndJoin,
        rateRatio: connectAndJoin.on.connectsPerSecond / connectAndJoin.off.connectsPerSecond,
      },
      scale,
    };
    console.log(JSON.stringify(report, null, 2));
    const dir = path.join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `presence${QUICK ? '-quick' : ''}.json`), `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    admin.disconnect();
    await redis.stop();
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
