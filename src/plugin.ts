/**
 * The Fastify plugin: validates the options, mounts each hub's routes, owns the shared heartbeat, exposes
 * `app.signalr` for sending from outside hubs, and closes every connection cleanly when the server closes.
 */
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import fastifyWebsocket from '@fastify/websocket';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { HubProtocol } from '../protocol/hub-protocol';
import { jsonHubProtocol } from '../protocol/json-hub-protocol';
import { messagePackHubProtocol } from '../protocol/messagepack-hub-protocol';
import { Heartbeat, heartbeatIntervalFor } from './shared/heartbeat';
import type { ClientOf, Hub, HubClass } from './hub/hub';
import { HubEndpoint, type HubContext } from './hub/hub-endpoint';
import { HttpErrors, codedError } from './shared/errors';
import { AdminPage } from './admin/admin-page';
import { logEvent } from './shared/log-events';
import type { BackplaneLogger } from './lifetime/backplane-bus';
import { RedisBackplane, type BackplaneStatus } from './redis/redis-backplane';
import { registerManagementApi } from './management/management-api';
import { AspNetEndpoint, registerAspNetEndpoint } from './aspnet/aspnet-endpoint';
import { resolveAspNetOptions } from './aspnet/aspnet-options';
import { resolveOptions, SignalROptionsError, type SignalROptions } from './options';
import { accessTokenHook, authorizeHook } from './transports/authentication';
import { corsHook } from './transports/cors';
import { CaseInsensitivePaths } from './transports/case-insensitive-paths';
import { ConnectionHandlerEndpoint } from './transports/connection-handler';
import { registerHubRoutes } from './transports/hub-routes';

/** The hub protocols this server implements, offered to every hub that does not list its own. */
export const DEFAULT_PROTOCOLS: readonly HubProtocol[] = Object.freeze([jsonHubProtocol, messagePackHubProtocol]);

/** What `app.signalr` offers. */
export interface SignalRServer {
  /**
   * The context of a registered hub, to send to its clients from anywhere. Given the class, the context is typed
   * by the hub's client interface, if it declares one.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any client interface
  hub<H extends Hub<any>>(hub: HubClass<H>): HubContext<ClientOf<H>>;
  /** The context of the hub registered at this path. */
  hub(path: string): HubContext;
  /** The runtime of every hub, in registration order. */
  readonly endpoints: readonly HubEndpoint[];
  /**
   * The Redis backplane's health (`state`, `connected`, outages, messages not published), for a health check;
   * `undefined` without the `redis` option.
   */
  readonly backplane: BackplaneStatus | undefined;
  /** True once a graceful shutdown ({@link SignalRServer.drain}) or `app.close()` began: new connections get 503. */
  readonly shuttingDown: boolean;
  /**
   * The first step of a graceful shutdown, before `app.close()`: new connections are refused with 503 (a load
   * balancer retries them on another server), every idle connection gets a Close message (with `allowReconnect`
   * unless `allowReconnectOnShutdown` is false) and the others get theirs as soon as their running invocations and
   * streams end, which they do normally meanwhile. Resolves once every connection is gone, or after `timeoutMs`,
   * when the connections still open are closed at once.
   */
  drain(options?: DrainOptions): Promise<DrainReport>;
}

/** Options of {@link SignalRServer.drain}. */
export interface DrainOptions {
  /**
   * How long connections may take to finish their invocations and leave before they are closed anyway.
   * @default 5000
   */
  readonly timeoutMs?: number;
}

/** What {@link SignalRServer.drain} did. */
export interface DrainReport {
  /** Connections open when the drain began (negotiated ones included). */
  readonly connections: number;
  /** Connections still open when the drain time was up, closed at once then (their running invocations lost). */
  readonly cut: number;
  /** Those connections' ids and transports (the first 20), to tell a stuck invocation from a vanished client. */
  readonly cutConnections: readonly { readonly connectionId: string; readonly transport: string | null }[];
  /** How long the drain took. */
  readonly durationMs: number;
}

/** Time a drain gives connections to finish unless told otherwise. */
const DEFAULT_DRAIN_TIMEOUT_MS = 5_000;

/**
 * The backplane's log with a stable event name on each warning and error, unless the line names a more precise
 * one (`signalr.backplane.connected`, …). Debug lines pass as they are: some are per message during an outage.
 */
function backplaneLogger(log: FastifyBaseLogger): BackplaneLogger {
  return {
    error: (object, message) => logEvent(log, 'error', 'signalr.backplane.error', object, message),
    warn: (object, message) => logEvent(log, 'warn', 'signalr.backplane.warning', object, message),
    info: (object, message) => logEvent(log, 'info', 'signalr.backplane.info', object, message),
    debug: (object, message) => log.debug(object, message),
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The SignalR server registered by fastify-signalr. */
    signalr: SignalRServer;
  }
}

