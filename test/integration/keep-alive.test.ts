/**
 * Keep-alive and timeouts (docs/protocol.md §2.8): server pings every keepAliveInterval, the client timeout starts with
 * the client's first Ping, and a real idle connection survives well past the official client's 30 s server timeout.
 */
import * as signalR from '@microsoft/signalr';
import { ClientPool, delay } from '../support/clients';
import { RawWebSocket } from '../support/raw-websocket';
import { startChatServer, type RunningServer } from '../support/servers';

const RS = '\u001e';
const HANDSHAKE = `{"protocol":"json","version":1}${RS}`;

function messages(socket: RawWebSocket): string[] {
  return socket.frames
    .map((frame) => frame.text)
    .join('')
    .split(RS)
    .filter(Boolean);
}

describe('with short intervals', () => {
  let server: RunningServer;
  const sockets: RawWebSocket[] = [];
  beforeAll(async () => {
    server = await startChatServer({ keepAliveIntervalMs: 200, clientTimeoutIntervalMs: 500 });
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await server.close();
  });

  async function handshaken(): Promise<RawWebSocket> {
    const socket = await RawWebSocket.connect(server.hubUrl);
    sockets.push(socket);
    socket.send(HANDSHAKE);
    await socket.frame(0);
    return socket;
  }

  test('the server pings every keep-alive interval', async () => {
    const socket = await handshaken();
    const started = Date.now();
    await delay(1100);
    const pings = messages(socket).filter((message) => message === '{"type":6}');
    // 1.1 s at 200 ms: about five pings, allowing for timer granularity.
    expect(pings.length).toBeGreaterThanOrEqual(4);
    expect(pings.length).toBeLessThanOrEqual(6);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1100);
  });

  test('a client that never pings is not timed out', async () => {
    const socket = await handshaken();
    await delay(900);
    expect(socket.socket.readyState).toBe(socket.socket.OPEN);
  });

  test('a client that pinged once and then stays silent is closed with an error after the client timeout', async () => {
    const socket = await handshaken();
    socket.send(`{"type":6}${RS}`);
    const started = Date.now();
    const { code } = await socket.closed;
    const elapsed = Date.now() - started;
    expect(code).toBe(1000);
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(1500);
    expect(messages(socket).at(-1)).toBe('{"type":7,"error":"Connection closed with an error.","allowReconnect":true}');
  });

  test('with detailed errors, the Close names the client timeout as .NET does', async () => {
    const detailed = await startChatServer({
      keepAliveIntervalMs: 200,
      clientTimeoutIntervalMs: 500,
      enableDetailedErrors: true,
    });
    try {
      const socket = await RawWebSocket.connect(detailed.hubUrl);
      sockets.push(socket);
      socket.send(HANDSHAKE);
      await socket.frame(0);
      socket.send(`{"type":6}${RS}`);
      await socket.closed;
      expect(JSON.parse(messages(socket).at(-1) ?? 'null')).toEqual({
        type: 7,
        error:
          "Connection closed with an error. OperationCanceledException: Client hasn't sent a message/ping within the configured ClientTimeoutInterval.",
        allowReconnect: true,
      });
    } finally {
      await detailed.close();
    }
  });

  test('a client that keeps pinging stays connected', async () => {
    const socket = await handshaken();
    for (let i = 0; i < 8; i++) {
      socket.send(`{"type":6}${RS}`);
      await delay(150);
    }
    expect(socket.socket.readyState).toBe(socket.socket.OPEN);
  });
});

describe("with .NET's defaults", () => {
  let server: RunningServer;
  const pool = new ClientPool(() => server.hubUrl);
  beforeAll(async () => {
    server = await startChatServer();
  });
  afterAll(async () => {
    await pool.stopAll();
    await server.close();
  });

  test('a real client idle for 35 s stays connected (its own server timeout is 30 s)', async () => {
    const client = await pool.connect();
    let closed = false;
    void client.closed.then(() => (closed = true));
    await delay(35_000);
    expect(closed).toBe(false);
    expect(client.connection.state).toBe(signalR.HubConnectionState.Connected);
    expect(await client.connection.invoke('Echo', 'after 35 s')).toBe('after 35 s');
  }, 45_000);
});
