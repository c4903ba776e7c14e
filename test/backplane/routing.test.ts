/**
 * Every routing kind across three server processes of ours on one redis-server, with real official clients (JSON
 * and MessagePack) on different servers: all, others, allExcept, client, clients, group (joined on one server, sent
 * from another), groups, groupExcept, othersInGroup, user (one user's connections on two servers), users, remote
 * group add/remove with its ack, the ack timeout for a connection nobody owns, and client results across servers
 * (a value, a client error, a client that leaves before answering). A raw subscriber watches what goes through Redis
 * and, at the end, reads every payload the servers published against the layouts of docs/protocol.md §3.3.
 */
import { HttpTransportType } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import Redis from 'ioredis';
import { decodeRedisAck, decodeRedisGroupCommand } from '../../protocol/redis';
import { decodeTree, type MsgTree } from '../protocol/helpers/msgpack-tree';
import { ClientPool, delay, eventually, type ConnectOptions, type TestClient } from '../support/clients';
import { RedisServer } from '../support/redis-server';
import { ServerProcess, stopAll } from '../support/server-process';

const HUB = 'Backplane.Tests.ChatHub';
/** Short, so the ack-timeout test stays quick. */
const ACK_TIMEOUT_MS = 1500;
/** Quiet time after which a message that has not arrived is taken as not sent. */
const SETTLE_MS = 200;

let redis: RedisServer | undefined;
let servers: ServerProcess[] = [];
let spy: Redis | undefined;
/** Everything published on the test's Redis, in order. */
const published: { channel: string; payload: Buffer }[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
  const env = { REDIS_URL: redis.url, CHAT_HUB_NAME: HUB, REDIS_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS) };
  // Started one by one so a failure leaves the others known to afterAll.
  const starting = ['A', 'B', 'C'].map((label) => ServerProcess.start(label, env));
  const results = await Promise.allSettled(starting);
  servers = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = results.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  await Promise.all(servers.map((server) => server.waitForBackplane('connected')));
  spy = new Redis(redis.url);
  spy.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, payload: Buffer) => {
    published.push({ channel: channel.toString(), payload });
  });
  await spy.psubscribe('*');
}, 60_000);

afterAll(async () => {
  spy?.disconnect();
  await stopAll(...servers);
  await redis?.stop();
});

const [A, B, C] = [0, 1, 2];
const pools = [0, 1, 2].map((index) => new ClientPool(() => servers[index].hubUrl));
const msgpack = new MessagePackHubProtocol();

/** Connects to server `index` and waits until the server has registered the connection (its subscriptions made). */
async function connect(index: number, options: ConnectOptions = {}): Promise<TestClient> {
  const client = await pools[index].connect(
    {
      transport: HttpTransportType.WebSockets,
      handlers: { GetAnswer: (q: unknown) => `answer to ${String(q)}` },
      ...options,
    },
    ['ReceiveMessage'],
  );
  // The message loop opens only after onConnected, so an answered invocation means the channels are subscribed.
  await client.connection.invoke('WhoAmI');
  return client;
}

let alice1: TestClient; // A, JSON, user alice
let dave: TestClient; // A, MessagePack, user dave
let alice2: TestClient; // B, MessagePack, user alice
let bob: TestClient; // B, JSON, user bob
let carol: TestClient; // C, MessagePack, user carol
let everyone: TestClient[];

beforeEach(async () => {
  [alice1, dave, alice2, bob, carol] = await Promise.all([
    connect(A, { query: 'user=alice' }),
    connect(A, { query: 'user=dave', protocol: msgpack }),
    connect(B, { query: 'user=alice', protocol: msgpack }),
    connect(B, { query: 'user=bob' }),
    connect(C, { query: 'user=carol', protocol: msgpack }),
  ]);
  everyone = [alice1, dave, alice2, bob, carol];
});

afterEach(async () => {
  await Promise.all(pools.map((pool) => pool.stopAll()));
});

const id = (client: TestClient): string => client.connection.connectionId!;
const name = (client: TestClient): string => ['alice1', 'dave', 'alice2', 'bob', 'carol'][everyone.indexOf(client)];

