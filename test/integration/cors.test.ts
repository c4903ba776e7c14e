/**
 * CORS for cross-origin browser pages (docs/protocol.md §1.10): preflights answered, allowed origins echoed with
 * credentials, refused origins get no CORS headers, and cross-origin WebSocket upgrades that no policy allows are
 * refused. (The browser test in `test/browser` shows the same with real Chromium.)
 */
import { startChatServer, type RunningServer } from '../support/servers';
import WebSocket from 'ws';

const ALLOWED = 'http://app.example.com';
let server: RunningServer;
let any: RunningServer;
let none: RunningServer;

beforeAll(async () => {
  server = await startChatServer({ allowedOrigins: [ALLOWED] });
  any = await startChatServer({ allowedOrigins: '*' });
  none = await startChatServer();
});
afterAll(() => Promise.all([server.close(), any.close(), none.close()]));

function preflight(target: RunningServer, origin: string, path = '/chathub/negotiate') {
  return fetch(`${target.url}${path}?negotiateVersion=1`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'x-requested-with,x-signalr-user-agent,authorization',
    },
  });
}

test('a preflight from an allowed origin is answered with the requested method and headers', async () => {
  const response = await preflight(server, ALLOWED);
  expect(response.status).toBe(204);
  expect(response.headers.get('access-control-allow-origin')).toBe(ALLOWED);
  expect(response.headers.get('access-control-allow-credentials')).toBe('true');
  expect(response.headers.get('access-control-allow-methods')).toBe('POST');
  expect(response.headers.get('access-control-allow-headers')).toBe(
    'x-requested-with,x-signalr-user-agent,authorization',
  );
});

test('a preflight from another origin gets 204 without CORS headers, so the browser stops', async () => {
  const response = await preflight(server, 'http://evil.example.com');
  expect(response.status).toBe(204);
  expect(response.headers.get('access-control-allow-origin')).toBeNull();
  expect(response.headers.get('access-control-allow-credentials')).toBeNull();
});

test('requests from an allowed origin carry the echoed origin and credentials', async () => {
  const response = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, {
    method: 'POST',
    headers: { origin: ALLOWED },
  });
  expect(response.status).toBe(200);
  expect(response.headers.get('access-control-allow-origin')).toBe(ALLOWED);
  expect(response.headers.get('access-control-allow-credentials')).toBe('true');
  expect(response.headers.get('vary')).toBe('Origin');
  const poll = await fetch(`${server.hubUrl}?id=nope`, { headers: { origin: ALLOWED } });
  expect(poll.headers.get('access-control-allow-origin')).toBe(ALLOWED);
});

test('"*" allows any origin, echoed back (never a literal *) with credentials', async () => {
  const response = await preflight(any, 'http://anything.example.org:8080', '/chathub');
  expect(response.headers.get('access-control-allow-origin')).toBe('http://anything.example.org:8080');
  expect(response.headers.get('access-control-allow-credentials')).toBe('true');
});

test('without a policy, no origin is given CORS headers', async () => {
  const response = await preflight(none, ALLOWED);
  expect(response.status).toBe(204);
  expect(response.headers.get('access-control-allow-origin')).toBeNull();
});

async function upgrade(target: RunningServer, origin: string | undefined): Promise<number> {
  return await new Promise((resolve, reject) => {
    const socket = new WebSocket(target.hubUrl.replace('http', 'ws'), origin === undefined ? {} : { origin });
    socket.once('open', () => {
      socket.terminate();
      resolve(101);
    });
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.once('error', reject);
  });
}

test('WebSocket upgrades: allowed and same origins pass, other origins get 403, no Origin (not a browser) passes', async () => {
  expect(await upgrade(server, ALLOWED)).toBe(101);
  expect(await upgrade(server, 'http://evil.example.com')).toBe(403);
  expect(await upgrade(none, ALLOWED)).toBe(403);
  expect(await upgrade(none, none.url)).toBe(101);
  expect(await upgrade(none, undefined)).toBe(101);
  expect(await upgrade(any, 'http://anything.example.org')).toBe(101);
});
