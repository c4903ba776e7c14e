/**
 * What an operator sees of one chat server process on a password-protected redis-server: `/metrics` counts the
 * traffic this test generates — connections by transport and protocol, how they ended, messages both ways,
 * invocation outcomes, backplane publishes, receipts and errors — exactly; `/health` and `/ready` follow the
 * backplane through a Redis crash; the JSON log names its events and holds no secret.
 */
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { eventually } from '../support/clients';
import { RawWebSocket } from '../support/raw-websocket';
import { RedisServer } from '../support/redis-server';
import { ServerProcess } from '../support/server-process';

jest.setTimeout(30_000);

const REDIS_PASSWORD = 'pw-never-in-logs-7f3a';
const ACCESS_TOKEN = 'token-never-in-logs-91c2';

let redis: RedisServer | undefined;
let server: ServerProcess | undefined;
const connections: signalR.HubConnection[] = [];
const received = new Map<signalR.HubConnection, string[]>();

async function connect(
  transport: keyof typeof signalR.HttpTransportType,
  options: { messagePack?: boolean; accessToken?: string } = {},
): Promise<signalR.HubConnection> {
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(server!.hubUrl, {
      transport: signalR.HttpTransportType[transport],
      ...(options.accessToken !== undefined && { accessTokenFactory: () => options.accessToken! }),
    })
    .configureLogging(signalR.LogLevel.None);
  if (options.messagePack === true) builder = builder.withHubProtocol(new MessagePackHubProtocol());
  const connection = builder.build();
  const messages: string[] = [];
  connection.on('ReceiveMessage', (_user: string, message: string) => messages.push(message));
  received.set(connection, messages);
  connections.push(connection);
  await connection.start();
  return connection;
}

