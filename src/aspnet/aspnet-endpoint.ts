// Over 600 lines: the 2.x routes share one connection table and one token check per request; each route is short.
/**
 * The ASP.NET SignalR 2.x endpoint (`/signalr`): negotiate, connect, reconnect, poll, send, start, abort, ping and
 * the proxy script, over long polling, Server-Sent Events and WebSockets (docs/protocol.md §7). It serves the hubs
 * the plugin registered — a 2.x connection takes a seat in each hub its `connectionData` names — so one `Hub`
 * class answers Core clients at its own path and 2.x clients here.
 *
 * State it owns: the 2.x connections of this server by id and the token keys. The hub runtime (dispatch, lifetime
 * managers, groups, backplane) is the hubs' own.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { WebSocket } from 'ws';
import {
  LegacyProtocolError,
  parseConnectionData,
  parseHubRequest,
  PING_RESPONSE,
  resolveProtocolVersion,
  START_RESPONSE,
  supportsDelayedStart,
  writeHubResponse,
  writePersistentResponse,
  type LegacyNegotiateBody,
} from '../../protocol/aspnet/wire';
import type { TransportName } from '../../protocol/negotiate';
import type { Heartbeat, HeartbeatParticipant } from '../shared/heartbeat';
import { authorizeHook } from '../transports/authentication';
import { resolveUserId, snapshotHttpRequest } from '../transports/connection-request';
import { logEvent, type Logger } from '../shared/log-events';
import type { HubEndpoint } from '../hub/hub-endpoint';
import { AspNetConnection, type LegacyConnectionHost, type LegacyTransport } from './aspnet-connection';
import type { ResolvedAspNetSignalROptions } from './aspnet-options';
import { generateProxyScript } from './hub-proxy-script';
import { ProtectedData } from './protected-data';

/** 2.x's texts for refused requests (Resources.resx of Microsoft.AspNet.SignalR.Core; docs/protocol.md §7.3). */
export const LegacyErrors = {
  unknownTransport: 'Protocol error: Unknown transport.',
  missingConnectionToken: 'Protocol error: Missing connection token.',
  connectionIdIncorrectFormat: 'The ConnectionId is in the incorrect format.',
  unrecognizedUserIdentity:
    'Unrecognized user identity.  The user identity cannot change during an active SignalR connection.',
  hubCouldNotBeResolved: (hub: string) => `'${hub}' Hub could not be resolved.`,
  notWebSocketRequest: 'Not a valid web socket request.',
} as const;

/** The transport names 2.x clients send, and ours. `foreverFrame` is not among them (docs/protocol.md §7.3). */
const TRANSPORTS: Readonly<Record<string, TransportName>> = {
  webSockets: 'WebSockets',
  serverSentEvents: 'ServerSentEvents',
  longPolling: 'LongPolling',
};

type Query = Record<string, string | undefined>;

function queryOf(request: FastifyRequest): Query {
  const query = request.query as Record<string, unknown>;
  const result: Query = {};
  for (const [key, value] of Object.entries(query ?? {}))
    result[key] = Array.isArray(value) ? String(value[0]) : typeof value === 'string' ? value : undefined;
  return result;
}

function formOf(request: FastifyRequest): URLSearchParams {
  const body = request.body;
  return new URLSearchParams(Buffer.isBuffer(body) ? body.toString('utf8') : '');
}

function text(reply: FastifyReply, status: number, body = ''): FastifyReply {
  return reply.code(status).type('text/plain').send(body);
}

/** The 2.x endpoint of one server. */
export class AspNetEndpoint implements LegacyConnectionHost, HeartbeatParticipant {
  private readonly connections = new Map<string, AspNetConnection>();
  private readonly hubs = new Map<string, { name: string; endpoint: HubEndpoint }>();
  private readonly tokens: ProtectedData;
  private readonly proxyScript: string;

