/**
 * One lifetime-manager conformance suite, run on the in-memory manager and on the Redis manager (the model is
 * ASP.NET Core's `ScaleoutHubLifetimeManagerTests`). A cluster is "two servers": for the in-memory manager both are
 * the same manager; for Redis they are two managers, each with its own pair of Redis connections, on the
 * redis-server this file starts. Connections are in-memory stand-ins that decode the exact bytes written to them.
 * Then Redis-only behaviour: subscription lifecycle, the ack timeout, starting while Redis is unreachable.
 */
import Redis from 'ioredis';
import type { HubProtocol } from '../../protocol/hub-protocol';
import { jsonHubProtocol } from '../../protocol/json-hub-protocol';
import { MessageType, type HubMessage, type InvocationMessage } from '../../protocol/messages';
import { messagePackHubProtocol } from '../../protocol/messagepack-hub-protocol';
import type { BackplaneLogger } from '../../src/lifetime/backplane-bus';
import type { HubLifetimeManager, ManagedConnection } from '../../src/lifetime/hub-lifetime-manager';
import { InMemoryLifetimeManager } from '../../src/lifetime/in-memory-lifetime-manager';
import { publishedProtocols } from '../../src/redis/redis-backplane';
import { RedisBus } from '../../src/redis/redis-bus';
import { resolveRedisTarget } from '../../src/redis/redis-config';
import { RedisLifetimeManager } from '../../src/redis/redis-lifetime-manager';
import type { SerializedHubMessage } from '../../src/lifetime/serialized-message';
import { eventually } from '../support/clients';
import { RedisServer, freePort } from '../support/redis-server';

const PROTOCOLS: Record<string, HubProtocol> = { json: jsonHubProtocol, messagepack: messagePackHubProtocol };

/** Collects log calls; nothing is printed. */
class TestLog implements BackplaneLogger {
  readonly lines: { level: string; message: string; data: object }[] = [];
  error(data: object, message: string): void {
    this.lines.push({ level: 'error', message, data });
  }
  warn(data: object, message: string): void {
    this.lines.push({ level: 'warn', message, data });
  }
  info(data: object, message: string): void {
    this.lines.push({ level: 'info', message, data });
  }
  debug(data: object, message: string): void {
    this.lines.push({ level: 'debug', message, data });
  }
}

let nextId = 0;

/** A connection stand-in: what it receives is decoded from the bytes of its own protocol. */
class TestConnection implements ManagedConnection {
  readonly connectionId: string;
  readonly received: InvocationMessage[] = [];
  private readonly aborted = new AbortController();

  constructor(
    readonly userIdentifier: string | undefined = undefined,
    readonly protocol: 'json' | 'messagepack' = 'json',
  ) {
    this.connectionId = `conn-${++nextId}-${protocol}`;
  }

  get connectionAborted(): AbortSignal {
    return this.aborted.signal;
  }

  write(message: SerializedHubMessage): void {
    const bytes = message.getBytes(PROTOCOLS[this.protocol]);
    PROTOCOLS[this.protocol].createReader({ maximumMessageSize: null }).push(bytes, (parsed: HubMessage) => {
      if (parsed.type === MessageType.Invocation) this.received.push(parsed);
    });
  }

  /** Arguments of the received invocations of `target`. */
  got(target: string): unknown[][] {
    return this.received.filter((message) => message.target === target).map((message) => message.arguments);
  }

  /** The latest server-to-client invocation that expects an answer. */
  lastInvocationId(): string | undefined {
    return [...this.received].reverse().find((message) => message.invocationId !== undefined)?.invocationId;
  }
}

/** Two servers of one hub. */
interface Cluster {
  readonly servers: readonly [HubLifetimeManager, HubLifetimeManager];
  /** Resolves once everything published before reached every server. */
  settle(): Promise<void>;
  connect(server: 0 | 1, user?: string, protocol?: 'json' | 'messagepack'): Promise<TestConnection>;
  disconnect(server: 0 | 1, connection: TestConnection): Promise<void>;
  close(): Promise<void>;
}

type ClusterFactory = () => Promise<Cluster>;

