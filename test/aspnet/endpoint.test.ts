/**
 * The 2.x endpoint at the HTTP level, with real sockets and no client library: negotiate's body and defaults, 2.x's
 * answers to bad requests (unknown or Internet Explorer-only transports, missing, forged or foreign tokens, unknown
 * hubs, bad hub requests, bodies over the limit), tokens a client can neither read nor forge, hub authorization, and
 * the hub lifecycle of a connection that starts, and of one whose client vanishes.
 */
import { WebSocket } from 'ws';
import type { FastifyRequest } from 'fastify';
import type { RunningServer } from '../support/servers';
import { ChatHub, startLegacyServer } from './fixtures';

let server: RunningServer;
let guarded: RunningServer;
const HUBS = encodeURIComponent(JSON.stringify([{ name: 'chathub' }]));

beforeAll(async () => {
  server = await startLegacyServer({ aspNetSignalR: { disconnectTimeoutMs: 6000, maximumMessageSize: 4096 } });
  // Users come from `?user=`; the hub admits alice and bob.
  const userOf = (request: FastifyRequest) => (request.query as { user?: string }).user;
  guarded = await startLegacyServer({
    userIdProvider: userOf,
    hubs: [
      { path: '/chathub', hub: ChatHub, authorize: (request) => ['alice', 'bob'].includes(userOf(request) ?? '') },
    ],
  });
});
afterAll(async () => {
  await server?.close();
  await guarded?.close();
});

interface Negotiated {
  readonly ConnectionToken: string;
  readonly ConnectionId: string;
  readonly [key: string]: unknown;
}

async function negotiate(base = server.url, query = ''): Promise<Negotiated> {
  const response = await fetch(`${base}/signalr/negotiate?clientProtocol=2.1&connectionData=${HUBS}${query}`);
  expect(response.status).toBe(200);
  return (await response.json()) as Negotiated;
}