  constructor(
    readonly options: ResolvedAspNetSignalROptions,
    /** The hubs it serves: every hub the plugin registered. */
    readonly hubEndpoints: readonly HubEndpoint[],
    private readonly heartbeat: Heartbeat,
  ) {
    const endpoints = hubEndpoints;
    if (endpoints.length === 0)
      throw new Error('Invalid fastify-signalr options: aspNetSignalR serves hubs, and none is registered.');
    this.tokens = new ProtectedData(options.tokenSecret);
    for (const endpoint of endpoints) {
      const name = endpoint.options.hub.name;
      const existing = this.hubs.get(name.toLowerCase());
      if (existing !== undefined) {
        // 2.x refuses two hubs of one name the same way (Error_DuplicateHubNames).
        throw new Error(
          `Two Hubs must not share the same name. '${existing.endpoint.options.path}' and '${endpoint.options.path}' both share the name '${name}'.`,
        );
      }
      this.hubs.set(name.toLowerCase(), { name, endpoint });
    }
    this.proxyScript = generateProxyScript(
      options.path,
      [...this.hubs.values()].map(({ name, endpoint }) => ({
        name,
        methods: [...endpoint.dispatcher.methods.values()],
      })),
    );
    heartbeat.add(this);
  }

  /** 2.x connections alive on this server. */
  get connectionCount(): number {
    return this.connections.size;
  }

  groupsToken(connectionId: string, groups: readonly string[]): string {
    return this.tokens.protect(`${connectionId}:${JSON.stringify(groups)}`, 'Groups');
  }

  connectionEnded(connection: AspNetConnection): void {
    if (this.connections.get(connection.connectionId) === connection) this.connections.delete(connection.connectionId);
  }

  slowClient(connection: AspNetConnection, waiting: number, limit: number): void {
    logEvent(
      this.log,
      'warn',
      'signalr.connection.slow_client',
      { connectionId: connection.connectionId, waiting, limit },
      '2.x client too slow: transport cut',
    );
  }

  /** The log of the first hub (2.x connections span hubs). */
  private get log(): Logger {
    return this.hubEndpoints[0].log;
  }

  onHeartbeat(now: number): void {
    for (const connection of this.connections.values()) connection.onHeartbeat(now);
  }

  /** Ends every connection (the server closes). */
  async close(): Promise<void> {
    this.heartbeat.delete(this);
    await Promise.all([...this.connections.values()].map((connection) => connection.shutdown()));
  }

  private userOf(request: FastifyRequest): string {
    const first = this.hubEndpoints[0];
    return resolveUserId(first.options.userIdProvider, request, first.log) ?? '';
  }

  /** The groups a groups token names, for this connection only (PersistentConnection.VerifyGroups). */
  private groupsOf(connectionId: string, token: string | undefined): string[] {
    if (token === undefined || token === '') return [];
    const value = this.tokens.unprotect(token, 'Groups');
    if (value === undefined) return [];
    const colon = value.indexOf(':');
    if (colon < 0 || value.slice(0, colon).toLowerCase() !== connectionId.toLowerCase()) return [];
    try {
      const groups: unknown = JSON.parse(value.slice(colon + 1));
      return Array.isArray(groups) ? groups.filter((group): group is string => typeof group === 'string') : [];
    } catch {
      return [];
    }
  }

  /**
   * The checks of every request after negotiate, in 2.x's order (PersistentConnection.ProcessRequest): a known
   * transport (400), a connection token (400), one of ours (400), of this user (403). Answers and returns
   * `undefined` when one fails.
   */
  private identify(
    request: FastifyRequest,
    reply: FastifyReply,
  ): { connectionId: string; transport: TransportName; query: Query } | undefined {
    const query = queryOf(request);
    const transport = TRANSPORTS[query.transport ?? ''];
    if (transport === undefined) {
      void text(reply, 400, LegacyErrors.unknownTransport);
      return undefined;
    }
    const token = query.connectionToken;
    if (token === undefined || token === '') {
      void text(reply, 400, LegacyErrors.missingConnectionToken);
      return undefined;
    }
    const value = this.tokens.unprotect(token, 'ConnectionToken');
    if (value === undefined || value === '') {
      void text(reply, 400, LegacyErrors.connectionIdIncorrectFormat);
      return undefined;
    }
    const colon = value.indexOf(':');
    const connectionId = colon < 0 ? value : value.slice(0, colon);
    const user = colon < 0 ? '' : value.slice(colon + 1);
    if (user.toLowerCase() !== this.userOf(request).toLowerCase()) {
      void text(reply, 403, LegacyErrors.unrecognizedUserIdentity);
      return undefined;
    }
    return { connectionId, transport, query };
  }