/** Asserts how many times each client received `message` (absent: never). */
async function expectCounts(message: string, counts: Map<TestClient, number>): Promise<void> {
  const count = (client: TestClient) =>
    client.inbox('ReceiveMessage').items.filter(([, text]) => text === message).length;
  await eventually(
    () => [...counts].every(([client, times]) => count(client) >= times),
    `${message} to reach ${[...counts.keys()].map(name)}`,
  );
  await delay(SETTLE_MS);
  const got = Object.fromEntries(everyone.map((client) => [name(client), count(client)]));
  const expected = Object.fromEntries(everyone.map((client) => [name(client), counts.get(client) ?? 0]));
  expect(got).toEqual(expected);
}

/** Asserts who received `message` (once each) and that nobody else did. */
function expectDelivered(message: string, receivers: TestClient[]): Promise<void> {
  return expectCounts(message, new Map(receivers.map((client) => [client, 1])));
}

/** The rejection of a promise; fails when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

test('all: every client on every server, JSON and MessagePack alike', async () => {
  await bob.connection.invoke('SendMessage', 'bob', 'to all');
  await expectDelivered('to all', everyone);
  expect(carol.inbox('ReceiveMessage').items[0]).toEqual(['bob', 'to all']);
});

test('others and allExcept: excluded connections on any server are skipped', async () => {
  await carol.connection.invoke('SendOthers', 'carol', 'to others');
  await expectDelivered('to others', [alice1, dave, alice2, bob]);
  await alice1.connection.invoke('SendAllExcept', [id(dave), id(bob)], 'alice', 'all except two');
  await expectDelivered('all except two', [alice1, alice2, carol]);
});

test('client: on another server through Redis; on the same server directly, without a publish', async () => {
  await alice1.connection.invoke('SendToConnection', id(carol), 'alice', 'to carol');
  await expectDelivered('to carol', [carol]);
  const before = published.length;
  await alice1.connection.invoke('SendToConnection', id(dave), 'alice', 'to dave');
  await expectDelivered('to dave', [dave]);
  expect(published.slice(before).map((message) => message.channel)).toEqual([]);
});

test('clients: several connections on several servers', async () => {
  await bob.connection.invoke('SendToConnections', [id(alice1), id(carol), id(bob), 'unknown-id'], 'bob', 'to three');
  await expectDelivered('to three', [alice1, carol, bob]);
});

test('group: joined on two servers, sent from a third; groups; groupExcept; othersInGroup', async () => {
  await alice2.connection.invoke('JoinRoom', 'r1');
  await carol.connection.invoke('JoinRoom', 'r1');
  await dave.connection.invoke('SendToRoom', 'r1', 'dave', 'to r1');
  await expectDelivered('to r1', [alice2, carol]);

  await bob.connection.invoke('JoinRoom', 'r2');
  await carol.connection.invoke('JoinRoom', 'r2');
  await alice1.connection.invoke('SendToRooms', ['r1', 'r2'], 'alice', 'to r1 and r2');
  // carol is in both groups: one message per group, as in .NET.
  await expectCounts(
    'to r1 and r2',
    new Map([
      [alice2, 1],
      [bob, 1],
      [carol, 2],
    ]),
  );

  await dave.connection.invoke('SendRoomExcept', 'r1', [id(carol)], 'dave', 'r1 except carol');
  await expectDelivered('r1 except carol', [alice2]);
  await carol.connection.invoke('SendOthersInRoom', 'r1', 'carol', 'r1 but me');
  await expectDelivered('r1 but me', [alice2]);

  await alice2.connection.invoke('LeaveRoom', 'r1');
  await dave.connection.invoke('SendToRoom', 'r1', 'dave', 'r1 after leave');
  await expectDelivered('r1 after leave', [carol]);
});

test("user: one user's connections on two servers; users", async () => {
  await carol.connection.invoke('SendToUser', 'alice', 'carol', 'to alice');
  await expectDelivered('to alice', [alice1, alice2]);
  await alice1.connection.invoke('SendToUsers', ['bob', 'carol', 'nobody'], 'alice', 'to bob and carol');
  await expectDelivered('to bob and carol', [bob, carol]);
});

test("remote group add and remove: a group command answered by the owning server's ack", async () => {
  const serverA = await servers[A].serverName();
  /** The group command and ack published by one hub call, decoded. */
  const groupChange = async (method: string, room: string) => {
    const before = published.length;
    await alice1.connection.invoke(method, id(carol), room);
    const messages = published.slice(before);
    expect(messages.map((message) => message.channel)).toEqual([
      `${HUB}:internal:groups`,
      `${HUB}:internal:ack:${serverA}`,
    ]);
    return { command: decodeRedisGroupCommand(messages[0].payload), ack: decodeRedisAck(messages[1].payload) };
  };

  const add = await groupChange('AddToRoom', 'managed');
  expect(add.command).toEqual({
    id: add.ack,
    serverName: serverA,
    action: 1,
    groupName: 'managed',
    connectionId: id(carol),
  });
  await bob.connection.invoke('SendToRoom', 'managed', 'bob', 'managed 1');
  await expectDelivered('managed 1', [carol]);

  const remove = await groupChange('RemoveFromRoom', 'managed');
  expect(remove.command).toEqual({
    id: add.ack + 1,
    serverName: serverA,
    action: 2,
    groupName: 'managed',
    connectionId: id(carol),
  });
  expect(remove.ack).toBe(add.ack + 1);
  await bob.connection.invoke('SendToRoom', 'managed', 'bob', 'managed 2');
  await expectDelivered('managed 2', []);
});

