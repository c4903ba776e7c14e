/**
 * The chat sample as a Fastify app: the hub at `/chathub` and a page at `/` that talks to it with the official
 * browser client, served from `node_modules` (no CDN).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { fastifySignalR, type SignalROptions } from '../../src/index';
import { ChatHub } from './chat-hub';

/** Options of the chat app. */
export interface ChatAppOptions {
  /** Fastify server options (logger, ...). */
  readonly fastify?: FastifyServerOptions;
  /** Overrides of the SignalR options (timeouts, limits, transports). */
  readonly signalr?: Partial<Omit<SignalROptions, 'hubs'>>;
}

/** Browser bundles of the official client, served from `node_modules` (a built image copies them beside the page). */
const BROWSER_FILES: Record<string, string> = {
  '/lib/signalr.min.js': '@microsoft/signalr/dist/browser/signalr.min.js',
};

async function readBrowserFile(url: string, moduleFile: string): Promise<string> {
  try {
    return await readFile(path.join(__dirname, 'public', url), 'utf8');
  } catch {
    return await readFile(require.resolve(moduleFile), 'utf8');
  }
}

/**
 * The CORS origins from `CORS_ORIGINS`: a comma-separated list, or `*` for any origin; unset: same-origin only.
 */
export function corsOriginsFromEnvironment(value = process.env.CORS_ORIGINS): readonly string[] | '*' | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (value.trim() === '*') return '*';
  return value.split(',').map((origin) => origin.trim()).filter(Boolean);
}

/** Builds the chat app; call `listen` on the result. */
export async function buildChatApp(options: ChatAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(options.fastify ?? { logger: { level: 'warn' } });
  await app.register(fastifySignalR, {
    allowedOrigins: corsOriginsFromEnvironment(),
    ...options.signalr,
    hubs: [
      {
        path: '/chathub',
        hub: ChatHub,
        // The sample has no login: a connection's user id is its `user` query parameter. Real apps resolve it from
        // their authentication (the default reads the authenticated user's id claim).
        userIdProvider: (request) => {
          const user = (request.query as Record<string, unknown>).user;
          return typeof user === 'string' && user !== '' ? user : undefined;
        },
      },
    ],
  });

  // A client result requested from outside any hub method, through the hub's context: asks that connection
  // `GetAnswer("question")` and answers with its string, or `error: <message>` (both 200), as the ASP.NET Core chat
  // server's `GET /ask/{connectionId}` does. The request going away cancels the question.
  app.get<{ Params: { connectionId: string } }>('/ask/:connectionId', async (request, reply) => {
    const cancel = new AbortController();
    reply.raw.once('close', () => cancel.abort());
    try {
      const answer = await app.signalr
        .hub(ChatHub)
        .clients.client(request.params.connectionId)
        .invoke<unknown>('GetAnswer', 'question', cancel.signal);
      // `invoke` does not check the answer's type (.NET converts it to the string it asked for, or fails).
      if (answer !== null && typeof answer !== 'string') {
        throw new TypeError(`The answer is a ${typeof answer}, not a string.`);
      }
      return reply.type('text/plain; charset=utf-8').send(answer ?? '');
    } catch (error) {
      return reply.type('text/plain; charset=utf-8').send(`error: ${(error as Error).message}`);
    }
  });

  const page = await readFile(path.join(__dirname, 'public', 'index.html'), 'utf8');
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  for (const [url, file] of Object.entries(BROWSER_FILES)) {
    const body = await readBrowserFile(url, file);
    app.get(url, async (_request, reply) => reply.type('application/javascript; charset=utf-8').send(body));
  }
  return app;
}
