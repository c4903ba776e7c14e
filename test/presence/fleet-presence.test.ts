/**
 * Presence across three server processes of ours on one real redis-server, clients of the official client on each:
 * group listings paged and exact from every server, counts, a user's connections, join/leave events seen on every
 * server, user-level groups with a TTL reaching a connection opened later on another server, a Redis restart (presence
 * complete again), and `kill -9` of one server (its connections gone from every listing within the bound, its users'
 * other connections kept). Read through the chat sample's `/presence/*` routes, which call `app.signalr.hub(…).presence`.
 */
import { HttpTransportType } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { ClientPool, delay, type TestClient } from '../support/clients';
import { createEmitter } from '../../src/emitter';
import type { PresenceEvent } from '../../src/index';
import { bearer } from '../support/management-token';
import { RedisServer } from '../support/redis-server';
import { ServerProcess, stopAll } from '../support/server-process';

const HUB = 'Presence.ChatHub';
const ACCESS_KEY = 'presence-test-access-key-0123456789abcdef';
const HEARTBEAT_MS = 250;
/** A dead server's entries go within four heartbeats (three missed, then the next survivor's): the documented bound. */
const REMOVAL_BOUND_MS = 4 * HEARTBEAT_MS;
/** What a loaded test machine adds to a bound measured across processes. */
const SLACK_MS = 3000;
/** The TTL of the user-level group that must expire during the test. */
const SHORT_TTL_S = 4;

interface Page {
  scope: string;
  connections: { connectionId: string; userId?: string }[];
  cursor?: string;
}

let redis: RedisServer | undefined;
let servers: ServerProcess[] = [];
const pools = [0, 1, 2].map((index) => new ClientPool(() => servers[index].hubUrl));

beforeAll(async () => {
  redis = await RedisServer.start();
  const env = {
    REDIS_URL: redis.url,
    CHAT_HUB_NAME: HUB,
    SIGNALR_PRESENCE: 'true',
    SIGNALR_PRESENCE_HEARTBEAT_MS: String(HEARTBEAT_MS),
    SIGNALR_MANAGEMENT_ACCESS_KEY: ACCESS_KEY,
  };
  const results = await Promise.allSettled(['A', 'B', 'C'].map((label) => ServerProcess.start(label, env)));
  servers = results.filter((result) => result.status === 'fulfilled').map((result) => result.value);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  await Promise.all(servers.map((server) => server.waitForBackplane('connected')));
}, 60_000);

afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.stopAll()));
  await stopAll(...servers);
  await redis?.stop();
}, 30_000);

async function get<T>(server: ServerProcess, path: string): Promise<{ status: number; body: T }> {
  const response = await fetch(`${server.url}${path}`);
  return { status: response.status, body: (await response.json()) as T };
}

async function send(server: ServerProcess, method: 'PUT' | 'DELETE', path: string): Promise<void> {
  const response = await fetch(`${server.url}${path}`, { method });
  expect(response.status).toBe(204);
}

async function connect(server: number, user: string, msgpack = false): Promise<TestClient> {
  return pools[server].connect(
    {
      transport: HttpTransportType.WebSockets,
      query: `user=${user}`,
      ...(msgpack && { protocol: new MessagePackHubProtocol() }),
    },
    ['ReceiveMessage'],
  );
}

/** Every member of a group, page by page, as one server lists it. */
async function listAll(server: ServerProcess, group: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const query = `limit=${limit}${cursor === undefined ? '' : `&cursor=${cursor}`}`;
    const { body } = await get<Page>(server, `/presence/groups/${encodeURIComponent(group)}?${query}`);
    expect(body.scope).toBe('fleet');
    expect(body.connections.length).toBeLessThanOrEqual(limit);
    ids.push(...body.connections.map((member) => member.connectionId));
    cursor = body.cursor;
    pages++;
  } while (cursor !== undefined);
  return { ids, pages };
}

async function count(server: ServerProcess, group: string): Promise<number> {
  return (await get<{ count: number }>(server, `/presence/groups/${encodeURIComponent(group)}/count`)).body.count;
}