  /** The hubs `connectionData` names; answers 500 as 2.x does for one it does not know. */
  private hubsOf(query: Query, reply: FastifyReply): { name: string; endpoint: HubEndpoint }[] | undefined {
    let names: string[];
    try {
      names = parseConnectionData(query.connectionData);
    } catch (error) {
      void text(reply, 400, (error as Error).message);
      return undefined;
    }
    const hubs: { name: string; endpoint: HubEndpoint }[] = [];
    for (const name of names) {
      const hub = this.hubs.get(name.toLowerCase());
      if (hub === undefined) {
        void text(reply, 500, LegacyErrors.hubCouldNotBeResolved(name));
        return undefined;
      }
      if (!hubs.includes(hub)) hubs.push(hub);
    }
    return hubs;
  }

  /**
   * The connection of a request: this server's, or made now — a connect's, or a reconnect's or poll's whose
   * connection this server does not hold (it restarted, or the client moved here), rejoined to the groups its token
   * names, as any 2.x server rebuilds a connection from its tokens.
   */
  private async obtain(
    request: FastifyRequest,
    reply: FastifyReply,
    groupsToken: string | undefined,
  ): Promise<{ connection: AspNetConnection; transport: TransportName; query: Query; created: boolean } | undefined> {
    const identity = this.identify(request, reply);
    if (identity === undefined) return undefined;
    const existing = this.connections.get(identity.connectionId);
    if (existing !== undefined && !existing.hasEnded)
      return { connection: existing, transport: identity.transport, query: identity.query, created: false };
    const hubs = this.hubsOf(identity.query, reply);
    if (hubs === undefined) return undefined;
    const connection = new AspNetConnection(
      identity.connectionId,
      this.userOf(request) || undefined,
      snapshotHttpRequest(request),
      identity.transport,
      this,
    );
    this.connections.set(identity.connectionId, connection);
    const groups = this.groupsOf(identity.connectionId, groupsToken);
    for (const hub of hubs) {
      const prefix = `${hub.name}.`.toLowerCase();
      const own = groups
        .filter((group) => group.toLowerCase().startsWith(prefix))
        .map((group) => group.slice(prefix.length));
      await connection.join(hub.name, hub.endpoint, own);
    }
    return { connection, transport: identity.transport, query: identity.query, created: true };
  }

  // Routes -----------------------------------------------------------------------------------------------------------

  negotiate = async (request: FastifyRequest, reply: FastifyReply) => {
    const query = queryOf(request);
    if (this.hubsOf(query, reply) === undefined) return reply;
    const connectionId = randomUUID();
    const options = this.options;
    const body: LegacyNegotiateBody = {
      Url: options.path,
      ConnectionToken: this.tokens.protect(`${connectionId}:${this.userOf(request)}`, 'ConnectionToken'),
      ConnectionId: connectionId,
      // Twice the keep-alive: the client reconnects after missing two (ConfigurationExtensions.KeepAliveTimeout).
      KeepAliveTimeout: options.keepAliveMs === null ? null : (options.keepAliveMs * 2) / 1000,
      DisconnectTimeout: options.disconnectTimeoutMs / 1000,
      ConnectionTimeout: options.connectionTimeoutMs / 1000,
      TryWebSockets: options.webSockets,
      ProtocolVersion: resolveProtocolVersion(query.clientProtocol),
      TransportConnectTimeout: options.transportConnectTimeoutMs / 1000,
      LongPollDelay: options.longPollDelayMs / 1000,
    };
    return reply.type('application/json; charset=UTF-8').send(JSON.stringify(body));
  };

  ping = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.type('application/json; charset=UTF-8').send(PING_RESPONSE);

  hubsScript = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.type('application/javascript; charset=UTF-8').send(this.proxyScript);