test('a remote group add for a connection nobody owns fails when the ack timeout passes', async () => {
  const started = Date.now();
  const error = await rejectionOf(alice1.connection.invoke('AddToRoom', 'nobody-owns-this-id', 'r5'));
  const elapsed = Date.now() - started;
  expect(error.message).toBe("An unexpected error occurred invoking 'AddToRoom' on the server.");
  expect(elapsed).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - 50);
  expect(elapsed).toBeLessThan(ACK_TIMEOUT_MS + 2000);
  // The caller's connection is fine afterwards.
  expect(await alice1.connection.invoke('Echo', 'still here')).toBe('still here');
});

test('client results across servers: values both ways between JSON and MessagePack clients', async () => {
  expect(await alice1.connection.invoke('AskClient', id(carol))).toBe('answer to question');
  expect(await carol.connection.invoke('AskClient', id(bob))).toBe('answer to question');
  expect(await bob.connection.invoke('AskClient', id(dave))).toBe('answer to question');
});

test('client results across servers: a client without a handler answers with an error', async () => {
  const silent = await connect(B, { handlers: {} });
  const error = await rejectionOf(alice1.connection.invoke('AskClient', id(silent)));
  expect(error.message).toBe(
    "An unexpected error occurred invoking 'AskClient' on the server. HubException: Client didn't provide a result.",
  );
});

test('client results across servers: the client leaves before answering', async () => {
  let asked!: () => void;
  const reached = new Promise<void>((resolve) => (asked = resolve));
  const leaver = await connect(C, {
    protocol: msgpack,
    handlers: {
      GetAnswer: () => {
        asked();
        return new Promise(() => undefined);
      },
    },
  });
  const call = rejectionOf(alice1.connection.invoke('AskClient', id(leaver)));
  await reached;
  await leaver.connection.stop();
  expect((await call).message).toBe(
    "An unexpected error occurred invoking 'AskClient' on the server. HubException: Connection disconnected.",
  );
});

