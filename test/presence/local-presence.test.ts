/**
 * Presence without the Redis backplane: `app.signalr.hub(…).presence` and a hub's `this.presence` answer for this
 * server's connections and say so (`scope: 'local'`); events are this server's; user-level groups are refused with a
 * message naming what they need.
 */
import { HttpTransportType } from '@microsoft/signalr';
import Fastify, { type FastifyInstance } from 'fastify';
import { fastifySignalR, Hub, type PresenceEvent } from '../../src/index';
import { ClientPool, eventually } from '../support/clients';

class RoomHub extends Hub {
  async join(room: string): Promise<void> {
    await this.groups.addToGroup(this.context.connectionId, room);
  }
  async leave(room: string): Promise<void> {
    await this.groups.removeFromGroup(this.context.connectionId, room);
  }
  /** What a hub sees of presence: the scope and the size of a room. */
  async roomSize(room: string): Promise<{ scope: string; count: number }> {
    return { scope: this.presence.scope, count: await this.presence.group(room).count() };
  }
  async joinMyUserGroup(room: string): Promise<void> {
    await this.groups.addUserToGroup(this.context.userIdentifier ?? '', room, { ttlSeconds: 10 });
  }
}

let app: FastifyInstance;
let pool: ClientPool;

beforeAll(async () => {
  app = Fastify();
  await app.register(fastifySignalR, {
    hubs: [
      {
        path: '/rooms',
        hub: RoomHub,
        userIdProvider: (request) => (request.query as Record<string, string>).user,
      },
    ],
  });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  pool = new ClientPool(() => `${base}/rooms`);
});

afterAll(async () => {
  await pool.stopAll();
  await app.close();
});

test('listings, counts, connection info and events of this server, in local scope', async () => {
  const presence = app.signalr.hub(RoomHub).presence;
  const events: PresenceEvent[] = [];
  for (const type of ['connected', 'disconnected', 'joined', 'left'] as const)
    presence.on(type, (event) => events.push(event));

  const clients = [];
  for (let index = 0; index < 5; index++) {
    const client = await pool.connect({
      transport: index === 0 ? HttpTransportType.ServerSentEvents : HttpTransportType.WebSockets,
      query: `user=${index < 2 ? 'ann' : `u${index}`}`,
    });
    await client.connection.invoke('Join', 'room');
    clients.push(client);
  }
  const ids = clients.map((client) => client.connection.connectionId!).sort();
  expect(presence.scope).toBe('local');

  const listed: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await presence.group('room').connections({ limit: 2, ...(cursor !== undefined && { cursor }) });
    expect(page.connections.length).toBeLessThanOrEqual(2);
    listed.push(...page.connections.map((member) => member.connectionId));
    cursor = page.cursor;
  } while (cursor !== undefined);
  expect(listed).toEqual(ids);
  expect(await presence.group('room').count()).toBe(5);
  expect(await clients[0].connection.invoke('RoomSize', 'room')).toEqual({ scope: 'local', count: 5 });

  const first = await presence.connection(clients[0].connection.connectionId!);
  expect(first).toMatchObject({ userId: 'ann', serverName: 'local', transport: 'ServerSentEvents', protocol: 'json' });
  expect((await presence.user('ann').connections()).map((connection) => connection.connectionId).sort()).toEqual(
    [clients[0].connection.connectionId!, clients[1].connection.connectionId!].sort(),
  );
  expect(await presence.groupsOf(clients[2].connection.connectionId!)).toEqual(['room']);
  expect(await presence.servers()).toEqual([expect.objectContaining({ serverName: 'local', connections: 5 })]);

  const leaving = clients[4];
  const leavingId = leaving.connection.connectionId!;
  await leaving.connection.invoke('Leave', 'room');
  await leaving.connection.stop();
  await eventually(
    () => events.some((event) => event.type === 'disconnected' && event.connectionId === leavingId),
    'the disconnected event',
  );
  expect(events.filter((event) => event.connectionId === leavingId).map((event) => event.type)).toEqual([
    'connected',
    'joined',
    'left',
    'disconnected',
  ]);
  expect(await presence.connection(leavingId)).toBeUndefined();
  expect(await presence.group('room').count()).toBe(4);
});

test('user-level groups without presence on the backplane are refused, naming the option', async () => {
  const client = await pool.connect({ transport: HttpTransportType.WebSockets, query: 'user=zed' });
  await expect(client.connection.invoke('JoinMyUserGroup', 'vip')).rejects.toThrow(/unexpected error/);
  await expect(app.signalr.hub(RoomHub).groups.addUserToGroup('zed', 'vip')).rejects.toThrow(/presence: true/);
});