function url(path: string, token: string, extra = '', transport = 'longPolling', base = server.url): string {
  return `${base}/signalr/${path}?transport=${transport}&clientProtocol=2.1&connectionToken=${encodeURIComponent(token)}&connectionData=${HUBS}${extra}`;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('negotiate answers the 2.x body with its defaults (disconnect timeout as configured)', async () => {
  const body = await negotiate();
  expect(body).toEqual({
    Url: '/signalr',
    ConnectionToken: expect.any(String),
    ConnectionId: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
    KeepAliveTimeout: 4,
    DisconnectTimeout: 6,
    ConnectionTimeout: 110,
    TryWebSockets: true,
    ProtocolVersion: '2.0',
    TransportConnectTimeout: 5,
    LongPollDelay: 0,
  });
  // Older clients get their own version; none at all gets the oldest.
  const old = await fetch(`${server.url}/signalr/negotiate?clientProtocol=1.5&connectionData=${HUBS}`);
  expect(((await old.json()) as Negotiated).ProtocolVersion).toBe('1.5');
  const none = await fetch(`${server.url}/signalr/negotiate?connectionData=${HUBS}`);
  expect(((await none.json()) as Negotiated).ProtocolVersion).toBe('1.2');
});

test('the connection token hides the connection id and cannot be altered', async () => {
  const { ConnectionToken: token, ConnectionId: id } = await negotiate();
  const decoded = Buffer.from(token, 'base64url').toString('latin1');
  expect(decoded).not.toContain(id);
  expect(token).not.toContain(id);
  // Any change to the token makes it a stranger.
  const tampered = token.slice(0, 20) + (token[20] === 'A' ? 'B' : 'A') + token.slice(21);
  const response = await fetch(url('connect', tampered), { method: 'POST' });
  expect(response.status).toBe(400);
  expect(await response.text()).toBe('The ConnectionId is in the incorrect format.');
  // A token made by another server (another secret) is refused too.
  const other = await startLegacyServer();
  try {
    const foreign = await negotiate(other.url);
    const refused = await fetch(url('connect', foreign.ConnectionToken), { method: 'POST' });
    expect(refused.status).toBe(400);
  } finally {
    await other.close();
  }
});

test('bad requests get 2.x answers', async () => {
  const { ConnectionToken: token } = await negotiate();
  const foreverFrame = await fetch(url('connect', token, '', 'foreverFrame'));
  expect([foreverFrame.status, await foreverFrame.text()]).toEqual([400, 'Protocol error: Unknown transport.']);
  const noTransport = await fetch(`${server.url}/signalr/connect?connectionToken=${encodeURIComponent(token)}`);
  expect([noTransport.status, await noTransport.text()]).toEqual([400, 'Protocol error: Unknown transport.']);
  const noToken = await fetch(`${server.url}/signalr/connect?transport=longPolling&connectionData=${HUBS}`);
  expect([noToken.status, await noToken.text()]).toEqual([400, 'Protocol error: Missing connection token.']);
  const unknownHub = await fetch(
    `${server.url}/signalr/negotiate?connectionData=${encodeURIComponent('[{"name":"nohub"}]')}`,
  );
  expect([unknownHub.status, await unknownHub.text()]).toEqual([500, "'nohub' Hub could not be resolved."]);
  const badData = await fetch(`${server.url}/signalr/negotiate?connectionData=%5Bnot%20json`);
  expect(badData.status).toBe(400);
  // Hub requests: not JSON, no method, too large.
  const form = (data: string) => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `data=${encodeURIComponent(data)}`,
  });
  expect((await fetch(url('send', token), form('{not json'))).status).toBe(400);
  expect((await fetch(url('send', token), form('{"H":"chathub","I":"0"}'))).status).toBe(400);
  expect(
    (
      await fetch(
        url('send', token),
        form(JSON.stringify({ H: 'chathub', M: 'send', A: ['x', 'y'.repeat(5000)], I: '1' })),
      )
    ).status,
  ).toBe(413);
  // A hub the connection does not know: an error answer, not a failure of the request.
  const wrongHub = await fetch(url('send', token), form('{"H":"nohub","M":"x","A":[],"I":"2"}'));
  expect(await wrongHub.json()).toEqual({ I: '2', E: "'nohub' Hub could not be resolved." });
  // A WebSocket route asked over plain HTTP.
  const notUpgraded = await fetch(url('connect', token, '', 'webSockets'));
  expect([notUpgraded.status, await notUpgraded.text()]).toEqual([400, 'Not a valid web socket request.']);
});

test('ping, start and the proxy script', async () => {
  const ping = await fetch(`${server.url}/signalr/ping`);
  expect(await ping.text()).toBe('{ "Response": "pong" }');
  const script = await (await fetch(`${server.url}/signalr/hubs`)).text();
  expect(script).toContain('proxies["chatHub"] = this.createHubProxy("chatHub");');
  expect(script).toContain('"joinGroup": function (arg0) {');
  expect(script).toContain('$.merge(["joinGroup"]');
  expect(script).toContain('$.hubConnection("/signalr", { useDefaultPath: false })');
  expect(await (await fetch(`${server.url}/signalr/js`)).text()).toBe(script);
});

test("a request of another user than the token's is 403; the hub's authorize guards every 2.x request", async () => {
  expect((await fetch(`${guarded.url}/signalr/negotiate?connectionData=${HUBS}&user=mallory`)).status).toBe(401);
  const alice = await negotiate(guarded.url, '&user=alice');
  const asAlice = await fetch(url('connect', alice.ConnectionToken, '&user=alice', 'longPolling', guarded.url), {
    method: 'POST',
  });
  expect(asAlice.status).toBe(200);
  expect(await asAlice.json()).toMatchObject({ S: 1, M: [] });
  const asNobody = await fetch(url('poll', alice.ConnectionToken, '', 'longPolling', guarded.url), { method: 'POST' });
  expect(asNobody.status).toBe(401);
  // Bob may use the hub, not alice's connection.
  const asBob = await fetch(url('poll', alice.ConnectionToken, '&user=bob', 'longPolling', guarded.url), {
    method: 'POST',
  });
  expect([asBob.status, await asBob.text()]).toEqual([
    403,
    'Unrecognized user identity.  The user identity cannot change during an active SignalR connection.',
  ]);
});

