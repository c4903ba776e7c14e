/**
 * A mixed cluster, live: ASP.NET Core reference servers (`test/dotnet-reference`, StackExchangeRedis backplane, JSON
 * and MessagePack) and server processes of our chat sample on one suite-started redis-server, with official JSON and
 * MessagePack clients on both kinds. Two such clusters share the Redis: one without a channel prefix and one with
 * the prefix `mixed-`, and neither may hear the other.
 *
 * Checked in both directions (a caller on .NET reaching clients of ours, and the reverse): every routing kind; group
 * add/remove of a connection on the other kind of server, acknowledged, and the ack timeout once its owner is gone;
 * client results; Redis killed and restarted with both kinds up; ours restarted while .NET keeps running (in the
 * plain cluster) and a .NET server restarted while ours keeps running (in the prefixed one).
 */
import { HttpTransportType } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import Redis from 'ioredis';
import { ClientPool, delay, eventually, type TestClient } from '../support/clients';
import {
  describeWithDotnet,
  startBackplaneReferenceServer,
  type BackplaneReferenceServer,
} from '../support/dotnet-reference';
import { RedisSpy } from '../support/golden-backplane';
import { RedisServer } from '../support/redis-server';
import { ServerProcess } from '../support/server-process';

/** The reference hub's full type name: the hub's name on Redis for both kinds of server. */
const HUB = 'WebAPI.ChatHub';
const PREFIX = 'mixed-';
/** Our remote group commands give up after this (short, to keep the test quick; .NET's is a fixed 30 s). */
const ACK_TIMEOUT_MS = 1500;
/** .NET's ack timeout: a 30 s threshold checked by a 5 s timer. */
const DOTNET_ACK_TIMEOUT_MS: readonly [number, number] = [30_000, 36_000];
/** Quiet time after which a message that has not arrived is taken as not sent. */
const SETTLE_MS = 300;
const GENERIC_ADD_ERROR = "An unexpected error occurred invoking 'AddToRoom' on the server.";

/** The four clients of a cluster: a JSON and a MessagePack client on each kind of server. */
type ClientName = 'dotnetJson' | 'dotnetPack' | 'oursJson' | 'oursPack';
const CLIENT_NAMES: readonly ClientName[] = ['dotnetJson', 'dotnetPack', 'oursJson', 'oursPack'];
/** User ids: carol has a connection on each kind of server. */
const USERS: Record<ClientName, string> = {
  dotnetJson: 'alice',
  dotnetPack: 'carol',
  oursJson: 'bob',
  oursPack: 'carol',
};

/** One .NET server and one of ours on the same channels. */
interface Cluster {
  readonly label: string;
  readonly prefix: string;
  dotnet: BackplaneReferenceServer;
  ours: ServerProcess;
  readonly clients: Partial<Record<ClientName, TestClient>>;
}

let redis: RedisServer;
let spy: RedisSpy;
let admin: Redis;
const clusters: Cluster[] = [];
/** Every pool, so afterAll stops every client started. */
const pools: ClientPool[] = [];
/** Every server started, including the ones replaced by a restart. */
const started: { stop(): Promise<void> }[] = [];
/** The .NET add for a connection of ours whose server is gone, still waiting for its ack. */
let unackedDotnetAdd: Promise<{ error: string; ms: number }> | undefined;

function startOurs(label: string, prefix: string): Promise<ServerProcess> {
  return ServerProcess.start(label, {
    REDIS_URL: redis.url,
    CHAT_HUB_NAME: HUB,
    REDIS_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
    ...(prefix !== '' && { REDIS_CHANNEL_PREFIX: prefix }),
  }).then((server) => {
    started.push(server);
    return server;
  });
}

async function startDotnet(prefix: string): Promise<BackplaneReferenceServer> {
  const server = await startBackplaneReferenceServer({
    redisPort: redis.port,
    ...(prefix !== '' && { channelPrefix: prefix }),
  });
  started.push(server);
  return server;
}

const isDotnet = (name: ClientName) => name.startsWith('dotnet');

/** Connects `name` to its server in `cluster`, answering `GetAnswer` with `answer from <name>`. */
async function connect(cluster: Cluster, name: ClientName): Promise<TestClient> {
  const pool = new ClientPool(() => (isDotnet(name) ? cluster.dotnet.hubUrl : cluster.ours.hubUrl));
  pools.push(pool);
  const client = await pool.connect(
    {
      transport: HttpTransportType.WebSockets,
      query: `user=${USERS[name]}`,
      ...(name.endsWith('Pack') && { protocol: new MessagePackHubProtocol() }),
      handlers: { GetAnswer: () => `answer from ${name}` },
    },
    ['ReceiveMessage'],
  );
  // The message loop starts after onConnected, so an answered invocation means the channels are subscribed.
  await client.connection.invoke('WhoAmI');
  cluster.clients[name] = client;
  return client;
}