  start = async (request: FastifyRequest, reply: FastifyReply) => {
    const found = await this.obtain(request, reply, undefined);
    if (found === undefined) return reply;
    try {
      await found.connection.connectHubs();
    } catch (error) {
      logEvent(
        request.log,
        'error',
        'signalr.connection.error',
        { err: error, connectionId: found.connection.connectionId },
        'onConnected failed',
      );
      void found.connection.end();
      return text(reply, 500);
    }
    return reply.type('application/json; charset=UTF-8').send(START_RESPONSE);
  };

  abort = async (request: FastifyRequest, reply: FastifyReply) => {
    const identity = this.identify(request, reply);
    if (identity === undefined) return reply;
    await this.connections.get(identity.connectionId)?.end();
    return text(reply, 200);
  };

  /** `/connect` and `/reconnect` over long polling or Server-Sent Events; WebSockets come through {@link upgraded}. */
  receive = (initializing: boolean) => async (request: FastifyRequest, reply: FastifyReply) => {
    const query = queryOf(request);
    if (query.transport === 'webSockets') return text(reply, 400, LegacyErrors.notWebSocketRequest);
    const form = formOf(request);
    const found = await this.obtain(request, reply, query.groupsToken ?? form.get('groupsToken') ?? undefined);
    if (found === undefined) return reply;
    const { connection, transport, created } = found;
    if ((created && !initializing) || (initializing && !supportsDelayedStart(query.clientProtocol)))
      await this.connectRecreated(connection);
    const cursor = query.messageId ?? form.get('messageId') ?? undefined;
    if (transport === 'ServerSentEvents') {
      // An event stream opened again by the browser itself names the last event it got (docs/protocol.md §7.4).
      const lastEventId = request.headers['last-event-id'];
      return this.serveEventStream(
        connection,
        reply,
        cursor ?? (typeof lastEventId === 'string' ? lastEventId : undefined),
        initializing,
      );
    }
    return this.servePoll(connection, reply, cursor, initializing);
  };

  poll = async (request: FastifyRequest, reply: FastifyReply) => {
    const query = queryOf(request);
    const form = formOf(request);
    const found = await this.obtain(request, reply, query.groupsToken ?? form.get('groupsToken') ?? undefined);
    if (found === undefined) return reply;
    if (found.created) await this.connectRecreated(found.connection);
    return this.servePoll(found.connection, reply, query.messageId ?? form.get('messageId') ?? undefined, false);
  };

  send = async (request: FastifyRequest, reply: FastifyReply) => {
    const found = await this.obtain(request, reply, undefined);
    if (found === undefined) return reply;
    const data = formOf(request).get('data') ?? found.query.data;
    let hubRequest;
    try {
      hubRequest = parseHubRequest(data ?? '');
    } catch (error) {
      return text(reply, 400, error instanceof LegacyProtocolError ? error.message : '');
    }
    const id = hubRequest.id;
    const answer = id === undefined ? undefined : found.connection.awaitAnswer(id);
    if (!found.connection.receive(hubRequest)) {
      const response = writeHubResponse({ id: id ?? '', error: LegacyErrors.hubCouldNotBeResolved(hubRequest.hub) });
      if (id !== undefined) found.connection.answer(id, response);
    }
    if (answer === undefined) return reply.type('application/json; charset=UTF-8').send('');
    const bytes = await answer;
    return reply.type('application/json; charset=UTF-8').send(bytes);
  };

  /**
   * The hubs see a connection connect without `/start`: one this server rebuilt from a reconnecting client's tokens,
   * or one of a client too old to send `/start`.
   */
  private async connectRecreated(connection: AspNetConnection): Promise<void> {
    try {
      await connection.connectHubs();
    } catch {
      void connection.end();
    }
  }

  private servePoll(
    connection: AspNetConnection,
    reply: FastifyReply,
    cursor: string | undefined,
    initializing: boolean,
  ): Promise<Buffer> {
    return new Promise<Buffer>((resolve) => {
      let done = false;
      const transport: LegacyTransport = {
        name: 'LongPolling',
        oneShot: true,
        pendingBytes: 0,
        deliver: (bytes) => {
          if (done) return;
          done = true;
          resolve(bytes);
        },
        keepAlive: () => undefined,
        end: () => {
          const current = cursor ?? connection.cursor;
          transport.deliver(writePersistentResponse(current, []), current);
        },
        cut: () => transport.end(),
      };
      reply.type('application/json; charset=UTF-8');
      reply.raw.once('close', () => {
        done = true;
        connection.detach(transport);
      });
      connection.attach(transport, cursor, initializing);
    });
  }

