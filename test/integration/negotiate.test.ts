/**
 * Negotiate over real HTTP (docs/protocol.md §1.2, §1.3): versions, ids and tokens, content types, methods, and the
 * expiry of connections that never start a transport.
 */
import { RawWebSocket } from '../support/raw-websocket';
import { startChatServer, type RunningServer } from '../support/servers';
import { delay } from '../support/clients';

let server: RunningServer;

beforeAll(async () => {
  server = await startChatServer({ disconnectTimeoutMs: 300 });
});
afterAll(() => server.close());

async function negotiate(query = '', init: RequestInit = {}) {
  const response = await fetch(`${server.hubUrl}/negotiate${query}`, { method: 'POST', ...init });
  return { status: response.status, contentType: response.headers.get('content-type'), body: await response.json() };
}

const KEY = /^[A-Za-z0-9_-]{22}$/;

test('version 1: a 22-character Base64Url id and a separate token', async () => {
  const { status, contentType, body } = await negotiate('?negotiateVersion=1');
  expect(status).toBe(200);
  expect(contentType).toBe('application/json');
  expect(Object.keys(body)).toEqual(['negotiateVersion', 'connectionId', 'connectionToken', 'availableTransports']);
  expect(body.negotiateVersion).toBe(1);
  expect(body.connectionId).toMatch(KEY);
  expect(body.connectionToken).toMatch(KEY);
  expect(body.connectionToken).not.toBe(body.connectionId);
});

test('version 0 (no version asked): no token, the id is the token', async () => {
  const { body } = await negotiate();
  expect(Object.keys(body)).toEqual(['negotiateVersion', 'connectionId', 'availableTransports']);
  expect(body.negotiateVersion).toBe(0);
  const socket = await RawWebSocket.connect(`${server.hubUrl}?id=${body.connectionId}`);
  socket.close();
});

test('query keys are case-insensitive and versions above 1 are clamped', async () => {
  expect((await negotiate('?NEGOTIATEVERSION=1')).body.negotiateVersion).toBe(1);
  expect((await negotiate('?negotiateversion=7')).body.negotiateVersion).toBe(1);
});

test('a non-integer version is a 200 with an error body', async () => {
  const { status, body } = await negotiate('?negotiateVersion=abc');
  expect(status).toBe(200);
  expect(body).toEqual({ error: 'The client requested a non-integer protocol version.' });
});

test('an empty body is accepted with or without a JSON content type', async () => {
  expect((await negotiate('?negotiateVersion=1', { headers: { 'content-type': 'application/json' } })).status).toBe(
    200,
  );
  expect(
    (await negotiate('?negotiateVersion=1', { headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: '' }))
      .status,
  ).toBe(200);
  expect(
    (
      await negotiate('?negotiateVersion=1', {
        headers: { 'content-type': 'application/json' },
        body: '{"not":"read"}',
      })
    ).status,
  ).toBe(200);
});

test("every transport is listed, in .NET's order, with its transfer formats", async () => {
  const { body } = await negotiate('?negotiateVersion=1');
  expect(body.availableTransports[0]).toEqual({ transport: 'WebSockets', transferFormats: ['Text', 'Binary'] });
});

test.each(['GET', 'PUT', 'DELETE', 'PATCH'])('%s on negotiate is 405 with an empty text/plain body', async (method) => {
  const response = await fetch(`${server.hubUrl}/negotiate`, { method });
  expect(response.status).toBe(405);
  expect(response.headers.get('content-type')).toBe('text/plain');
  expect(await response.text()).toBe('');
});

test('the token selects the connection; the public id of a v1 connection does not', async () => {
  const { body } = await negotiate('?negotiateVersion=1');
  expect(await RawWebSocket.refused(`${server.hubUrl}?id=${body.connectionId}`)).toEqual({
    status: 404,
    body: 'No Connection with that ID',
  });
  const socket = await RawWebSocket.connect(`${server.hubUrl}?id=${body.connectionToken}`);
  socket.close();
});

test('a negotiated connection that never connects is dropped after the disconnect timeout', async () => {
  const { body } = await negotiate('?negotiateVersion=1');
  await delay(700);
  expect(await RawWebSocket.refused(`${server.hubUrl}?id=${body.connectionToken}`)).toEqual({
    status: 404,
    body: 'No Connection with that ID',
  });
});

test('by default an unused negotiation lives 15 s, as in .NET', async () => {
  const fresh = await startChatServer();
  try {
    const response = await fetch(`${fresh.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' });
    const { connectionToken } = await response.json();
    const endpoint = fresh.app.signalr.endpoints[0];
    // Ages the connection instead of waiting: 14.9 s keeps it, 15 s drops it.
    endpoint.connections.onHeartbeat(Date.now() + 14_900);
    expect(endpoint.connections.get(connectionToken)).toBeDefined();
    endpoint.connections.onHeartbeat(Date.now() + 15_001);
    expect(endpoint.connections.get(connectionToken)).toBeUndefined();
  } finally {
    await fresh.close();
  }
});
