/**
 * Sharded pub/sub (`redis.shardedPubSub`, `SIGNALR_REDIS_SHARDED=true`; docs/protocol.md §3.11) on a suite-started
 * Redis Cluster of three masters with a replica each: two server processes attached through different seed nodes
 * exchange every message kind with the official clients, every channel subscribed with SSUBSCRIBE on the master that
 * owns its slot and none with classic SUBSCRIBE; subscriptions follow group membership through thousands of joins
 * and leaves (the cluster's shard channels end at the baseline, the bus's listeners on its ioredis objects do not
 * grow, and a message sent right after a join arrives); a single Redis is refused at startup with its error code;
 * a classic subscriber on the same channels — a plain SUBSCRIBE, and the ASP.NET Core reference server — is warned of.
 */
import Redis from 'ioredis';
import { exchangeEveryKind, connectClient } from '../support/backplane-exchange';
import { ClientPool } from '../support/clients';
import { classicSubscribers, keySlot, ownerOf, shardChannels, shardSubscribers } from '../support/cluster-admin';
import { RedisClusterTopology, Scratch, until } from '../support/redis-topology';
import { RedisServer } from '../support/redis-server';
import { ServerProcess, startConnected, stopAll } from '../support/server-process';
import { RedisBus } from '../../src/redis/redis-bus';
import { resolveRedisTarget } from '../../src/redis/redis-config';
import { clusterSlot } from '../../src/redis/cluster-slot';
import { createEmitter } from '../../src/emitter';
import { describeWithDotnet, startReferenceServer, type ReferenceServer } from '../support/dotnet-reference';

const HUB = 'Sharded.ChatHub';
const silent = { error() {}, warn() {}, info() {}, debug() {} };

const scratch = new Scratch();
const cluster = new RedisClusterTopology(scratch);
let a: ServerProcess | undefined;
let b: ServerProcess | undefined;

beforeAll(async () => {
  await cluster.start(3, 1);
  const [n0, n1, n2] = cluster.nodes;
  const seeds: Record<string, string> = {
    A: `127.0.0.1:${n0.port}`,
    B: `127.0.0.1:${n1.port},127.0.0.1:${n2.port}`,
  };
  [a, b] = await startConnected(
    ['A', 'B'],
    (label) => ({
      REDIS_URL: `${seeds[label]},abortConnect=False,name=sharded-${label}`,
      SIGNALR_REDIS_SHARDED: 'true',
      CHAT_HUB_NAME: HUB,
      METRICS_ENABLED: 'true',
    }),
    20_000,
  );
}, 90_000);

afterAll(async () => {
  await stopAll(a, b);
  await cluster.stop();
  scratch.remove();
}, 30_000);

/** Every sharded channel of the cluster with its subscribers, master by master. */
async function allShardChannels(): Promise<string[]> {
  const lists = await Promise.all(cluster.nodes.filter((n) => n.pid !== undefined).map((n) => shardChannels(n.port)));
  return lists.flat().sort();
}

test('the slot of a channel is the one Redis computes, hash tags included', async () => {
  const port = cluster.nodes[0].port;
  for (const name of [`${HUB}:all`, `${HUB}:group:{tagged}room`, 'foo{}{bar}', 'a{b}c', `${HUB}:user:ünï`, 'x{']) {
    expect({ name, slot: clusterSlot(name) }).toEqual({ name, slot: await keySlot(port, name) });
  }
});

test('every message kind crosses between servers attached through different seed nodes, all of it sharded', async () => {
  await exchangeEveryKind(a!, b!, 'sharded');
  const port = cluster.nodes[0].port;
  const all = `${HUB}:all`;
  const owner = await ownerOf(port, await keySlot(port, all));
  // Both servers subscribe the hub's all channel on the master that owns its slot, and nowhere with classic SUBSCRIBE.
  expect(await shardSubscribers(owner.port, all)).toBe(2);
  const classic = await Promise.all(cluster.nodes.map((node) => classicSubscribers(node.port, all)));
  expect(classic.reduce((sum, count) => sum + count, 0)).toBe(0);
  for (const server of [a!, b!]) {
    const health = await server.backplane();
    expect(health).toMatchObject({ state: 'connected', shardedPubSub: true });
    expect(health.shardedSubscriptions).toBe(health.subscriptions);
    expect(health.shardConnections).toBeGreaterThanOrEqual(1);
    expect(health.shardConnections).toBeLessThanOrEqual(3);
    const metrics = await server.metrics();
    expect(metrics.sum('signalr_backplane_shard_connections')).toBe(health.shardConnections);
    expect(metrics.sum('signalr_backplane_sharded_subscriptions')).toBe(health.subscriptions);
  }
}, 60_000);