  private serveEventStream(
    connection: AspNetConnection,
    reply: FastifyReply,
    cursor: string | undefined,
    initializing: boolean,
  ): FastifyReply {
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    // Every event stream starts so; the client counts its transport open on it (ServerSentEventsTransport).
    response.write('data: initialized\n\n');
    let open = true;
    const transport: LegacyTransport = {
      name: 'ServerSentEvents',
      oneShot: false,
      get pendingBytes() {
        return response.writableLength;
      },
      // Each event's id is its cursor, so a stream the browser reopens by itself says where it stopped.
      deliver: (bytes, eventCursor) => {
        if (open)
          response.write(Buffer.concat([Buffer.from(`id: ${eventCursor}\ndata: `), bytes, Buffer.from('\n\n')]));
      },
      keepAlive: () => {
        if (open) response.write('data: {}\n\n');
      },
      end: () => {
        if (!open) return;
        open = false;
        response.end();
      },
      cut: () => {
        open = false;
        response.destroy();
      },
    };
    response.once('close', () => {
      open = false;
      connection.detach(transport);
    });
    connection.attach(transport, cursor, initializing);
    return reply;
  }

  /**
   * Before a WebSocket upgrade: the same checks as for any request (transport, token, user, hubs), answered over
   * HTTP before the socket opens, as a 2.x server refuses it.
   */
  beforeUpgrade = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!request.ws) return;
    const identity = this.identify(request, reply);
    if (identity === undefined) return reply;
    const held = this.connections.get(identity.connectionId);
    if ((held === undefined || held.hasEnded) && this.hubsOf(identity.query, reply) === undefined) return reply;
    return undefined;
  };

  /** A WebSocket of `/connect` or `/reconnect`. */
  upgraded = (initializing: boolean) => async (socket: WebSocket, request: FastifyRequest) => {
    // The checks ran before the upgrade (beforeUpgrade); should one fail now after all (the connection ended and its
    // hubs changed meanwhile), the socket closes with the reason.
    const reply = {
      code: () => ({ type: () => ({ send: (body: string) => socket.close(1008, body.slice(0, 120)) }) }),
    } as unknown as FastifyReply;
    // Messages may arrive before the connection is ready; they wait in order.
    const early: Buffer[] = [];
    const ready: { connection?: AspNetConnection } = {};
    const onMessage = (data: Buffer) => {
      const connection = ready.connection;
      if (connection === undefined) {
        early.push(data);
        return;
      }
      let hubRequest;
      try {
        hubRequest = parseHubRequest(data.toString('utf8'));
      } catch {
        socket.close(1003, 'invalid hub request');
        return;
      }
      if (!connection.receive(hubRequest) && hubRequest.id !== undefined) {
        socket.send(
          writeHubResponse({ id: hubRequest.id, error: LegacyErrors.hubCouldNotBeResolved(hubRequest.hub) }).toString(
            'utf8',
          ),
        );
      }
    };
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        socket.close(1003, 'binary messages are not supported');
        return;
      }
      // 2.x's MaxIncomingWebSocketMessageSize: a larger message ends the socket (1009, message too big).
      if (data.length > this.options.maximumMessageSize) {
        socket.close(1009, 'message too big');
        return;
      }
      onMessage(data);
    });
    const query = queryOf(request);
    const found = await this.obtain(request, reply, query.groupsToken);
    if (found === undefined) return;
    if ((found.created && !initializing) || (initializing && !supportsDelayedStart(query.clientProtocol)))
      await this.connectRecreated(found.connection);
    const connection = (ready.connection = found.connection);
    const transport: LegacyTransport = {
      name: 'WebSockets',
      oneShot: false,
      get pendingBytes() {
        return socket.bufferedAmount;
      },
      // Text frames straight from the bytes: no string made per connection.
      deliver: (bytes) => {
        if (socket.readyState === socket.OPEN) socket.send(bytes, { binary: false });
      },
      deliverAnswer: (bytes) => {
        if (socket.readyState === socket.OPEN) socket.send(bytes, { binary: false });
      },
      keepAlive: () => {
        if (socket.readyState === socket.OPEN) socket.send('{}');
      },
      end: () => socket.close(1000),
      cut: () => socket.terminate(),
    };
    socket.once('close', () => connection.detach(transport));
    connection.attach(transport, query.messageId, initializing);
    for (const data of early.splice(0)) onMessage(data);
  };
}

