/**
 * The chat sample as a Fastify app: the hub at `/chathub`, a page at `/` that talks to it with the official
 * browser client, served from `node_modules` (no CDN), and `/health` for load balancers and tests.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { fastifySignalR, type SignalROptions } from '../../src/index';
import { isRedisUrl, type RedisTlsOptions } from '../../src/lifetime/redis-config';
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
 * The Redis backplane from the environment: `REDIS_URL` turns it on (unset: in-memory, one server) and takes either
 * a `redis://` / `rediss://` URL or the StackExchange.Redis connection string the .NET servers use
 * (`host:6380,password=…,ssl=True,abortConnect=False`; several endpoints for a cluster's seed nodes, `serviceName=`
 * for sentinels). `REDIS_TLS_CA_FILE`, `REDIS_TLS_CERT_FILE`, `REDIS_TLS_KEY_FILE` name PEM files (a private CA, a
 * client certificate and its key; any of them turns TLS on) and `REDIS_TLS_SERVERNAME` the name the server's
 * certificate must carry. `REDIS_CHANNEL_PREFIX` is the .NET servers' StackExchange.Redis channel prefix (it wins
 * over the connection string's `channelPrefix`), `REDIS_ACK_TIMEOUT_MS` how long a group change for a connection of
 * another server waits for its ack (default 30000), and `CHAT_HUB_NAME` the hub's backplane name (the .NET hub's full
 * type name, e.g. `WebAPI.ChatHub`).
 */
export function backplaneFromEnvironment(env: NodeJS.ProcessEnv = process.env): ChatBackplaneSettings {
  const hubName = env.CHAT_HUB_NAME?.trim() || undefined;
  const where = env.REDIS_URL?.trim();
  if (!where) return { hubName };
  const ackTimeout = env.REDIS_ACK_TIMEOUT_MS?.trim();
  const file = (name: string): Buffer | undefined => {
    const value = env[name]?.trim();
    return value ? readFileSync(value) : undefined;
  };
  const tls: RedisTlsOptions = {
    ...(file('REDIS_TLS_CA_FILE') !== undefined && { ca: file('REDIS_TLS_CA_FILE') }),
    ...(file('REDIS_TLS_CERT_FILE') !== undefined && { cert: file('REDIS_TLS_CERT_FILE') }),
    ...(file('REDIS_TLS_KEY_FILE') !== undefined && { key: file('REDIS_TLS_KEY_FILE') }),
    ...(env.REDIS_TLS_SERVERNAME?.trim() && { servername: env.REDIS_TLS_SERVERNAME.trim() }),
  };
  return {
    hubName,
    redis: {
      ...(isRedisUrl(where) ? { url: where } : { connectionString: where }),
      ...(Object.keys(tls).length > 0 && { tls }),
      ...(env.REDIS_CHANNEL_PREFIX !== undefined && { channelPrefix: env.REDIS_CHANNEL_PREFIX }),
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
