/**
 * The HTTP surface of one hub (docs/protocol.md §1.1): `POST {path}/negotiate`, and `{path}` for WebSocket upgrades,
 * the HTTP transports, sends (POST) and long-polling close (DELETE). Requests are answered with the status codes and
 * bodies of ASP.NET Core's `HttpConnectionDispatcher` (docs/protocol.md §1.9), checked in the same order it checks
 * them.
 *
 * The routes are ordinary Fastify routes, so `onRequest`/`preValidation` hooks of the application (authentication,
 * rate limits) run before any of this, for WebSocket upgrades too.
 */
import type { ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { WebSocket } from 'ws';
import {
  ALL_TRANSPORTS,
  selectNegotiateVersion,
  writeNegotiateError,
  writeNegotiateResponse,
  type TransportName,
} from '../../protocol/negotiate';
import type { ConnectionManager } from '../connections/connection-manager';
import type { HttpConnection } from '../connections/http-connection';
import { HttpErrors } from '../shared/errors';
import type { HubHttpRequest } from '../hub/hub';
import type { Logger } from '../shared/log-events';
import type { AuthenticationExpiration, UserIdProvider } from '../connections/dispatcher-options';
import { authenticationExpiresAt, resolveUserId, snapshotHttpRequest } from './connection-request';
import { LongPollingTransport } from './long-polling';
import { startServerSentEvents } from './server-sent-events';
import { queryValue } from './query';
import { attachWebSocket } from './websockets';

const kConnection = Symbol('fastify-signalr.connection');
const kNoContentType = Symbol('fastify-signalr.noContentType');
const kUpgradeResponse = Symbol('fastify-signalr.upgrade-response');
const kReleaseReservation = Symbol('fastify-signalr.release-reservation');

type RequestWithConnection = FastifyRequest & {
  [kConnection]?: HttpConnection;
  [kNoContentType]?: boolean;
  [kUpgradeResponse]?: ServerResponse;
  [kReleaseReservation]?: () => void;
};

/** The error a request body stream fails with past a limit; Fastify answers it with its status code. */
class BodyTooLargeError extends Error {
  readonly statusCode = 413;
}

/** Passes a request body through unchanged, failing it with 413 once it exceeds `limit` bytes. */
class BodyLimit extends Transform {
  private received = 0;

  constructor(private readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    if (this.received > this.limit) callback(new BodyTooLargeError('Payload Too Large'));
    else callback(null, chunk);
  }
}

function sendText(reply: FastifyReply, status: number, body = ''): FastifyReply {
  return reply.code(status).header('content-type', 'text/plain').send(body);
}

/** A JSON body sent as bytes, so the content type stays exactly `application/json` as .NET writes it. */
function sendJson(reply: FastifyReply, json: string): FastifyReply {
  return reply.code(200).header('content-type', 'application/json').send(Buffer.from(json, 'utf8'));
}

/**
 * What the routes need of the endpoint behind a path: a hub (`HubEndpoint`) or a raw connection handler
 * (`ConnectionHandlerEndpoint`). Both are answered alike, as .NET's `HttpConnectionDispatcher` serves hubs and
 * connection handlers alike.
 */
export interface TransportEndpoint {
  readonly options: {
    readonly path: string;
    readonly transports: readonly TransportName[];
    readonly allowStatefulReconnects: boolean;
    readonly longPollTimeoutMs: number;
    readonly sendTimeoutMs: number;
    readonly transportMaxBufferSize: number;
    readonly userIdProvider: UserIdProvider;
    /** Hubs only: whether a connection closes when its authentication expires, and when that is. */
    readonly closeOnAuthenticationExpiration?: boolean;
    readonly authenticationExpiration?: AuthenticationExpiration;
  };
  readonly connections: ConnectionManager;
  readonly log: Logger;
  /**
   * Starts the application on a connection whose transport just started, given the copy of the request it keeps
   * and when the request's authentication expires (`Infinity` for never).
   */
  startConnection(connection: HttpConnection, request: HubHttpRequest, authenticationExpiresAt: number): unknown;
}

/** The transports an endpoint offers: those enabled for it, in .NET's order. */
export function availableTransports(endpoint: TransportEndpoint): TransportName[] {
  return ALL_TRANSPORTS.filter((name) => endpoint.options.transports.includes(name));
}

/** Whether a GET asks for Server-Sent Events: `text/event-stream` among its accepted media types. */
function acceptsEventStream(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  return accept.split(',').some((entry) => entry.split(';')[0].trim().toLowerCase() === 'text/event-stream');
}

/** Server-wide limits the routes consult. */
export interface ConnectionLimits {
  /**
   * Why no new connection may be created now (`maximumConnections` reached, the server shutting down), answered
   * with 503; `undefined` when one may.
   */
  refusal(): string | undefined;
}

/**
 * Registers the routes of one hub on an (encapsulated) Fastify instance.
 *
 * @returns the URLs registered, with the instance's route prefix (to be matched in any letter case)
 */
export function registerHubRoutes(
  app: FastifyInstance,
  endpoint: TransportEndpoint,
  limits: ConnectionLimits,
): string[] {
  const path = endpoint.options.path;
  const offered = availableTransports(endpoint);
  const enabled = (name: TransportName) => offered.includes(name);
  // The long-polling side of each long-polling connection, across its polls.
  const pollers = new WeakMap<HttpConnection, LongPollingTransport>();

  const userOf = (request: FastifyRequest) => resolveUserId(endpoint.options.userIdProvider, request, endpoint.log);
  /** Starts the endpoint's application on a connection whose transport `request` just started. */
  const startApplication = (connection: HttpConnection, request: FastifyRequest): void => {
    const { closeOnAuthenticationExpiration, authenticationExpiration } = endpoint.options;
    const expiresAt =
      closeOnAuthenticationExpiration === true && authenticationExpiration !== undefined
        ? authenticationExpiresAt(authenticationExpiration, request, endpoint.log)
        : Infinity;
    endpoint.startConnection(connection, snapshotHttpRequest(request), expiresAt);
  };

  /** A new connection, or `undefined` after answering 503 when the server holds as many as it may. */
  const createConnection = (negotiateVersion: number, request: FastifyRequest, reply: FastifyReply) => {
    const refusal = limits.refusal();
    if (refusal !== undefined) {
      void sendText(reply, 503, refusal);
      return undefined;
    }
    const connection = endpoint.connections.create(negotiateVersion);
    connection.userIdentifier = userOf(request);
    return connection;
  };

  // ASP.NET Core's endpoint routing matches a path with or without a trailing slash. The official client keeps the
  // slash of a hub URL configured as `…/chathub/`: it negotiates at `/chathub/negotiate` but connects to
  // `/chathub/?id=…`.
  const withSlash = (url: string): string[] => (url.endsWith('/') ? [url] : [url, `${url}/`]);
  const negotiateUrls = withSlash(`${path}/negotiate`);
  const hubUrls = withSlash(path);

  // -- negotiate ----------------------------------------------------------------------------------------------
  // Not async: nothing here waits, and a promise per negotiate is measurable in the connect rate.
  const negotiate = (request: FastifyRequest, reply: FastifyReply): void => {
    const selected = selectNegotiateVersion(queryValue(request.query, 'negotiateVersion'));
    // Errors are answered with 200 and an `error` body
    // (src/SignalR/common/Http.Connections.Common/src/NegotiateProtocol.cs@v10.0.0 L57-L66).
    if ('error' in selected) {
      void sendJson(reply, writeNegotiateError(selected.error));
      return;
    }
    const connection = createConnection(selected.version, request, reply);
    if (connection === undefined) return;
    // Granted only when the hub allows it and the client asks
    // (src/SignalR/common/Http.Connections/src/Internal/HttpConnectionDispatcher.cs@v10.0.0 L367-L372; bool.TryParse).
    const statefulReconnect =
      endpoint.options.allowStatefulReconnects &&
      queryValue(request.query, 'useStatefulReconnect')?.trim().toLowerCase() === 'true';
    connection.statefulReconnectNegotiated = statefulReconnect;
    const body = writeNegotiateResponse({
      useStatefulReconnect: statefulReconnect || undefined,
      negotiateVersion: selected.version,
      connectionId: connection.connectionId,
      connectionToken: selected.version > 0 ? connection.connectionToken : undefined,
      availableTransports: offered,
    });
    void sendJson(reply, body);
  };
  for (const url of negotiateUrls) {
    app.post(url, negotiate);
    app.route({
      method: ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
      url,
      handler: async (_request, reply) => sendText(reply, 405),
    });
  }

  /**
   * Checks that a request of an existing connection comes from the user that negotiated it; answers 403 otherwise
   * (ASP.NET Core 11's rule, src/SignalR/common/Http.Connections/src/Internal/HttpConnectionDispatcher.cs@main
   * L1156-L1162), so one user's token cannot drive another's connection.
   */
  const sameUser = (connection: HttpConnection, request: FastifyRequest, reply: FastifyReply): boolean => {
    if (userOf(request) === connection.userIdentifier) return true;
    void sendText(reply, 403, HttpErrors.userChanged);
    return false;
  };

  /**
   * Looks up the connection named by `?id=`, answering 400/404 as .NET's `GetConnectionAsync` when it cannot, and
   * 403 when the request's user is not the connection's.
   */
  const findConnection = (request: FastifyRequest, reply: FastifyReply): HttpConnection | undefined => {
    const token = queryValue(request.query, 'id');
    if (!token) {
      void sendText(reply, 400, HttpErrors.connectionIdRequired);
      return undefined;
    }
    const connection = endpoint.connections.get(token);
    if (connection === undefined) {
      void sendText(reply, 404, HttpErrors.noConnectionWithThatId);
      return undefined;
    }
    return sameUser(connection, request, reply) ? connection : undefined;
  };

  /**
   * Binds `transport` to the connection the first time, as .NET's `EnsureConnectionStateAsync`: 404 when the
   * transport is not enabled, 400 when the connection already uses another one.
   */
  const ensureTransport = (connection: HttpConnection, transport: TransportName, reply: FastifyReply): boolean => {
    if (!enabled(transport)) {
      void sendText(reply, 404, HttpErrors.transportNotSupported(transport));
      return false;
    }
    if (connection.transport === null) connection.transport = transport;
    else if (connection.transport !== transport) {
      void sendText(reply, 400, HttpErrors.cannotChangeTransports);
      return false;
    }
    return true;
  };

  // -- GET: WebSocket upgrade, Server-Sent Events, long polling -----------------------------------------------
  /**
   * Runs before the upgrade is accepted, so a refused WebSocket gets a real HTTP status (404, 409, ...). Returns
   * whether the upgrade goes on; when not, the refusal has been sent.
   */
  const admitUpgrade = (request: RequestWithConnection, reply: FastifyReply): boolean => {
    const token = queryValue(request.query, 'id');
    // No id: a fresh connection, negotiate version 0 semantics (`skipNegotiation`,
    // src/SignalR/common/Http.Connections/src/Internal/HttpConnectionDispatcher.cs@v10.0.0 L800-L820).
    let connection: HttpConnection | undefined;
    if (!token) connection = createConnection(0, request, reply);
    else {
      connection = endpoint.connections.get(token);
      if (connection === undefined) {
        // .NET writes this one refusal of an upgrade without a content type.
        request[kNoContentType] = true;
        void sendText(reply, 404, HttpErrors.noConnectionWithThatId);
        return false;
      }
      if (!sameUser(connection, request, reply)) return false;
    }
    if (connection === undefined || !ensureTransport(connection, 'WebSockets', reply)) return false;
    if (connection.state !== 'new') {
      // A socket for a started connection is a stateful reconnect (docs/protocol.md §2.10), or a conflict.
      if (connection.reconnectable && connection.application !== null) {
        request[kConnection] = connection;
        return true;
      }
      // Negotiated stateful reconnect that the handshake turned down: .NET answers 204
      // (src/SignalR/common/Http.Connections/src/Internal/HttpConnectionContext.cs@v10.0.0 L555-L565).
      void sendText(reply, connection.statefulReconnectNegotiated ? 204 : 409);
      return false;
    }
    if (connection.transportActive) {
      void sendText(reply, 409);
      return false;
    }
    // Reserve the connection until the upgrade completes; release it if the socket dies first.
    const reserved = connection;
    reserved.markActive();
    request[kConnection] = reserved;
    request[kUpgradeResponse] = reply.raw;
    const release = () => {
      if (reserved.application === null) reserved.transportClosed();
    };
    request[kReleaseReservation] = release;
    request.raw.socket.once('close', release);
    return true;
  };
  // A callback hook, not an async one: it runs on every WebSocket connect, where a promise per hook is measurable.
  const beforeUpgrade = (request: RequestWithConnection, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    if (!request.ws || admitUpgrade(request, reply)) done();
  };
  const withoutContentType = (
    request: RequestWithConnection,
    reply: FastifyReply,
    payload: unknown,
    done: (error: null, payload: unknown) => void,
  ) => {
    if (request[kNoContentType]) reply.removeHeader('content-type');
    done(null, payload);
  };
  const upgraded = (socket: WebSocket, request: RequestWithConnection) => {
    const connection = request[kConnection]!;
    // @fastify/websocket routes the upgrade with a ServerResponse assigned to the TCP socket, which keeps it (and
    // Fastify's reply around it) alive as long as the WebSocket although nothing writes to it after the upgrade:
    // about 1 KB per idle connection, measured with bench/heap-profile.ts.
    const response = request[kUpgradeResponse];
    request[kUpgradeResponse] = undefined;
    response?.detachSocket(request.raw.socket);
    // From here the WebSocket's own 'close' ends the connection; the reservation's listener would only sit on the
    // TCP socket for the connection's lifetime.
    const release = request[kReleaseReservation];
    request[kReleaseReservation] = undefined;
    if (release !== undefined) request.raw.socket.removeListener('close', release);
    const resuming = connection.application !== null;
    attachWebSocket(socket, connection);
    if (!resuming) startApplication(connection, request);
  };
  const get = async (request: FastifyRequest, reply: FastifyReply) => {
    const transport: TransportName = acceptsEventStream(request.headers.accept) ? 'ServerSentEvents' : 'LongPolling';
    const connection = findConnection(request, reply);
    if (connection === undefined || !ensureTransport(connection, transport, reply)) return reply;
    if (transport === 'ServerSentEvents') {
      if (connection.transportActive || connection.state !== 'new') return sendText(reply, 409);
      startServerSentEvents(reply, connection, endpoint.options.sendTimeoutMs);
      startApplication(connection, request);
      return reply;
    }
    if (connection.state === 'new') {
      // The first poll starts the application and returns at once.
      const longPolling = new LongPollingTransport(
        connection,
        endpoint.options.longPollTimeoutMs,
        endpoint.options.sendTimeoutMs,
      );
      pollers.set(connection, longPolling);
      longPolling.start(reply, Date.now());
      startApplication(connection, request);
      return reply;
    }
    await pollers.get(connection)!.handlePoll(reply);
    return reply;
  };

  // -- POST: client-to-server data for the HTTP transports ----------------------------------------------------
  /**
   * Before a send's body is read: it waits for the connection's send lock, so one POST at a time is read into the
   * connection and later ones wait unread (ASP.NET Core's per-connection write lock) — memory per connection stays
   * bounded however many POSTs a client sends at once. Before a transport has started the application nothing reads
   * what is sent, so the body may then bring the bytes held to `transportMaxBufferSize` and no further: 413.
   */
  const lockSends = async (request: FastifyRequest, reply: FastifyReply, payload: NodeJS.ReadableStream) => {
    const token = queryValue(request.query, 'id');
    const connection = token ? endpoint.connections.get(token) : undefined;
    if (connection === undefined || connection.transport === 'WebSockets') return payload;
    // Whatever ends the request — an answer, an error, the client going away, even while it waits — lets the next
    // send in.
    const lock = connection.lockSends();
    reply.raw.once('close', () => void lock.then((release) => release()));
    await lock;
    if (connection.application !== null || connection.state === 'closed') return payload;
    const room = Math.max(0, endpoint.options.transportMaxBufferSize - connection.earlyInputBytes);
    return payload.pipe(new BodyLimit(room));
  };
  const post = async (request: FastifyRequest, reply: FastifyReply) => {
    const connection = findConnection(request, reply);
    if (connection === undefined) return reply;
    if (connection.transport === 'WebSockets') return sendText(reply, 405, HttpErrors.postNotAllowedOnWebSockets);
    const body = request.body;
    if (Buffer.isBuffer(body) && body.length > 0) connection.receive(body);
    // .NET answers 200 once the body is in the connection's pipe, even when what it carries ends the connection (a
    // Close, a refused handshake). Only a send that waits for room — while the hub's message loop has paused input;
    // the client sends its next POST only after this answer — and sees the connection end meanwhile is 404. The
    // send lock is held meanwhile, so further POSTs wait unread.
    if (!connection.inputPaused) return sendText(reply, 200);
    await connection.inputResumed();
    return sendText(reply, connection.state === 'closed' ? 404 : 200);
  };

  // -- DELETE: long-polling close ----------------------------------------------------------------------------
  const remove = async (request: FastifyRequest, reply: FastifyReply) => {
    const connection = findConnection(request, reply);
    if (connection === undefined) return reply;
    if (connection.transport !== 'LongPolling') return sendText(reply, 400, HttpErrors.deleteNotAllowed);
    const longPolling = pollers.get(connection);
    if (longPolling !== undefined) longPolling.terminate();
    else connection.transportClosed();
    return sendText(reply, 202);
  };

  for (const url of hubUrls) {
    app.route({
      method: 'GET',
      url,
      // HEAD is not a GET to .NET's dispatcher: it is answered 405 below.
      exposeHeadRoute: false,
      preHandler: beforeUpgrade,
      onSend: withoutContentType,
      wsHandler: upgraded,
      handler: get,
    });
    app.post(url, { preParsing: lockSends }, post);
    app.delete(url, remove);
    app.route({
      method: ['HEAD', 'PUT', 'PATCH', 'OPTIONS'],
      url,
      handler: async (_request, reply) => sendText(reply, 405),
    });
  }
  return [...negotiateUrls, ...hubUrls].map((url) => `${app.prefix}${url}`);
}
