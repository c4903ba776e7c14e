/**
 * Limits: options validated at startup with messages that name them; a client that stops reading is closed at the
 * outbound bound while server memory stays flat; an oversized message closes only its own connection; the
 * connection limit answers 503.
 */
import * as signalR from '@microsoft/signalr';
import Fastify from 'fastify';
import WebSocket from 'ws';
import { fastifySignalR, Hub } from '../../src';
import { ClientPool, delay, eventually } from '../support/clients';
import { liveBytes } from '../support/memory';
import { listen, startChatServer, type RunningServer } from '../support/servers';

const RS = '\u001e';

class NullHub extends Hub {}

describe('options are validated when the plugin registers', () => {
  test.each([
    [{ keepAliveIntervalMs: -1 }, 'keepAliveIntervalMs'],
    [{ maximumReceiveMessageSize: 0 }, 'maximumReceiveMessageSize'],
    [{ maximumBufferedOutboundBytes: -5 }, 'maximumBufferedOutboundBytes'],
    [{ transports: ['WebSockets', 'Carrier pigeon'] }, 'transports'],
    [{ allowedOrigins: ['not an origin'] }, 'allowedOrigins'],
    [{ maximumConnections: 1.5 }, 'maximumConnections'],
    [{ noSuchOption: true }, 'noSuchOption'],
  ])('%j fails naming %s', async (options, name) => {
    const app = Fastify();
    await expect(
      app.register(fastifySignalR, { hubs: [{ path: '/h', hub: NullHub }], ...(options as object) }),
    ).rejects.toThrow(name);
    await app.close();
  });

  test('a per-hub value is checked too', async () => {
    const app = Fastify();
    await expect(app.register(fastifySignalR, { hubs: [{ path: 'no-slash', hub: NullHub }] })).rejects.toThrow(/path/);
    await app.close();
  });
});

describe('a client that does not read', () => {
  let server: RunningServer;
  const pool = new ClientPool(() => server.hubUrl);
  const LIMIT = 256 * 1024;
  beforeAll(async () => {
    server = await startChatServer({ maximumBufferedOutboundBytes: LIMIT });
  });
  afterAll(async () => {
    await pool.stopAll();
    await server.close();
  });

  test('is closed at the bound while the server broadcasts, server memory stays flat, and readers get everything', async () => {
    const reader = await pool.connect({}, []);
    let delivered = 0;
    reader.connection.on('ReceiveMessage', () => {
      delivered++;
    });
    // A raw client that completes its handshake and then never reads again.
    const stalled = new WebSocket(server.hubUrl.replace('http', 'ws'));
    await new Promise((resolve) => stalled.once('open', resolve));
    stalled.send(`{"protocol":"json","version":1}${RS}`);
    await new Promise((resolve) => stalled.once('message', resolve));
    (stalled as unknown as { _socket: { pause(): void } })._socket.pause();
    const endpoint = server.app.signalr.endpoints[0];
    expect(endpoint.connectionCount).toBe(2);

    const context = server.app.signalr.hub('/chathub');
    const payload = 'p'.repeat(16 * 1024);
    const rounds = 4000; // 64 MiB for each client
    let closedAfter: number | undefined;
    const before = liveBytes();
    for (let i = 0; i < rounds; i++) {
      await context.clients.all.send('ReceiveMessage', 'server', payload);
      // Paced in turns of 128 KiB, within the bound, and by the reader: a turn goes once the reader has all but the
      // last turn, so a client that reads keeps up however busy the host is (the stalled one never reads at all).
      if (i % 8 === 7) {
        await delay(1);
        await eventually(() => delivered >= i - 7, 'the reader to keep within one turn', 20_000);
      }
      if (closedAfter === undefined && endpoint.connectionCount === 1) closedAfter = i;
    }
    await eventually(() => delivered === rounds, `the reader got all ${rounds} (has ${delivered})`, 30_000);
    const after = liveBytes();
    stalled.terminate();
    // The stalled client was cut long before the end: what the server held for it stayed near the bound (plus
    // what the kernel's socket buffers absorbed), not the 64 MiB it was sent.
    expect(closedAfter).toBeDefined();
    expect(closedAfter!).toBeLessThan(rounds / 2);
    expect(after - before).toBeLessThan(8 * 1024 * 1024);
  }, 60_000);
});

test("an oversized message closes that connection with .NET's error; other connections do not notice", async () => {
  const server = await startChatServer();
  const pool = new ClientPool(() => server.hubUrl);
  try {
    const sender = await pool.connect();
    const bystander = await pool.connect();
    const failure = sender.connection.invoke('Echo', 'x'.repeat(40 * 1024)).catch((error: Error) => error);
    expect(await sender.closed).toEqual(
      new Error('Server returned an error on close: Connection closed with an error.'),
    );
    expect(String(await failure)).toMatch(/Server returned an error on close: Connection closed with an error\./);
    expect(await bystander.connection.invoke('Echo', 'fine')).toBe('fine');
    expect(bystander.connection.state).toBe(signalR.HubConnectionState.Connected);
  } finally {
    await pool.stopAll();
    await server.close();
  }
});

test('past maximumConnections, negotiate and direct WebSockets get 503; a freed place is taken again', async () => {
  const app = Fastify();
  await app.register(fastifySignalR, { hubs: [{ path: '/h', hub: NullHub }], maximumConnections: 2 });
  const server = await listen(app, '/h');
  const pool = new ClientPool(() => server.hubUrl);
  try {
    const first = await pool.connect({}, []);
    await pool.connect({}, []);
    const refused = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' });
    expect([refused.status, await refused.text()]).toEqual([
      503,
      'The server has reached its maximum number of connections.',
    ]);
    await expect(
      pool.connect({ skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets }, []),
    ).rejects.toThrow();
    await first.connection.stop();
    await eventually(() => server.app.signalr.endpoints[0].connections.size === 1, 'a place is free');
    await pool.connect({}, []);
  } finally {
    await pool.stopAll();
    await server.close();
  }
});
