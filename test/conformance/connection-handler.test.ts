/**
 * A raw connection endpoint — ASP.NET Core's `MapConnectionHandler<EchoConnectionHandler>("/echo")` on the reference
 * server, our `connectionHandlers: [{ path: '/echo', onConnected }]` — seen with raw HTTP and raw WebSockets: the
 * negotiate answer, frame types, who closes and how, long polling and Server-Sent Events, must be the same on both.
 * (The official .NET client's `HttpConnection` talks to both in `test/integration/dotnet-client.test.ts`.)
 */
import { startReferenceServer, type ReferenceServer } from '../support/dotnet-reference';
import { RawWebSocket } from '../support/raw-websocket';
import { startChatServer, type RunningServer } from '../support/servers';
import type { ConnectionContext } from '../../src/index';

jest.setTimeout(60_000);

/** The same handler as the reference server's: echo; "bye" ends the connection; `?binary=true` → Binary frames. */
async function echo(connection: ConnectionContext): Promise<void> {
  if ((connection.request.query as Record<string, unknown>).binary === 'true') connection.transferFormat = 'Binary';
  for await (const chunk of connection) {
    if (chunk.toString('utf8') === 'bye') return;
    connection.send(chunk);
  }
}

let reference: ReferenceServer;
let ours: RunningServer;

beforeAll(async () => {
  [reference, ours] = await Promise.all([
    startReferenceServer(),
    startChatServer({ connectionHandlers: [{ path: '/echo', onConnected: echo }] }),
  ]);
});

afterAll(async () => {
  await Promise.allSettled([reference?.stop(), ours?.close()]);
});

/** Runs `scenario` against both servers and expects the same observation. */
async function same<T>(scenario: (baseUrl: string) => Promise<T>): Promise<T> {
  const [expected, actual] = await Promise.all([scenario(reference.url), scenario(ours.url)]);
  expect(actual).toEqual(expected);
  return actual;
}

async function negotiate(baseUrl: string, path = '/echo'): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${baseUrl}${path}/negotiate?negotiateVersion=1`, { method: 'POST' });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

test('negotiate offers every transport with its transfer formats, as for a hub', async () => {
  const observed = await same(async (baseUrl) => {
    const { status, body } = await negotiate(baseUrl);
    return { status, keys: Object.keys(body), availableTransports: body.availableTransports };
  });
  expect(observed.status).toBe(200);
});

test('a WebSocket gets its bytes back in Text frames, or Binary ones when the handler says so; "bye" closes with 1000', async () => {
  const observed = await same(async (baseUrl) => {
    const results: unknown[] = [];
    for (const query of ['', '&binary=true']) {
      const { body } = await negotiate(baseUrl);
      const socket = await RawWebSocket.connect(`${baseUrl}/echo?id=${String(body.connectionToken)}${query}`);
      socket.socket.send(Buffer.from('ping 1'));
      await socket.frame(0);
      socket.socket.send('bye');
      const closed = await socket.closed;
      results.push({ frames: socket.frames.map((frame) => ({ binary: frame.binary, text: frame.text })), closed });
    }
    return results;
  });
  expect(observed[0]).toEqual({ frames: [{ binary: false, text: 'ping 1' }], closed: { code: 1000, reason: '' } });
  expect(observed[1]).toEqual({ frames: [{ binary: true, text: 'ping 1' }], closed: { code: 1000, reason: '' } });
});

test('a WebSocket without negotiate (skipNegotiation) is a raw connection too, at any letter case', async () => {
  await same(async (baseUrl) => {
    const socket = await RawWebSocket.connect(`${baseUrl}/ECHO`);
    socket.socket.send('direct');
    await socket.frame(0);
    socket.socket.close();
    return { frames: socket.frames.map((frame) => frame.text), closed: await socket.closed };
  });
});

test('long polling: the first poll returns at once, the next brings the echo; after "bye" a poll is 204', async () => {
  const observed = await same(async (baseUrl) => {
    const { body } = await negotiate(baseUrl);
    const url = `${baseUrl}/echo?id=${String(body.connectionToken)}`;
    const steps: unknown[] = [];
    const first = await fetch(url);
    steps.push({ poll: first.status, body: await first.text() });
    const sent = await fetch(url, { method: 'POST', body: 'over http' });
    steps.push({ send: sent.status });
    const second = await fetch(url);
    steps.push({ poll: second.status, body: await second.text() });
    await fetch(url, { method: 'POST', body: 'bye' });
    const last = await fetch(url);
    steps.push({ poll: last.status, body: await last.text() });
    const gone = await fetch(url);
    steps.push({ afterEnd: gone.status });
    return steps;
  });
  expect(observed).toEqual([
    { poll: 200, body: '' },
    { send: 200 },
    { poll: 200, body: 'over http' },
    { poll: 204, body: '' },
    { afterEnd: 404 },
  ]);
});

test('Server-Sent Events: the echo arrives as an event, and "bye" ends the stream', async () => {
  await same(async (baseUrl) => {
    const { body } = await negotiate(baseUrl);
    const url = `${baseUrl}/echo?id=${String(body.connectionToken)}`;
    const stream = await fetch(url, { headers: { accept: 'text/event-stream' } });
    const reader = stream.body!.getReader();
    let text = '';
    const readUntil = async (predicate: () => boolean): Promise<boolean> => {
      while (!predicate()) {
        const { done, value } = await reader.read();
        if (done) return true;
        text += Buffer.from(value).toString('utf8');
      }
      return false;
    };
    await fetch(url, { method: 'POST', body: 'over events' });
    await readUntil(() => text.includes('over events'));
    await fetch(url, { method: 'POST', body: 'bye' });
    const ended = await readUntil(() => false);
    return { status: stream.status, contentType: stream.headers.get('content-type'), text, ended };
  });
});