/** Builds the connect/disconnect helpers and the barrier of a cluster. */
function clusterOf(
  servers: readonly [HubLifetimeManager, HubLifetimeManager],
  close: () => Promise<void>,
  viaRedis: boolean,
): Cluster {
  // One sentinel connection per server sees every barrier. Redis delivers what a server published in order, so
  // once both sentinels have the barriers both servers sent, everything the test published earlier has arrived.
  const sentinels: TestConnection[] = [];
  let barriers = 0;
  return {
    servers,
    async settle() {
      if (!viaRedis) return;
      if (sentinels.length === 0) {
        for (const server of servers) {
          const sentinel = new TestConnection();
          await server.onConnected(sentinel);
          sentinels.push(sentinel);
        }
      }
      const n = ++barriers;
      await servers[0].sendAll('__barrier', [n]);
      await servers[1].sendAll('__barrier', [n]);
      await eventually(() => sentinels.every((sentinel) => sentinel.got('__barrier').length >= 2 * n), 'the barrier');
    },
    async connect(server, user, protocol = 'json') {
      const connection = new TestConnection(user, protocol);
      await servers[server].onConnected(connection);
      return connection;
    },
    async disconnect(server, connection) {
      await servers[server].onDisconnected(connection);
    },
    close,
  };
}

let redis: RedisServer | undefined;
let hubCounter = 0;
const openBuses: RedisBus[] = [];

async function connectedBus(log: BackplaneLogger, url = redis!.url): Promise<RedisBus> {
  const bus = new RedisBus({ target: resolveRedisTarget({ url }), log });
  openBuses.push(bus);
  await eventually(() => bus.health().connected, 'the bus to connect');
  return bus;
}