test('client results: a connection no server owns fails at once', async () => {
  // The spy's psubscribe('*') counts as a receiver of every PUBLISH (as with .NET, docs/protocol.md §3.7); without it
  // the publish reaches nobody.
  await spy!.punsubscribe('*');
  try {
    const started = Date.now();
    const error = await rejectionOf(alice1.connection.invoke('AskClient', 'no-such-connection'));
    expect(error.message).toBe("An unexpected error occurred invoking 'AskClient' on the server.");
    expect(Date.now() - started).toBeLessThan(1000);
  } finally {
    await spy!.psubscribe('*');
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Every payload the servers published above, read with an independent MessagePack reader against the
// layouts (docs/protocol.md §3.2, §3.3).

type Tree = MsgTree & { t: string; v?: unknown; n?: number; items?: Tree[]; entries?: [Tree, Tree][]; hex?: string };

const isStr = (tree: Tree) => /^(fixstr|str8|str16|str32)$/.test(tree.t);
const isUint = (tree: Tree) => /^(posfixint|uint8|uint16|uint32)$/.test(tree.t);
const binOf = (tree: Tree) => {
  expect(tree.t).toMatch(/^bin(8|16|32)$/);
  return Buffer.from(tree.hex!, 'hex');
};

/** A framed MessagePack hub message: VarInt length prefix, then exactly that many bytes (docs/protocol.md §2.5). */
function messagePackBody(framed: Buffer): Tree {
  let length = 0;
  let shift = 0;
  let offset = 0;
  for (;;) {
    const byte = framed[offset++];
    length += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) break;
  }
  expect(framed.length - offset).toBe(length);
  return decodeTree(framed.subarray(offset)) as Tree;
}

/** A framed JSON hub message: one JSON text and its 0x1E (docs/protocol.md §2.4). */
function jsonBody(framed: Buffer): Record<string, unknown> {
  expect(framed[framed.length - 1]).toBe(0x1e);
  expect(framed.subarray(0, -1).includes(0x1e)).toBe(false);
  return JSON.parse(framed.subarray(0, -1).toString('utf8')) as Record<string, unknown>;
}

test('every payload published above has the docs/protocol.md §3.3 layout for its channel, read independently of our codec', async () => {
  const names = await Promise.all(servers.map((server) => server.serverName()));
  const kinds = new Map<string, number>();
  for (const { channel, payload } of published) {
    const match =
      /^Backplane\.Tests\.ChatHub:(all|internal:groups|internal:ack:|internal:return:|connection:|group:|user:)(.*)$/.exec(
        channel,
      );
    expect({ channel, ok: match !== null }).toEqual({ channel, ok: true });
    const [, kind, name] = match!;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    const tree = decodeTree(payload) as Tree;
    expect(tree.t).toBe('fixarray');
    const items = tree.items!;
    switch (kind) {
      case 'all':
      case 'connection:':
      case 'group:':
      case 'user:': {
        // [excludedIds[], {json: bin, messagepack: bin}] or, for a client result, + [invocationId, returnChannel].
        expect([2, 4]).toContain(items.length);
        expect(items[0].t).toMatch(/^(fixarray|array16|array32)$/);
        expect(items[0].items!.every(isStr)).toBe(true);
        const entries = items[1].entries!;
        expect(entries.map(([key]) => key.v)).toEqual(['json', 'messagepack']);
        const json = jsonBody(binOf(entries[0][1]));
        const body = messagePackBody(binOf(entries[1][1])).items!;
        expect(body.map((item) => item.t).slice(0, 2)).toEqual(['posfixint', 'fixmap']);
        expect(body).toHaveLength(6);
        expect([json.type, body[0].v, body[1].n, body[5].n]).toEqual([1, 1, 0, 0]);
        expect(body[3].v).toBe(json.target);
        if (items.length === 4) {
          const invocationId = items[2].v as string;
          expect(invocationId).toMatch(/^[A-Za-z0-9+/]{22}$/);
          expect([json.invocationId, body[2].v]).toEqual([invocationId, invocationId]);
          expect(names.map((server) => `${HUB}:internal:return:${server}`)).toContain(items[3].v);
          expect(kind).toBe('connection:');
        } else {
          expect(['invocationId' in json, body[2].t]).toEqual([false, 'nil']);
        }
        break;
      }
      case 'internal:groups':
        // [id, serverName, action (1 add, 2 remove), groupName, connectionId]
        expect(items).toHaveLength(5);
        expect([isUint(items[0]), isStr(items[1]), items[2].t, isStr(items[3]), isStr(items[4])]).toEqual([
          true,
          true,
          'posfixint',
          true,
          true,
        ]);
        expect(names).toContain(items[1].v);
        expect([1, 2]).toContain(items[2].v);
        break;
      case 'internal:ack:':
        // [id], on the sender's channel
        expect(items).toHaveLength(1);
        expect(isUint(items[0])).toBe(true);
        expect(names).toContain(name);
        break;
      case 'internal:return:': {
        // [protocolName, completion framed in that protocol]
        expect(items).toHaveLength(2);
        expect(names).toContain(name);
        const completion = binOf(items[1]);
        if (items[0].v === 'json') expect(jsonBody(completion).type).toBe(3);
        else expect([items[0].v, messagePackBody(completion).items![0].v]).toEqual(['messagepack', 3]);
        break;
      }
    }
  }
  // Every kind of payload was seen (and checked) at least once.
  expect([...kinds.keys()].sort()).toEqual(
    ['all', 'connection:', 'group:', 'internal:ack:', 'internal:groups', 'internal:return:', 'user:'].sort(),
  );
});
