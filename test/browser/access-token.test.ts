/**
 * The `access_token` query path in a real browser: Chromium cannot put an `Authorization` header on a WebSocket or
 * an EventSource, so the official browser client sends its token in the query string there; the server accepts it
 * (and the header on its fetch requests) through the same Fastify authentication hook.
 */
import { readFile } from 'node:fs/promises';
import fastifyJwt from '@fastify/jwt';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { Browser } from 'playwright-core';
import { fastifySignalR, Hub } from '../../src';
import { launchBrowser } from '../support/browser';
import { listen, type RunningServer } from '../support/servers';

class WhoHub extends Hub {
  whoAmI(): string | null {
    return this.context.userIdentifier ?? null;
  }
}

let browser: Browser;
let server: RunningServer;
let token: string;
/** How each authenticated request carried its token. */
const carriers: Array<{ method: string; ws: boolean; query: boolean; header: boolean }> = [];

beforeAll(async () => {
  browser = await launchBrowser();
  const app = Fastify();
  await app.register(fastifyJwt, { secret: 'browser test secret, long enough for HS256' });
  token = app.jwt.sign({ sub: 'browser-user' });
  const bundle = await readFile(require.resolve('@microsoft/signalr/dist/browser/signalr.min.js'), 'utf8');
  app.get('/signalr.min.js', async (_request, reply) => reply.type('application/javascript').send(bundle));
  app.get('/', async (_request, reply) =>
    reply.type('text/html').send('<!doctype html><script src="/signalr.min.js"></script>'),
  );
  await app.register(fastifySignalR, {
    hubs: [
      {
        path: '/who',
        hub: WhoHub,
        onRequest: async (request: FastifyRequest, reply: FastifyReply) => {
          carriers.push({
            method: request.method,
            ws: request.ws,
            query: (request.raw.url ?? '').includes('access_token='),
            header: request.raw.rawHeaders.some((name) => name.toLowerCase() === 'authorization'),
          });
          try {
            await request.jwtVerify();
          } catch {
            return reply.code(401).send();
          }
        },
      },
    ],
  });
  server = await listen(app, '/who');
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

test.each(['WebSockets', 'ServerSentEvents'])(
  'over %s the browser authenticates with access_token in the query',
  async (transport) => {
    carriers.length = 0;
    const page = await browser.newPage();
    try {
      await page.goto(server.url);
      const who = await page.evaluate(
        async ([jwt, name]) => {
          const signalR = (window as unknown as { signalR: any }).signalR; // eslint-disable-line @typescript-eslint/no-explicit-any
          const connection = new signalR.HubConnectionBuilder()
            .withUrl('/who', { transport: signalR.HttpTransportType[name], accessTokenFactory: () => jwt })
            .build();
          await connection.start();
          const result = await connection.invoke('WhoAmI');
          await connection.stop();
          return result;
        },
        [token, transport] as const,
      );
      expect(who).toBe('browser-user');
      // Negotiate (a fetch) carried the header; the socket or event stream carried the query parameter.
      expect(carriers.find((entry) => entry.method === 'POST')).toMatchObject({ header: true });
      const stream =
        transport === 'WebSockets'
          ? carriers.find((entry) => entry.ws)
          : carriers.find((entry) => entry.method === 'GET');
      expect(stream).toMatchObject({ query: true, header: false });
    } finally {
      await page.close();
    }
  },
);

test('without a token the browser client cannot start', async () => {
  const page = await browser.newPage();
  try {
    await page.goto(server.url);
    const outcome = await page.evaluate(async () => {
      const signalR = (window as unknown as { signalR: any }).signalR; // eslint-disable-line @typescript-eslint/no-explicit-any
      const connection = new signalR.HubConnectionBuilder()
        .withUrl('/who')
        .configureLogging(signalR.LogLevel.None)
        .build();
      return connection.start().then(
        () => 'connected',
        (error: Error) => error.message,
      );
    });
    expect(outcome).toMatch(/401/);
  } finally {
    await page.close();
  }
});