const signalr: FastifyPluginAsync<SignalROptions> = async (app, rawOptions) => {
  // The admin page's hub is one more hub, registered (and validated) with the others.
  const adminPage = AdminPage.fromOptions(rawOptions);
  const options = resolveOptions(
    adminPage === undefined ? rawOptions : { ...rawOptions, hubs: [...rawOptions.hubs, adminPage.hubRegistration] },
    DEFAULT_PROTOCOLS,
  );
  if (rawOptions.allowedOrigins === '*') {
    // `'*'` echoes any Origin with credentials (as ASP.NET Core's SetIsOriginAllowed(_ => true).AllowCredentials()):
    // with sessions kept in cookies, any site's page would act as its visitor. Checked once every plugin is in.
    app.addHook('onReady', async () => {
      if (app.hasRequestDecorator('session')) {
        throw new SignalROptionsError(
          "Invalid fastify-signalr options: allowedOrigins '*' with a cookie session plugin lets any site's page act " +
            'as its visitors; list the origins that may connect instead.',
        );
      }
    });
  }
  const heartbeat = new Heartbeat(
    heartbeatIntervalFor([
      ...options.hubs.flatMap((hub) => [
        hub.keepAliveIntervalMs,
        hub.clientTimeoutIntervalMs,
        hub.handshakeTimeoutMs,
        hub.disconnectTimeoutMs,
      ]),
      ...options.connectionHandlers.map((handler) => handler.disconnectTimeoutMs),
    ]),
    (error) => app.log.error({ err: error }, 'heartbeat check failed'),
  );
  // Redis backplane: one bus for the server, one lifetime manager per hub; created now, connecting in the
  // background, so the server starts (and serves its own clients) even while Redis is unreachable.
  const backplane =
    options.redis === null
      ? undefined
      : new RedisBackplane(options.redis, backplaneLogger(app.log.child({ backplane: 'redis' })));
  const endpoints = options.hubs.map((hub) => {
    const log = app.log.child({ hub: hub.path });
    // The admin hub stays in memory: each server's page is that server's.
    const onBackplane = hub.hub !== adminPage?.hubClass;
    return new HubEndpoint(
      hub,
      heartbeat,
      log,
      onBackplane ? backplane?.createManager(hub, backplaneLogger(log)) : undefined,
    );
  });
  /** The application's hubs: the admin hub is the plugin's own. */
  const applicationEndpoints = endpoints.filter((endpoint) => endpoint.options.hub !== adminPage?.hubClass);
  const connectionEndpoints = options.connectionHandlers.map(
    (handler) => new ConnectionHandlerEndpoint(handler, heartbeat, app.log.child({ connectionHandler: handler.path })),
  );
  // Registration fails when Redis refuses the configuration (credentials, TLS, ACL), or with abortConnect is unreachable.
  await backplane?.ready();
  let shuttingDown = false;
  /** The ASP.NET SignalR 2.x endpoint, with the `aspNetSignalR` option. */
  let aspNetEndpoint: AspNetEndpoint | undefined;
  /** Connections of every hub, negotiated ones included: what a drain waits for. */
  const openConnections = () =>
    [...endpoints, ...connectionEndpoints].reduce((count, endpoint) => count + endpoint.connections.size, 0);

  const server: SignalRServer = {
    endpoints: applicationEndpoints,
    get backplane() {
      return backplane?.status();
    },
    get shuttingDown() {
      return shuttingDown;
    },
    async drain(drainOptions: DrainOptions = {}): Promise<DrainReport> {
      const started = Date.now();
      const deadline = started + (drainOptions.timeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
      shuttingDown = true;
      const connections = openConnections();
      for (const endpoint of endpoints) endpoint.drain(options.allowReconnectOnShutdown);
      // 2.x clients are told to reconnect (elsewhere, behind a balancer) and leave at once.
      await aspNetEndpoint?.close();
      // A raw connection has no notion of idle: it is closed now, after what was sent to it.
      for (const endpoint of connectionEndpoints) endpoint.shutdown();
      // A long-polling connection is gone only once its client fetched the Close, so this waits on the transports,
      // not only on the hub connections.
      while (openConnections() > 0 && Date.now() < deadline) await sleep(20);
      const cut = openConnections();
      const cutConnections = [...endpoints, ...connectionEndpoints]
        .flatMap((endpoint) => [...endpoint.connections.all()])
        .slice(0, 20)
        .map((connection) => ({ connectionId: connection.connectionId, transport: connection.transport }));
      if (cut > 0) for (const endpoint of endpoints) endpoint.shutdown(options.allowReconnectOnShutdown);
      if (cut > 0)
        for (const endpoint of connectionEndpoints)
          for (const connection of endpoint.connections.all()) connection.transportClosed();
      return { connections, cut, cutConnections, durationMs: Date.now() - started };
    },
    hub(hub: HubClass | string): HubContext {
      const endpoint = applicationEndpoints.find((candidate) =>
        typeof hub === 'string' ? candidate.options.path === hub : candidate.options.hub === hub,
      );
      if (endpoint === undefined) {
        throw codedError(
          'SIGNALR_ERR_UNKNOWN_HUB',
          `No hub is registered for ${typeof hub === 'string' ? hub : hub.name}.`,
        );
      }
      return endpoint;
    },
  };
  app.decorate('signalr', server);

  // Added before @fastify/websocket registers its own preClose hook, so clients get a SignalR Close message and a
  // 1000 close frame before that plugin closes whatever sockets remain.
  app.addHook('preClose', async () => {
    shuttingDown = true;
    for (const endpoint of endpoints) endpoint.shutdown(options.allowReconnectOnShutdown);
    for (const endpoint of connectionEndpoints) endpoint.shutdown();
  });
  app.addHook('onClose', async () => {
    heartbeat.stop();
    await Promise.all(endpoints.map((endpoint) => endpoint.close()));
    await backplane?.close();
  });

  if (!app.hasDecorator('websocketServer')) {
    await app.register(fastifyWebsocket, {
      options: { maxPayload: options.maximumReceiveChunkSize },
      errorHandler: (error, socket, request) => {
        request.log.debug({ err: error }, 'websocket error');
        socket.terminate();
      },
    });
  }

  // Hub URLs match in any letter case, as in ASP.NET Core's routing; the application's other routes are untouched.
  const hubPaths = new CaseInsensitivePaths(app.server as Server);
  app.addHook('onClose', async () => hubPaths.stop());

  // The hub routes live in their own context: their body parser takes any content type as raw bytes (a negotiate
  // POST may say `application/json` with an empty body; sends are text or binary).
  await app.register(async (hubRoutes: FastifyInstance) => {
    hubRoutes.removeAllContentTypeParsers();
    hubRoutes.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: options.maximumReceiveChunkSize },
      (_request, body, done) => done(null, body),
    );
    hubRoutes.addHook('onRequest', corsHook(options.allowedOrigins));
    if (options.accessTokenQueryParameter !== false) {
      hubRoutes.addHook('onRequest', accessTokenHook(options.accessTokenQueryParameter));
    }
    hubRoutes.setErrorHandler((error: FastifyError, request, reply) => {
      // Transport endpoints answer in plain text, like ASP.NET Core, not with Fastify's JSON error bodies.
      const status = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500;
      if (status >= 500) request.log.error({ err: error }, 'hub request failed');
      return reply.code(status).header('content-type', 'text/plain').send('');
    });
    const limits = {
      refusal: () => {
        if (shuttingDown) return HttpErrors.shuttingDown;
        if (options.maximumConnections !== null && openConnections() >= options.maximumConnections) {
          // A negotiation that never started gives its place up: one negotiate per slot and disconnect timeout
          // must not keep the server full.
          if (!endpoints.some((endpoint) => endpoint.connections.evictOldestUnstarted()))
            return HttpErrors.tooManyConnections;
        }
        return undefined;
      },
    };
    for (const endpoint of endpoints) {
      // Each hub in a context of its own, so its authentication hooks guard only its routes.
      await hubRoutes.register(async (hubContext: FastifyInstance) => {
        for (const hook of endpoint.options.onRequest) hubContext.addHook('onRequest', hook);
        if (endpoint.options.authorize !== undefined)
          hubContext.addHook('onRequest', authorizeHook(endpoint.options.authorize));
        hubPaths.add(registerHubRoutes(hubContext, endpoint, limits));
      });
    }
    for (const endpoint of connectionEndpoints) {
      await hubRoutes.register(async (handlerContext: FastifyInstance) => {
        for (const hook of endpoint.options.onRequest) handlerContext.addHook('onRequest', hook);
        if (endpoint.options.authorize !== undefined)
          handlerContext.addHook('onRequest', authorizeHook(endpoint.options.authorize));
        hubPaths.add(registerHubRoutes(handlerContext, endpoint, limits));
      });
    }
  });

  // The management REST API (Azure SignalR Service's routes), in a context of its own with its own JSON bodies.
  if (rawOptions.management !== undefined) {
    await registerManagementApi(app, rawOptions.management, applicationEndpoints, backplane?.bus);
  }
  await adminPage?.start(app, endpoints, () => backplane?.status(), backplane?.bus);
  // ASP.NET SignalR 2.x clients, served by the same hubs at their own path.
  if (rawOptions.aspNetSignalR !== undefined) {
    aspNetEndpoint = new AspNetEndpoint(
      resolveAspNetOptions(rawOptions.aspNetSignalR),
      applicationEndpoints,
      heartbeat,
    );
    await registerAspNetEndpoint(app, aspNetEndpoint, {
      cors: corsHook(options.allowedOrigins),
      accessToken:
        options.accessTokenQueryParameter === false ? undefined : accessTokenHook(options.accessTokenQueryParameter),
      shuttingDown: () => shuttingDown,
    });
  }
  hubPaths.start();
};

/** The fastify-signalr plugin. Register it with the hubs to serve; see {@link SignalROptions}. */
export const fastifySignalR = fp(signalr, { fastify: '5.x', name: 'fastify-signalr' });
export default fastifySignalR;
