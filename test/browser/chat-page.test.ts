/**
 * The chat sample's page in real headless Chromium, with the official browser bundle served from `node_modules`:
 * over each transport, a message typed in one browser context appears in another; the MessagePack bundle works;
 * a page from another origin connects when its origin is allowed and fails when it is not.
 */
import { readFile } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import Fastify from 'fastify';
import { buildChatApp } from '../../samples/chat/app';
import { launchBrowser } from '../support/browser';
import { listen, type RunningServer } from '../support/servers';

let browser: Browser;
let server: RunningServer;

beforeAll(async () => {
  browser = await launchBrowser();
  const app = await buildChatApp({ fastify: { logger: false } });
  const msgpackBundle = await readFile(
    require.resolve('@microsoft/signalr-protocol-msgpack/dist/browser/signalr-protocol-msgpack.min.js'),
    'utf8',
  );
  app.get('/lib/signalr-protocol-msgpack.min.js', async (_request, reply) =>
    reply.type('application/javascript').send(msgpackBundle),
  );
  server = await listen(app);
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function openChat(transport: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.url}/?transport=${transport}`);
  await page.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('Connected'), undefined, {
    timeout: 10_000,
  });
  return page;
}

test.each(['WebSockets', 'ServerSentEvents', 'LongPolling'])(
  'over %s a message typed in one browser appears in another',
  async (transport) => {
    const alice = await openChat(transport);
    const bob = await openChat(transport);
    try {
      await alice.fill('#user', 'alice');
      await alice.fill('#message', `hello over ${transport}`);
      await alice.click('#send');
      await bob.waitForFunction(
        (text) => document.getElementById('messages')?.textContent?.includes(text),
        `alice: hello over ${transport}`,
        { timeout: 10_000 },
      );
      // Rooms: bob joins, alice sends to the room.
      await bob.fill('#room', 'lobby');
      await bob.click('#join');
      await bob.waitForFunction(() => document.getElementById('messages')?.textContent?.includes('joined lobby'));
      await alice.fill('#room', 'lobby');
      await alice.fill('#room-message', 'room note');
      await alice.click('#send-room');
      await bob.waitForFunction(() => document.getElementById('messages')?.textContent?.includes('alice: room note'));
    } finally {
      await alice.context().close();
      await bob.context().close();
    }
  },
);

test('the MessagePack browser bundle works from Chromium', async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${server.url}/`);
    await page.addScriptTag({ url: '/lib/signalr-protocol-msgpack.min.js' });
    const result = await page.evaluate(async () => {
      const signalR = (window as unknown as { signalR: any }).signalR; // eslint-disable-line @typescript-eslint/no-explicit-any
      const connection = new signalR.HubConnectionBuilder()
        .withUrl('/chathub', { transport: signalR.HttpTransportType.WebSockets })
        .withHubProtocol(new signalR.protocols.msgpack.MessagePackHubProtocol())
        .build();
      await connection.start();
      const bytes = await connection.invoke('Echo', new Uint8Array([1, 2, 250]));
      const date = await connection.invoke('Echo', new Date(Date.UTC(2021, 5, 7)));
      await connection.stop();
      // Only MessagePack carries bytes and dates as such; JSON would return base64 text and an ISO string.
      return {
        bytes: Array.from(bytes as Uint8Array),
        isBytes: bytes instanceof Uint8Array,
        isDate: date instanceof Date,
        date: (date as Date).toISOString(),
      };
    });
    expect(result).toEqual({ bytes: [1, 2, 250], isBytes: true, isDate: true, date: '2021-06-07T00:00:00.000Z' });
  } finally {
    await page.close();
  }
});

describe('a page from another origin', () => {
  let pageServer: RunningServer;
  let allowing: RunningServer;

  beforeAll(async () => {
    // The page lives on its own port (another origin) and connects to the hub given in its query string.
    const bundle = await readFile(require.resolve('@microsoft/signalr/dist/browser/signalr.min.js'), 'utf8');
    const pages = Fastify();
    pages.get('/signalr.min.js', async (_request, reply) => reply.type('application/javascript').send(bundle));
    pages.get('/', async (_request, reply) =>
      reply.type('text/html').send(`<!doctype html><script src="/signalr.min.js"></script><script>
        window.connectTo = async (hubUrl, transport) => {
          const connection = new signalR.HubConnectionBuilder().withUrl(hubUrl, { transport: signalR.HttpTransportType[transport] }).configureLogging(signalR.LogLevel.None).build();
          try { await connection.start(); const echoed = await connection.invoke('Echo', 'cross-origin'); await connection.stop(); return echoed; }
          catch (error) { return 'failed: ' + error.message; }
        };
      </script>`),
    );
    pageServer = await listen(pages);
    const app = await buildChatApp({ fastify: { logger: false }, signalr: { allowedOrigins: [pageServer.url] } });
    allowing = await listen(app);
  });
  afterAll(async () => {
    await pageServer?.close();
    await allowing?.close();
  });

  test.each(['WebSockets', 'ServerSentEvents', 'LongPolling'])(
    'connects over %s when its origin is allowed',
    async (transport) => {
      const page = await browser.newPage();
      try {
        await page.goto(pageServer.url);
        expect(
          await page.evaluate(
            ([hub, t]) =>
              (window as unknown as { connectTo: (h: string, t: string) => Promise<string> }).connectTo(hub, t),
            [allowing.hubUrl, transport],
          ),
        ).toBe('cross-origin');
      } finally {
        await page.close();
      }
    },
  );

  test.each(['WebSockets', 'ServerSentEvents', 'LongPolling'])(
    'fails over %s when its origin is not allowed',
    async (transport) => {
      const page = await browser.newPage();
      try {
        await page.goto(pageServer.url);
        const outcome = await page.evaluate(
          ([hub, t]) =>
            (window as unknown as { connectTo: (h: string, t: string) => Promise<string> }).connectTo(hub, t),
          [server.hubUrl, transport],
        );
        expect(outcome).toMatch(/^failed: /);
      } finally {
        await page.close();
      }
    },
  );
});