test('start runs onConnected; a client that vanishes is disconnected after the disconnect timeout', async () => {
  const { ConnectionToken: token, ConnectionId: id } = await negotiate();
  const socket = new WebSocket(url('connect', token, '', 'webSockets').replace('http', 'ws'));
  const frames: string[] = [];
  socket.on('message', (data: Buffer) => frames.push(data.toString()));
  await waitFor(() => frames.length > 0, 'the init message');
  expect(JSON.parse(frames[0])).toMatchObject({ S: 1, M: [] });
  const started = await fetch(url('start', token, '', 'webSockets'));
  expect(await started.text()).toBe('{ "Response": "started" }');
  expect(ChatHub.lifecycle).toContain(`connected ${id} WebSockets`);
  socket.send(JSON.stringify({ H: 'chathub', M: 'add', A: [1, 2], I: '0' }));
  await waitFor(() => frames.some((frame) => frame.includes('"R"')), 'the answer');
  expect(frames.map((frame) => JSON.parse(frame))).toContainEqual({ R: 3, I: '0' });
  // The socket dies without a goodbye: the connection waits for a reconnect, then ends.
  socket.terminate();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  expect(ChatHub.lifecycle).not.toContain(`disconnected ${id}`);
  await waitFor(() => ChatHub.lifecycle.includes(`disconnected ${id}`), 'onDisconnected', 10_000);
}, 20_000);

test('abort ends the connection at once', async () => {
  const { ConnectionToken: token, ConnectionId: id } = await negotiate();
  expect((await fetch(url('connect', token), { method: 'POST' })).status).toBe(200);
  await fetch(url('start', token));
  const poll = fetch(url('poll', token), { method: 'POST' });
  const aborted = await fetch(url('abort', token), { method: 'POST' });
  expect(aborted.status).toBe(200);
  await waitFor(() => ChatHub.lifecycle.includes(`disconnected ${id}`), 'onDisconnected');
  // The held poll is answered when the connection ends.
  expect((await poll).status).toBe(200);
});

