/**
 * Clients that stop reading cannot keep their sockets. Against the chat sample in its own process:
 * - Server-Sent Events clients that stop reading are closed at the outbound bound, and their sockets are cut within
 *   the send timeout even though the kernel still holds megabytes for them;
 * - long-polling clients that never read a large poll response lose their sockets once their connections expire.
 * The open sockets the OS reports and the connections `/health` counts agree afterwards, and a well-behaved
 * official client is served throughout.
 */
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { ClientPool, eventually } from '../support/clients';
import { tcpConnections } from '../support/os';
import { ServerProcess } from '../support/server-process';

const RS = '\u001e';
const STALLED = 5;

let server: ServerProcess;
const pool = new ClientPool(() => server.hubUrl);
const rawSockets: Socket[] = [];

beforeAll(async () => {
  // Short timeouts so the test waits seconds, not the defaults' tens of seconds.
  server = await ServerProcess.start('stalled-readers', {
    SIGNALR_DISCONNECT_TIMEOUT_MS: '2000',
    SIGNALR_SEND_TIMEOUT_MS: '3000',
  });
});

afterAll(async () => {
  for (const socket of rawSockets) socket.destroy();
  await pool.stopAll();
  await server.stop();
});

async function negotiate(): Promise<{ token: string; id: string }> {
  const response = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' });
  const body = (await response.json()) as { connectionToken: string; connectionId: string };
  return { token: body.connectionToken, id: body.connectionId };
}

async function post(token: string, body: string): Promise<number> {
  return (await fetch(`${server.hubUrl}?id=${token}`, { method: 'POST', body })).status;
}

/**
 * A raw HTTP client that sends one GET and, once the response starts, never reads again; resolves with its socket
 * (whose local port identifies it on the server's side).
 */
function stalledGet(path: string, accept: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1');
    rawSockets.push(socket);
    socket.once('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nAccept: ${accept}\r\n\r\n`);
    socket.once('data', () => {
      socket.pause();
      resolve(socket);
    });
  });
}

/** The server's sockets whose peer is one of `sockets`, in any state. */
function serverSidesOf(sockets: Socket[]) {
  const peers = new Set(sockets.map((socket) => `127.0.0.1:${socket.localPort}`));
  return tcpConnections(server.port).filter((connection) => peers.has(connection.peer));
}

async function healthConnections(): Promise<number> {
  return ((await (await fetch(`${server.url}/health`)).json()) as { connections: number }).connections;
}

async function waitForSocketsGone(sockets: Socket[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (serverSidesOf(sockets).length > 0) {
    if (Date.now() > deadline) throw new Error(`still open: ${JSON.stringify(serverSidesOf(sockets))}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('Server-Sent Events clients that stop reading are closed and their sockets cut, though the kernel holds megabytes for them', async () => {
  const bystander = await pool.connect();
  const stalled: Socket[] = [];
  for (let i = 0; i < STALLED; i++) {
    const { token } = await negotiate();
    const socket = await stalledGet(`/chathub?id=${token}`, 'text/event-stream');
    expect(await post(token, `{"protocol":"json","version":1}${RS}`)).toBe(200);
    stalled.push(socket);
  }
  await eventually(() => serverSidesOf(stalled).length === STALLED, 'the stalled streams are open');

  // Broadcasts until the server has given up on every stalled reader (the kernel takes megabytes first).
  const text = 'x'.repeat(30_000);
  let sent = 0;
  while (serverSidesOf(stalled).some((connection) => connection.state === 'ESTAB') && sent < 2_000) {
    await bystander.connection.invoke('SendMessage', 'bystander', text);
    sent++;
  }
  // The well-behaved client got every broadcast.
  await bystander.inbox('ReceiveMessage').waitFor(sent, 20_000);
  // Every stalled socket is gone within the send timeout (3 s here) and a heartbeat: not ESTABLISHED, and not left to
  // the kernel with megabytes queued (FIN-WAIT-1) either.
  await waitForSocketsGone(stalled, 10_000);
  expect(await healthConnections()).toBe(1);
}, 90_000);

test('long-polling clients that never read a large poll response lose their sockets once their connections expire', async () => {
  const bystander = await pool.connect();
  const stalled: Socket[] = [];
  for (let i = 0; i < STALLED; i++) {
    const { token, id } = await negotiate();
    // The first poll starts the connection at once; the handshake goes by POST.
    await fetch(`${server.hubUrl}?id=${token}`);
    expect(await post(token, `{"protocol":"json","version":1}${RS}`)).toBe(200);
    await fetch(`${server.hubUrl}?id=${token}`);
    // Almost 1 MiB queued for the connection, then a poll that takes it and is never read.
    for (let j = 0; j < 30; j++)
      await bystander.connection.invoke('SendToConnection', id, 'bystander', 'y'.repeat(30_000));
    stalled.push(await stalledGet(`/chathub?id=${token}`, '*/*'));
  }
  expect(serverSidesOf(stalled).length).toBe(STALLED);
  // Disconnect timeout (2 s here), a heartbeat, and the send timeout's grace (3 s here).
  await waitForSocketsGone(stalled, 15_000);
  expect(await bystander.connection.invoke('Echo', 'served')).toBe('served');
  expect(await healthConnections()).toBe(2);
}, 90_000);

test("a keep-alive socket that served another request after a connection's last poll is kept when that connection expires", async () => {
  // One keep-alive socket shared by several clients, as a balancer's connection to a server is.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const request = (method: string, path: string, body?: string) =>
    new Promise<{ status: number; reused: boolean; body: string }>((resolve, reject) => {
      const req = httpRequest({ agent, host: '127.0.0.1', port: server.port, method, path }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, reused: req.reusedSocket, body: text }));
      });
      req.once('error', reject);
      req.end(body);
    });
  try {
    const before = await healthConnections();
    const { token } = await negotiate();
    expect((await request('GET', `/chathub?id=${token}`)).status).toBe(200);
    expect((await request('POST', `/chathub?id=${token}`, `{"protocol":"json","version":1}${RS}`)).status).toBe(200);
    // The connection's last poll (it takes the handshake answer), then another client's request on the same socket.
    expect((await request('GET', `/chathub?id=${token}`)).body).toBe(`{}${RS}`);
    expect((await request('POST', '/chathub/negotiate?negotiateVersion=1')).reused).toBe(true);
    // The connection expires (disconnect timeout 2 s here, a heartbeat) and its grace (3 s here) passes.
    expect(await healthConnections()).toBe(before + 1);
    const deadline = Date.now() + 10_000;
    while ((await healthConnections()) !== before) {
      if (Date.now() > deadline) throw new Error('the polling connection did not expire');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    // The shared socket still carries the next request.
    const next = await request('GET', '/health');
    expect(next).toMatchObject({ status: 200, reused: true });
  } finally {
    agent.destroy();
  }
}, 60_000);
