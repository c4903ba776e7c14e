/**
 * The HTTP surface of one hub (spec §1.1): `POST {path}/negotiate`, and `{path}` for WebSocket upgrades, the
 * HTTP transports, sends (POST) and long-polling close (DELETE). Requests are answered with the status codes and
 * bodies of ASP.NET Core's `HttpConnectionDispatcher` (§1.9), checked in the same order it checks them.
 *
 * The routes are ordinary Fastify routes, so `onRequest`/`preValidation` hooks of the application (authentication,
 * rate limits) run before any of this, for WebSocket upgrades too.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import {
  ALL_TRANSPORTS,
  selectNegotiateVersion,
  writeNegotiateError,
  writeNegotiateResponse,
  type TransportName,
} from '../../protocol/negotiate';
import type { HttpConnection } from '../connections/http-connection';
import { HttpErrors } from '../errors';
import type { HubEndpoint } from '../hub/hub-endpoint';
import { attachWebSocket } from './websockets';

/** The transports this server implements. */
const IMPLEMENTED_TRANSPORTS: ReadonlySet<TransportName> = new Set<TransportName>(['WebSockets']);

const kConnection = Symbol('fastify-signalr.connection');
const kNoContentType = Symbol('fastify-signalr.noContentType');

type RequestWithConnection = FastifyRequest & { [kConnection]?: HttpConnection; [kNoContentType]?: boolean };

/**
 * A query value looked up case-insensitively, as ASP.NET Core's query collection does; repeated keys are joined
 * with commas (how `StringValues` turns into a string).
 */
export function queryValue(query: unknown, name: string): string | undefined {
  if (typeof query !== 'object' || query === null) return undefined;
  const wanted = name.toLowerCase();
  const values: string[] = [];
  for (const [key, value] of Object.entries(query as Record<string, unknown>)) {
    if (key.toLowerCase() !== wanted) continue;
    if (Array.isArray(value)) values.push(...value.map(String));
    else if (value !== undefined) values.push(String(value));
  }
  return values.length === 0 ? undefined : values.join(',');
}

function sendText(reply: FastifyReply, status: number, body = ''): FastifyReply {
  return reply.code(status).header('content-type', 'text/plain').send(body);
}

/** A JSON body sent as bytes, so the content type stays exactly `application/json` as .NET writes it. */
function sendJson(reply: FastifyReply, json: string): FastifyReply {
  return reply.code(200).header('content-type', 'application/json').send(Buffer.from(json, 'utf8'));
}

/** The transports a hub offers: those enabled for it that this server implements, in .NET's order. */
export function availableTransports(endpoint: HubEndpoint): TransportName[] {
  return ALL_TRANSPORTS.filter(
    (name) => endpoint.options.transports.includes(name) && IMPLEMENTED_TRANSPORTS.has(name),
  );
}