async function connectSide(cluster: Cluster, side: 'dotnet' | 'ours'): Promise<void> {
  await Promise.all(
    CLIENT_NAMES.filter((name) => isDotnet(name) === (side === 'dotnet')).map((name) => connect(cluster, name)),
  );
}

const client = (cluster: Cluster, name: ClientName): TestClient => {
  const found = cluster.clients[name];
  if (found === undefined) throw new Error(`${cluster.label}: ${name} is not connected`);
  return found;
};
const idOf = (cluster: Cluster, name: ClientName) => client(cluster, name).connection.connectionId!;
const invoke = (cluster: Cluster, name: ClientName, method: string, ...args: unknown[]) =>
  client(cluster, name).connection.invoke(method, ...args);

/** How often each client of every cluster received `message`, as `label/name → count` (zeros left out). */
function receivedCounts(message: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const cluster of clusters) {
    for (const name of CLIENT_NAMES) {
      const inbox = cluster.clients[name]?.inbox('ReceiveMessage');
      const count = inbox?.items.filter(([, text]) => text === message).length ?? 0;
      if (count > 0) counts[`${cluster.label}/${name}`] = count;
    }
  }
  return counts;
}

/** Waits until `message` reached `expected` (label/name → count), then for silence, and returns what arrived. */
async function deliveredAfterSettling(
  message: string,
  expected: Record<string, number>,
): Promise<Record<string, number>> {
  await eventually(
    () => Object.entries(expected).every(([who, count]) => (receivedCounts(message)[who] ?? 0) >= count),
    `${message} to reach ${JSON.stringify(expected)}; got ${JSON.stringify(receivedCounts(message))}`,
  ).catch(() => undefined);
  await delay(SETTLE_MS);
  return receivedCounts(message);
}

/** Repeats `send` until `message` reaches `who` (a server coming back may drop the first ones). */
async function sendUntilReceived(send: (message: string) => Promise<unknown>, tag: string, who: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (let attempt = 0; ; attempt++) {
    const message = `${tag} #${attempt}`;
    await send(message).catch(() => undefined);
    const arrived = await eventually(() => (receivedCounts(message)[who] ?? 0) > 0, message, 500).then(
      () => true,
      () => false,
    );
    if (arrived) return;
    if (Date.now() > deadline) throw new Error(`${tag}: nothing reached ${who} within 30 s`);
  }
}

/** The error a promise rejects with, or a failure if it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

/** Acks published on `serverName`'s ack channel so far. */
const acksTo = (prefix: string, serverName: string) =>
  spy.messages.filter((message) => message.channel === `${prefix}${HUB}:internal:ack:${serverName}`).length;

