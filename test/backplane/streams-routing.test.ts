/**
 * Streams mode (`SIGNALR_REDIS_MODE=streams`): every routing kind across three server processes of ours on one
 * redis-server, with real official clients (JSON and MessagePack) on different servers — all, others, allExcept,
 * client, clients, group, groups, groupExcept, othersInGroup, user, users, remote group add/remove with its ack, the
 * ack timeout, client results across servers, an entry written twice delivered once — and what went through Redis:
 * stream entries with the pub/sub layout's channel names and payloads and their writer, no PUBLISH at all.
 */
import { HttpTransportType } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import Redis from 'ioredis';
import { decodeRedisAck, decodeRedisGroupCommand, decodeRedisInvocation } from '../../protocol/redis';
import { createEmitter } from '../../src/emitter';
import { ClientPool, delay, eventually, type ConnectOptions, type TestClient } from '../support/clients';
import { RedisServer } from '../support/redis-server';
import { ServerProcess, stopAll } from '../support/server-process';

const HUB = 'Streams.Tests.ChatHub';
const ACK_TIMEOUT_MS = 1500;
const SETTLE_MS = 200;
/** The one stream of the empty channel prefix on a single Redis server. */
const STREAM = '{signalr:stream:0}';

let redis: RedisServer | undefined;
let servers: ServerProcess[] = [];
let spy: Redis | undefined;
/** PUBLISHes seen on the test's Redis (none expected in streams mode). */
const publishes: string[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
  const env = {
    REDIS_URL: redis.url,
    CHAT_HUB_NAME: HUB,
    REDIS_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
    SIGNALR_REDIS_MODE: 'streams',
  };
  const results = await Promise.allSettled(['A', 'B', 'C'].map((label) => ServerProcess.start(label, env)));
  servers = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = results.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  await Promise.all(servers.map((server) => server.waitForBackplane('connected')));
  // The health endpoint says which layout the backplane uses.
  for (const server of servers) expect((await server.backplane()).mode).toBe('streams');
  spy = new Redis(redis.url);
  spy.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer) => publishes.push(channel.toString()));
  await spy.psubscribe('*');
}, 60_000);

afterAll(async () => {
  spy?.disconnect();
  await stopAll(...servers);
  await redis?.stop();
});

/** Every entry of the stream, in order: its channel, payload and writer fields. */
async function entries(): Promise<{ channel: string; payload: Buffer; writer: string }[]> {
  const reader = new Redis(redis!.url);
  try {
    const items = (await reader.xrangeBuffer(STREAM, '-', '+')) as [Buffer, Buffer[]][];
    return items.map(([, fields]) => {
      const byName = new Map<string, Buffer>();
      for (let index = 0; index + 1 < fields.length; index += 2)
        byName.set(fields[index].toString(), fields[index + 1]);
      expect([...byName.keys()]).toEqual(['channel', 'payload', 'writer']);
      return {
        channel: byName.get('channel')!.toString(),
        payload: byName.get('payload')!,
        writer: byName.get('writer')!.toString(),
      };
    });
  } finally {
    reader.disconnect();
  }
}

const [A, B, C] = [0, 1, 2];
const pools = [0, 1, 2].map((index) => new ClientPool(() => servers[index].hubUrl));
const msgpack = new MessagePackHubProtocol();