test('an emitter with shardedPubSub reaches the servers: a send to all, and a group add acknowledged by the owner', async () => {
  const poolA = new ClientPool(() => a!.hubUrl);
  const emitter = createEmitter({
    redis: `127.0.0.1:${cluster.nodes[1].port},abortConnect=False`,
    hub: HUB,
    shardedPubSub: true,
    logger: silent,
  });
  try {
    const client = await connectClient(poolA, 'emitted-to', false);
    const inbox = client.inbox('ReceiveMessage');
    await emitter.clients.all.send('ReceiveMessage', 'emitter', 'to all');
    await inbox.waitFor(1, 10_000);
    // A group command, acked by server A on the emitter's sharded ack channel, then a send to that group.
    await emitter.groups.addToGroup(client.connection.connectionId!, 'emitted-room');
    await emitter.clients.group('emitted-room').send('ReceiveMessage', 'emitter', 'to the group');
    await inbox.waitFor(2, 10_000);
    expect(inbox.items).toEqual([
      ['emitter', 'to all'],
      ['emitter', 'to the group'],
    ]);
  } finally {
    await poolA.stopAll();
    await emitter.close();
  }
}, 60_000);

test('subscriptions follow group membership through 2,000 joins and leaves; a send right after a join arrives', async () => {
  const poolA = new ClientPool(() => a!.hubUrl);
  const poolB = new ClientPool(() => b!.hubUrl);
  try {
    const joiner = await connectClient(poolA, 'joiner', false);
    const sender = await connectClient(poolB, 'sender', true);
    const baseline = await allShardChannels();
    const before = (await a!.backplane()).subscriptions;
    const CYCLES = 2000;
    const startedAt = Date.now();
    let delivered = 0;
    for (let i = 0; i < CYCLES; i++) {
      const room = `cycle-${i}`;
      await joiner.connection.invoke('JoinRoom', room);
      // Every 100th cycle: a message from the other server right after the join must arrive (the join returns once
      // its channel is subscribed on the node that owns it).
      if (i % 100 === 0) {
        const inbox = joiner.inbox('ReceiveMessage');
        const count = inbox.items.length;
        await sender.connection.invoke('SendToRoom', room, 'sender', `to ${room}`);
        await inbox.waitFor(count + 1, 5000);
        expect(inbox.items[count]).toEqual(['sender', `to ${room}`]);
        // Subscribed, with SSUBSCRIBE, on the master that owns the group channel's slot (and only by server A).
        const channel = `${HUB}:group:${room}`;
        const port = cluster.nodes[0].port;
        expect(await shardSubscribers((await ownerOf(port, await keySlot(port, channel))).port, channel)).toBe(1);
        delivered++;
      }
      await joiner.connection.invoke('LeaveRoom', room);
    }
    const elapsed = Date.now() - startedAt;
    await until(async () => (await a!.backplane()).subscriptions === before, 'the subscriptions back at the baseline');
    await until(
      async () => JSON.stringify(await allShardChannels()) === JSON.stringify(baseline),
      "the cluster's shard channels back at the baseline",
    );
    const health = await a!.backplane();
    expect(health.shardedSubscriptions).toBe(before);
    expect(health.shardConnections).toBeLessThanOrEqual(3);
    console.log(
      `${CYCLES} join/leave cycles on server A in ${elapsed} ms; ${delivered} sends right after a join all arrived; ` +
        `the cluster's shard channels back at the baseline (${baseline.length}), A wants ${health.subscriptions} ` +
        `channels on ${health.shardConnections} shard connection(s)`,
    );
  } finally {
    await Promise.all([poolA.stopAll(), poolB.stopAll()]);
  }
}, 90_000);

/** Listeners on the bus's ioredis objects: the cluster client and each shard connection. */
function listenerCounts(bus: RedisBus): { cluster: number; shards: number[]; wanted: number } {
  const inside = bus as unknown as {
    pub: Redis;
    shards: { nodes: Map<string, { redis: Redis }>; channels: Map<string, unknown> };
  };
  const count = (emitter: Redis) => emitter.eventNames().reduce((sum, name) => sum + emitter.listenerCount(name), 0);
  return {
    cluster: count(inside.pub),
    shards: [...inside.shards.nodes.values()].map((node) => count(node.redis)).sort(),
    wanted: inside.shards.channels.size,
  };
}

