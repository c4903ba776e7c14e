/**
 * Authentication and authorization through ordinary Fastify hooks (`@fastify/jwt` here): a JWT from the official
 * client's `accessTokenFactory` authenticates on every transport (header, or `access_token` in the query where the
 * client cannot set headers); no or a bad token is 401 on negotiate; `userIdentifier` comes from the token and
 * `clients.user` reaches every connection of that user; a forbidden method fails with .NET's text; one user's
 * token cannot drive another user's connection; a `userIdProvider` or `authenticationExpiration` that throws is
 * logged and means no user and no expiry, on hubs and raw endpoints alike.
 */
import fastifyJwt from '@fastify/jwt';
import * as signalR from '@microsoft/signalr';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { fastifySignalR, Hub, type HubCallerContext } from '../../src';
import { ClientPool, delay, eventually } from '../support/clients';
import { RawWebSocket } from '../support/raw-websocket';
import { listen, type RunningServer } from '../support/servers';

const SECRET = 'a test secret that is long enough for HS256';
const RS = '\u001e';

interface Claims {
  sub: string;
  role?: string;
}

class SecureHub extends Hub {
  static override authorize = {
    adminOnly: (context: HubCallerContext) => (context.user as Claims | undefined)?.role === 'admin',
    slowCheck: async (context: HubCallerContext) => {
      await delay(5);
      return (context.user as Claims | undefined)?.role === 'admin';
    },
  };
  whoAmI(): string | null {
    return this.context.userIdentifier ?? null;
  }
  adminOnly(): string {
    return 'secret';
  }
  slowCheck(): string {
    return 'checked';
  }
  async notifyUser(userId: string, text: string): Promise<void> {
    await this.clients.user(userId).send('Notice', text);
  }
}

let server: RunningServer;
let sign: (claims: Claims) => string;

beforeAll(async () => {
  const app = Fastify();
  await app.register(fastifyJwt, { secret: SECRET });
  sign = (claims) => app.jwt.sign(claims);
  await app.register(fastifySignalR, {
    hubs: [
      {
        path: '/secure',
        hub: SecureHub,
        // Authentication: any Fastify hook. This one is the usual @fastify/jwt pattern.
        onRequest: async (request: FastifyRequest, reply: FastifyReply) => {
          try {
            await request.jwtVerify();
          } catch {
            return reply.code(401).send();
          }
        },
        // Hub-wide authorization after authentication.
        authorize: (request) => (request.user as Claims).role !== 'banned',
      },
    ],
  });
  server = await listen(app, '/secure');
});
afterAll(() => server.close());

const pool = new ClientPool(() => server.hubUrl);
afterEach(() => pool.stopAll());

const TRANSPORTS = [
  ['WebSockets', signalR.HttpTransportType.WebSockets],
  ['ServerSentEvents', signalR.HttpTransportType.ServerSentEvents],
  ['LongPolling', signalR.HttpTransportType.LongPolling],
] as const;

test.each(TRANSPORTS)('a JWT from accessTokenFactory authenticates over %s', async (_name, transport) => {
  const client = await pool.connect({ transport, accessTokenFactory: () => sign({ sub: 'alice' }) }, []);
  expect(await client.connection.invoke('WhoAmI')).toBe('alice');
});