test('a server that does not hold the connection rebuilds it from its tokens, groups included', async () => {
  const secret = 'one secret for both servers';
  const first = await startLegacyServer({ aspNetSignalR: { tokenSecret: secret } });
  const second = await startLegacyServer({ aspNetSignalR: { tokenSecret: secret } });
  try {
    const { ConnectionToken: token, ConnectionId: id } = await negotiate(first.url);
    const connected = (await (
      await fetch(url('connect', token, '', 'longPolling', first.url), { method: 'POST' })
    ).json()) as { C: string };
    await fetch(url('start', token, '', 'longPolling', first.url));
    const send = (base: string, request: object) =>
      fetch(url('send', token, '', 'longPolling', base), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `data=${encodeURIComponent(JSON.stringify(request))}`,
      });
    expect(await (await send(first.url, { H: 'chathub', M: 'joinGroup', A: ['moved'], I: '0' })).json()).toEqual({
      R: id,
      I: '0',
    });
    // The next poll carries the groups token.
    const polled = (await (
      await fetch(url('poll', token, `&messageId=${encodeURIComponent(connected.C)}`, 'longPolling', first.url), {
        method: 'POST',
      })
    ).json()) as { C: string; G?: string };
    expect(polled.G).toEqual(expect.any(String));
    expect(polled.G).not.toContain('moved');
    // The client moves to the second server, which never saw it: its reconnect brings the groups back.
    const poll = fetch(
      url(
        'reconnect',
        token,
        `&messageId=${encodeURIComponent(polled.C)}&groupsToken=${encodeURIComponent(polled.G!)}`,
        'longPolling',
        second.url,
      ),
      { method: 'POST' },
    );
    await waitFor(
      () => ChatHub.lifecycle.filter((line) => line === `connected ${id} LongPolling`).length >= 2,
      'the rebuilt connection',
    );
    await second.app.signalr.hub('/chathub').clients.group('moved').send('groupMessage', 'moved', 'found you');
    expect(await (await poll).json()).toMatchObject({
      M: [{ H: 'ChatHub', M: 'groupMessage', A: ['moved', 'found you'] }],
    });
    // Another connection's groups token is worth nothing.
    const other = await negotiate(second.url);
    const stolen = fetch(
      url(
        'reconnect',
        other.ConnectionToken,
        `&groupsToken=${encodeURIComponent(polled.G!)}`,
        'longPolling',
        second.url,
      ),
      { method: 'POST' },
    );
    await waitFor(
      () => ChatHub.lifecycle.includes(`connected ${other.ConnectionId} LongPolling`),
      'the other connection',
    );
    await second.app.signalr.hub('/chathub').clients.group('moved').send('groupMessage', 'moved', 'not for the thief');
    await second.app.signalr
      .hub('/chathub')
      .clients.client(other.ConnectionId)
      .send('addMessage', 'server', 'just you');
    expect(await (await stolen).json()).toMatchObject({ M: [{ M: 'addMessage', A: ['server', 'just you'] }] });
  } finally {
    await first.close();
    await second.close();
  }
});

