/**
 * The chat sample as a Fastify app: the hub at `/chathub`, a page at `/` that talks to it with the official
 * browser client, served from `node_modules` (no CDN), `/health` and `/ready` for load balancers, orchestrators
 * and tests, and (optionally) Prometheus metrics at `/metrics`.
 *
 * A demo, not a template to expose as it is: it has no login (`?user=` claims any user id), `GET /ask/:connectionId`
 * lets anyone question any connection, `/presence/*` shows anyone who is connected (and lets anyone change user
 * groups), and `/health` names the Redis host and user. A real app authenticates its
 * hub (`onRequest`/`authorize`), resolves user ids from that, and keeps `/health` and `/metrics` on an internal
 * network (SECURITY.md).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { z } from 'zod';
import {
  fastifySignalR,
  redactedNotFoundHandler,
  serverConfigOptions,
  signalrHealth,
  signalrMetrics,
  stringOption,
  type ConfigTable,
  type ConfigValues,
  type SignalROptions,
} from '../../src/index';
import type { PresenceEvent } from '../../src/index';
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
  /**
   * Whether Prometheus metrics are served at `/metrics`.
   * @default false
   */
  readonly metrics?: boolean;
  /**
   * Whether `/ready` answers 503 while the Redis backplane is not connected.
   * @default true
   */
  readonly readyRequiresBackplane?: boolean;
  /**
   * Turns the admin page on at `/signalr-admin/`, behind HTTP Basic authentication as user `admin` with this
   * password. `signalr.admin`, when given, is used instead.
   * @default none: no admin page
   */
  readonly adminPassword?: string;
}

/** The admin page's user name in the sample's HTTP Basic authentication. */
export const ADMIN_USER = 'admin';

/**
 * The admin page's options for HTTP Basic authentication with one password: the browser asks for it (the 401
 * carries a challenge) and sends it with every later request, the admin hub's included. Compared in constant time.
 */
export function basicAuthAdmin(password: string): NonNullable<SignalROptions['admin']> {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  const expected = digest(`Basic ${Buffer.from(`${ADMIN_USER}:${password}`).toString('base64')}`);
  return {
    challenge: 'Basic realm="signalr-admin", charset="UTF-8"',
    authorize: (request) => {
      const given = request.headers.authorization;
      return typeof given === 'string' && timingSafeEqual(digest(given), expected);
    },
  };
}

/** The chat sample's configuration: every server option, and the hub's backplane name. */
export const chatConfigOptions = {
  ...serverConfigOptions,
  hubName: stringOption(
    'CHAT_HUB_NAME',
    "The chat hub's name on the Redis backplane (`WebAPI.ChatHub` to share channels with a .NET hub of that name).",
    'ChatHub',
    z.string().min(1, { error: 'must not be empty' }),
  ),
  adminPassword: {
    ...stringOption(
      'SIGNALR_ADMIN_PASSWORD',
      'Turns on the admin page at `/signalr-admin/`, behind HTTP Basic authentication as user `admin` with this password.',
      undefined,
      z.string().min(12, { error: 'must be at least 12 characters' }),
      'none: no admin page',
    ),
    secret: true,
    mask: () => '*****',
  },
} satisfies ConfigTable;

/** The chat sample's configuration; see {@link chatConfigOptions}. */
export type ChatConfig = ConfigValues<typeof chatConfigOptions>;

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