test('negotiate without a token, or with a bad one, is 401', async () => {
  const missing = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' });
  expect(missing.status).toBe(401);
  const bad = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, {
    method: 'POST',
    headers: { authorization: 'Bearer not.a.jwt' },
  });
  expect(bad.status).toBe(401);
  // Change the first character of the signature (the last one may only carry padding bits).
  const [header, payload, signature] = sign({ sub: 'alice' }).split('.');
  const forged = `${header}.${payload}.${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
  const tampered = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, {
    method: 'POST',
    headers: { authorization: `Bearer ${forged}` },
  });
  expect(tampered.status).toBe(401);
  await expect(pool.connect({}, [])).rejects.toThrow(/401/);
});

test('a WebSocket without a token is refused with 401 before the upgrade; access_token in the query is accepted', async () => {
  expect((await RawWebSocket.refused(server.hubUrl)).status).toBe(401);
  const socket = await RawWebSocket.connect(
    `${server.hubUrl}?access_token=${encodeURIComponent(sign({ sub: 'query-user' }))}`,
  );
  try {
    socket.send(
      `{"protocol":"json","version":1}${RS}{"type":1,"invocationId":"1","target":"WhoAmI","arguments":[]}${RS}`,
    );
    await socket.frame(0);
    const text = () => socket.frames.map((frame) => frame.text).join('');
    for (let i = 1; !text().includes('"type":3'); i++) await socket.frame(i);
    expect(text()).toContain('{"type":3,"invocationId":"1","result":"query-user"}');
  } finally {
    socket.close();
  }
});

test('an authenticated user the hub does not allow gets 403', async () => {
  const response = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, {
    method: 'POST',
    headers: { authorization: `Bearer ${sign({ sub: 'mallory', role: 'banned' })}` },
  });
  expect(response.status).toBe(403);
});

test('clients.user reaches every connection of that user, on any transport', async () => {
  const aliceWs = await pool.connect({ accessTokenFactory: () => sign({ sub: 'alice' }) }, ['Notice']);
  const aliceLp = await pool.connect(
    { transport: signalR.HttpTransportType.LongPolling, accessTokenFactory: () => sign({ sub: 'alice' }) },
    ['Notice'],
  );
  const bob = await pool.connect({ accessTokenFactory: () => sign({ sub: 'bob' }) }, ['Notice']);
  await bob.connection.invoke('NotifyUser', 'alice', 'for alice');
  expect(await aliceWs.inbox('Notice').waitFor(1)).toEqual([['for alice']]);
  expect(await aliceLp.inbox('Notice').waitFor(1)).toEqual([['for alice']]);
  await delay(100);
  expect(bob.inbox('Notice').items).toEqual([]);
});

test("a method the user may not call fails with .NET's text, and runs for a user who may", async () => {
  const user = await pool.connect({ accessTokenFactory: () => sign({ sub: 'carol' }) }, []);
  await expect(user.connection.invoke('AdminOnly')).rejects.toThrow(
    /^Failed to invoke 'AdminOnly' because user is unauthorized$/,
  );
  await expect(user.connection.invoke('SlowCheck')).rejects.toThrow(
    "Failed to invoke 'SlowCheck' because user is unauthorized",
  );
  expect(await user.connection.invoke('WhoAmI')).toBe('carol');
  const admin = await pool.connect({ accessTokenFactory: () => sign({ sub: 'root', role: 'admin' }) }, []);
  expect(await admin.connection.invoke('AdminOnly')).toBe('secret');
  expect(await admin.connection.invoke('SlowCheck')).toBe('checked');
});

describe('a token for user A cannot drive a connection negotiated by user B', () => {
  async function negotiateAs(user: string, transport: 'LongPolling' | 'WebSockets') {
    const response = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sign({ sub: user })}` },
    });
    const { connectionToken } = await response.json();
    if (transport === 'LongPolling') {
      const first = await fetch(`${server.hubUrl}?id=${connectionToken}`, {
        headers: { authorization: `Bearer ${sign({ sub: user })}` },
      });
      expect(first.status).toBe(200);
    }
    return connectionToken as string;
  }

  test('polls and sends', async () => {
    const token = await negotiateAs('bob', 'LongPolling');
    const asAlice = { authorization: `Bearer ${sign({ sub: 'alice' })}` };
    const poll = await fetch(`${server.hubUrl}?id=${token}`, { headers: asAlice });
    expect([poll.status, await poll.text()]).toEqual([403, 'The user associated with this connection changed.']);
    const post = await fetch(`${server.hubUrl}?id=${token}`, {
      method: 'POST',
      headers: asAlice,
      body: `{"protocol":"json","version":1}${RS}`,
    });
    expect(post.status).toBe(403);
    const del = await fetch(`${server.hubUrl}?id=${token}`, { method: 'DELETE', headers: asAlice });
    expect(del.status).toBe(403);
    // Bob himself still can.
    const own = await fetch(`${server.hubUrl}?id=${token}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sign({ sub: 'bob' })}` },
      body: `{"protocol":"json","version":1}${RS}`,
    });
    expect(own.status).toBe(200);
  });

  test('WebSockets', async () => {
    const token = await negotiateAs('bob', 'WebSockets');
    const refused = await RawWebSocket.refused(`${server.hubUrl}?id=${token}&access_token=${sign({ sub: 'alice' })}`);
    expect(refused).toEqual({ status: 403, body: 'The user associated with this connection changed.' });
    const socket = await RawWebSocket.connect(`${server.hubUrl}?id=${token}&access_token=${sign({ sub: 'bob' })}`);
    socket.close();
  });
});

describe('a userIdProvider or authenticationExpiration that throws', () => {
  let fragile: RunningServer;
  const logged: Array<{ msg?: string; err?: { message?: string } }> = [];

  beforeAll(async () => {
    const stream = { write: (line: string) => void logged.push(JSON.parse(line) as (typeof logged)[number]) };
    const app = Fastify({ logger: { level: 'error', stream } });
    const providerBug = () => {
      throw new Error('the provider has a bug');
    };
    await app.register(fastifySignalR, {
      hubs: [
        {
          path: '/fragile',
          hub: SecureHub,
          keepAliveIntervalMs: 100,
          userIdProvider: providerBug,
          closeOnAuthenticationExpiration: true,
          authenticationExpiration: () => {
            throw new Error('the expiry hook has a bug');
          },
        },
      ],
      connectionHandlers: [
        { path: '/raw', userIdProvider: providerBug, onConnected: (connection) => connection.send('hello') },
      ],
    });
    fragile = await listen(app, '/fragile');
  });
  afterAll(() => fragile.close());

  test('is logged and counts as no user and no expiry: the hub connection serves, pings and stays open', async () => {
    const socket = await RawWebSocket.connect(fragile.hubUrl);
    try {
      socket.send(`{"protocol":"json","version":1}${RS}`);
      socket.send(`{"type":1,"invocationId":"1","target":"whoAmI","arguments":[]}${RS}`);
      const received = () =>
        socket.frames
          .map((frame) => frame.text)
          .join('')
          .split(RS)
          .filter((text) => text !== '');
      // A heartbeat sends a Ping only after finding the authentication unexpired, so two Pings show the check ran.
      await eventually(() => received().filter((text) => text === '{"type":6}').length >= 2, 'two pings');
      expect(received().filter((text) => text !== '{"type":6}')).toEqual([
        '{}',
        '{"type":3,"invocationId":"1","result":null}',
      ]);
      expect(logged.map(({ msg, err }) => [msg, err?.message])).toEqual(
        expect.arrayContaining([
          ['userIdProvider failed', 'the provider has a bug'],
          ['authenticationExpiration failed', 'the expiry hook has a bug'],
        ]),
      );
    } finally {
      socket.close();
    }
  });

  test('on a raw endpoint is logged and counts as no user', async () => {
    logged.length = 0;
    const socket = await RawWebSocket.connect(fragile.url + '/raw');
    try {
      expect((await socket.frame(0)).text).toBe('hello');
      expect(logged.map(({ msg, err }) => [msg, err?.message])).toEqual([
        ['userIdProvider failed', 'the provider has a bug'],
      ]);
    } finally {
      socket.close();
    }
  });
});
