/**
 * Invocations with the real @microsoft/signalr client over real WebSockets: results of every JSON type, .NET's
 * error texts, detailed errors, connect with negotiate v1 and with skipNegotiation.
 */
import { HttpTransportType } from '@microsoft/signalr';
import Fastify from 'fastify';
import { z } from 'zod';
import { fastifySignalR, Hub } from '../../src';
import { ClientPool, delay } from '../support/clients';
import { listen, startChatServer, type RunningServer } from '../support/servers';

let server: RunningServer;
let detailed: RunningServer;
const clients = new ClientPool(() => server.hubUrl);
const detailedClients = new ClientPool(() => detailed.hubUrl);

beforeAll(async () => {
  server = await startChatServer();
  detailed = await startChatServer({ enableDetailedErrors: true });
});
afterAll(async () => {
  await clients.stopAll();
  await detailedClients.stopAll();
  await server.close();
  await detailed.close();
});

describe('connecting', () => {
  test('with negotiate v1: the client gets the public id, not the token', async () => {
    const { connection } = await clients.connect();
    expect(connection.connectionId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(await connection.invoke('Echo', 'hi')).toBe('hi');
  });

  test('with a trailing slash on the hub URL, which ASP.NET Core routes like the URL without it', async () => {
    const slashed = new ClientPool(() => `${server.hubUrl}/`);
    try {
      const { connection } = await slashed.connect();
      expect(await connection.invoke('Echo', 'slash')).toBe('slash');
    } finally {
      await slashed.stopAll();
    }
  });

  test('with skipNegotiation over WebSockets', async () => {
    const { connection } = await clients.connect({ skipNegotiation: true, transport: HttpTransportType.WebSockets });
    expect(connection.connectionId).toBeNull();
    expect(await connection.invoke('Echo', 'direct')).toBe('direct');
  });
});

describe('results', () => {
  test.each([
    ['string', 'héllo ✓'],
    ['integer', 42],
    ['negative float', -3.25],
    ['boolean', false],
    ['null', null],
    ['array', [1, 'two', [3], { four: 4 }]],
    ['object', { a: { b: { c: [true, null] } } }],
    ['empty string', ''],
  ])('Echo returns a %s unchanged', async (_kind, value) => {
    const { connection } = await clients.connect();
    expect(await connection.invoke('Echo', value)).toEqual(value);
  });

  test('a void method completes with result null', async () => {
    const { connection } = await clients.connect();
    expect(await connection.invoke('JoinRoom', 'r')).toBeNull();
  });

  test('method names are matched case-insensitively', async () => {
    const { connection } = await clients.connect();
    expect(await connection.invoke('ECHO', 1)).toBe(1);
    expect(await connection.invoke('echo', 2)).toBe(2);
  });

  test('send (no invocation id) gets no completion but runs', async () => {
    const { connection, inbox } = await clients.connect();
    await connection.send('SendMessage', 'me', 'fire and forget');
    expect(await inbox('ReceiveMessage').waitFor(1)).toContainEqual(['me', 'fire and forget']);
  });
});

describe('errors, as .NET words them', () => {
  test('unknown method', async () => {
    const { connection } = await clients.connect();
    await expect(connection.invoke('NoSuchMethod', 1)).rejects.toThrow(
      "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.",
    );
  });

  test('wrong argument count: generic text without detailed errors', async () => {
    const { connection } = await clients.connect();
    await expect(connection.invoke('Echo', 1, 2)).rejects.toThrow(
      /^Failed to invoke 'Echo' due to an error on the server\.$/,
    );
  });

  test('wrong argument count: the reason with detailed errors', async () => {
    const { connection } = await detailedClients.connect();
    await expect(connection.invoke('Echo')).rejects.toThrow(
      "Failed to invoke 'Echo' due to an error on the server. InvalidDataException: Invocation provides 0 argument(s) but target expects 1.",
    );
  });

  test('a HubException passes its message', async () => {
    const { connection } = await clients.connect();
    await expect(connection.invoke('Fail', 'not allowed today')).rejects.toThrow(
      "An unexpected error occurred invoking 'Fail' on the server. HubException: not allowed today",
    );
  });

  test('any other error stays on the server unless detailed errors are enabled', async () => {
    const { connection } = await clients.connect();
    const error = await connection.invoke('Crash').catch((e: Error) => e);
    expect((error as Error).message).toBe("An unexpected error occurred invoking 'Crash' on the server.");
    const { connection: verbose } = await detailedClients.connect();
    await expect(verbose.invoke('Crash')).rejects.toThrow(
      /^An unexpected error occurred invoking 'Crash' on the server\. Error: .*secret detail/,
    );
  });

  test('the connection stays usable after failed invocations', async () => {
    const { connection } = await clients.connect();
    await expect(connection.invoke('Crash')).rejects.toThrow();
    await expect(connection.invoke('Nope')).rejects.toThrow();
    expect(await connection.invoke('Echo', 'still here')).toBe('still here');
  });
});

describe('argument schemas', () => {
  class TypedHub extends Hub {
    static override schemas = {
      add: [z.number(), z.number()],
      shout: [z.string().min(1)],
      fragile: [
        z.string().transform((text) => {
          if (text === 'bad') throw new Error('transform failed');
          return text;
        }),
      ],
    };
    add(a: number, b: number): number {
      return a + b;
    }
    shout(text: string): string {
      return text.toUpperCase();
    }
    fragile(text: string): string {
      return text;
    }
  }
  let typed: RunningServer;
  const typedClients = new ClientPool(() => typed.hubUrl);
  beforeAll(async () => {
    const app = Fastify();
    await app.register(fastifySignalR, { hubs: [{ path: '/typed', hub: TypedHub }], enableDetailedErrors: true });
    typed = await listen(app, '/typed');
  });
  afterAll(async () => {
    await typedClients.stopAll();
    await typed.close();
  });

  test('valid arguments reach the method', async () => {
    const { connection } = await typedClients.connect();
    expect(await connection.invoke('Add', 2, 3)).toBe(5);
  });

  test("an argument of the wrong type fails binding with .NET's text", async () => {
    const { connection } = await typedClients.connect();
    await expect(connection.invoke('Add', 2, 'three')).rejects.toThrow(
      "Failed to invoke 'Add' due to an error on the server. InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.",
    );
    await expect(connection.invoke('Shout', '')).rejects.toThrow(/Error binding arguments/);
  });

  test('a schema that throws rejects the argument like any bad argument; the connection goes on', async () => {
    const { connection } = await typedClients.connect();
    expect(await connection.invoke('Fragile', 'good')).toBe('good');
    await expect(connection.invoke('Fragile', 'bad')).rejects.toThrow(
      "Failed to invoke 'Fragile' due to an error on the server. InvalidDataException: Error binding arguments.",
    );
    expect(await connection.invoke('Add', 1, 1)).toBe(2);
  });
});

describe('hub lifecycle and invocation order', () => {
  const events: string[] = [];
  class LifecycleHub extends Hub {
    override async onConnected() {
      events.push(`connected ${this.context.connectionId} ${this.context.userIdentifier}`);
      await this.clients.caller.send('Welcome', this.context.connectionId);
    }
    override async onDisconnected(error?: Error) {
      events.push(`disconnected ${this.context.connectionId} ${error === undefined ? 'clean' : 'error'}`);
    }
    async slow(ms: number, tag: string) {
      events.push(`start ${tag}`);
      await delay(ms);
      events.push(`end ${tag}`);
      return tag;
    }
    remember(value: string) {
      this.context.items.set('value', value);
    }
    recall() {
      return this.context.items.get('value');
    }
  }
  let app: RunningServer;
  const pool = new ClientPool(() => app.hubUrl);
  beforeAll(async () => {
    const fastify = Fastify();
    await fastify.register(fastifySignalR, { hubs: [{ path: '/life', hub: LifecycleHub }] });
    app = await listen(fastify, '/life');
  });
  afterAll(async () => {
    await pool.stopAll();
    await app.close();
  });

  test('onConnected runs before the first invocation and can send to the caller', async () => {
    const client = await pool.connect({}, ['Welcome']);
    const [[id]] = await client.inbox('Welcome').waitFor(1);
    expect(id).toBe(client.connection.connectionId);
    expect(events).toContain(`connected ${id} undefined`);
  });

  test('onDisconnected runs once when the client stops', async () => {
    const client = await pool.connect({}, ['Welcome']);
    const id = client.connection.connectionId;
    await client.connection.stop();
    await delay(100);
    expect(events.filter((event) => event === `disconnected ${id} clean`)).toHaveLength(1);
  });

  test('with one invocation slot, invocations of a client run one after another, in order', async () => {
    const { connection } = await pool.connect({}, []);
    const results = await Promise.all([
      connection.invoke('Slow', 60, 'a'),
      connection.invoke('Slow', 10, 'b'),
      connection.invoke('Slow', 1, 'c'),
    ]);
    expect(results).toEqual(['a', 'b', 'c']);
    const order = events.filter((event) => /^(start|end) [abc]$/.test(event));
    expect(order).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });

  test('context.items lives as long as the connection', async () => {
    const { connection } = await pool.connect({}, []);
    await connection.invoke('Remember', 'kept');
    expect(await connection.invoke('Recall')).toBe('kept');
  });
});

describe('context.httpRequest', () => {
  class RequestHub extends Hub {
    describeRequest() {
      const request = this.context.httpRequest;
      return {
        method: request.method,
        path: request.url.split('?')[0],
        header: request.headers['x-tenant'],
        query: (request.query as Record<string, string>).room,
        ip: request.ip,
        user: request.user,
        sameUser: request.user === this.context.user,
      };
    }
  }
  let app: RunningServer;
  const pool = new ClientPool(() => app.hubUrl);
  beforeAll(async () => {
    const fastify = Fastify();
    fastify.addHook('onRequest', async (request) => {
      (request as { user?: unknown }).user = { sub: 'carol', tenant: request.headers['x-tenant'] };
    });
    await fastify.register(fastifySignalR, { hubs: [{ path: '/request', hub: RequestHub }] });
    app = await listen(fastify, '/request');
  });
  afterAll(async () => {
    await pool.stopAll();
    await app.close();
  });

  test.each([
    ['WebSockets', HttpTransportType.WebSockets],
    ['ServerSentEvents', HttpTransportType.ServerSentEvents],
    ['LongPolling', HttpTransportType.LongPolling],
  ])(
    'over %s holds the headers, query, address and user of the request that started the transport',
    async (_name, transport) => {
      const { connection } = await pool.connect(
        { transport, query: 'room=lobby', headers: { 'x-tenant': 'blue' } },
        [],
      );
      expect(await connection.invoke('DescribeRequest')).toEqual({
        method: 'GET',
        path: '/request',
        header: 'blue',
        query: 'lobby',
        ip: '127.0.0.1',
        user: { sub: 'carol', tenant: 'blue' },
        sameUser: true,
      });
    },
  );
});