test('3,000 subscribe/unsubscribe cycles on one bus: no listener added to its ioredis objects, nothing left subscribed', async () => {
  const target = resolveRedisTarget({ url: `redis://127.0.0.1:${cluster.nodes[0].port}` });
  const bus = new RedisBus({ target, log: silent, shardedPubSub: true });
  const other = new RedisBus({ target, log: silent, shardedPubSub: true });
  try {
    await Promise.all([bus.ready(), other.ready()]);
    await until(async () => bus.health().connected && other.health().connected, 'both buses connected');
    // A channel on every master first, so each shard connection exists before the baseline is taken.
    const keep: string[] = [];
    for (let i = 0; keep.length < 30; i++) keep.push(`bus-keep-${i}`);
    await Promise.all(keep.map((channel) => bus.subscribe(channel, () => undefined)));
    const baseline = listenerCounts(bus);
    const channelsBefore = await allShardChannels();
    const received: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const channel = `bus-cycle-${i}`;
      await bus.subscribe(channel, (payload) => received.push(payload.toString()));
      // Every 50th: published by another bus right after the subscription resolved, it must arrive.
      if (i % 50 === 0) {
        await other.publish(channel, Buffer.from(channel));
        await until(async () => received.includes(channel), `'${channel}' to arrive`, 5000);
      }
      await bus.unsubscribe(channel);
    }
    await until(
      async () => JSON.stringify(await allShardChannels()) === JSON.stringify(channelsBefore),
      'the shard channels back at the baseline',
    );
    expect(listenerCounts(bus)).toEqual(baseline);
    expect(received).toHaveLength(60);
    expect(bus.health()).toMatchObject({ subscriptions: keep.length, shardedSubscriptions: keep.length });
  } finally {
    await Promise.all([bus.close(), other.close()]);
  }
}, 90_000);

test('a single Redis is refused at startup with SIGNALR_ERR_REDIS_SHARDED_NEEDS_CLUSTER', async () => {
  const single = await RedisServer.start();
  try {
    const { code, output } = await ServerProcess.startupFailure('single', {
      REDIS_URL: `redis://127.0.0.1:${single.port}`,
      SIGNALR_REDIS_SHARDED: 'true',
    });
    expect(code).not.toBe(0);
    expect(output).toContain('SIGNALR_ERR_REDIS_SHARDED_NEEDS_CLUSTER');
    expect(output).toContain('needs a Redis Cluster');
  } finally {
    await single.stop();
  }
}, 30_000);

test("a classic subscriber on the hub's channels (a .NET server, or a server without the option) is warned of", async () => {
  const node = cluster.nodes[2];
  const classic = new Redis({ host: '127.0.0.1', port: node.port, lazyConnect: true });
  classic.on('error', () => undefined);
  let c: ServerProcess | undefined;
  try {
    // Nobody warned while no classic subscriber was there.
    for (const server of [a!, b!]) {
      expect(server.logLines().some((line) => line.event === 'signalr.backplane.classic_subscribers')).toBe(false);
    }
    await classic.connect();
    await classic.subscribe(`${HUB}:all`);
    c = await ServerProcess.start('C', {
      REDIS_URL: `127.0.0.1:${cluster.nodes[1].port},abortConnect=False,name=sharded-C`,
      SIGNALR_REDIS_SHARDED: 'true',
      CHAT_HUB_NAME: HUB,
    });
    await c.waitForBackplane('connected', 20_000);
    await until(
      async () => c!.logLines().some((line) => line.event === 'signalr.backplane.classic_subscribers'),
      'the classic subscriber warning',
      10_000,
    );
    const warning = c.logLines().find((line) => line.event === 'signalr.backplane.classic_subscribers')!;
    expect(warning).toMatchObject({ channel: `${HUB}:all`, subscribers: 1 });
  } finally {
    await stopAll(c);
    classic.disconnect();
  }
}, 60_000);

describeWithDotnet('sharded pub/sub beside ASP.NET Core', () => {
  let dotnet: ReferenceServer | undefined;
  let d: ServerProcess | undefined;

  afterAll(async () => {
    await stopAll(d);
    await dotnet?.stop();
  }, 30_000);

  test('a sharded server started on a cluster where an ASP.NET Core server serves the same hub warns of it', async () => {
    const [n0, n1, n2] = cluster.nodes;
    dotnet = await startReferenceServer({
      MESSAGEPACK: 'true',
      REDIS: `127.0.0.1:${n0.port},127.0.0.1:${n1.port},127.0.0.1:${n2.port},abortConnect=false`,
    });
    // StackExchange.Redis subscribes its classic channels (on some node of the cluster).
    await until(
      async () => {
        const counts = await Promise.all(cluster.nodes.map((n) => classicSubscribers(n.port, 'WebAPI.ChatHub:all')));
        return counts.reduce((sum, count) => sum + count, 0) === 1;
      },
      'the .NET server to subscribe its all channel',
      60_000,
    );
    d = await ServerProcess.start('D', {
      REDIS_URL: `127.0.0.1:${n2.port},abortConnect=False,name=sharded-D`,
      SIGNALR_REDIS_SHARDED: 'true',
      CHAT_HUB_NAME: 'WebAPI.ChatHub',
    });
    await d.waitForBackplane('connected', 20_000);
    await until(
      async () => d!.logLines().some((line) => line.event === 'signalr.backplane.classic_subscribers'),
      'the warning of the .NET server',
      10_000,
    );
    expect(d.logLines().find((line) => line.event === 'signalr.backplane.classic_subscribers')).toMatchObject({
      channel: 'WebAPI.ChatHub:all',
      subscribers: 1,
    });
  }, 120_000);
});