/** Builds the chat app; call `listen` on the result. */
export async function buildChatApp(options: ChatAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(options.fastify ?? { logger: { level: 'warn' } });
  // Fastify's own 404 line would log a mistyped hub URL with its access token.
  app.setNotFoundHandler(redactedNotFoundHandler);
  const admin =
    options.signalr?.admin ?? (options.adminPassword === undefined ? undefined : basicAuthAdmin(options.adminPassword));
  await app.register(fastifySignalR, {
    ...options.signalr,
    ...(admin !== undefined && { admin }),
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

  // `/health` (liveness: 200 while the process serves, with the backplane's state) and `/ready` (readiness: 503
  // while shutting down or cut off from Redis), for load balancers, orchestrators and tests.
  await app.register(signalrHealth, { requireBackplane: options.readyRequiresBackplane ?? true });
  if (options.metrics === true) await app.register(signalrMetrics);

  // Demo only: anyone who knows a connection id may question that connection. A client result requested from
  // outside any hub method, through the hub's context: asks that connection
  // `GetAnswer("question")` and answers with its string, or `error: <message>` (both 200), as the ASP.NET Core chat
  // server's `GET /ask/{connectionId}` does. The request going away cancels the question.
  app.get<{ Params: { connectionId: string } }>('/ask/:connectionId', async (request, reply) => {
    const cancel = new AbortController();
    reply.raw.once('close', () => cancel.abort());
    try {
      // Typed `string | null` by ChatClient, but that is the interface's word, not a check: hence `unknown`.
      const answer: unknown = await app.signalr
        .hub(ChatHub)
        .clients.client(request.params.connectionId)
        .invoke('GetAnswer', 'question', cancel.signal);
      // `invoke` does not check the answer's type (.NET converts it to the string it asked for, or fails).
      if (answer !== null && typeof answer !== 'string') {
        throw new TypeError(`The answer is a ${typeof answer}, not a string.`);
      }
      return reply.type('text/plain; charset=utf-8').send(answer ?? '');
    } catch (error) {
      return reply.type('text/plain; charset=utf-8').send(`error: ${(error as Error).message}`);
    }
  });

  registerPresenceRoutes(app);

  const page = await readFile(path.join(__dirname, 'public', 'index.html'), 'utf8');
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  for (const [url, file] of Object.entries(BROWSER_FILES)) {
    const body = await readBrowserFile(url, file);
    app.get(url, async (_request, reply) => reply.type('application/javascript; charset=utf-8').send(body));
  }
  return app;
}

/** How many presence events `GET /presence/events` keeps. */
const PRESENCE_EVENTS_KEPT = 1000;

/**
 * Demo only, unauthenticated like `/ask`: the hub's presence over HTTP — across every server when the sample runs
 * with `SIGNALR_PRESENCE=true` and Redis, this server's otherwise (`scope` says which).
 */
function registerPresenceRoutes(app: FastifyInstance): void {
  const presence = () => app.signalr.hub(ChatHub).presence;
  const events: PresenceEvent[] = [];
  app.addHook('onReady', async () => {
    for (const type of ['connected', 'disconnected', 'joined', 'left'] as const) {
      presence().on(type, (event) => {
        events.push(event);
        if (events.length > PRESENCE_EVENTS_KEPT) events.shift();
      });
    }
  });
  app.get('/presence/events', async () => ({ scope: presence().scope, events }));
  app.get('/presence/servers', async () => ({ scope: presence().scope, servers: await presence().servers() }));
  app.get<{ Params: { id: string } }>('/presence/connections/:id', async (request, reply) => {
    const connection = await presence().connection(request.params.id);
    return connection === undefined
      ? reply.code(404).send({ scope: presence().scope })
      : { scope: presence().scope, connection };
  });
  app.get<{ Params: { id: string } }>('/presence/connections/:id/groups', async (request) => ({
    scope: presence().scope,
    groups: await presence().groupsOf(request.params.id),
  }));
  app.get<{ Params: { user: string } }>('/presence/users/:user', async (request) => ({
    scope: presence().scope,
    connections: await presence().user(request.params.user).connections(),
  }));
  app.get<{ Params: { group: string }; Querystring: { limit?: string; cursor?: string } }>(
    '/presence/groups/:group',
    async (request) => {
      const { limit, cursor } = request.query;
      const page = await presence()
        .group(request.params.group)
        .connections({ ...(limit !== undefined && { limit: Number(limit) }), ...(cursor !== undefined && { cursor }) });
      return { scope: presence().scope, ...page };
    },
  );
  app.get<{ Params: { group: string } }>('/presence/groups/:group/count', async (request) => ({
    scope: presence().scope,
    count: await presence().group(request.params.group).count(),
  }));
  app.put<{ Params: { user: string; group: string }; Querystring: { ttl?: string } }>(
    '/presence/users/:user/groups/:group',
    async (request, reply) => {
      const ttl = request.query.ttl;
      await app.signalr
        .hub(ChatHub)
        .groups.addUserToGroup(
          request.params.user,
          request.params.group,
          ttl === undefined ? {} : { ttlSeconds: Number(ttl) },
        );
      return reply.code(204).send();
    },
  );
  app.delete<{ Params: { user: string; group: string } }>(
    '/presence/users/:user/groups/:group',
    async (request, reply) => {
      await app.signalr.hub(ChatHub).groups.removeUserFromGroup(request.params.user, request.params.group);
      return reply.code(204).send();
    },
  );
}