/** What guards the 2.x routes, besides the hubs' own hooks: the plugin's CORS policy and access-token parameter. */
export interface AspNetRouteGuards {
  readonly cors: onRequestHookHandler;
  readonly accessToken: onRequestHookHandler | undefined;
  /** Whether the server is shutting down: negotiate then answers 503, so a balancer sends the client elsewhere. */
  readonly shuttingDown: () => boolean;
}

/**
 * Mounts the 2.x endpoint's routes, in a context of their own (form bodies as raw bytes). One 2.x connection may
 * use every hub, so its requests pass every hub's `onRequest` hooks and `authorize` (each distinct one once).
 */
export async function registerAspNetEndpoint(
  app: FastifyInstance,
  endpoint: AspNetEndpoint,
  guards: AspNetRouteGuards,
): Promise<void> {
  const base = endpoint.options.path;
  await app.register(async (routes: FastifyInstance) => {
    routes.removeAllContentTypeParsers();
    routes.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: endpoint.options.maximumMessageSize },
      (_request, body, done) => done(null, body),
    );
    routes.addHook('onRequest', guards.cors);
    if (guards.accessToken !== undefined) routes.addHook('onRequest', guards.accessToken);
    for (const hook of new Set(endpoint.hubEndpoints.flatMap((hub) => hub.options.onRequest)))
      routes.addHook('onRequest', hook);
    for (const authorize of new Set(endpoint.hubEndpoints.map((hub) => hub.options.authorize))) {
      if (authorize !== undefined) routes.addHook('onRequest', authorizeHook(authorize));
    }
    // Transport endpoints answer in plain text, as 2.x does, not with Fastify's JSON error bodies.
    routes.setErrorHandler((error: FastifyError, request, reply) => {
      const status = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500;
      if (status >= 500) request.log.error({ err: error }, '2.x request failed');
      return text(reply, status);
    });
    // While the server shuts down, nothing may start or rebuild a connection here: a balancer retries elsewhere.
    const quiet = new Set(['abort', 'ping', 'hubs', 'js']);
    routes.addHook('onRequest', async (request, reply) => {
      if (!guards.shuttingDown()) return;
      const action = (request.url.split('?')[0].split('/').pop() ?? '').toLowerCase();
      if (!quiet.has(action)) return text(reply, 503);
    });
    routes.get(`${base}/negotiate`, endpoint.negotiate);
    routes.post(`${base}/negotiate`, endpoint.negotiate);
    routes.get(`${base}/ping`, endpoint.ping);
    routes.get(`${base}/hubs`, endpoint.hubsScript);
    routes.get(`${base}/js`, endpoint.hubsScript);
    routes.get(`${base}/start`, endpoint.start);
    routes.post(`${base}/abort`, endpoint.abort);
    routes.get(`${base}/abort`, endpoint.abort);
    routes.post(`${base}/poll`, endpoint.poll);
    routes.get(`${base}/poll`, endpoint.poll);
    routes.post(`${base}/send`, endpoint.send);
    for (const [suffix, initializing] of [
      ['connect', true],
      ['reconnect', false],
    ] as const) {
      routes.route({
        method: 'GET',
        url: `${base}/${suffix}`,
        preHandler: endpoint.beforeUpgrade,
        handler: endpoint.receive(initializing),
        wsHandler: endpoint.upgraded(initializing),
      });
      routes.post(`${base}/${suffix}`, endpoint.receive(initializing));
    }
  });
  app.addHook('preClose', async () => endpoint.close());
}
