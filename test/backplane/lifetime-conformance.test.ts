/**
 * The lifetime-manager conformance table (`test/support/lifetime-conformance.ts`), run on the in-memory manager and
 * on the Redis manager: two managers, each with its own pair of Redis connections, on the redis-server this file
 * starts. Then Redis-only behaviour: subscription lifecycle, the ack timeout, starting while Redis is unreachable.
 */
import Redis from 'ioredis';
import type { BackplaneLogger } from '../../src/lifetime/backplane-bus';
import { InMemoryLifetimeManager } from '../../src/lifetime/in-memory-lifetime-manager';
import { RedisBus } from '../../src/redis/redis-bus';
import { resolveRedisTarget } from '../../src/redis/redis-config';
import { eventually } from '../support/clients';
import {
  clusterOf,
  describeLifetimeConformance,
  redisManager,
  TestConnection,
  TestLog,
  type ClusterFactory,
} from '../support/lifetime-conformance';
import { RedisServer, freePort } from '../support/redis-server';

let redis: RedisServer | undefined;
let hubCounter = 0;
const openBuses: RedisBus[] = [];

async function connectedBus(log: BackplaneLogger, url = redis!.url): Promise<RedisBus> {
  const bus = new RedisBus({ target: resolveRedisTarget({ url }), log });
  openBuses.push(bus);
  await eventually(() => bus.health().connected, 'the bus to connect');
  return bus;
}

const factories: [string, ClusterFactory][] = [
  [
    'in-memory',
    async () => {
      const manager = new InMemoryLifetimeManager();
      return clusterOf([manager, manager], () => manager.close(), false);
    },
  ],
  [
    'redis',
    async () => {
      const hubName = `Conformance.Hub${++hubCounter}`;
      const log = new TestLog();
      const [busA, busB] = await Promise.all([connectedBus(log), connectedBus(log)]);
      const a = redisManager(busA, hubName, log);
      const b = redisManager(busB, hubName, log);
      await Promise.all([a.started, b.started]);
      return clusterOf(
        [a, b],
        async () => {
          await Promise.all([a.close(), b.close()]);
          await Promise.all([busA.close(), busB.close()]);
        },
        true,
      );
    },
  ],
];

beforeAll(async () => {
  redis = await RedisServer.start();
});

afterAll(async () => {
  await Promise.all(openBuses.map((bus) => bus.close()));
  await redis?.stop();
});

describeLifetimeConformance(factories);

// ---------------------------------------------------------------------------------------------------------------
// Redis only

