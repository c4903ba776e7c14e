/**
 * Hub URLs match in any letter case, as in ASP.NET Core's endpoint routing: the official client configured with
 * `/ChatHub` (or `/CHATHUB/`) reaches the hub mapped at `/chathub` on every transport, on the reference server and
 * on ours alike; the application's other routes stay case-sensitive on ours.
 */
import * as signalR from '@microsoft/signalr';
import Fastify, { type FastifyInstance } from 'fastify';
import { ClientPool } from '../support/clients';
import { startReferenceServer, type ReferenceServer } from '../support/dotnet-reference';
import { listen, startChatServer, type RunningServer } from '../support/servers';
import { ALL_CLIENT_COMBINATIONS } from '../support/matrix';
import { fastifySignalR, Hub } from '../../src/index';

jest.setTimeout(120_000);

let reference: ReferenceServer;
let ours: RunningServer;

beforeAll(async () => {
  [reference, ours] = await Promise.all([startReferenceServer({ MESSAGEPACK: 'true' }), startChatServer()]);
});

afterAll(async () => {
  await Promise.allSettled([reference?.stop(), ours?.close()]);
});

const servers = () => [
  { name: 'ASP.NET Core', url: reference.url },
  { name: 'fastify-signalr', url: ours.url },
];

/** What a raw request answers: status, and the negotiate body's shape when it is one. */
async function observe(url: string, init: RequestInit): Promise<{ status: number; body: string }> {
  const response = await fetch(url, init);
  const text = await response.text();
  let body = text;
  try {
    const json = JSON.parse(text) as Record<string, unknown>;
    // Ids differ between servers and runs; what matters is that the hub answered.
    body = Object.keys(json).sort().join(',');
  } catch {
    // not JSON: compared as it is
  }
  return { status: response.status, body };
}

describe.each(ALL_CLIENT_COMBINATIONS)('$name', ({ transport, protocol }) => {
  test.each(['/ChatHub', '/CHATHUB/'])(
    'the official client at %s reaches /chathub and gets answers',
    async (hubPath) => {
      const seen: Record<string, unknown> = {};
      for (const server of servers()) {
        const pool = new ClientPool(() => `${server.url}${hubPath}`);
        try {
          const client = await pool.connect({ transport, protocol });
          const echoed = await client.connection.invoke('Echo', `hello ${hubPath}`);
          await client.connection.invoke('SendMessage', 'me', 'to all');
          const [message] = await client.inbox('ReceiveMessage').waitFor(1);
          seen[server.name] = { echoed, message };
        } finally {
          await pool.stopAll();
        }
      }
      expect(seen['fastify-signalr']).toEqual(seen['ASP.NET Core']);
      expect(seen['fastify-signalr']).toEqual({ echoed: `hello ${hubPath}`, message: ['me', 'to all'] });
    },
  );
});

test('negotiate and transport requests in another letter case get the same answers from both servers', async () => {
  const requests: Array<[string, RequestInit]> = [
    ['/CHATHUB/NEGOTIATE?negotiateVersion=1', { method: 'POST' }],
    ['/ChatHub/Negotiate/?negotiateVersion=1', { method: 'POST' }],
    ['/chatHUB/negotiate', { method: 'GET' }],
    ['/ChatHub?id=unknown', { method: 'GET' }],
    ['/ChatHub', { method: 'GET' }],
    ['/ChatHub?id=unknown', { method: 'DELETE' }],
  ];
  for (const [path, init] of requests) {
    const [expected, actual] = await Promise.all([
      observe(`${reference.url}${path}`, init),
      observe(`${ours.url}${path}`, init),
    ]);
    expect({ path, method: init.method, ...actual }).toEqual({ path, method: init.method, ...expected });
  }
  // Not the hub: a longer path in another case is no hub URL on either server (the bodies are each framework's 404).
  const notHub = '/ChatHubs/negotiate';
  const statuses = await Promise.all(
    [reference.url, ours.url].map(async (url) => (await fetch(`${url}${notHub}`, { method: 'POST' })).status),
  );
  expect(statuses).toEqual([404, 404]);
});

describe('the application’s own routes', () => {
  let app: FastifyInstance;
  let server: RunningServer;

  class EchoHub extends Hub {
    echo(value: unknown): unknown {
      return value;
    }
  }

  beforeAll(async () => {
    app = Fastify({ logger: false });
    await app.register(fastifySignalR, { hubs: [{ path: '/Api/Echo', hub: EchoHub }] });
    app.get('/status', async () => 'fine');
    server = await listen(app, '/Api/Echo');
  });

  afterAll(async () => {
    await server?.close();
  });

  test('stay case-sensitive, while a hub mapped with capitals matches in any case', async () => {
    expect((await fetch(`${server.url}/status`)).status).toBe(200);
    expect((await fetch(`${server.url}/STATUS`)).status).toBe(404);

    const connection = new signalR.HubConnectionBuilder()
      .withUrl(`${server.url}/api/echo`, { transport: signalR.HttpTransportType.WebSockets })
      .configureLogging(signalR.LogLevel.None)
      .build();
    try {
      await connection.start();
      expect(await connection.invoke('Echo', 'lower-case URL')).toBe('lower-case URL');
    } finally {
      await connection.stop();
    }
  });
});