async function connect(index: number, options: ConnectOptions = {}): Promise<TestClient> {
  const client = await pools[index].connect(
    {
      transport: HttpTransportType.WebSockets,
      handlers: { GetAnswer: (q: unknown) => `answer to ${String(q)}` },
      ...options,
    },
    ['ReceiveMessage'],
  );
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

function expectDelivered(message: string, receivers: TestClient[]): Promise<void> {
  return expectCounts(message, new Map(receivers.map((client) => [client, 1])));
}

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

test('all, others, allExcept: every server reads the stream and skips excluded connections', async () => {
  await bob.connection.invoke('SendMessage', 'bob', 'to all');
  await expectDelivered('to all', everyone);
  await carol.connection.invoke('SendOthers', 'carol', 'to others');
  await expectDelivered('to others', [alice1, dave, alice2, bob]);
  await alice1.connection.invoke('SendAllExcept', [id(dave), id(bob)], 'alice', 'all except two');
  await expectDelivered('all except two', [alice1, alice2, carol]);
});

test("an entry written twice (a write sent again after its reply was lost) reaches each client once; another writer's copy is new", async () => {
  await bob.connection.invoke('SendMessage', 'bob', 'written twice');
  await expectDelivered('written twice', everyone);
  const written = (await entries()).filter((entry) => entry.payload.includes('written twice'));
  expect(written).toHaveLength(1);
  const [{ channel, payload, writer }] = written;
  expect(writer).toMatch(/^[\w-]+:\d+$/);
  const redisClient = new Redis(redis!.url);
  try {
    // The repeat, as the writer sends it again; then the same bytes from a writer no server has seen.
    await redisClient.xadd(STREAM, '*', 'channel', channel, 'payload', payload, 'writer', writer);
    await redisClient.xadd(STREAM, '*', 'channel', channel, 'payload', payload, 'writer', 'another-writer:1');
  } finally {
    redisClient.disconnect();
  }
  // One stream, one order: every server read the repeat before the new copy, so two each means the repeat was skipped.
  await expectCounts('written twice', new Map(everyone.map((client) => [client, 2])));
});

test('client and clients: through the stream to another server; on the same server directly, no entry', async () => {
  await alice1.connection.invoke('SendToConnection', id(carol), 'alice', 'to carol');
  await expectDelivered('to carol', [carol]);
  const before = (await entries()).length;
  await alice1.connection.invoke('SendToConnection', id(dave), 'alice', 'to dave');
  await expectDelivered('to dave', [dave]);
  expect((await entries()).slice(before).map((entry) => entry.channel)).toEqual([]);
  await bob.connection.invoke('SendToConnections', [id(alice1), id(carol), id(bob), 'unknown-id'], 'bob', 'to three');
  await expectDelivered('to three', [alice1, carol, bob]);
});

test('group: joined on two servers, sent from a third; groups; groupExcept; othersInGroup; leave', async () => {
  await alice2.connection.invoke('JoinRoom', 'r1');
  await carol.connection.invoke('JoinRoom', 'r1');
  await dave.connection.invoke('SendToRoom', 'r1', 'dave', 'to r1');
  await expectDelivered('to r1', [alice2, carol]);
  await bob.connection.invoke('JoinRoom', 'r2');
  await carol.connection.invoke('JoinRoom', 'r2');
  await alice1.connection.invoke('SendToRooms', ['r1', 'r2'], 'alice', 'to r1 and r2');
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

test("user and users: one user's connections on two servers", async () => {
  await carol.connection.invoke('SendToUser', 'alice', 'carol', 'to alice');
  await expectDelivered('to alice', [alice1, alice2]);
  await alice1.connection.invoke('SendToUsers', ['bob', 'carol', 'nobody'], 'alice', 'to bob and carol');
  await expectDelivered('to bob and carol', [bob, carol]);
});

test("remote group add and remove: the group command and the owning server's ack go through the stream", async () => {
  const serverA = await servers[A].serverName();
  const groupChange = async (method: string, room: string) => {
    const before = (await entries()).length;
    await alice1.connection.invoke(method, id(carol), room);
    const added = (await entries()).slice(before);
    expect(added.map((entry) => entry.channel)).toEqual([`${HUB}:internal:groups`, `${HUB}:internal:ack:${serverA}`]);
    return { command: decodeRedisGroupCommand(added[0].payload), ack: decodeRedisAck(added[1].payload) };
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
  expect(remove.ack).toBe(add.ack + 1);
  await bob.connection.invoke('SendToRoom', 'managed', 'bob', 'managed 2');
  await expectDelivered('managed 2', []);
});

test('a remote group add for a connection nobody owns fails when the ack timeout passes', async () => {
  const started = Date.now();
  const error = await rejectionOf(alice1.connection.invoke('AddToRoom', 'nobody-owns-this-id', 'r5'));
  expect(error.message).toBe("An unexpected error occurred invoking 'AddToRoom' on the server.");
  expect(Date.now() - started).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - 50);
  expect(await alice1.connection.invoke('Echo', 'still here')).toBe('still here');
});

test('client results across servers: values both ways, a client error, a client that leaves', async () => {
  expect(await alice1.connection.invoke('AskClient', id(carol))).toBe('answer to question');
  expect(await carol.connection.invoke('AskClient', id(bob))).toBe('answer to question');
  expect(await bob.connection.invoke('AskClient', id(dave))).toBe('answer to question');

  const silent = await connect(B, { handlers: {} });
  expect((await rejectionOf(alice1.connection.invoke('AskClient', id(silent)))).message).toBe(
    "An unexpected error occurred invoking 'AskClient' on the server. HubException: Client didn't provide a result.",
  );

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

test('the emitter in streams mode: a broadcast, a group add acked by the owning server, a client result', async () => {
  const quiet = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };
  const emitter = createEmitter({ redis: redis!.url, hub: HUB, mode: 'streams', logger: quiet });
  try {
    await emitter.ready();
    await emitter.clients.all.send('ReceiveMessage', 'emitter', 'from the emitter');
    await expectDelivered('from the emitter', everyone);
    await emitter.groups.addToGroup(id(bob), 'emitted');
    await emitter.clients.group('emitted').send('ReceiveMessage', 'emitter', 'to the emitted group');
    await expectDelivered('to the emitted group', [bob]);
    expect(await emitter.clients.client(id(carol)).invoke('GetAnswer', 'from the emitter')).toBe(
      'answer to from the emitter',
    );
  } finally {
    await emitter.close();
  }
});

test('a pub/sub emitter does not start beside servers in streams mode', async () => {
  const quiet = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };
  const emitter = createEmitter({ redis: redis!.url, hub: HUB, logger: quiet });
  try {
    await expect(emitter.ready()).rejects.toThrow('servers in streams mode');
  } finally {
    await emitter.close();
  }
});

test('what went through Redis: stream entries on the pub/sub channel names, with their payloads; no PUBLISH', async () => {
  const all = await entries();
  const channels = new Set(all.map((entry) => entry.channel));
  for (const channel of [`${HUB}:all`, `${HUB}:internal:groups`, `${HUB}:group:r1`, `${HUB}:user:alice`])
    expect(channels).toContain(channel);
  const broadcast = all.find((entry) => entry.channel === `${HUB}:all`)!;
  expect([...decodeRedisInvocation(broadcast.payload).messages.keys()]).toEqual(['json', 'messagepack']);
  // The mode marker says streams, with the stream count every server of the fleet must share.
  const reader = new Redis(redis!.url);
  try {
    expect(await reader.get('signalr:backplane-mode')).toBe('streams:1');
  } finally {
    reader.disconnect();
  }
  expect(publishes).toEqual([]);
});