async function health(path: '/health' | '/ready'): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server!.url}${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  redis = await RedisServer.start({ args: () => ['--requirepass', REDIS_PASSWORD] });
  server = await ServerProcess.start('metrics', {
    REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:${redis.port}`,
    METRICS_ENABLED: 'true',
    LOG_LEVEL: 'info',
    LOG_REQUESTS: 'true',
    SIGNALR_HANDSHAKE_TIMEOUT_MS: '500',
  });
  await server.waitForBackplane('connected');
});

afterAll(async () => {
  await Promise.all(connections.map((connection) => connection.stop().catch(() => undefined)));
  await server?.stop();
  await redis?.stop();
});

test('a fresh server exposes every series at zero, and is alive and ready', async () => {
  const metrics = await server!.metrics();
  expect(metrics.sum('signalr_server_active_connections')).toBe(0);
  expect(metrics.find('signalr_server_active_connections')).toHaveLength(6); // 3 transports × 2 protocols
  expect(metrics.types.get('signalr_server_connection_duration_seconds')).toBe('histogram');
  expect(metrics.types.get('signalr_server_invocation_duration_seconds')).toBe('histogram');
  for (const counter of [
    'signalr_server_messages_received_total',
    'signalr_server_messages_sent_total',
    'signalr_server_invocations_rejected_total',
    'signalr_server_handshake_failures_total',
    'signalr_backplane_messages_published_total',
    'signalr_backplane_messages_received_total',
    'signalr_backplane_publish_errors_total',
    'signalr_backplane_outages_total',
    'signalr_backplane_publishes_queued_total',
    'signalr_backplane_publishes_replayed_total',
    'signalr_backplane_publishes_dropped_total',
    'signalr_backplane_queued_publishes',
    'signalr_backplane_queued_publish_bytes',
  ]) {
    expect({ counter, value: metrics.sum(counter) }).toEqual({ counter, value: 0 });
  }
  expect(metrics.sum('signalr_backplane_connected')).toBe(1);
  expect(metrics.has('process_cpu_seconds_total')).toBe(true);
  expect(await health('/health')).toMatchObject({
    status: 200,
    body: { status: 'ok', connections: 0, backplane: { state: 'connected' } },
  });
  expect(await health('/ready')).toMatchObject({ status: 200, body: { status: 'ready' } });
});

test('a client that never completes its handshake is counted as a failed handshake that timed out', async () => {
  const socket = await RawWebSocket.connect(server!.hubUrl);
  await socket.closed;
  const metrics = await server!.metrics();
  expect(metrics.sum('signalr_server_handshake_failures_total')).toBe(1);
  expect(
    metrics.sum('signalr_server_connection_duration_seconds_count', {
      signalr_connection_status: 'timeout',
      signalr_transport: 'web_sockets',
    }),
  ).toBe(1);
  // It lasted the handshake timeout (0.5 s, checked on a heartbeat): in the (0.5, 1] s bucket and below 2 s.
  expect(
    metrics.sum('signalr_server_connection_duration_seconds_bucket', {
      signalr_connection_status: 'timeout',
      le: '0.2',
    }),
  ).toBe(0);
  expect(
    metrics.sum('signalr_server_connection_duration_seconds_bucket', { signalr_connection_status: 'timeout', le: '2' }),
  ).toBe(1);
  expect(metrics.sum('signalr_server_active_connections')).toBe(0);
});

test('connections, messages, invocation outcomes and backplane traffic are counted exactly', async () => {
  const wsJson = await connect('WebSockets');
  await connect('WebSockets');
  await connect('WebSockets', { messagePack: true });
  await connect('ServerSentEvents', { accessToken: ACCESS_TOKEN });
  await connect('LongPolling');
  const lpMessagePack = await connect('LongPolling', { messagePack: true });

  for (let i = 0; i < 5; i++) await wsJson.invoke('SendMessage', 'ops', `broadcast ${i}`);
  for (let i = 0; i < 2; i++) await expect(wsJson.invoke('Fail', 'expected')).rejects.toThrow('expected');
  await expect(wsJson.invoke('Crash')).rejects.toThrow('An unexpected error occurred');
  await expect(wsJson.invoke('NoSuchMethod')).rejects.toThrow('Method does not exist');
  await expect(wsJson.invoke('SendMessage', 'one argument short')).rejects.toThrow('Failed to invoke');
  for (let i = 0; i < 3; i++) expect(await lpMessagePack.invoke('Echo', i)).toBe(i);
  // Every client got every broadcast: that is what the server counted as sent.
  await eventually(
    () => connections.every((connection) => received.get(connection)!.length === 5),
    'every broadcast everywhere',
  );

  const metrics = await server!.metrics();
  const active = (transport: string, protocol: string) =>
    metrics.sum('signalr_server_active_connections', { signalr_transport: transport, signalr_protocol: protocol });
  expect({
    wsJson: active('web_sockets', 'json'),
    wsMessagePack: active('web_sockets', 'messagepack'),
    sseJson: active('server_sent_events', 'json'),
    lpJson: active('long_polling', 'json'),
    lpMessagePack: active('long_polling', 'messagepack'),
  }).toEqual({ wsJson: 2, wsMessagePack: 1, sseJson: 1, lpJson: 1, lpMessagePack: 1 });

  // In: 5 + 2 + 1 + 1 + 1 invocations from one client, 3 from another (pings are not counted).
  expect(metrics.sum('signalr_server_messages_received_total', { signalr_hub: '/chathub' })).toBe(13);
  // Out: 5 broadcasts × 6 clients, and one Completion per invocation.
  expect(metrics.sum('signalr_server_messages_sent_total', { signalr_hub: '/chathub' })).toBe(30 + 13);
  expect(metrics.sum('signalr_server_invocations_rejected_total')).toBe(2);
  const invocations = (method: string, outcome: string) =>
    metrics.sum('signalr_server_invocation_duration_seconds_count', {
      signalr_hub: '/chathub',
      signalr_method: method,
      signalr_invocation_outcome: outcome,
    });
  expect({
    sendMessage: invocations('sendMessage', 'success'),
    echo: invocations('echo', 'success'),
    fail: invocations('fail', 'hub_exception'),
    crash: invocations('crash', 'error'),
    all: metrics.sum('signalr_server_invocation_duration_seconds_count'),
  }).toEqual({ sendMessage: 5, echo: 3, fail: 2, crash: 1, all: 11 });
  // Each broadcast went to Redis once and came back once (the server delivers from its subscription).
  expect(metrics.sum('signalr_backplane_messages_published_total')).toBe(5);
  expect(metrics.sum('signalr_backplane_messages_received_total')).toBe(5);
  expect(metrics.sum('signalr_backplane_publish_errors_total')).toBe(0);
  expect(await health('/health')).toMatchObject({ status: 200, body: { connections: 6 } });
});

test('connections that end are timed by transport and status', async () => {
  const [, wsJson2, , sse, lpJson] = connections;
  for (const connection of [wsJson2, sse, lpJson]) await connection.stop();
  // The server notices each end when the client's socket or request closes, a moment after stop() returns.
  let metrics = await server!.metrics();
  for (let i = 0; i < 100 && metrics.sum('signalr_server_active_connections') !== 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    metrics = await server!.metrics();
  }
  expect(metrics.sum('signalr_server_active_connections')).toBe(3);
  const ended = (transport: string) =>
    metrics.sum('signalr_server_connection_duration_seconds_count', {
      signalr_connection_status: 'normal_closure',
      signalr_transport: transport,
    });
  expect({ ws: ended('web_sockets'), sse: ended('server_sent_events'), lp: ended('long_polling') }).toEqual({
    ws: 1,
    sse: 1,
    lp: 1,
  });
});

test('a Redis crash: alive but not ready, publishes queued and counted; ready again and replayed once Redis is back', async () => {
  const [wsJson] = connections;
  await redis!.kill();
  await server!.waitForBackplane('disconnected');
  expect(await health('/health')).toMatchObject({
    status: 200,
    body: { status: 'ok', backplane: { state: 'disconnected' } },
  });
  expect(await health('/ready')).toMatchObject({ status: 503, body: { status: 'backplane_unavailable' } });

  // The server keeps serving its own clients; the publish waits in the queue, counted.
  await wsJson.invoke('SendMessage', 'ops', 'during the outage');
  await eventually(() => received.get(wsJson)!.includes('during the outage'), 'the local delivery');
  let metrics = await server!.metrics();
  expect(metrics.sum('signalr_backplane_connected')).toBe(0);
  expect(metrics.sum('signalr_backplane_publish_errors_total')).toBe(0);
  expect(metrics.sum('signalr_backplane_messages_published_total')).toBe(5);
  expect(metrics.sum('signalr_backplane_queued_publishes')).toBe(1);
  expect(metrics.sum('signalr_backplane_queued_publish_bytes')).toBeGreaterThan(0);
  expect(metrics.sum('signalr_backplane_publishes_queued_total')).toBe(1);

  await redis!.start();
  await server!.waitForBackplane('connected');
  expect(await health('/ready')).toMatchObject({ status: 200, body: { status: 'ready' } });
  metrics = await server!.metrics();
  expect(metrics.sum('signalr_backplane_connected')).toBe(1);
  expect(metrics.sum('signalr_backplane_outages_total')).toBe(1);
  // Published once Redis is back (its echo skipped: the local client has it once).
  for (let tries = 0; (await server!.metrics()).sum('signalr_backplane_publishes_replayed_total') < 1; tries++) {
    if (tries > 100) throw new Error('the queued publish was not replayed');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  metrics = await server!.metrics();
  expect(metrics.sum('signalr_backplane_messages_published_total')).toBe(6);
  expect(metrics.sum('signalr_backplane_queued_publishes')).toBe(0);
  expect(metrics.sum('signalr_backplane_publishes_dropped_total')).toBe(0);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(received.get(wsJson)!.filter((text) => text === 'during the outage')).toHaveLength(1);
});

test('the log names its events and never shows the Redis password or an access token', async () => {
  await eventually(
    () => server!.logLines().some((line) => line.event === 'signalr.backplane.reconnected'),
    'the reconnection line',
  );
  const lines = server!.logLines();
  const events = (name: string) => lines.filter((line) => line.event === name);
  expect(events('signalr.connection.started')).toHaveLength(6);
  expect(events('signalr.handshake.failed')).toHaveLength(1);
  expect(events('signalr.invocation.failed')).toEqual([expect.objectContaining({ method: 'crash', level: 50 })]);
  expect(
    events('signalr.connection.ended')
      .map((line) => line.status)
      .sort(),
  ).toEqual(['normal_closure', 'normal_closure', 'normal_closure', 'timeout']);
  expect(events('signalr.backplane.disconnected')).toHaveLength(1);
  expect(events('signalr.backplane.reconnected')).toHaveLength(1);
  expect(events('signalr.server.started')[0]).toMatchObject({
    config: { redisUrl: expect.stringContaining('redis://:***@') },
  });

  // Requests were logged (LOG_REQUESTS), the SSE one with its token in the URL — redacted.
  expect(server!.log).toContain('access_token=[redacted]');
  expect(server!.log).not.toContain(ACCESS_TOKEN);
  expect(server!.log).not.toContain(REDIS_PASSWORD);
});
