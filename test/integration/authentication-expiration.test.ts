/**
 * `closeOnAuthenticationExpiration` (ASP.NET Core's `CloseOnAuthenticationExpiration`) with real JWTs from
 * `@fastify/jwt`: a connection whose token expires gets `{"type":7,"allowReconnect":true}` and ends, on every
 * transport; an official client with automatic reconnect comes back at once with a fresh token; a connection whose
 * token is still valid, and every connection of a hub without the option, carry on.
 */
import fastifyJwt from '@fastify/jwt';
import * as signalR from '@microsoft/signalr';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { fastifySignalR, Hub } from '../../src';
import { ClientPool, delay, eventually } from '../support/clients';
import { RawWebSocket } from '../support/raw-websocket';
import { listen, type RunningServer } from '../support/servers';

const RS = '\u001e';

class ClockHub extends Hub {
  whoAmI(): string | null {
    return this.context.userIdentifier ?? null;
  }
}

let server: RunningServer;
let sign: (sub: string, lifetimeSeconds: number) => string;

beforeAll(async () => {
  const app = Fastify();
  await app.register(fastifyJwt, { secret: 'a test secret that is long enough for HS256' });
  // `exp` is whole seconds: a token "valid for 2 s" expires between 1 and 2 s from now.
  sign = (sub, lifetimeSeconds) => app.jwt.sign({ sub, exp: Math.floor(Date.now() / 1000) + lifetimeSeconds });
  const authenticate = async (request: FastifyRequest, reply: FastifyReply) => {
    try {
      await request.jwtVerify();
    } catch {
      return reply.code(401).send();
    }
  };
  await app.register(fastifySignalR, {
    hubs: [
      { path: '/expiring', hub: ClockHub, onRequest: authenticate, closeOnAuthenticationExpiration: true },
      { path: '/lenient', hub: ClockHub, onRequest: authenticate },
    ],
  });
  server = await listen(app, '/expiring');
});
afterAll(() => server.close());

const pool = new ClientPool(() => server.hubUrl);
const lenientPool = new ClientPool(() => server.hubUrl.replace('/expiring', '/lenient'));
afterEach(async () => {
  await pool.stopAll();
  await lenientPool.stopAll();
});

test.each([
  ['WebSockets', signalR.HttpTransportType.WebSockets],
  ['ServerSentEvents', signalR.HttpTransportType.ServerSentEvents],
  ['LongPolling', signalR.HttpTransportType.LongPolling],
])('over %s a connection ends when its token expires; one with a valid token carries on', async (_name, transport) => {
  const expiring = await pool.connect({ transport, accessTokenFactory: () => sign('short', 2) }, []);
  const lasting = await pool.connect({ transport, accessTokenFactory: () => sign('long', 3600) }, []);
  expect(await expiring.connection.invoke('WhoAmI')).toBe('short');
  const closedWith = await Promise.race([expiring.closed, delay(5000).then(() => 'still open')]);
  // allowReconnect without an error: the client stops without an error when it has no reconnect policy.
  expect(closedWith).toBeUndefined();
  expect(expiring.connection.state).toBe(signalR.HubConnectionState.Disconnected);
  expect(await lasting.connection.invoke('WhoAmI')).toBe('long');
});

test("the Close message is .NET's: no error, allowReconnect", async () => {
  const socket = await RawWebSocket.connect(`${server.hubUrl}?access_token=${encodeURIComponent(sign('raw', 2))}`);
  try {
    socket.send(`{"protocol":"json","version":1}${RS}`);
    const { code } = await Promise.race([socket.closed, delay(5000).then(() => ({ code: -1 }))]);
    expect(code).toBe(1000);
    const messages = socket.frames
      .map((frame) => frame.text)
      .join('')
      .split(RS)
      .filter((text) => text !== '' && text !== '{"type":6}');
    expect(messages).toEqual(['{}', '{"type":7,"allowReconnect":true}']);
  } finally {
    socket.close();
  }
});

test('a client with automatic reconnect comes back at once with a fresh token', async () => {
  // The client asks for a token for negotiate and again for the WebSocket; both must name the same user.
  let generation = 1;
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(server.hubUrl, {
      transport: signalR.HttpTransportType.WebSockets,
      accessTokenFactory: () => sign(`user-${generation}`, generation === 1 ? 2 : 3600),
    })
    .withAutomaticReconnect([0])
    .configureLogging(signalR.LogLevel.None)
    .build();
  const reconnected: Array<string | undefined> = [];
  connection.onreconnecting(() => generation++);
  connection.onreconnected((id) => reconnected.push(id));
  try {
    await connection.start();
    const firstId = connection.connectionId;
    expect(await connection.invoke('WhoAmI')).toBe('user-1');
    await eventually(() => reconnected.length >= 1, 'the client to reconnect after its token expired', 6000);
    expect(reconnected[0]).not.toBe(firstId);
    expect(await connection.invoke('WhoAmI')).toBe('user-2');
  } finally {
    await connection.stop();
  }
});

test('without the option an expired token does not end the connection', async () => {
  const client = await lenientPool.connect({ accessTokenFactory: () => sign('lenient', 2) }, []);
  await delay(3500);
  expect(await client.connection.invoke('WhoAmI')).toBe('lenient');
});