/** Registers the routes of one hub on an (encapsulated) Fastify instance. */
export function registerHubRoutes(app: FastifyInstance, endpoint: HubEndpoint): void {
  const path = endpoint.options.path;
  const offered = availableTransports(endpoint);
  const enabled = (name: TransportName) => offered.includes(name);

  // ASP.NET Core's endpoint routing matches a path with or without a trailing slash. The official client keeps the
  // slash of a hub URL configured as `…/chathub/`: it negotiates at `/chathub/negotiate` but connects to
  // `/chathub/?id=…`.
  const withSlash = (url: string): string[] => (url.endsWith('/') ? [url] : [url, `${url}/`]);
  const negotiateUrls = withSlash(`${path}/negotiate`);
  const hubUrls = withSlash(path);

  // -- negotiate ----------------------------------------------------------------------------------------------
  const negotiate = async (request: FastifyRequest, reply: FastifyReply) => {
    const selected = selectNegotiateVersion(queryValue(request.query, 'negotiateVersion'));
    // Errors are answered with 200 and an `error` body (NegotiateProtocol@v10 L57-L66).
    if ('error' in selected) return sendJson(reply, writeNegotiateError(selected.error));
    const connection = endpoint.connections.create(selected.version);
    const body = writeNegotiateResponse({
      negotiateVersion: selected.version,
      connectionId: connection.connectionId,
      connectionToken: selected.version > 0 ? connection.connectionToken : undefined,
      availableTransports: offered,
    });
    return sendJson(reply, body);
  };
  for (const url of negotiateUrls) {
    app.post(url, negotiate);
    app.route({
      method: ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
      url,
      handler: async (_request, reply) => sendText(reply, 405),
    });
  }

  /** Looks up the connection named by `?id=`, answering 400/404 as .NET's `GetConnectionAsync` when it cannot. */
  const findConnection = (request: FastifyRequest, reply: FastifyReply): HttpConnection | undefined => {
    const token = queryValue(request.query, 'id');
    if (!token) {
      void sendText(reply, 400, HttpErrors.connectionIdRequired);
      return undefined;
    }
    const connection = endpoint.connections.get(token);
    if (connection === undefined) void sendText(reply, 404, HttpErrors.noConnectionWithThatId);
    return connection;
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
  // Runs before the upgrade is accepted, so a refused WebSocket gets a real HTTP status (404, 409, ...).
  const beforeUpgrade = async (request: RequestWithConnection, reply: FastifyReply) => {
    if (!request.ws) return;
    const token = queryValue(request.query, 'id');
    // No id: a fresh connection, negotiate version 0 semantics (`skipNegotiation`, Dispatcher@v10 L800-L820).
    const connection = token ? endpoint.connections.get(token) : endpoint.connections.create(0);
    if (connection === undefined) {
      // .NET writes this one refusal of an upgrade without a content type.
      request[kNoContentType] = true;
      return sendText(reply, 404, HttpErrors.noConnectionWithThatId);
    }
    if (!ensureTransport(connection, 'WebSockets', reply)) return reply;
    if (connection.transportActive || connection.state !== 'new') return sendText(reply, 409);
    // Reserve the connection until the upgrade completes; release it if the socket dies first.
    connection.transportActive = true;
    request[kConnection] = connection;
    request.raw.socket.once('close', () => {
      if (connection.application === null) {
        endpoint.connections.remove(connection);
        connection.transportClosed();
      }
    });
  };
  const withoutContentType = async (request: RequestWithConnection, reply: FastifyReply, payload: unknown) => {
    if (request[kNoContentType]) reply.removeHeader('content-type');
    return payload;
  };
  const upgraded = (socket: WebSocket, request: RequestWithConnection) => {
    const connection = request[kConnection]!;
    attachWebSocket(socket, connection);
    endpoint.startConnection(connection, request);
  };
  const get = async (request: FastifyRequest, reply: FastifyReply) => {
    const accept = request.headers.accept ?? '';
    const transport: TransportName = /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(accept) ? 'ServerSentEvents' : 'LongPolling';
    const connection = findConnection(request, reply);
    if (connection === undefined) return reply;
    ensureTransport(connection, transport, reply);
    return reply;
  };

  // -- POST: client-to-server data for the HTTP transports ----------------------------------------------------
  const post = async (request: FastifyRequest, reply: FastifyReply) => {
    const connection = findConnection(request, reply);
    if (connection === undefined) return reply;
    if (connection.transport === 'WebSockets') return sendText(reply, 405, HttpErrors.postNotAllowedOnWebSockets);
    const body = request.body;
    if (Buffer.isBuffer(body) && body.length > 0) connection.receive(body);
    return sendText(reply, 200);
  };

  // -- DELETE: long-polling close ----------------------------------------------------------------------------
  const remove = async (request: FastifyRequest, reply: FastifyReply) => {
    const connection = findConnection(request, reply);
    if (connection === undefined) return reply;
    if (connection.transport !== 'LongPolling') return sendText(reply, 400, HttpErrors.deleteNotAllowed);
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
    app.post(url, post);
    app.delete(url, remove);
    app.route({
      method: ['HEAD', 'PUT', 'PATCH', 'OPTIONS'],
      url,
      handler: async (_request, reply) => sendText(reply, 405),
    });
  }
}
