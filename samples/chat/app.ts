/**
 * The chat sample as a Fastify app: the hub at `/chathub`, a page at `/` that talks to it with the official
 * browser client, served from `node_modules` (no CDN), and `/health` for load balancers and tests.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { fastifySignalR, type SignalROptions } from '../../src/index';
import type { RedisBackplaneOptions } from '../../src/options';
import { ChatHub } from './chat-hub';

/** Options of the chat app. */
export interface ChatAppOptions {
  /** Fastify server options (logger, ...). */
  readonly fastify?: FastifyServerOptions;
  /** Overrides of the SignalR options (timeouts, limits, transports, the Redis backplane). */
  readonly signalr?: Partial<Omit<SignalROptions, 'hubs'>>;
  /**
   * The chat hub's name on the Redis backplane: the .NET hub's full type name to share its channels.
   * @default 'ChatHub'
   */
  readonly hubName?: string;
}

/** The chat app's backplane settings from the environment; see {@link backplaneFromEnvironment}. */
export interface ChatBackplaneSettings {
  readonly redis?: RedisBackplaneOptions;
  readonly hubName?: string;
}

/**
 * The Redis backplane from the environment: `REDIS_URL` turns it on (unset: in-memory, one server),
 * `REDIS_CHANNEL_PREFIX` is the .NET servers' StackExchange.Redis channel prefix, `REDIS_ACK_TIMEOUT_MS` how long a
 * group change for a connection of another server waits for its ack (default 30000), and `CHAT_HUB_NAME` the
 * hub's backplane name (the .NET hub's full type name, e.g. `WebAPI.ChatHub`).
 */
export function backplaneFromEnvironment(env: NodeJS.ProcessEnv = process.env): ChatBackplaneSettings {
  const hubName = env.CHAT_HUB_NAME?.trim() || undefined;
  const url = env.REDIS_URL?.trim();
  if (!url) return { hubName };
  const ackTimeout = env.REDIS_ACK_TIMEOUT_MS?.trim();
  return {
    hubName,
    redis: {
      url,
      channelPrefix: env.REDIS_CHANNEL_PREFIX ?? '',
      ...(ackTimeout ? { ackTimeoutMs: Number(ackTimeout) } : {}),
    },
  };
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
        ...(options.hubName !== undefined && { name: options.hubName }),
        // The sample has no login: a connection's user id is its `user` query parameter. Real apps resolve it from
        // their authentication (the default reads the authenticated user's id claim).
        userIdProvider: (request) => {
          const user = (request.query as Record<string, unknown>).user;
          return typeof user === 'string' && user !== '' ? user : undefined;
        },
      },
    ],
  });

  // 200 while the server can serve its clients; the backplane's state (`connected`, outages, messages that could
  // not be published) is reported, not fatal: without Redis the server still serves its own clients.
  app.get('/health', async () => ({ status: 'ok', backplane: app.signalr.backplane ?? null }));

  const page = await readFile(path.join(__dirname, 'public', 'index.html'), 'utf8');
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  for (const [url, file] of Object.entries(BROWSER_FILES)) {
    const body = await readBrowserFile(url, file);
    app.get(url, async (_request, reply) => reply.type('application/javascript; charset=utf-8').send(body));
  }
  return app;
}