describe('Redis manager', () => {
  let admin: Redis;
  beforeAll(() => {
    admin = new Redis(redis!.url);
  });
  afterAll(() => admin.disconnect());

  const channels = async (pattern: string): Promise<string[]> =>
    ((await admin.call('PUBSUB', 'CHANNELS', pattern)) as string[]).sort();

  test('channels: server channels at start, a connection and its user while connected, a group while it has a local member', async () => {
    const log = new TestLog();
    const bus = await connectedBus(log);
    const manager = redisManager(bus, 'Lifecycle.Hub', log);
    await manager.started;
    const me = manager.serverName;
    expect(await channels('Lifecycle.Hub:*')).toEqual(
      [
        `Lifecycle.Hub:all`,
        `Lifecycle.Hub:internal:ack:${me}`,
        `Lifecycle.Hub:internal:groups`,
        `Lifecycle.Hub:internal:return:${me}`,
      ].sort(),
    );
    const c1 = new TestConnection('erin');
    const c2 = new TestConnection('erin');
    await manager.onConnected(c1);
    await manager.onConnected(c2);
    await manager.addToGroup(c1.connectionId, 'room:with:colons');
    await manager.addToGroup(c2.connectionId, 'room:with:colons');
    expect(await channels('Lifecycle.Hub:[cgu]*')).toEqual(
      [
        `Lifecycle.Hub:connection:${c1.connectionId}`,
        `Lifecycle.Hub:connection:${c2.connectionId}`,
        'Lifecycle.Hub:group:room:with:colons',
        'Lifecycle.Hub:user:erin',
      ].sort(),
    );
    await manager.removeFromGroup(c1.connectionId, 'room:with:colons');
    await manager.onDisconnected(c1);
    expect(await channels('Lifecycle.Hub:[cgu]*')).toEqual(
      [
        `Lifecycle.Hub:connection:${c2.connectionId}`,
        'Lifecycle.Hub:group:room:with:colons',
        'Lifecycle.Hub:user:erin',
      ].sort(),
    );
    await manager.onDisconnected(c2);
    expect(await channels('Lifecycle.Hub:[cgu]*')).toEqual([]);
    await manager.close();
    expect(await channels('Lifecycle.Hub:*')).toEqual([]);
  });

  test('a group change for a connection no server owns fails when the ack timeout passes', async () => {
    const log = new TestLog();
    const manager = redisManager(await connectedBus(log), 'Ack.Hub', log, 300);
    await manager.started;
    const started = Date.now();
    await expect(manager.addToGroup('nobody-owns-this-id', 'r5')).rejects.toThrow('A task was canceled.');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(log.lines.some((line) => line.level === 'warn' && /no server acknowledged/.test(line.message))).toBe(true);
    await manager.close();
  });

  test('starting while Redis is unreachable: local clients are served, and the servers join up once Redis is there', async () => {
    const port = await freePort();
    let late: RedisServer | undefined;
    const log = new TestLog();
    const busA = new RedisBus({ target: resolveRedisTarget({ url: `redis://127.0.0.1:${port}` }), log });
    const busB = new RedisBus({ target: resolveRedisTarget({ url: `redis://127.0.0.1:${port}` }), log });
    openBuses.push(busA, busB);
    const a = redisManager(busA, 'Late.Hub', log);
    const b = redisManager(busB, 'Late.Hub', log);
    try {
      const alice = new TestConnection('alice');
      const bob = new TestConnection('bob');
      // Connecting, joining a group and sending neither wait for Redis nor fail.
      await a.onConnected(alice);
      await b.onConnected(bob);
      await a.addToGroup(alice.connectionId, 'g');
      await a.sendAll('Offline', ['to all']);
      await a.sendGroup('g', 'Offline', ['to g']);
      await a.sendUser('alice', 'Offline', ['to alice']);
      await a.sendConnection(alice.connectionId, 'Offline', ['to me']);
      expect(alice.got('Offline')).toEqual([['to all'], ['to g'], ['to alice'], ['to me']]);
      expect(bob.got('Offline')).toEqual([]);
      await eventually(() => busA.health().state === 'disconnected', 'the health flag to show the outage');
      // Three of the four needed Redis (a send to a connection of this server never does).
      expect(busA.health()).toMatchObject({ connected: false, unpublishedMessages: 3 });
      // Needs the other server: fails at once.
      await expect(a.addToGroup(bob.connectionId, 'g')).rejects.toThrow('The Redis backplane is not connected.');

      late = await RedisServer.start(port);
      await eventually(() => busA.health().connected && busB.health().connected, 'both buses to connect', 10_000);
      // Everything recorded while Redis was down is subscribed now.
      await a.addToGroup(bob.connectionId, 'g');
      await b.sendGroup('g', 'Online', ['to g']);
      await b.sendConnection(alice.connectionId, 'Online', ['to alice']);
      await b.sendUser('alice', 'Online', ['to user alice']);
      await eventually(
        () => alice.got('Online').length === 3 && bob.got('Online').length === 1,
        'delivery across servers',
      );
      expect(log.lines.some((line) => line.level === 'warn' && /connected again/.test(line.message))).toBe(true);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await Promise.all([busA.close(), busB.close()]);
      await late?.stop();
    }
  });
});
