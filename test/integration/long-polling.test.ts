/**
 * Long polling over raw HTTP (docs/protocol.md §1.7–§1.9): the first poll returns at once, later polls carry every
 * queued message, time out empty, end with 204 when superseded, deleted or closed; sends by POST; an abandoned
 * connection is removed after the disconnect timeout; no pings on long polling; bad requests get .NET's status codes.
 */
import Fastify from 'fastify';
import http from 'node:http';
import { fastifySignalR, Hub } from '../../src';
import { delay, eventually } from '../support/clients';
import { RawWebSocket } from '../support/raw-websocket';
import { listen, startChatServer, type RunningServer } from '../support/servers';

const RS = '\u001e';
const disconnected: string[] = [];

class TrackingHub extends Hub {
  override onDisconnected(): void {
    disconnected.push(this.context.connectionId);
  }
  echo(value: unknown): unknown {
    return value;
  }
  async broadcast(text: string): Promise<void> {
    await this.clients.all.send('Note', text);
  }
}

let server: RunningServer;

beforeAll(async () => {
  const app = Fastify();
  await app.register(fastifySignalR, {
    hubs: [{ path: '/lp', hub: TrackingHub, transports: ['LongPolling'] }],
    keepAliveIntervalMs: 100,
    longPollTimeoutMs: 400,
    disconnectTimeoutMs: 500,
  });
  server = await listen(app, '/lp');
});
afterAll(() => server.close());

interface Poll {
  status: number;
  contentType: string | null;
  body: string;
  headers: Headers;
}

async function poll(token: string, signal?: AbortSignal): Promise<Poll> {
  const response = await fetch(`${server.hubUrl}?id=${token}&_=${Date.now()}`, { signal });
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: await response.text(),
    headers: response.headers,
  };
}