/** Polls until `check` passes (returns true), for at most `timeoutMs`; resolves with how long it took. */
async function within(timeoutMs: number, description: string, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${description}`);
    await delay(50);
  }
}

const sorted = (ids: readonly string[]) => [...ids].sort();
const texts = (client: TestClient): string[] => client.inbox('ReceiveMessage').items.map(([, text]) => text as string);

let members: { client: TestClient; server: number; user: string }[] = [];

test('a group spread over three servers: listed paged and exact, counted, its members described, from every server', async () => {
  for (let server = 0; server < 3; server++) {
    for (let index = 0; index < 4; index++) {
      const user = index === 0 ? 'ann' : `u${server}${index}`;
      members.push({ client: await connect(server, user, index === 1), server, user });
    }
  }
  await Promise.all(members.map(({ client }) => client.connection.invoke('JoinRoom', 'room')));
  const expected = sorted(members.map(({ client }) => client.connection.connectionId!));

  for (const server of servers) {
    const { ids, pages } = await listAll(server, 'room', 5);
    // In id order, each member exactly once, over ceil(12 / 5) pages (the last one may come back empty).
    expect(ids).toEqual(expected);
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(await count(server, 'room')).toBe(12);
  }

  // One connection of A, described by C.
  const first = members[1];
  const { status, body } = await get<{ connection: Record<string, unknown> }>(
    servers[2],
    `/presence/connections/${first.client.connection.connectionId}`,
  );
  expect(status).toBe(200);
  expect(body.connection).toMatchObject({
    connectionId: first.client.connection.connectionId,
    userId: first.user,
    serverName: await servers[0].serverName(),
    transport: 'WebSockets',
    protocol: 'messagepack',
  });
  expect(typeof body.connection.connectedAt).toBe('number');
  expect((await get(servers[1], '/presence/connections/not-a-connection')).status).toBe(404);

  const groups = await get<{ groups: string[] }>(
    servers[1],
    `/presence/connections/${first.client.connection.connectionId}/groups`,
  );
  expect(groups.body.groups).toEqual(['room']);

  // ann has one connection on each server.
  const ann = await get<{ connections: { serverName: string }[] }>(servers[1], '/presence/users/ann');
  expect(ann.body.connections.map((connection) => connection.serverName).sort()).toEqual(
    sorted(await Promise.all(servers.map((server) => server.serverName()))),
  );

  const live = await get<{ servers: { serverName: string; connections: number }[] }>(servers[0], '/presence/servers');
  expect(live.body.servers.map((server) => server.connections)).toEqual([4, 4, 4]);
}, 60_000);

/** A management API request with a valid token. */
async function management(server: ServerProcess, method: string, pathAndQuery: string): Promise<Response> {
  const url = `${server.url}${pathAndQuery}`;
  return fetch(url, { method, headers: bearer(ACCESS_KEY, url) });
}

test('management API: group members listed paged with nextLink, existence checks answered across servers', async () => {
  const expected = sorted(members.map(({ client }) => client.connection.connectionId!));
  const listed: { connectionId: string; userId: string | null }[] = [];
  let next: string | null = `/api/hubs/${HUB}/groups/room/connections?api-version=2024-12-01&maxpagesize=5`;
  let pages = 0;
  while (next !== null) {
    const response = await management(servers[1], 'GET', next);
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      value: { connectionId: string; userId: string | null }[];
      nextLink: string | null;
    };
    expect(body.value.length).toBeLessThanOrEqual(5);
    listed.push(...body.value);
    next = body.nextLink;
    pages++;
  }
  expect(listed.map((member) => member.connectionId)).toEqual(expected);
  expect(pages).toBeGreaterThanOrEqual(3);
  const byId = new Map(members.map(({ client, user }) => [client.connection.connectionId!, user]));
  for (const member of listed) expect(member.userId).toBe(byId.get(member.connectionId));
  expect(
    (
      await management(
        servers[1],
        'GET',
        `/api/hubs/${HUB}/groups/room/connections?api-version=2024-12-01&maxpagesize=0`,
      )
    ).status,
  ).toBe(400);

  // Connections, users and groups of server A, checked on C, which has none of them.
  const onA = members.find(({ server, user }) => server === 0 && user !== 'ann')!;
  const id = onA.client.connection.connectionId!;
  expect(
    (await management(servers[2], 'HEAD', `/api/hubs/${HUB}/connections/${id}?api-version=2024-12-01`)).status,
  ).toBe(200);
  expect((await management(servers[2], 'GET', `/api/v1/hubs/${HUB}/connections/${id}`)).status).toBe(200);
  expect(
    (await management(servers[2], 'HEAD', `/api/hubs/${HUB}/users/${onA.user}?api-version=2024-12-01`)).status,
  ).toBe(200);
  expect(
    (await management(servers[2], 'HEAD', `/api/hubs/${HUB}/connections/nobody?api-version=2024-12-01`)).status,
  ).toBe(404);
  expect((await management(servers[2], 'HEAD', `/api/hubs/${HUB}/users/nobody?api-version=2024-12-01`)).status).toBe(
    404,
  );
  const lonely = await connect(0, 'lonely');
  await lonely.connection.invoke('JoinRoom', 'only-on-a');
  expect(
    (await management(servers[2], 'HEAD', `/api/hubs/${HUB}/groups/only-on-a?api-version=2024-12-01`)).status,
  ).toBe(200);
  expect(
    (await management(servers[2], 'HEAD', `/api/hubs/${HUB}/groups/empty-room?api-version=2024-12-01`)).status,
  ).toBe(404);

  // A user group through the API, with a ttl: the user's connection on A joins; checked and removed on C.
  expect(
    (
      await management(
        servers[2],
        'PUT',
        `/api/hubs/${HUB}/users/lonely/groups/api-group?api-version=2024-12-01&ttl=60`,
      )
    ).status,
  ).toBe(200);
  await within(SLACK_MS, 'lonely in api-group', async () => (await count(servers[1], 'api-group')) === 1);
  expect(
    (await management(servers[1], 'HEAD', `/api/hubs/${HUB}/users/lonely/groups/api-group?api-version=2024-12-01`))
      .status,
  ).toBe(200);
  expect(
    (
      await management(
        servers[1],
        'PUT',
        `/api/hubs/${HUB}/users/lonely/groups/api-group?api-version=2024-12-01&ttl=soon`,
      )
    ).status,
  ).toBe(400);
  expect((await management(servers[2], 'DELETE', `/api/v1/hubs/${HUB}/groups/api-group/users/lonely`)).status).toBe(
    200,
  );
  await within(SLACK_MS, 'lonely left api-group', async () => (await count(servers[1], 'api-group')) === 0);
  expect(
    (await management(servers[1], 'HEAD', `/api/hubs/${HUB}/users/lonely/groups/api-group?api-version=2024-12-01`))
      .status,
  ).toBe(404);
  await lonely.connection.stop();
}, 60_000);

test('the emitter reads the same presence, hears the events and manages user-level groups', async () => {
  const emitter = createEmitter({ redis: redis!.url, hub: HUB, presenceHeartbeatIntervalMs: HEARTBEAT_MS });
  try {
    await emitter.ready();
    expect(emitter.presence.scope).toBe('fleet');
    expect(await emitter.presence.group('room').count()).toBe(12);
    expect((await emitter.presence.servers()).map((server) => server.connections)).toEqual([4, 4, 4]);
    const events: PresenceEvent[] = [];
    emitter.presence.on('joined', (event) => events.push(event));
    await delay(100);
    await emitter.groups.addUserToGroup('ann', 'from-emitter', { ttlSeconds: 60 });
    // ann has a connection on each server: each joins, and the emitter hears all three.
    await within(
      SLACK_MS,
      "ann's three connections joined",
      async () => events.filter((event) => event.group === 'from-emitter').length === 3,
    );
    expect(new Set(events.map((event) => event.serverName)).size).toBe(3);
    expect(await emitter.presence.group('from-emitter').count()).toBe(3);
    await emitter.groups.removeUserFromGroup('ann', 'from-emitter');
    await within(
      SLACK_MS,
      'ann left from-emitter',
      async () => (await emitter.presence.group('from-emitter').count()) === 0,
    );
  } finally {
    await emitter.close();
  }
}, 30_000);

test('join and leave events are seen on every server', async () => {
  const client = await connect(1, 'eve');
  const id = client.connection.connectionId!;
  await client.connection.invoke('JoinRoom', 'events-room');
  await client.connection.invoke('LeaveRoom', 'events-room');
  await client.connection.stop();
  const wanted = ['connected', 'joined:events-room', 'left:events-room', 'disconnected'];
  for (const server of servers) {
    await within(SLACK_MS, `the events of ${id} on ${server.label}`, async () => {
      const { body } = await get<{ events: { type: string; connectionId: string; group?: string; userId?: string }[] }>(
        server,
        '/presence/events',
      );
      const seen = body.events
        .filter((event) => event.connectionId === id)
        .map((event) => (event.group === undefined ? event.type : `${event.type}:${event.group}`));
      return JSON.stringify(seen) === JSON.stringify(wanted);
    });
  }
}, 30_000);

test('a user-level group reaches a connection opened later on another server, until removed or expired', async () => {
  // Added on A before carol connects anywhere; her connection opens on C; B sends.
  await send(servers[0], 'PUT', '/presence/users/carol/groups/vip?ttl=60');
  const carol = await connect(2, 'carol');
  await carol.connection.invoke('SendToRoom', 'vip', 'x', 'vip-1');
  await within(SLACK_MS, 'carol gets vip-1', async () => texts(carol).includes('vip-1'));
  const groups = await get<{ groups: string[] }>(
    servers[1],
    `/presence/connections/${carol.connection.connectionId}/groups`,
  );
  expect(groups.body.groups).toEqual(['vip']);

  // Removed on B: carol's connection leaves; a later send misses her, a send to all after it still arrives.
  await send(servers[1], 'DELETE', '/presence/users/carol/groups/vip');
  await within(SLACK_MS, 'carol left vip', async () => (await count(servers[0], 'vip')) === 0);
  const other = await connect(0, 'other');
  await other.connection.invoke('SendToRoom', 'vip', 'x', 'vip-2');
  await other.connection.invoke('SendMessage', 'x', 'after-vip-2');
  await within(SLACK_MS, 'carol gets after-vip-2', async () => texts(carol).includes('after-vip-2'));
  expect(texts(carol)).not.toContain('vip-2');

  // With a TTL of 4 s: dave on B gets it now, dave's later connection on A too; after the TTL neither does.
  const dave = await connect(1, 'dave');
  await send(servers[2], 'PUT', `/presence/users/dave/groups/short?ttl=${SHORT_TTL_S}`);
  await within(SLACK_MS, 'dave joined short', async () => (await count(servers[2], 'short')) === 1);
  const daveLater = await connect(0, 'dave');
  await within(SLACK_MS, "dave's later connection joined short", async () => (await count(servers[2], 'short')) === 2);
  await other.connection.invoke('SendToRoom', 'short', 'x', 'short-1');
  await within(
    SLACK_MS,
    'both dave connections get short-1',
    async () => texts(dave).includes('short-1') && texts(daveLater).includes('short-1'),
  );
  await within(SHORT_TTL_S * 1000 + SLACK_MS, 'short expired', async () => (await count(servers[1], 'short')) === 0);
  const daveAfter = await connect(2, 'dave');
  await other.connection.invoke('SendToRoom', 'short', 'x', 'short-2');
  await other.connection.invoke('SendMessage', 'x', 'after-short-2');
  for (const client of [dave, daveLater, daveAfter]) {
    await within(SLACK_MS, 'dave gets after-short-2', async () => texts(client).includes('after-short-2'));
    expect(texts(client)).not.toContain('short-2');
  }
  for (const client of [carol, other, dave, daveLater, daveAfter]) await client.connection.stop();
}, 60_000);

test('after a Redis restart (empty), every server registers again what it holds', async () => {
  const expected = sorted(members.map(({ client }) => client.connection.connectionId!));
  await redis!.kill();
  await redis!.start();
  const took = await within(15_000, 'the room complete again on every server', async () => {
    for (const server of servers) {
      const { ids } = await listAll(server, 'room', 100).catch(() => ({ ids: [] as string[] }));
      if (JSON.stringify(ids) !== JSON.stringify(expected)) return false;
    }
    return true;
  });
  for (const server of servers) expect(await count(server, 'room')).toBe(12);
  console.log(`presence complete again ${took} ms after Redis came back (heartbeat ${HEARTBEAT_MS} ms)`);
}, 60_000);

test('kill -9 of one server: its connections leave every listing within the bound; its users keep their others', async () => {
  const [a, b, c] = servers;
  const aName = await a.serverName();
  const onA = sorted(members.filter(({ server }) => server === 0).map(({ client }) => client.connection.connectionId!));
  const rest = sorted(
    members.filter(({ server }) => server !== 0).map(({ client }) => client.connection.connectionId!),
  );
  a.signal('SIGKILL');
  await a.exited;
  const killedAt = Date.now();
  // Listings skip a dead server's connections once its heartbeat is three intervals old; its entries are removed
  // (counts included) by the next survivor's heartbeat.
  const took = await within(
    REMOVAL_BOUND_MS + SLACK_MS,
    "A's connections gone from B's and C's listings and counts",
    async () => {
      for (const server of [b, c]) {
        const { ids } = await listAll(server, 'room', 4);
        if (JSON.stringify(ids) !== JSON.stringify(rest)) return false;
        if ((await count(server, 'room')) !== rest.length) return false;
      }
      return true;
    },
  );
  const waited = Date.now() - killedAt;
  for (const id of onA) expect((await get(b, `/presence/connections/${id}`)).status).toBe(404);
  const ann = await get<{ connections: { connectionId: string }[] }>(c, '/presence/users/ann');
  expect(sorted(ann.body.connections.map((connection) => connection.connectionId))).toEqual(
    sorted(
      members
        .filter(({ user, server }) => user === 'ann' && server !== 0)
        .map(({ client }) => client.connection.connectionId!),
    ),
  );
  const live = await get<{ servers: { serverName: string }[] }>(b, '/presence/servers');
  expect(live.body.servers.map((server) => server.serverName)).not.toContain(aName);
  expect(live.body.servers).toHaveLength(2);
  // The removal published a disconnected event for each of A's connections.
  await within(SLACK_MS, "B saw A's connections disconnect", async () => {
    const { body } = await get<{ events: { type: string; connectionId: string }[] }>(b, '/presence/events');
    const gone = new Set(
      body.events.filter((event) => event.type === 'disconnected').map((event) => event.connectionId),
    );
    return onA.every((id) => gone.has(id));
  });
  console.log(
    `kill -9: gone from every listing ${took} ms after the kill was seen (${waited} ms); bound ${REMOVAL_BOUND_MS} ms`,
  );
  members = members.filter(({ server }) => server !== 0);
}, 60_000);
