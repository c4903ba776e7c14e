/**
 * The real client forced to each transport (docs/protocol.md §1.5–§1.7): connect, invoke, receive broadcasts and group
 * messages, stop cleanly and be cleaned up on the server; negotiate lists only the enabled transports and the client
 * falls back from WebSockets to Server-Sent Events to long polling as ASP.NET Core's clients do.
 */
import { HttpTransportType } from '@microsoft/signalr';
import Fastify from 'fastify';
import { fastifySignalR, Hub } from '../../src';
import { ClientPool, eventually } from '../support/clients';
import { listen, startChatServer, type RunningServer } from '../support/servers';

const TRANSPORTS = [
  ['WebSockets', HttpTransportType.WebSockets],
  ['ServerSentEvents', HttpTransportType.ServerSentEvents],
  ['LongPolling', HttpTransportType.LongPolling],
] as const;

describe.each(TRANSPORTS)('%s', (name, transport) => {
  let server: RunningServer;
  const pool = new ClientPool(() => server.hubUrl);
  beforeAll(async () => {
    server = await startChatServer();
  });
  afterAll(async () => {
    await pool.stopAll();
    await server.close();
  });

  test('connects, invokes, receives broadcasts and group messages, and stops cleanly', async () => {
    const a = await pool.connect({ transport, query: 'user=a' });
    const b = await pool.connect({ transport, query: 'user=b' });
    const endpoint = server.app.signalr.endpoints[0];
    expect(endpoint.connections.countByTransport()[name]).toBe(2);
    expect(await a.connection.invoke('Echo', { nested: ['ok', 1] })).toEqual({ nested: ['ok', 1] });
    expect(await b.connection.invoke('WhoAmI')).toBe('b');
    await a.connection.invoke('SendMessage', 'a', 'hello all');
    await b.connection.invoke('JoinRoom', 'room');
    await a.connection.invoke('SendToRoom', 'room', 'a', 'hello room');
    expect(await b.inbox('ReceiveMessage').waitFor(2)).toEqual([
      ['a', 'hello all'],
      ['a', 'hello room'],
    ]);
    expect(await a.inbox('ReceiveMessage').waitFor(1)).toEqual([['a', 'hello all']]);
    await a.connection.stop();
    await b.connection.stop();
    await expect(a.closed).resolves.toBeUndefined();
    await eventually(
      () => endpoint.connectionCount === 0 && endpoint.connections.size === 0,
      'the server forgets both connections',
    );
  });

  test('many messages in both directions arrive in order', async () => {
    const client = await pool.connect({ transport });
    const sends = Array.from({ length: 50 }, (_, i) =>
      client.connection.invoke('SendToConnection', client.connection.connectionId, 'me', `m${i}`),
    );
    await Promise.all(sends);
    const received = await client.inbox('ReceiveMessage').waitFor(50);
    expect(received.map(([, message]) => message)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
  });
});

describe('transport negotiation and fallback', () => {
  const servers: RunningServer[] = [];
  const pools: ClientPool[] = [];
  afterAll(async () => {
    await Promise.all(pools.map((pool) => pool.stopAll()));
    await Promise.all(servers.map((server) => server.close()));
  });

  async function serverWith(transports: Array<'WebSockets' | 'ServerSentEvents' | 'LongPolling'>) {
    const server = await startChatServer({ transports });
    servers.push(server);
    const pool = new ClientPool(() => server.hubUrl);
    pools.push(pool);
    return { server, pool, endpoint: server.app.signalr.endpoints[0] };
  }

  test("negotiate lists only the enabled transports, in .NET's order whatever the option order", async () => {
    const { server } = await serverWith(['LongPolling', 'WebSockets']);
    const response = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' });
    expect((await response.json()).availableTransports).toEqual([
      { transport: 'WebSockets', transferFormats: ['Text', 'Binary'] },
      { transport: 'LongPolling', transferFormats: ['Text', 'Binary'] },
    ]);
  });

  test('without WebSockets the default client falls back to Server-Sent Events', async () => {
    const { pool, endpoint } = await serverWith(['ServerSentEvents', 'LongPolling']);
    const client = await pool.connect();
    expect(await client.connection.invoke('Echo', 'sse')).toBe('sse');
    expect(endpoint.connections.countByTransport()).toEqual({ WebSockets: 0, ServerSentEvents: 1, LongPolling: 0 });
  });

  test('without WebSockets and Server-Sent Events it falls back to long polling', async () => {
    const { pool, endpoint } = await serverWith(['LongPolling']);
    const client = await pool.connect();
    expect(await client.connection.invoke('Echo', 'lp')).toBe('lp');
    expect(endpoint.connections.countByTransport()).toEqual({ WebSockets: 0, ServerSentEvents: 0, LongPolling: 1 });
  });

  test("a request for a disabled transport gets .NET's 404", async () => {
    const { server } = await serverWith(['LongPolling']);
    const { connectionToken } = await (
      await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' })
    ).json();
    const response = await fetch(`${server.hubUrl}?id=${connectionToken}`, {
      headers: { accept: 'text/event-stream' },
    });
    expect(response.status).toBe(404);
    expect(await response.text()).toBe('ServerSentEvents transport not supported by this end point type');
  });

  test("a client forced to a disabled transport fails to start with the client's message", async () => {
    const { pool } = await serverWith(['LongPolling']);
    await expect(pool.connect({ transport: HttpTransportType.WebSockets })).rejects.toThrow(
      /Unable to connect to the server with any of the available transports/,
    );
  });
});

describe('onDisconnected runs once per connection, whatever the transport', () => {
  const ended: string[] = [];
  class CountingHub extends Hub {
    override onDisconnected(): void {
      ended.push(this.context.connectionId);
    }
  }
  let server: RunningServer;
  const pool = new ClientPool(() => server.hubUrl);
  beforeAll(async () => {
    const app = Fastify();
    await app.register(fastifySignalR, { hubs: [{ path: '/count', hub: CountingHub }] });
    server = await listen(app, '/count');
  });
  afterAll(async () => {
    await pool.stopAll();
    await server.close();
  });

  test.each(TRANSPORTS)('%s', async (_name, transport) => {
    const client = await pool.connect({ transport }, []);
    const id = client.connection.connectionId!;
    await client.connection.stop();
    await eventually(() => ended.includes(id), 'onDisconnected ran');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(ended.filter((entry) => entry === id)).toHaveLength(1);
  });
});