/** The status of a GET sent on a socket of its own (no keep-alive pool). */
function statusOnNewSocket(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

async function post(token: string, body: string, contentType = 'text/plain;charset=UTF-8') {
  const response = await fetch(`${server.hubUrl}?id=${token}`, {
    method: 'POST',
    body,
    headers: { 'content-type': contentType },
  });
  return { status: response.status, body: await response.text() };
}

/** A negotiated long-polling connection past its handshake; returns its token and public id. */
async function connected(): Promise<{ token: string; id: string }> {
  const negotiation = await (await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' })).json();
  const token = negotiation.connectionToken;
  expect(await poll(token)).toMatchObject({ status: 200, body: '' });
  expect(await post(token, `{"protocol":"json","version":1}${RS}`)).toEqual({ status: 200, body: '' });
  expect((await poll(token)).body).toBe(`{}${RS}`);
  return { token, id: negotiation.connectionId };
}

test('the first poll answers at once with 200, no body, application/octet-stream and no-cache headers', async () => {
  const { connectionToken } = await (
    await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' })
  ).json();
  const started = Date.now();
  const first = await poll(connectionToken);
  expect(Date.now() - started).toBeLessThan(300);
  expect(first).toMatchObject({ status: 200, contentType: 'application/octet-stream', body: '' });
  expect(first.headers.get('cache-control')).toBe('no-cache, no-store');
  expect(first.headers.get('pragma')).toBe('no-cache');
  expect(first.headers.get('expires')).toBe('Thu, 01 Jan 1970 00:00:00 GMT');
});

test('a poll returns every message queued since the last one, in one body', async () => {
  const { token } = await connected();
  // Several messages in one POST body, as the client batches them.
  const sends =
    `{"type":1,"invocationId":"1","target":"Echo","arguments":["a"]}${RS}` +
    `{"type":1,"invocationId":"2","target":"Echo","arguments":["b"]}${RS}` +
    `{"type":1,"target":"Broadcast","arguments":["c"]}${RS}`;
  expect(await post(token, sends)).toEqual({ status: 200, body: '' });
  await delay(50);
  const response = await poll(token);
  expect(response).toMatchObject({ status: 200, contentType: 'application/octet-stream' });
  expect(response.body).toBe(
    `{"type":3,"invocationId":"1","result":"a"}${RS}{"type":3,"invocationId":"2","result":"b"}${RS}{"type":1,"target":"Note","arguments":["c"]}${RS}`,
  );
});

test('a waiting poll returns as soon as a message is queued', async () => {
  const { token } = await connected();
  const pending = poll(token);
  await delay(100);
  await post(token, `{"type":1,"invocationId":"7","target":"Echo","arguments":[7]}${RS}`);
  expect((await pending).body).toBe(`{"type":3,"invocationId":"7","result":7}${RS}`);
});

test('a poll with nothing to say returns 200 empty text/plain after the poll timeout; no pings are sent', async () => {
  const { token } = await connected();
  const started = Date.now();
  const response = await poll(token);
  const waited = Date.now() - started;
  expect(response).toMatchObject({ status: 200, contentType: 'text/plain', body: '' });
  expect(waited).toBeGreaterThanOrEqual(350);
  expect(waited).toBeLessThan(1500);
});

test('a newer poll supersedes a waiting one, which returns 204', async () => {
  const { token } = await connected();
  const first = poll(token);
  await delay(50);
  const second = poll(token);
  expect((await first).status).toBe(204);
  await post(token, `{"type":1,"invocationId":"9","target":"Echo","arguments":[9]}${RS}`);
  expect((await second).body).toBe(`{"type":3,"invocationId":"9","result":9}${RS}`);
});

test('concurrent POSTs are all processed, none lost', async () => {
  const { token } = await connected();
  const posts = Array.from({ length: 20 }, (_, i) =>
    post(token, `{"type":1,"invocationId":"${i}","target":"Echo","arguments":[${i}]}${RS}`),
  );
  expect((await Promise.all(posts)).every((result) => result.status === 200)).toBe(true);
  let text = '';
  while (text.split(RS).filter(Boolean).length < 20) text += (await poll(token)).body;
  const ids = text
    .split(RS)
    .filter(Boolean)
    .map((message) => Number(JSON.parse(message).invocationId));
  expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
});

test('DELETE answers 202, ends the waiting poll with 204 and the connection', async () => {
  const { token, id } = await connected();
  const pending = poll(token);
  await delay(50);
  const response = await fetch(`${server.hubUrl}?id=${token}`, { method: 'DELETE' });
  expect(response.status).toBe(202);
  expect(await response.text()).toBe('');
  expect((await pending).status).toBe(204);
  await eventually(() => disconnected.includes(id), 'onDisconnected ran');
  expect((await poll(token)).status).toBe(404);
  expect(await post(token, `{"type":6}${RS}`)).toEqual({ status: 404, body: 'No Connection with that ID' });
});

test('a client that stops polling is removed after the disconnect timeout, and onDisconnected runs once', async () => {
  const { token, id } = await connected();
  const endpoint = server.app.signalr.endpoints[0];
  expect(endpoint.connections.get(token)).toBeDefined();
  await eventually(() => disconnected.includes(id), 'the abandoned connection is removed', 3000);
  expect(endpoint.connections.get(token)).toBeUndefined();
  // The server ends the expired connection's last keep-alive socket, so ask on a new one: a pooled fetch may pick
  // that socket before it has seen the server's FIN and fail with "other side closed".
  expect(await statusOnNewSocket(`${server.hubUrl}?id=${token}`)).toBe(404);
  await delay(200);
  expect(disconnected.filter((entry) => entry === id)).toHaveLength(1);
});

test('a server-side close is delivered by the next poll, and the one after ends with 204', async () => {
  const { token } = await connected();
  await post(token, `{"type":7}${RS}`);
  await delay(50);
  expect(await poll(token)).toMatchObject({ status: 200, body: `{"type":7}${RS}` });
  expect((await poll(token)).status).toBe(204);
  expect((await poll(token)).status).toBe(404);
});

describe("bad requests get .NET's answers", () => {
  let chat: RunningServer;
  beforeAll(async () => {
    chat = await startChatServer();
  });
  afterAll(() => chat.close());

  test('missing and unknown ids', async () => {
    for (const method of ['GET', 'POST', 'DELETE']) {
      const missing = await fetch(chat.hubUrl, { method });
      expect([method, missing.status, await missing.text()]).toEqual([method, 400, 'Connection ID required']);
      const unknown = await fetch(`${chat.hubUrl}?id=nope`, { method });
      expect([method, unknown.status, await unknown.text()]).toEqual([method, 404, 'No Connection with that ID']);
    }
  });

  test.each(['PUT', 'PATCH'])('%s is 405', async (method) => {
    expect((await fetch(`${chat.hubUrl}?id=x`, { method })).status).toBe(405);
  });

  test('POST and DELETE on a WebSocket connection', async () => {
    const { connectionToken } = await (
      await fetch(`${chat.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' })
    ).json();
    const socket = await RawWebSocket.connect(`${chat.hubUrl}?id=${connectionToken}`);
    try {
      const posted = await fetch(`${chat.hubUrl}?id=${connectionToken}`, { method: 'POST', body: `{"type":6}${RS}` });
      expect([posted.status, await posted.text()]).toEqual([
        405,
        'POST requests are not allowed for WebSocket connections.',
      ]);
      const deleted = await fetch(`${chat.hubUrl}?id=${connectionToken}`, { method: 'DELETE' });
      expect([deleted.status, await deleted.text()]).toEqual([
        400,
        'Cannot terminate this connection using the DELETE endpoint.',
      ]);
    } finally {
      socket.close();
    }
  });

  test('a poll on a connection bound to another transport', async () => {
    const { connectionToken } = await (
      await fetch(`${chat.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' })
    ).json();
    const socket = await RawWebSocket.connect(`${chat.hubUrl}?id=${connectionToken}`);
    try {
      const response = await fetch(`${chat.hubUrl}?id=${connectionToken}`);
      expect([response.status, await response.text()]).toEqual([400, 'Cannot change transports mid-connection']);
    } finally {
      socket.close();
    }
  });

  test('a POST body over the receive chunk limit gets 413 and the server goes on', async () => {
    const { connectionToken } = await (
      await fetch(`${chat.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' })
    ).json();
    await fetch(`${chat.hubUrl}?id=${connectionToken}`);
    const response = await fetch(`${chat.hubUrl}?id=${connectionToken}`, {
      method: 'POST',
      body: 'x'.repeat(2 * 1024 * 1024),
    });
    expect(response.status).toBe(413);
    expect(await response.text()).toBe('');
    const again = await fetch(`${chat.hubUrl}?id=${connectionToken}`, {
      method: 'POST',
      body: `{"protocol":"json","version":1}${RS}`,
    });
    expect(again.status).toBe(200);
  });
});