function redisManager(bus: RedisBus, hubName: string, log: BackplaneLogger, ackTimeoutMs = 30_000): RedisLifetimeManager {
  return new RedisLifetimeManager({
    bus,
    hubName,
    protocols: publishedProtocols([jsonHubProtocol, messagePackHubProtocol]),
    ackTimeoutMs,
    log,
  });
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
      return clusterOf([a, b], async () => {
        await Promise.all([a.close(), b.close()]);
        await Promise.all([busA.close(), busB.close()]);
      }, true);
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

describe.each(factories)('lifetime manager conformance: %s', (_name, createCluster) => {
  let cluster: Cluster;
  beforeEach(async () => {
    cluster = await createCluster();
  });
  afterEach(() => cluster.close());

  test('all: every connection on every server, once, whichever server sends', async () => {
    const a = await cluster.connect(0);
    const b = await cluster.connect(1, undefined, 'messagepack');
    await cluster.servers[0].sendAll('Hello', ['from 0']);
    await cluster.servers[1].sendAll('Hello', ['from 1']);
    await cluster.settle();
    expect(a.got('Hello')).toEqual([['from 0'], ['from 1']]);
    expect(b.got('Hello')).toEqual([['from 0'], ['from 1']]);
  });

  test('allExcept: excluded connections on both servers are skipped', async () => {
    const [a1, a2] = [await cluster.connect(0), await cluster.connect(0)];
    const [b1, b2] = [await cluster.connect(1), await cluster.connect(1)];
    await cluster.servers[0].sendAllExcept('Hello', ['x'], [a1.connectionId, b2.connectionId]);
    await cluster.settle();
    expect([a1, a2, b1, b2].map((c) => c.got('Hello').length)).toEqual([0, 1, 1, 0]);
  });

  test('connection: a connection on the other server or on this one; an unknown id reaches nobody', async () => {
    const a = await cluster.connect(0);
    const b = await cluster.connect(1, undefined, 'messagepack');
    await cluster.servers[0].sendConnection(b.connectionId, 'Direct', [1]);
    await cluster.servers[0].sendConnection(a.connectionId, 'Direct', [2]);
    await cluster.servers[1].sendConnection('nobody-has-this-id', 'Direct', [3]);
    await cluster.settle();
    expect(a.got('Direct')).toEqual([[2]]);
    expect(b.got('Direct')).toEqual([[1]]);
  });

  test('connections: several ids on both servers, unknown ones ignored', async () => {
    const [a1, a2, b1] = [await cluster.connect(0), await cluster.connect(0), await cluster.connect(1)];
    await cluster.servers[1].sendConnections([a1.connectionId, b1.connectionId, 'unknown'], 'Some', ['x']);
    await cluster.settle();
    expect([a1, a2, b1].map((c) => c.got('Some').length)).toEqual([1, 0, 1]);
  });

  test('group: a connection of the other server added and removed from this one; members on both servers', async () => {
    const a = await cluster.connect(0);
    const b = await cluster.connect(1, undefined, 'messagepack');
    const outsider = await cluster.connect(1);
    await cluster.servers[0].addToGroup(b.connectionId, 'room');
    await cluster.servers[0].addToGroup(a.connectionId, 'room');
    await cluster.servers[0].sendGroup('room', 'Room', ['one']);
    await cluster.servers[1].sendGroup('room', 'Room', ['two']);
    await cluster.settle();
    expect(a.got('Room')).toEqual([['one'], ['two']]);
    expect(b.got('Room')).toEqual([['one'], ['two']]);
    expect(outsider.got('Room')).toEqual([]);

    await cluster.servers[0].removeFromGroup(b.connectionId, 'room');
    await cluster.servers[1].sendGroup('room', 'Room', ['three']);
    await cluster.settle();
    expect(a.got('Room')).toEqual([['one'], ['two'], ['three']]);
    expect(b.got('Room')).toEqual([['one'], ['two']]);
  });

  test('group: adding a member twice delivers once; group names are case-sensitive', async () => {
    const b = await cluster.connect(1);
    await cluster.servers[0].addToGroup(b.connectionId, 'Team');
    await cluster.servers[0].addToGroup(b.connectionId, 'Team');
    await cluster.servers[0].sendGroup('Team', 'Team', ['upper']);
    await cluster.servers[0].sendGroup('team', 'Team', ['lower']);
    await cluster.settle();
    expect(b.got('Team')).toEqual([['upper']]);
  });

  test('groups: a member of two groups gets the message once per group; empty and unknown names are skipped', async () => {
    const a = await cluster.connect(0);
    const b = await cluster.connect(1);
    await cluster.servers[1].addToGroup(a.connectionId, 'g1');
    await cluster.servers[1].addToGroup(a.connectionId, 'g2');
    await cluster.servers[1].addToGroup(b.connectionId, 'g2');
    await cluster.servers[0].sendGroups(['g1', 'g2', '', 'nobody'], 'Groups', ['x']);
    await cluster.settle();
    expect(a.got('Groups')).toEqual([['x'], ['x']]);
    expect(b.got('Groups')).toEqual([['x']]);
  });

  test('groupExcept: excluded members on both servers are skipped', async () => {
    const [a1, a2, b1] = [await cluster.connect(0), await cluster.connect(0), await cluster.connect(1)];
    for (const c of [a1, a2]) await cluster.servers[0].addToGroup(c.connectionId, 'g');
    await cluster.servers[1].addToGroup(b1.connectionId, 'g');
    await cluster.servers[1].sendGroupExcept('g', 'Except', ['x'], [a2.connectionId, b1.connectionId]);
    await cluster.settle();
    expect([a1, a2, b1].map((c) => c.got('Except').length)).toEqual([1, 0, 0]);
  });

  test('user and users: every connection of a user, on both servers', async () => {
    const alice1 = await cluster.connect(0, 'alice');
    const alice2 = await cluster.connect(1, 'alice', 'messagepack');
    const bob = await cluster.connect(1, 'bob');
    const carol = await cluster.connect(0, 'carol');
    await cluster.servers[1].sendUser('alice', 'ToUser', ['a']);
    await cluster.servers[0].sendUsers(['bob', 'carol', '', 'nobody'], 'ToUsers', ['b']);
    await cluster.settle();
    expect([alice1, alice2, bob, carol].map((c) => c.got('ToUser').length)).toEqual([1, 1, 0, 0]);
    expect([alice1, alice2, bob, carol].map((c) => c.got('ToUsers').length)).toEqual([0, 0, 1, 1]);
  });

  test('a disconnected connection gets nothing and leaves its groups and its user', async () => {
    const a = await cluster.connect(0, 'dave');
    const b = await cluster.connect(1, 'dave');
    await cluster.servers[0].addToGroup(b.connectionId, 'g');
    await cluster.disconnect(1, b);
    await cluster.servers[0].sendAll('After', []);
    await cluster.servers[0].sendGroup('g', 'After', []);
    await cluster.servers[0].sendUser('dave', 'After', []);
    await cluster.servers[0].sendConnection(b.connectionId, 'After', []);
    await cluster.settle();
    expect(b.got('After')).toEqual([]);
    expect(a.got('After')).toHaveLength(2);
  });

  test('client results across servers: a value, an error, a client that leaves, an unknown connection', async () => {
    const b = await cluster.connect(1, undefined, 'messagepack');
    const answer = async (value: Record<string, unknown>): Promise<void> => {
      await eventually(() => b.lastInvocationId() !== undefined, 'the invocation to arrive');
      const invocationId = b.lastInvocationId()!;
      b.received.length = 0;
      expect(cluster.servers[1].setConnectionResult(b.connectionId, { type: MessageType.Completion, invocationId, ...value })).toBe(true);
    };

    const value = cluster.servers[0].invokeConnection(b.connectionId, 'GetAnswer', ['q1']);
    await answer({ result: { answer: 42 } });
    await expect(value).resolves.toEqual({ answer: 42 });

    const failure = cluster.servers[0].invokeConnection(b.connectionId, 'GetAnswer', ['q2']);
    await answer({ error: 'no idea' });
    await expect(failure).rejects.toThrow('no idea');

    const left = cluster.servers[0].invokeConnection(b.connectionId, 'GetAnswer', ['q3']);
    await eventually(() => b.lastInvocationId() !== undefined, 'the invocation to arrive');
    await cluster.disconnect(1, b);
    await expect(left).rejects.toThrow(/disconnected/);

    await expect(cluster.servers[0].invokeConnection('no-such-connection', 'GetAnswer', [])).rejects.toThrow(
      "Connection 'no-such-connection' does not exist.",
    );
  });

  test('a client answering for another connection\'s invocation is refused', async () => {
    const b1 = await cluster.connect(1);
    const b2 = await cluster.connect(1);
    const pending = cluster.servers[0].invokeConnection(b1.connectionId, 'GetAnswer', []);
    await eventually(() => b1.lastInvocationId() !== undefined, 'the invocation to arrive');
    const completion = { type: MessageType.Completion, invocationId: b1.lastInvocationId()!, result: 1 } as const;
    expect(() => cluster.servers[1].setConnectionResult(b2.connectionId, completion)).toThrow(/is not valid for invocation ID/);
    expect(cluster.servers[1].setConnectionResult(b1.connectionId, completion)).toBe(true);
    await expect(pending).resolves.toBe(1);
  });
});

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
      [`Lifecycle.Hub:all`, `Lifecycle.Hub:internal:ack:${me}`, `Lifecycle.Hub:internal:groups`, `Lifecycle.Hub:internal:return:${me}`].sort(),
    );
    const c1 = new TestConnection('erin');
    const c2 = new TestConnection('erin');
    await manager.onConnected(c1);
    await manager.onConnected(c2);
    await manager.addToGroup(c1.connectionId, 'room:with:colons');
    await manager.addToGroup(c2.connectionId, 'room:with:colons');
    expect(await channels('Lifecycle.Hub:[cgu]*')).toEqual(
      [`Lifecycle.Hub:connection:${c1.connectionId}`, `Lifecycle.Hub:connection:${c2.connectionId}`,
        'Lifecycle.Hub:group:room:with:colons', 'Lifecycle.Hub:user:erin'].sort(),
    );
    await manager.removeFromGroup(c1.connectionId, 'room:with:colons');
    await manager.onDisconnected(c1);
    expect(await channels('Lifecycle.Hub:[cgu]*')).toEqual(
      [`Lifecycle.Hub:connection:${c2.connectionId}`, 'Lifecycle.Hub:group:room:with:colons', 'Lifecycle.Hub:user:erin'].sort(),
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
      await eventually(() => alice.got('Online').length === 3 && bob.got('Online').length === 1, 'delivery across servers');
      expect(log.lines.some((line) => line.level === 'warn' && /connected again/.test(line.message))).toBe(true);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await Promise.all([busA.close(), busB.close()]);
      await late?.stop();
    }
  });
});