test('an idle WebSocket gets keep-alives; one whose client stops reading is cut, its connection kept for a reconnect', async () => {
  const slow = await startLegacyServer({
    aspNetSignalR: { disconnectTimeoutMs: 6000, maximumBufferedOutboundBytes: 256 * 1024 },
  });
  try {
    const { ConnectionToken: token, ConnectionId: id } = await negotiate(slow.url);
    const socket = new WebSocket(url('connect', token, '', 'webSockets', slow.url).replace('http', 'ws'));
    const frames: string[] = [];
    socket.on('message', (data: Buffer) => frames.push(data.toString()));
    await waitFor(() => frames.length > 0, 'the init message');
    // A third of the 6 s disconnect timeout: a keep-alive every 2 s while nothing else is sent.
    await waitFor(() => frames.includes('{}'), 'a keep-alive', 5000);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // The client stops reading; the server goes on sending far more than the bound.
    const raw = (socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    raw.pause();
    const hub = slow.app.signalr.hub('/chathub');
    const big = 'x'.repeat(64 * 1024);
    const count = 400;
    for (let i = 0; i < count; i++) {
      await hub.clients.client(id).send('addMessage', 'server', big);
      await new Promise((resolve) => setImmediate(resolve));
    }
    // When the client reads again, the socket ends after part of it: the server cut it rather than hold 25 MB.
    raw.resume();
    await closed;
    const delivered = frames.filter((frame) => frame.includes('addMessage')).length;
    expect(delivered).toBeGreaterThan(0);
    expect(delivered).toBeLessThan(count);
    // The connection itself waits for a reconnect: it has not ended.
    expect(ChatHub.lifecycle).not.toContain(`disconnected ${id}`);
  } finally {
    await slow.close();
  }
}, 30_000);

test('a draining server tells its 2.x clients to reconnect and refuses their requests with 503', async () => {
  const closing = await startLegacyServer();
  try {
    const { ConnectionToken: token } = await negotiate(closing.url);
    const socket = new WebSocket(url('connect', token, '', 'webSockets', closing.url).replace('http', 'ws'));
    const frames: string[] = [];
    socket.on('message', (data: Buffer) => frames.push(data.toString()));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await waitFor(() => frames.length > 0, 'the init message');
    await closing.app.signalr.drain({ timeoutMs: 100 });
    await closed;
    expect(JSON.parse(frames.at(-1)!)).toEqual({ C: expect.any(String), T: 1, M: [] });
    expect((await fetch(`${closing.url}/signalr/negotiate?connectionData=${HUBS}`)).status).toBe(503);
    // A poll of the connection that just left would rebuild it: refused too.
    expect((await fetch(url('poll', token, '', 'longPolling', closing.url), { method: 'POST' })).status).toBe(503);
  } finally {
    await closing.close();
  }
});

test('a WebSocket message over the limit ends the socket', async () => {
  const { ConnectionToken: token } = await negotiate();
  const socket = new WebSocket(url('connect', token, '', 'webSockets').replace('http', 'ws'));
  const frames: string[] = [];
  socket.on('message', (data: Buffer) => frames.push(data.toString()));
  const closed = new Promise<number>((resolve) => socket.once('close', (code: number) => resolve(code)));
  await waitFor(() => frames.length > 0, 'the init message');
  socket.send(JSON.stringify({ H: 'chathub', M: 'send', A: ['x', 'y'.repeat(5000)], I: '0' }));
  expect(await closed).toBe(1009);
});

test('a WebSocket upgrade with a bad token is refused over HTTP before the socket opens', async () => {
  const { ConnectionToken: token } = await negotiate();
  const status = (target: string) =>
    new Promise<number>((resolve, reject) => {
      const socket = new WebSocket(target);
      socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      socket.once('open', () => reject(new Error('the socket opened')));
      socket.once('error', () => undefined);
    });
  const tampered = token.slice(0, -2) + (token.endsWith('A') ? 'BB' : 'AA');
  expect(await status(url('connect', tampered, '', 'webSockets').replace('http', 'ws'))).toBe(400);
  expect(
    await status(`${server.url.replace('http', 'ws')}/signalr/connect?transport=webSockets&connectionData=${HUBS}`),
  ).toBe(400);
});

test('a client too old to send /start (protocol 1.3) has its hubs connected at connect', async () => {
  const negotiated = (await (
    await fetch(`${server.url}/signalr/negotiate?clientProtocol=1.3&connectionData=${HUBS}`)
  ).json()) as Negotiated;
  expect(negotiated.ProtocolVersion).toBe('1.3');
  const connect = `${server.url}/signalr/connect?transport=longPolling&clientProtocol=1.3&connectionToken=${encodeURIComponent(negotiated.ConnectionToken)}&connectionData=${HUBS}`;
  expect((await fetch(connect, { method: 'POST' })).status).toBe(200);
  expect(ChatHub.lifecycle).toContain(`connected ${negotiated.ConnectionId} LongPolling`);
});

test('a 2.x connection belongs to its user: sends to the user reach it', async () => {
  const alice = await negotiate(guarded.url, '&user=alice');
  const connected = (await (
    await fetch(url('connect', alice.ConnectionToken, '&user=alice', 'longPolling', guarded.url), { method: 'POST' })
  ).json()) as { C: string };
  await fetch(url('start', alice.ConnectionToken, '&user=alice', 'longPolling', guarded.url));
  expect(ChatHub.lifecycle).toContain(`connected ${alice.ConnectionId} LongPolling`);
  const poll = fetch(
    url(
      'poll',
      alice.ConnectionToken,
      `&user=alice&messageId=${encodeURIComponent(connected.C)}`,
      'longPolling',
      guarded.url,
    ),
    { method: 'POST' },
  );
  const hub = guarded.app.signalr.hub('/chathub');
  await hub.clients.user('bob').send('addMessage', 'server', 'for bob');
  await hub.clients.user('alice').send('addMessage', 'server', 'for alice');
  expect(await (await poll).json()).toMatchObject({ M: [{ M: 'addMessage', A: ['server', 'for alice'] }] });
});
