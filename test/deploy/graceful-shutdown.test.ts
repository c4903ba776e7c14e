/**
 * Graceful shutdown of a server process, as an orchestrator stops it (SIGTERM, or SIGINT from a terminal): new
 * connections are refused and readiness turns 503 at once; idle clients get a Close that allows reconnecting (the
 * official client starts reconnecting); an invocation in flight finishes and its caller gets the result before its
 * own Close; the process then exits 0. The drain is bounded: an invocation that never finishes is cut at the drain
 * timeout.
 */
import * as signalR from '@microsoft/signalr';
import { eventually } from '../support/clients';
import { RawWebSocket } from '../support/raw-websocket';
import { ServerProcess, stopAll } from '../support/server-process';

jest.setTimeout(30_000);

const RS = '\u001e';

let patient: ServerProcess | undefined;
let impatient: ServerProcess | undefined;
const connections: signalR.HubConnection[] = [];

/** A client with automatic reconnect (the default delays), and the moment it started reconnecting. */
async function connect(
  server: ServerProcess,
  transport: keyof typeof signalR.HttpTransportType,
  answer?: () => Promise<string>,
): Promise<{ connection: signalR.HubConnection; reconnecting: Promise<number> }> {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(server.hubUrl, { transport: signalR.HttpTransportType[transport] })
    .withAutomaticReconnect()
    .configureLogging(signalR.LogLevel.None)
    .build();
  if (answer !== undefined) connection.on('GetAnswer', answer);
  const reconnecting = new Promise<number>((resolve) => connection.onreconnecting(() => resolve(Date.now())));
  connections.push(connection);
  await connection.start();
  return { connection, reconnecting };
}

async function status(server: ServerProcess, path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${server.url}${path}`, { method: path.endsWith('negotiate') ? 'POST' : 'GET' });
  const text = await response.text();
  return {
    status: response.status,
    body: response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text,
  };
}

beforeAll(async () => {
  [patient, impatient] = await Promise.all([
    ServerProcess.start('patient', { LOG_LEVEL: 'info', SHUTDOWN_DRAIN_TIMEOUT_MS: '8000' }),
    ServerProcess.start('impatient', { LOG_LEVEL: 'info', SHUTDOWN_DRAIN_TIMEOUT_MS: '1000' }),
  ]);
});

afterAll(async () => {
  await Promise.all(connections.map((connection) => connection.stop().catch(() => undefined)));
  await stopAll(patient, impatient);
});

test('SIGTERM: new connections refused, idle clients told to reconnect, the running invocation finishes, exit 0', async () => {
  const server = patient!;
  let answer!: (value: string) => void;
  const answered = new Promise<string>((resolve) => (answer = resolve));
  let asked = false;
  // The busy client's call asks the busy client itself a question, which the test answers when it wants.
  const busy = await connect(server, 'WebSockets', () => {
    asked = true;
    return answered;
  });
  const idleWs = await connect(server, 'WebSockets');
  const idleLp = await connect(server, 'LongPolling');
  const raw = await RawWebSocket.connect(server.hubUrl);
  raw.send(`{"protocol":"json","version":1}${RS}`);
  await raw.frame(0);
  const call = busy.connection.invoke<string>('AskClient', busy.connection.connectionId);
  // The invocation runs on the server: it is waiting for the question it asked.
  await eventually(() => asked, 'the server to ask the busy client');

  const signalledAt = Date.now();
  server.signal('SIGTERM');

  // Idle clients: a Close allowing reconnect, at once; the official clients start reconnecting.
  expect((await raw.closed).code).toBe(1000);
  expect(raw.frames.map((frame) => frame.text).join('')).toBe(`{}${RS}{"type":7,"allowReconnect":true}${RS}`);
  const reconnectingAfter = Math.max(await idleWs.reconnecting, await idleLp.reconnecting) - signalledAt;
  expect(reconnectingAfter).toBeLessThan(1500);

  // Meanwhile: no new connection (a balancer retries elsewhere), not ready, still alive; the busy client stays.
  expect(await status(server, '/chathub/negotiate')).toEqual({ status: 503, body: 'The server is shutting down.' });
  expect(await status(server, '/ready')).toMatchObject({ status: 503, body: { status: 'shutting_down' } });
  expect(await status(server, '/health')).toMatchObject({
    status: 200,
    body: { status: 'ok', shuttingDown: true, connections: 1 },
  });
  expect(busy.connection.state).toBe(signalR.HubConnectionState.Connected);

  // The invocation finishes: its caller gets the result, then its Close.
  answer('forty-two');
  expect(await call).toBe('forty-two');
  await busy.reconnecting;
  expect(await server.exited).toEqual({ code: 0, signal: null });
  const drained = server.logLines().find((line) => line.event === 'signalr.shutdown.drained');
  expect(drained).toMatchObject({ connections: 4, cut: 0 });
  expect(server.logLines().find((line) => line.event === 'signalr.shutdown.completed')).toMatchObject({ exitCode: 0 });
});

test('SIGINT: an invocation that never finishes is cut at the drain timeout, and the process still exits 0', async () => {
  const server = impatient!;
  // This client never answers, so the call never finishes on its own.
  let asked = false;
  const stuck = await connect(server, 'ServerSentEvents', () => {
    asked = true;
    return new Promise<string>(() => undefined);
  });
  const call = stuck.connection.invoke<string>('AskClient', stuck.connection.connectionId);
  await eventually(() => asked, 'the server to ask the stuck client');
  const signalledAt = Date.now();
  server.signal('SIGINT');
  await expect(call).rejects.toThrow();
  const cutAfter = Date.now() - signalledAt;
  expect(await server.exited).toEqual({ code: 0, signal: null });
  const exitedAfter = Date.now() - signalledAt;
  // Not before the drain timeout (1 s); not much after it either.
  expect(cutAfter).toBeGreaterThanOrEqual(950);
  expect(exitedAfter).toBeLessThan(5000);
  expect(server.logLines().find((line) => line.event === 'signalr.shutdown.drained')).toMatchObject({
    connections: 1,
    cut: 1,
  });
});
