/**
 * Server-Sent Events over raw HTTP (docs/protocol.md §1.6): .NET's headers, the `:\r\n` preamble, `data:` events
 * holding whole messages, no buffering, Text only, sends by POST, 409 for a second stream, and immediate cleanup when
 * the client drops its socket.
 */
import http from 'node:http';
import { delay, eventually } from '../support/clients';
import { startChatServer, type RunningServer } from '../support/servers';

const RS = '\u001e';
let server: RunningServer;

beforeAll(async () => {
  server = await startChatServer();
});
afterAll(() => server.close());

interface EventStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Everything received so far. */
  text(): string;
  waitFor(predicate: (text: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Drops the socket without a goodbye. */
  destroy(): void;
  ended: Promise<void>;
}

function openEventStream(token: string): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      `${server.hubUrl}?id=${token}`,
      { headers: { accept: 'text/event-stream' } },
      (response) => {
        let received = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (received += chunk));
        const ended = new Promise<void>((done) => response.on('close', () => done()));
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          text: () => received,
          ended,
          destroy: () => request.destroy(),
          waitFor: async (predicate, timeoutMs = 3000) => {
            const deadline = Date.now() + timeoutMs;
            while (!predicate(received)) {
              if (Date.now() > deadline) throw new Error(`stream so far: ${JSON.stringify(received)}`);
              await delay(5);
            }
            return received;
          },
        });
      },
    );
    request.on('error', reject);
  });
}

async function negotiate(): Promise<{ connectionId: string; connectionToken: string }> {
  return (await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' })).json();
}

const post = (token: string, body: string) => fetch(`${server.hubUrl}?id=${token}`, { method: 'POST', body });

test("the stream has .NET's headers and starts with the :\\r\\n preamble", async () => {
  const { connectionToken } = await negotiate();
  const stream = await openEventStream(connectionToken);
  expect(stream.status).toBe(200);
  expect(stream.headers['content-type']).toBe('text/event-stream');
  expect(stream.headers['cache-control']).toBe('no-cache,no-store');
  expect(stream.headers.pragma).toBe('no-cache');
  expect(stream.headers['content-encoding']).toBe('identity');
  expect(await stream.waitFor((text) => text.length >= 3)).toBe(':\r\n');
  stream.destroy();
});

test('messages arrive as data events holding whole messages; sends go by POST', async () => {
  const { connectionToken } = await negotiate();
  const stream = await openEventStream(connectionToken);
  expect((await post(connectionToken, `{"protocol":"json","version":1}${RS}`)).status).toBe(200);
  await stream.waitFor((text) => text.includes('{}'));
  await post(
    connectionToken,
    `{"type":1,"invocationId":"1","target":"Echo","arguments":["x"]}${RS}{"type":1,"invocationId":"2","target":"Echo","arguments":["y"]}${RS}`,
  );
  const text = await stream.waitFor((received) => received.includes('"invocationId":"2"'));
  // One event per turn: the handshake reply, then both completions together.
  expect(text).toBe(
    `:\r\ndata: {}${RS}\r\n\r\ndata: {"type":3,"invocationId":"1","result":"x"}${RS}{"type":3,"invocationId":"2","result":"y"}${RS}\r\n\r\n`,
  );
  stream.destroy();
});

test('a second stream for the same connection gets 409', async () => {
  const { connectionToken } = await negotiate();
  const stream = await openEventStream(connectionToken);
  const second = await fetch(`${server.hubUrl}?id=${connectionToken}`, { headers: { accept: 'text/event-stream' } });
  expect(second.status).toBe(409);
  stream.destroy();
});

test('an SSE request without id or with an unknown id', async () => {
  const missing = await fetch(server.hubUrl, { headers: { accept: 'text/event-stream' } });
  expect([missing.status, await missing.text()]).toEqual([400, 'Connection ID required']);
  const unknown = await fetch(`${server.hubUrl}?id=nope`, { headers: { accept: 'text/event-stream' } });
  expect([unknown.status, await unknown.text()]).toEqual([404, 'No Connection with that ID']);
});

test("MessagePack is refused on Server-Sent Events with .NET's handshake error", async () => {
  const { connectionToken } = await negotiate();
  const stream = await openEventStream(connectionToken);
  await post(connectionToken, `{"protocol":"messagepack","version":1}${RS}`);
  await stream.ended;
  expect(stream.text()).toBe(
    `:\r\ndata: {"error":"Cannot use the 'messagepack' protocol on the current transport. The transport does not support 'Binary' transfer format."}${RS}\r\n\r\n`,
  );
});

test('a client that drops its socket is removed at once', async () => {
  const { connectionToken } = await negotiate();
  const stream = await openEventStream(connectionToken);
  await post(connectionToken, `{"protocol":"json","version":1}${RS}`);
  await stream.waitFor((text) => text.includes('{}'));
  const endpoint = server.app.signalr.endpoints[0];
  expect(endpoint.connections.get(connectionToken)).toBeDefined();
  stream.destroy();
  await eventually(() => endpoint.connections.get(connectionToken) === undefined, 'the connection is gone', 500);
  expect((await post(connectionToken, `{"type":6}${RS}`)).status).toBe(404);
});

test('the server ending the connection ends the stream', async () => {
  const { connectionToken } = await negotiate();
  const stream = await openEventStream(connectionToken);
  await post(connectionToken, `{"protocol":"json","version":1}${RS}`);
  await stream.waitFor((text) => text.includes('{}'));
  await post(connectionToken, `{"type":7}${RS}`);
  await stream.ended;
  expect(stream.text().endsWith(`data: {"type":7}${RS}\r\n\r\n`)).toBe(true);
});
