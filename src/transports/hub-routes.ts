/**
 * The HTTP surface of one hub (spec §1.1): `POST {path}/negotiate`, and `{path}` for WebSocket upgrades, the
 * HTTP transports, sends (POST) and long-polling close (DELETE). Requests are answered with the status codes and
 * bodies of ASP.NET Core's `HttpConnectionDispatcher` (§1.9), checked in the same order it checks them.
 *
 * The routes are ordinary Fastify routes, so `onRequest`/`preValidation` hooks of the application (authentication,
 * rate limits) run before any of this, for WebSocket upgrades too.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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
import { LongPollingTransport } from './long-polling';
import { startServerSentEvents } from './server-sent-events';
import { attachWebSocket } from './websockets';

const kConnection = Symbol('fastify-signalr.connection');
const kUpgradeResponse = Symbol('fastify-signalr.upgrade-response');

type RequestWithConnection = FastifyRequest & { [kConnection]?: HttpConnection; [kUpgradeResponse]?: ServerResponse };

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

/** The transports a hub offers: those enabled for it, in .NET's order. */
export function availableTransports(endpoint: HubEndpoint): TransportName[] {
  return ALL_TRANSPORTS.filter((name) => endpoint.options.transports.includes(name));
}

/** Whether a GET asks for Server-Sent Events: `text/event-stream` among its accepted media types. */
function acceptsEventStream(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  return accept.split(',').some((entry) => entry.split(';')[0].trim().toLowerCase() === 'text/event-stream');
}

/** Registers the routes of one hub on an (encapsulated) Fastify instance. */
export function registerHubRoutes(app: FastifyInstance, endpoint: HubEndpoint): void {
  const path = endpoint.options.path;
  const offered = availableTransports(endpoint);
  const enabled = (name: TransportName) => offered.includes(name);
  // The long-polling side of each long-polling connection, across its polls.
  const pollers = new WeakMap<HttpConnection, LongPollingTransport>();

  // -- negotiate ----------------------------------------------------------------------------------------------
  app.post(`${path}/negotiate`, async (request, reply) => {
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
  });
  app.route({
    method: ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
    url: `${path}/negotiate`,
    handler: async (_request, reply) => sendText(reply, 405),
  });

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
  app.route({
    method: 'GET',
    url: path,
    // Runs before the upgrade is accepted, so a refused WebSocket gets a real HTTP status (404, 409, ...).
    preHandler: async (request: RequestWithConnection, reply) => {
      if (!request.ws) return;
      const token = queryValue(request.query, 'id');
      // No id: a fresh connection, negotiate version 0 semantics (`skipNegotiation`, Dispatcher@v10 L800-L820).
      const connection = token ? endpoint.connections.get(token) : endpoint.connections.create(0);
      if (connection === undefined) return sendText(reply, 404, HttpErrors.noConnectionWithThatId);
      if (!ensureTransport(connection, 'WebSockets', reply)) return reply;
      if (connection.transportActive || connection.state !== 'new') return sendText(reply, 409);
      // Reserve the connection until the upgrade completes; release it if the socket dies first.
      connection.markActive();
      request[kConnection] = connection;
      request[kUpgradeResponse] = reply.raw;
      request.raw.socket.once('close', () => {
        if (connection.application === null) connection.transportClosed();
      });
    },
    wsHandler: (socket, request: RequestWithConnection) => {
      const connection = request[kConnection]!;
      // @fastify/websocket routes the upgrade with a ServerResponse assigned to the TCP socket, which keeps it (and
      // Fastify's reply around it) alive as long as the WebSocket although nothing writes to it after the upgrade:
      // about 1 KB per idle connection, measured with bench/heap-profile.ts.
      const response = request[kUpgradeResponse];
      request[kUpgradeResponse] = undefined;
      response?.detachSocket(request.raw.socket);
      attachWebSocket(socket, connection);
      endpoint.startConnection(connection, request);
    },
    handler: async (request, reply) => {
      const transport: TransportName = acceptsEventStream(request.headers.accept) ? 'ServerSentEvents' : 'LongPolling';
      const connection = findConnection(request, reply);
      if (connection === undefined || !ensureTransport(connection, transport, reply)) return reply;
      if (transport === 'ServerSentEvents') {
        if (connection.transportActive || connection.state !== 'new') return sendText(reply, 409);
        startServerSentEvents(reply, connection);
        endpoint.startConnection(connection, request);
        return reply;
      }
      if (connection.state === 'new') {
        // The first poll starts the application and returns at once.
        const longPolling = new LongPollingTransport(connection, endpoint.options.longPollTimeoutMs);
        pollers.set(connection, longPolling);
        longPolling.start(reply, Date.now());
        endpoint.startConnection(connection, request);
        return reply;
      }
      await pollers.get(connection)!.handlePoll(reply);
      return reply;
    },
  });

  // -- POST: client-to-server data for the HTTP transports ----------------------------------------------------
  app.post(path, async (request, reply) => {
    const connection = findConnection(request, reply);
    if (connection === undefined) return reply;
    if (connection.transport === 'WebSockets') return sendText(reply, 405, HttpErrors.postNotAllowedOnWebSockets);
    const body = request.body;
    if (Buffer.isBuffer(body) && body.length > 0) connection.receive(body);
    return sendText(reply, 200);
  });

  // -- DELETE: long-polling close ----------------------------------------------------------------------------
  app.delete(path, async (request, reply) => {
    const connection = findConnection(request, reply);
    if (connection === undefined) return reply;
    if (connection.transport !== 'LongPolling') return sendText(reply, 400, HttpErrors.deleteNotAllowed);
    const longPolling = pollers.get(connection);
    if (longPolling !== undefined) longPolling.terminate();
    else connection.transportClosed();
    return sendText(reply, 202);
  });

  app.route({
    method: ['PUT', 'PATCH', 'OPTIONS'],
    url: path,
    handler: async (_request, reply) => sendText(reply, 405),
  });
}