describeWithDotnet('a mixed cluster of ASP.NET Core and fastify-signalr servers on one Redis', () => {
  beforeAll(async () => {
    redis = await RedisServer.start();
    spy = await RedisSpy.start(redis.url);
    admin = new Redis(redis.url);
    for (const [label, prefix] of [
      ['plain', ''],
      ['prefixed', PREFIX],
    ] as const) {
      // One server after another: a .NET server's name is the ack channel that appears on Redis when it starts.
      const ours = await startOurs(`ours-${label}`, prefix);
      await ours.waitForBackplane('connected');
      const dotnet = await startDotnet(prefix);
      clusters.push({ label, prefix, dotnet, ours, clients: {} });
    }
    await Promise.all(clusters.flatMap((cluster) => [connectSide(cluster, 'dotnet'), connectSide(cluster, 'ours')]));
    // room-a spans both kinds of server; room-b has one member, on .NET.
    for (const cluster of clusters) {
      for (const name of ['dotnetJson', 'oursJson', 'oursPack'] as const)
        await invoke(cluster, name, 'JoinRoom', 'room-a');
      await invoke(cluster, 'dotnetPack', 'JoinRoom', 'room-b');
    }
  }, 120_000);

  afterAll(async () => {
    await Promise.all(pools.map((pool) => pool.stopAll()));
    await Promise.all(started.map((server) => server.stop()));
    spy?.close();
    admin?.disconnect();
    await redis?.stop();
  }, 60_000);

  // First, so that .NET's 30 s ack timeout for the gone connection runs while the other tests do.
  test('ours restarted while .NET keeps running: .NET reaches the new server, and an add for a gone connection is never acknowledged', async () => {
    const c = clusters[0];
    const goneId = idOf(c, 'oursJson');
    const old = c.ours;
    await Promise.all((['oursJson', 'oursPack'] as const).map((name) => client(c, name).connection.stop()));
    await old.stop();
    // .NET asks for the gone connection from a client of its own: .NET runs one invocation per client at a time,
    // and this one waits for its ack timeout. The end is checked by the last test.
    const askerPool = new ClientPool(() => c.dotnet.hubUrl);
    pools.push(askerPool);
    const asker = await askerPool.connect({ transport: HttpTransportType.WebSockets }, []);
    const askedAt = Date.now();
    unackedDotnetAdd = rejectionOf(asker.connection.invoke('AddToRoom', goneId, 'ghost-room')).then((error) => ({
      error: error.message,
      ms: Date.now() - askedAt,
    }));

    c.ours = await startOurs('ours-plain-2', '');
    await c.ours.waitForBackplane('connected');
    await connectSide(c, 'ours');
    await invoke(c, 'oursPack', 'JoinRoom', 'room-a');
    await invoke(c, 'oursJson', 'JoinRoom', 'room-a');
    await sendUntilReceived(
      (m) => invoke(c, 'dotnetJson', 'SendMessage', 'x', m),
      'after ours restarted, from .NET',
      'plain/oursPack',
    );
    await sendUntilReceived(
      (m) => invoke(c, 'oursJson', 'SendToRoom', 'room-a', 'x', m),
      'after ours restarted, from ours',
      'plain/dotnetJson',
    );
    expect(await invoke(c, 'dotnetPack', 'AskClient', idOf(c, 'oursJson'))).toBe('answer from oursJson');
    await invoke(c, 'oursPack', 'AddToRoom', idOf(c, 'dotnetPack'), 'after-restart');
    await invoke(c, 'dotnetJson', 'SendToRoom', 'after-restart', 'x', 'after-restart 1');
    expect(await deliveredAfterSettling('after-restart 1', { 'plain/dotnetPack': 1 })).toEqual({
      'plain/dotnetPack': 1,
    });
  }, 90_000);

  describe.each([
    { clusterIndex: 0, title: 'without a channel prefix' },
    { clusterIndex: 1, title: `with the channel prefix '${PREFIX}'` },
  ])('$title', ({ clusterIndex }) => {
    const cluster = () => clusters[clusterIndex];

    test.each([
      {
        direction: 'from a JSON client of .NET',
        caller: 'dotnetJson',
        far: ['oursJson', 'oursPack'],
        near: 'dotnetPack',
        farUser: 'bob',
      },
      {
        direction: 'from a MessagePack client of ours',
        caller: 'oursPack',
        far: ['dotnetJson', 'dotnetPack'],
        near: 'oursJson',
        farUser: 'alice',
      },
    ] as const)(
      'every routing kind $direction',
      async ({ direction, caller, far, near, farUser }) => {
        const c = cluster();
        const [far1, far2] = far;
        const roomA: ClientName[] = ['dotnetJson', 'oursJson', 'oursPack'];
        const all = CLIENT_NAMES;
        // kind → [method, arguments before (user, message), who receives it]
        const cases: Record<string, [string, unknown[], readonly ClientName[]]> = {
          all: ['SendMessage', [], all],
          others: ['SendOthers', [], all.filter((name) => name !== caller)],
          'all except': ['SendAllExcept', [[idOf(c, far1)]], all.filter((name) => name !== far1)],
          connection: ['SendToConnection', [idOf(c, far2)], [far2]],
          connections: ['SendToConnections', [[idOf(c, far1), idOf(c, near)]], [far1, near]],
          group: ['SendToRoom', ['room-a'], roomA],
          groups: ['SendToRooms', [['room-a', 'room-b']], all],
          'group except': ['SendRoomExcept', ['room-a', [idOf(c, far1)]], roomA.filter((name) => name !== far1)],
          'others in group': ['SendOthersInRoom', ['room-a'], roomA.filter((name) => name !== caller)],
          user: ['SendToUser', [farUser], all.filter((name) => USERS[name] === farUser)],
          'user on both kinds': ['SendToUser', ['carol'], ['dotnetPack', 'oursPack']],
          users: ['SendToUsers', [['alice', 'bob']], ['dotnetJson', 'oursJson']],
        };
        const message = (kind: string) => `${c.label} ${direction}: ${kind}`;
        const expected = Object.fromEntries(
          Object.entries(cases).map(([kind, [, , receivers]]) => [
            kind,
            Object.fromEntries(receivers.map((name) => [`${c.label}/${name}`, 1])),
          ]),
        );
        await Promise.all(
          Object.entries(cases).map(([kind, [method, args]]) =>
            invoke(c, caller, method, ...args, caller, message(kind)),
          ),
        );
        const received = () =>
          Object.fromEntries(Object.keys(cases).map((kind) => [kind, receivedCounts(message(kind))]));
        const arrived = (kind: string) =>
          Object.entries(expected[kind]).every(([who, n]) => (received()[kind][who] ?? 0) >= n);
        await eventually(() => Object.keys(cases).every(arrived), 'every routing kind to deliver').catch(
          () => undefined,
        );
        await delay(SETTLE_MS);
        expect(received()).toEqual(expected);
      },
      60_000,
    );

    test('a connection on the other kind of server is added to a group and removed, acknowledged both ways', async () => {
      const c = cluster();
      const oursName = await c.ours.serverName();
      for (const [caller, member, ownerAcks, room] of [
        ['dotnetJson', 'oursJson', () => acksTo(c.prefix, c.dotnet.serverName), 'added-by-dotnet'],
        ['oursPack', 'dotnetPack', () => acksTo(c.prefix, oursName), 'added-by-ours'],
      ] as const) {
        const acksBefore = ownerAcks();
        await invoke(c, caller, 'AddToRoom', idOf(c, member), room);
        // The call returned, so the member's server acknowledged on the caller's ack channel.
        await eventually(() => ownerAcks() === acksBefore + 1, `the ack of ${member}'s server`);
        const sent = (n: number) => `${c.label} ${room} ${n}`;
        const onlyMember = { [`${c.label}/${member}`]: 1 };
        await invoke(c, 'dotnetJson', 'SendToRoom', room, 'x', sent(1));
        await invoke(c, 'oursJson', 'SendToRoom', room, 'x', sent(2));
        expect(await deliveredAfterSettling(sent(1), onlyMember)).toEqual(onlyMember);
        expect(await deliveredAfterSettling(sent(2), onlyMember)).toEqual(onlyMember);

        await invoke(c, caller, 'RemoveFromRoom', idOf(c, member), room);
        await eventually(() => ownerAcks() === acksBefore + 2, `the ack of ${member}'s server for the removal`);
        await invoke(c, 'dotnetJson', 'SendToRoom', room, 'x', sent(3));
        await invoke(c, 'oursJson', 'SendToRoom', room, 'x', sent(4));
        expect(await deliveredAfterSettling(sent(3), {})).toEqual({});
        expect(await deliveredAfterSettling(sent(4), {})).toEqual({});
      }
    }, 60_000);

    test('client results both ways: a .NET hub asks a client of ours, ours asks a client of .NET', async () => {
      const c = cluster();
      expect(await invoke(c, 'dotnetJson', 'AskClient', idOf(c, 'oursJson'))).toBe('answer from oursJson');
      expect(await invoke(c, 'dotnetPack', 'AskClient', idOf(c, 'oursPack'))).toBe('answer from oursPack');
      expect(await invoke(c, 'oursJson', 'AskClient', idOf(c, 'dotnetPack'))).toBe('answer from dotnetPack');
      expect(await invoke(c, 'oursPack', 'AskClient', idOf(c, 'dotnetJson'))).toBe('answer from dotnetJson');
      // From outside any hub method, through each server's hub context.
      const ask = async (url: string, id: string) => (await fetch(`${url}/ask/${id}`)).text();
      expect(await ask(c.dotnet.url, idOf(c, 'oursPack'))).toBe('answer from oursPack');
      expect(await ask(c.ours.url, idOf(c, 'dotnetJson'))).toBe('answer from dotnetJson');
    }, 30_000);
  });

  test('Redis killed and restarted with both kinds up: both subscribe again and deliver again, both ways', async () => {
    await redis.kill();
    await redis.start();
    await Promise.all(clusters.map((c) => c.ours.waitForBackplane('connected', 30_000)));
    for (const c of clusters) {
      const from = `after the Redis restart (${c.label})`;
      await sendUntilReceived(
        (m) => invoke(c, 'dotnetJson', 'SendMessage', 'x', m),
        `${from}, from .NET`,
        `${c.label}/oursPack`,
      );
      await sendUntilReceived(
        (m) => invoke(c, 'oursJson', 'SendMessage', 'x', m),
        `${from}, from ours`,
        `${c.label}/dotnetPack`,
      );
      // Every channel .NET subscribed is back: its own ack and return channels, groups, connections, users.
      const channels = (await admin.call('PUBSUB', 'CHANNELS', `${c.prefix}${HUB}:*`)) as string[];
      for (const channel of [
        `internal:ack:${c.dotnet.serverName}`,
        `internal:return:${c.dotnet.serverName}`,
        `internal:ack:${await c.ours.serverName()}`,
        'internal:groups',
        'all',
        'group:room-a',
        'group:room-b',
        `connection:${idOf(c, 'dotnetPack')}`,
        `connection:${idOf(c, 'oursJson')}`,
        'user:alice',
        'user:bob',
      ]) {
        expect(channels).toContain(`${c.prefix}${HUB}:${channel}`);
      }
      await invoke(c, 'oursPack', 'AddToRoom', idOf(c, 'dotnetJson'), 'after-redis');
      await invoke(c, 'dotnetJson', 'AddToRoom', idOf(c, 'oursPack'), 'after-redis');
      await invoke(c, 'dotnetPack', 'SendToRoom', 'after-redis', 'x', `${c.label} after-redis`);
      expect(await deliveredAfterSettling(`${c.label} after-redis`, {})).toEqual({
        [`${c.label}/dotnetJson`]: 1,
        [`${c.label}/oursPack`]: 1,
      });
      expect(await invoke(c, 'dotnetJson', 'AskClient', idOf(c, 'oursPack'))).toBe('answer from oursPack');
      expect(await invoke(c, 'oursPack', 'AskClient', idOf(c, 'dotnetJson'))).toBe('answer from dotnetJson');
    }
  }, 90_000);

  test('.NET restarted while ours keeps running (with the prefix): ours reaches the new server, and an add for a gone connection times out', async () => {
    // The prefixed cluster's: the plain cluster's .NET server is still waiting for an ack (the previous tests).
    const c = clusters[1];
    const goneId = idOf(c, 'dotnetJson');
    const oldName = c.dotnet.serverName;
    await c.dotnet.stop();
    await eventually(
      () => client(c, 'dotnetJson').connection.state === 'Disconnected',
      'the .NET clients to see their server go',
    );
    c.dotnet = await startDotnet(c.prefix);
    expect(c.dotnet.serverName).not.toBe(oldName);
    await connectSide(c, 'dotnet');
    await invoke(c, 'dotnetJson', 'JoinRoom', 'room-a');
    await invoke(c, 'dotnetPack', 'JoinRoom', 'room-b');

    const askedAt = Date.now();
    const error = await rejectionOf(invoke(c, 'oursPack', 'AddToRoom', goneId, 'ghost-room'));
    const elapsed = Date.now() - askedAt;
    expect(error.message).toBe(GENERIC_ADD_ERROR);
    expect(elapsed).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - 50);

    await sendUntilReceived(
      (m) => invoke(c, 'oursJson', 'SendMessage', 'x', m),
      'after .NET restarted, from ours',
      'prefixed/dotnetJson',
    );
    await sendUntilReceived(
      (m) => invoke(c, 'dotnetPack', 'SendOthersInRoom', 'room-a', 'x', m),
      'after .NET restarted, from .NET',
      'prefixed/oursJson',
    );
    expect(await invoke(c, 'oursJson', 'AskClient', idOf(c, 'dotnetPack'))).toBe('answer from dotnetPack');
    await invoke(c, 'dotnetJson', 'SendToUser', 'carol', 'x', 'to carol after .NET restarted');
    expect(await deliveredAfterSettling('to carol after .NET restarted', {})).toEqual({
      'prefixed/dotnetPack': 1,
      'prefixed/oursPack': 1,
    });
    // The old server's own channels went with it.
    const channels = (await admin.call('PUBSUB', 'CHANNELS', `${c.prefix}${HUB}:internal:*`)) as string[];
    expect(channels.filter((channel) => channel.endsWith(oldName))).toEqual([]);
  }, 90_000);

  test(".NET's add for a connection whose server of ours is gone fails after .NET's ack timeout", async () => {
    const outcome = await unackedDotnetAdd!;
    expect(outcome.error).toBe(GENERIC_ADD_ERROR);
    expect(outcome.ms).toBeGreaterThanOrEqual(DOTNET_ACK_TIMEOUT_MS[0] - 100);
    expect(outcome.ms).toBeLessThanOrEqual(DOTNET_ACK_TIMEOUT_MS[1]);
  }, 60_000);
});
