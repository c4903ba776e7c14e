/**
 * The lifetime-manager conformance table (the model is ASP.NET Core's `ScaleoutHubLifetimeManagerTests`): every
 * routing kind, groups, users, disconnection and client results across two servers of one hub. The same cases run
 * on the in-memory manager, on the Redis manager over a real redis-server (`test/backplane/lifetime-conformance.test.ts`)
 * and on the Redis manager over the in-memory bus (`test/unit/lifetime-conformance.test.ts`). Connections are
 * in-memory stand-ins that decode the exact bytes written to them.
 */
import type { HubProtocol } from '../../protocol/hub-protocol';
import { jsonHubProtocol } from '../../protocol/json-hub-protocol';
import { MessageType, type HubMessage, type InvocationMessage } from '../../protocol/messages';
import { messagePackHubProtocol } from '../../protocol/messagepack-hub-protocol';
import type { BackplaneBus, BackplaneLogger } from '../../src/lifetime/backplane-bus';
import type { HubLifetimeManager, ManagedConnection } from '../../src/lifetime/hub-lifetime-manager';
import type { SerializedHubMessage } from '../../src/lifetime/serialized-message';
import { publishedProtocols } from '../../src/redis/redis-backplane';
import { RedisLifetimeManager } from '../../src/redis/redis-lifetime-manager';
import { eventually } from './clients';

const PROTOCOLS: Record<string, HubProtocol> = { json: jsonHubProtocol, messagepack: messagePackHubProtocol };

