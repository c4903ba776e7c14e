/**
 * `app.signalr.drain()` in process, where the metrics can still be read after it: a server-to-client stream in
 * flight runs to its end before its connection gets the Close, connections closed by the drain are reported as
 * `app_shutdown`, and the report counts what was open and what had to be cut.
 */
import * as signalR from '@microsoft/signalr';
import { buildChatApp } from '../../samples/chat/app';
import { Metrics } from '../support/prometheus';
import { listen, type RunningServer } from '../support/servers';

let server: RunningServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function connect(url: string, transport: keyof typeof signalR.HttpTransportType): Promise<signalR.HubConnection> {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(url, { transport: signalR.HttpTransportType[transport] })
    .configureLogging(signalR.LogLevel.None)
    .build();
  await connection.start();
  return connection;
}

test('a stream in flight ends normally before its Close; drained connections count as app_shutdown', async () => {
  server = await listen(await buildChatApp({ fastify: { logger: false }, metrics: true }));
  const streaming = await connect(server.hubUrl, 'WebSockets');
  const idle = await connect(server.hubUrl, 'LongPolling');
  const closed = new Map<signalR.HubConnection, Promise<Error | undefined>>();
  for (const connection of [streaming, idle])
    closed.set(connection, new Promise((resolve) => connection.onclose(resolve)));

  const items: number[] = [];
  const streamDone = new Promise<void>((resolve, reject) =>
    streaming
      .stream<number>('Counter', 4, 150)
      .subscribe({ next: (item) => items.push(item), complete: resolve, error: reject }),
  );
  // The stream runs on the server once its first item arrived.
  while (items.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));

  const report = await server.app.signalr.drain({ timeoutMs: 5000 });
  // The stream delivered every item and completed; only then did its connection close.
  await streamDone;
  expect(items).toEqual([0, 1, 2, 3]);
  expect(report).toMatchObject({ connections: 2, cut: 0, cutConnections: [] });
  expect(report.durationMs).toBeGreaterThanOrEqual(300);
  // Without automatic reconnect the official client closes cleanly on a Close that allows reconnecting.
  expect(await closed.get(streaming)).toBeUndefined();
  expect(await closed.get(idle)).toBeUndefined();

  const metrics = Metrics.parse(await server.app.signalrMetrics.registry.metrics());
  const ended = (status: string, transport: string) =>
    metrics.sum('signalr_server_connection_duration_seconds_count', {
      signalr_connection_status: status,
      signalr_transport: transport,
    });
  expect({
    ws: ended('app_shutdown', 'web_sockets'),
    lp: ended('app_shutdown', 'long_polling'),
    normal: ended('normal_closure', 'web_sockets'),
  }).toEqual({ ws: 1, lp: 1, normal: 0 });
  // The stream's items were sent as hub messages too: 4 items and the Completion.
  expect(metrics.sum('signalr_server_messages_sent_total')).toBe(5);
});

test('a stream that would run for ever is cut at the drain timeout, and the report says so', async () => {
  server = await listen(await buildChatApp({ fastify: { logger: false } }));
  const connection = await connect(server.hubUrl, 'ServerSentEvents');
  const connectionId = connection.connectionId;
  let items = 0;
  const streamEnded = new Promise<unknown>((resolve) =>
    connection
      .stream<number>('Counter', 1_000_000, 50)
      .subscribe({ next: () => items++, complete: () => resolve('completed'), error: resolve }),
  );
  while (items === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  const report = await server.app.signalr.drain({ timeoutMs: 400 });
  expect(report).toMatchObject({
    connections: 1,
    cut: 1,
    cutConnections: [{ transport: 'ServerSentEvents', connectionId }],
  });
  expect(report.durationMs).toBeGreaterThanOrEqual(400);
  expect(await streamEnded).toBeInstanceOf(Error);
  // New connections are refused while shutting down.
  const negotiate = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' });
  expect({ status: negotiate.status, body: await negotiate.text() }).toEqual({
    status: 503,
    body: 'The server is shutting down.',
  });
});