/** Collects log calls; nothing is printed. */
export class TestLog implements BackplaneLogger {
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
export class TestConnection implements ManagedConnection {
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
export interface Cluster {
  readonly servers: readonly [HubLifetimeManager, HubLifetimeManager];
  /** Resolves once everything published before reached every server. */
  settle(): Promise<void>;
  connect(server: 0 | 1, user?: string, protocol?: 'json' | 'messagepack'): Promise<TestConnection>;
  disconnect(server: 0 | 1, connection: TestConnection): Promise<void>;
  close(): Promise<void>;
}

export type ClusterFactory = () => Promise<Cluster>;

/** Builds the connect/disconnect helpers and the barrier of a cluster. */
export function clusterOf(
  servers: readonly [HubLifetimeManager, HubLifetimeManager],
  close: () => Promise<void>,
  viaBus: boolean,
): Cluster {
  // One sentinel connection per server sees every barrier. The bus (Redis, or the in-memory broker) delivers what a
  // server published in order, so once both sentinels have the barriers both servers sent, everything the test
  // published earlier has arrived.
  const sentinels: TestConnection[] = [];
  let barriers = 0;
  return {
    servers,
    async settle() {
      if (!viaBus) return;
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

/** A Redis lifetime manager of `hubName` on `bus`, publishing in both protocols. */
export function redisManager(
  bus: BackplaneBus,
  hubName: string,
  log: BackplaneLogger,
  ackTimeoutMs = 30_000,
): RedisLifetimeManager {
  return new RedisLifetimeManager({
    bus,
    hubName,
    protocols: publishedProtocols([jsonHubProtocol, messagePackHubProtocol]),
    ackTimeoutMs,
    log,
  });
}

/** One conformance case: what two servers of a hub must do. */
export type ConformanceCase = readonly [name: string, run: (cluster: Cluster) => Promise<void>];

export const LIFETIME_CONFORMANCE_CASES: readonly ConformanceCase[] = [
  [
    'all: every connection on every server, once, whichever server sends',
    async (cluster) => {
      const a = await cluster.connect(0);
      const b = await cluster.connect(1, undefined, 'messagepack');
      await cluster.servers[0].sendAll('Hello', ['from 0']);
      await cluster.servers[1].sendAll('Hello', ['from 1']);
      await cluster.settle();
      expect(a.got('Hello')).toEqual([['from 0'], ['from 1']]);
      expect(b.got('Hello')).toEqual([['from 0'], ['from 1']]);
    },
  ],
  [
    'allExcept: excluded connections on both servers are skipped',
    async (cluster) => {
      const [a1, a2] = [await cluster.connect(0), await cluster.connect(0)];
      const [b1, b2] = [await cluster.connect(1), await cluster.connect(1)];
      await cluster.servers[0].sendAllExcept('Hello', ['x'], [a1.connectionId, b2.connectionId]);
      await cluster.settle();
      expect([a1, a2, b1, b2].map((c) => c.got('Hello').length)).toEqual([0, 1, 1, 0]);
    },
  ],
  [
    'connection: a connection on the other server or on this one; an unknown id reaches nobody',
    async (cluster) => {
      const a = await cluster.connect(0);
      const b = await cluster.connect(1, undefined, 'messagepack');
      await cluster.servers[0].sendConnection(b.connectionId, 'Direct', [1]);
      await cluster.servers[0].sendConnection(a.connectionId, 'Direct', [2]);
      await cluster.servers[1].sendConnection('nobody-has-this-id', 'Direct', [3]);
      await cluster.settle();
      expect(a.got('Direct')).toEqual([[2]]);
      expect(b.got('Direct')).toEqual([[1]]);
    },
  ],
  [
    'connections: several ids on both servers, unknown ones ignored',
    async (cluster) => {
      const [a1, a2, b1] = [await cluster.connect(0), await cluster.connect(0), await cluster.connect(1)];
      await cluster.servers[1].sendConnections([a1.connectionId, b1.connectionId, 'unknown'], 'Some', ['x']);
      await cluster.settle();
      expect([a1, a2, b1].map((c) => c.got('Some').length)).toEqual([1, 0, 1]);
    },
  ],
  [
    'group: a connection of the other server added and removed from this one; members on both servers',
    async (cluster) => {
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
    },
  ],
  [
    'group: adding a member twice delivers once; group names are case-sensitive',
    async (cluster) => {
      const b = await cluster.connect(1);
      await cluster.servers[0].addToGroup(b.connectionId, 'Team');
      await cluster.servers[0].addToGroup(b.connectionId, 'Team');
      await cluster.servers[0].sendGroup('Team', 'Team', ['upper']);
      await cluster.servers[0].sendGroup('team', 'Team', ['lower']);
      await cluster.settle();
      expect(b.got('Team')).toEqual([['upper']]);
    },
  ],
  [
    'groups: a member of two groups gets the message once per group; empty and unknown names are skipped',
    async (cluster) => {
      const a = await cluster.connect(0);
      const b = await cluster.connect(1);
      await cluster.servers[1].addToGroup(a.connectionId, 'g1');
      await cluster.servers[1].addToGroup(a.connectionId, 'g2');
      await cluster.servers[1].addToGroup(b.connectionId, 'g2');
      await cluster.servers[0].sendGroups(['g1', 'g2', '', 'nobody'], 'Groups', ['x']);
      await cluster.settle();
      expect(a.got('Groups')).toEqual([['x'], ['x']]);
      expect(b.got('Groups')).toEqual([['x']]);
    },
  ],
  [
    'groupExcept: excluded members on both servers are skipped',
    async (cluster) => {
      const [a1, a2, b1] = [await cluster.connect(0), await cluster.connect(0), await cluster.connect(1)];
      for (const c of [a1, a2]) await cluster.servers[0].addToGroup(c.connectionId, 'g');
      await cluster.servers[1].addToGroup(b1.connectionId, 'g');
      await cluster.servers[1].sendGroupExcept('g', 'Except', ['x'], [a2.connectionId, b1.connectionId]);
      await cluster.settle();
      expect([a1, a2, b1].map((c) => c.got('Except').length)).toEqual([1, 0, 0]);
    },
  ],
  [
    'user and users: every connection of a user, on both servers',
    async (cluster) => {
      const alice1 = await cluster.connect(0, 'alice');
      const alice2 = await cluster.connect(1, 'alice', 'messagepack');
      const bob = await cluster.connect(1, 'bob');
      const carol = await cluster.connect(0, 'carol');
      await cluster.servers[1].sendUser('alice', 'ToUser', ['a']);
      await cluster.servers[0].sendUsers(['bob', 'carol', '', 'nobody'], 'ToUsers', ['b']);
      await cluster.settle();
      expect([alice1, alice2, bob, carol].map((c) => c.got('ToUser').length)).toEqual([1, 1, 0, 0]);
      expect([alice1, alice2, bob, carol].map((c) => c.got('ToUsers').length)).toEqual([0, 0, 1, 1]);
    },
  ],
  [
    'a disconnected connection gets nothing and leaves its groups and its user',
    async (cluster) => {
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
    },
  ],
  [
    'client results across servers: a value, an error, a client that leaves, an unknown connection',
    async (cluster) => {
      const b = await cluster.connect(1, undefined, 'messagepack');
      const answer = async (value: Record<string, unknown>): Promise<void> => {
        await eventually(() => b.lastInvocationId() !== undefined, 'the invocation to arrive');
        const invocationId = b.lastInvocationId()!;
        b.received.length = 0;
        expect(
          cluster.servers[1].setConnectionResult(b.connectionId, {
            type: MessageType.Completion,
            invocationId,
            ...value,
          }),
        ).toBe(true);
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
    },
  ],
  [
    "a client answering for another connection's invocation is refused",
    async (cluster) => {
      const b1 = await cluster.connect(1);
      const b2 = await cluster.connect(1);
      const pending = cluster.servers[0].invokeConnection(b1.connectionId, 'GetAnswer', []);
      await eventually(() => b1.lastInvocationId() !== undefined, 'the invocation to arrive');
      const completion = { type: MessageType.Completion, invocationId: b1.lastInvocationId()!, result: 1 } as const;
      expect(() => cluster.servers[1].setConnectionResult(b2.connectionId, completion)).toThrow(
        /is not valid for invocation ID/,
      );
      expect(cluster.servers[1].setConnectionResult(b1.connectionId, completion)).toBe(true);
      await expect(pending).resolves.toBe(1);
    },
  ],
];

/** Runs every case of the table on each cluster kind, a fresh cluster per case. */
export function describeLifetimeConformance(factories: readonly (readonly [string, ClusterFactory])[]): void {
  describe.each(factories)('lifetime manager conformance: %s', (_name, createCluster) => {
    let cluster: Cluster;
    beforeEach(async () => {
      cluster = await createCluster();
    });
    afterEach(() => cluster.close());

    test.each(LIFETIME_CONFORMANCE_CASES)('%s', async (_case, run) => {
      await run(cluster);
    });
  });
}
