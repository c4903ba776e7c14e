/**
 * Options: every limit and timeout the server has, with ASP.NET Core's defaults (docs/protocol.md §1.11),
 * validated once at registration into a frozen object. A bad value fails `app.register` with a message that names
 * the option.
 */
import type { FastifyRequest, onRequestHookHandler } from 'fastify';
import { z } from 'zod';
import { ALL_TRANSPORTS, type TransportName } from '../protocol/negotiate';
import type { HubProtocol } from '../protocol/hub-protocol';
import type { HubClass } from './hub/hub';
import type { HubFilter } from './hub/hub-filters';
import type { LifetimeLimits } from './lifetime/client-results';
import type { RedisConnectionOptions } from './redis/redis-connector';
import type { ManagementOptions } from './management/management-options';
import type { AspNetSignalROptions } from './aspnet/aspnet-options';
import {
  RedisConfigurationError,
  isRedisUrl,
  resolveRedisTarget,
  type RedisTarget,
  type RedisTlsOptions,
} from './redis/redis-config';
import type { ConnectionHandlerRegistration, ResolvedConnectionHandler } from './transports/connection-handler';
import { originPolicy, type OriginPolicy } from './transports/cors';
import type { SignalRErrorCode } from './errors';

/** Resolves the user id of a connection from the request that started its transport. */
export type UserIdProvider = (request: FastifyRequest) => string | null | undefined;

/** When a request's authentication expires: ms since the epoch, a `Date`, or `undefined` for never. */
export type AuthenticationExpiration = (request: FastifyRequest) => number | Date | undefined;

/** The `exp` claim (seconds since the epoch, RFC 7519 §4.1.4) of `request.user`, in ms; `undefined` without one. */
export const defaultAuthenticationExpiration: AuthenticationExpiration = (request) => {
  const exp = ((request as { user?: unknown }).user as { exp?: unknown } | undefined)?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
};

/** Limits and timeouts of a hub; each may be set for all hubs or per hub. */
export interface HubOptions {
  /**
   * How often the server sends a Ping to each client (not on long polling, which has inherent keep-alive). Keep it
   * at most half the clients' server timeout (30 s in the official clients).
   * @default 15000
   */
  readonly keepAliveIntervalMs: number;
  /**
   * A client that sent a Ping once and then stays silent this long is closed with an error.
   * @default 30000
   */
  readonly clientTimeoutIntervalMs: number;
  /**
   * Time a new connection has to complete its handshake.
   * @default 15000
   */
  readonly handshakeTimeoutMs: number;
  /**
   * Largest hub message a client may send, framing included, in bytes; `null` for no limit. A larger message
   * closes the connection with an error.
   * @default 32768
   */
  readonly maximumReceiveMessageSize: number | null;
  /**
   * Whether invocation and close errors carry the exception's type and message. Errors thrown as
   * `HubException` always do.
   * @default false
   */
  readonly enableDetailedErrors: boolean;
  /**
   * How many invocations of one client run at once. Further invocations wait their turn, in order, and are never
   * dropped; while one waits, the client's later messages wait behind it and the server stops reading from that
   * client once 64 KiB are held, so a flood costs bounded memory. As in ASP.NET Core, streaming invocations and
   * invocations of methods with client-to-server stream parameters neither wait for nor hold a slot, and a method
   * that awaits a client result (`invoke`) gives its slot up.
   * @default 1
   */
  readonly maximumParallelInvocationsPerClient: number;
  /**
   * Items buffered per client-to-server stream that the hub method has not read yet. When a stream is full, the
   * connection's further messages wait (and the server stops reading from the client) until the method reads an
   * item: back-pressure, as in ASP.NET Core, instead of unbounded memory.
   * @default 10
   */
  readonly streamBufferCapacity: number;
  /**
   * Server-to-client streams one connection may have open at once, and, separately, client-to-server streams. A
   * stream invocation past the bound fails at once with an error saying so (the client sees it as the stream's
   * error); nothing is started. ASP.NET Core has no such bound; a client that opens streams it never finishes
   * would otherwise make the server hold ever more.
   * @default 100
   */
  readonly maximumStreamsPerConnection: number | null;
  /**
   * Client results (`invoke` on a client) one connection may owe at once. One more fails at once with a
   * `HubException` saying so, without being sent: a client that never answers cannot make the server hold ever more.
   * `null` for no bound.
   * @default 100
   */
  readonly maximumPendingClientResultsPerConnection: number | null;
  /**
   * Client results the hub waits for at once on this server, over all its connections; one more fails at once
   * with a `HubException`. `null` for no bound.
   * @default 10000
   */
  readonly maximumPendingClientResults: number | null;
  /**
   * Groups one connection may be in at once. Adding it to one more fails with a `HubException` saying so (the
   * hub method calling `addToGroup` fails). With Redis each group of a connection is a subscription of this
   * server, so the bound also bounds what one client can make Redis hold. `null` for no bound.
   * @default 1000
   */
  readonly maximumGroupsPerConnection: number | null;
  /**
   * Longest group name `addToGroup` takes, in characters; a longer one fails with a `HubException`. `null` for
   * no bound.
   * @default 1024
   */
  readonly maximumGroupNameLength: number | null;
  /**
   * Bytes a client may POST to a connection before a transport has started it: nothing reads them until then
   * (ASP.NET Core holds them in the connection's pipe, which stops taking bytes at its `TransportMaxBufferSize`,
   * docs/protocol.md §1.11). A
   * POST that would hold more is answered 413. Once the connection runs, one POST at a time is read and later ones
   * wait unread, so this is the only buffer a client can fill without a running hub reading it.
   * @default 65536
   */
  readonly transportMaxBufferSize: number;
  /**
   * The transports offered, in any subset; negotiate lists them in .NET's order.
   * @default ['WebSockets', 'ServerSentEvents', 'LongPolling']
   */
  readonly transports: readonly TransportName[];
  /**
   * A negotiated connection that does not start a transport within this time, or a long-polling connection
   * without a poll for this long, is dropped.
   * @default 15000
   */
  readonly disconnectTimeoutMs: number;
  /**
   * A Server-Sent Events stream or poll response that holds unsent bytes and sends none of them for this long is
   * aborted and its socket cut (the connection then ends): ASP.NET Core's `TransportSendTimeout`, which closes a
   * connection whose send does not complete in time (docs/protocol.md §1.11). It is also the grace a socket gets to
   * close after the server ended its stream or its long-polling connection, before it is cut: a client that stopped
   * reading never would.
   * @default 10000
   */
  readonly sendTimeoutMs: number;
  /**
   * How long a long poll waits for data before answering 200 with no body.
   * @default 90000
   */
  readonly longPollTimeoutMs: number;
  /**
   * Whether clients may use stateful reconnect (.NET 8+, `withStatefulReconnect()`): a client whose WebSocket drops
   * reopens it within `disconnectTimeoutMs` and resumes the same connection; unacknowledged messages are replayed
   * both ways.
   * @default false
   */
  readonly allowStatefulReconnects: boolean;
  /**
   * With stateful reconnect, how many bytes of sent messages the server keeps for replay before it treats further
   * sends as pressure (they are still kept, up to `maximumBufferedOutboundBytes`).
   * @default 100000
   */
  readonly statefulReconnectBufferSize: number;
  /**
   * Bytes that may wait for one client (queued, in the socket's buffer, or kept for replay) before the client is
   * taken for one that does not read and is closed with an error. `null` for no bound.
   * @default 1048576
   */
  readonly maximumBufferedOutboundBytes: number | null;
  /**
   * Resolves `context.userIdentifier` from the request that started the connection's transport.
   * @default the authenticated user's `sub`, `nameid` or `id` claim from `request.user` (as set by auth plugins
   *   such as `@fastify/jwt`), else none
   */
  readonly userIdProvider: UserIdProvider;
  /**
   * Close a connection once its authentication expires (ASP.NET Core's `CloseOnAuthenticationExpiration`), checked
   * every second. The client gets a Close that allows reconnecting, so one with automatic reconnect comes back at
   * once — with a fresh token from its `accessTokenFactory`.
   * @default false
   */
  readonly closeOnAuthenticationExpiration: boolean;
  /**
   * When the authentication of the request that started a connection expires: ms since the epoch, a `Date`, or
   * `undefined` for never. Used by `closeOnAuthenticationExpiration`.
   * @default the `exp` claim (seconds since the epoch) of `request.user`, as JWT plugins such as `@fastify/jwt` set it
   */
  readonly authenticationExpiration: AuthenticationExpiration;
}

/** One hub to serve: its path, its class and, optionally, options of its own. */
export interface HubRegistration extends Partial<HubOptions> {
  /** URL path of the hub, for example `/chathub`. Negotiate is served at `{path}/negotiate`. */
  readonly path: string;
  /** The hub class; a new instance handles each invocation. */
  readonly hub: HubClass;
  /**
   * The hub's name on the Redis backplane: every channel of the hub starts with it (`{name}:all`, …). To share the
   * channels with a .NET server it must equal the .NET hub's full type name, namespace included (for example
   * `MyApp.Hubs.ChatHub`). Set it whenever a backplane is used: the default changes when the class is renamed or a
   * bundler minifies class names.
   * @default the class name (the hub path when the class has no name)
   */
  readonly name?: string;
  /**
   * The hub protocols clients may choose.
   * @default every protocol this server implements (json, messagepack)
   */
  readonly protocols?: readonly HubProtocol[];
  /**
   * Fastify `onRequest` hooks for every request of this hub: negotiate, WebSocket upgrades, polls, sends. Put
   * authentication here (for example `request.jwtVerify()`); a hook that replies ends the request, so an upgrade is
   * refused before it happens. The `access_token` query parameter has already been turned into an
   * `Authorization: Bearer` header when these run.
   * @default none
   */
  readonly onRequest?: onRequestHookHandler | readonly onRequestHookHandler[];
  /**
   * Who may use the hub, decided after the hooks ran: `false` refuses negotiate and every transport request with
   * 401 when the request has no user (`request.user`), 403 when it has one — ASP.NET Core's `[Authorize]` on a hub.
   * @default everyone
   */
  readonly authorize?: (request: FastifyRequest) => boolean | Promise<boolean>;
  /**
   * Filters around this hub's method invocations and lifecycle hooks (ASP.NET Core's hub-specific `AddFilter`);
   * they run after the plugin-wide `hubFilters`, in the order given. See {@link HubFilter}.
   * @default none
   */
  readonly hubFilters?: readonly HubFilter[];
}

/**
 * The Redis backplane: several servers — of this library, and ASP.NET Core servers with
 * `Microsoft.AspNetCore.SignalR.StackExchangeRedis` — serve one app through one Redis (docs/protocol.md §3).
 * Each hub's channels are named after its `name`, which must equal the .NET hub's full type name to share them.
 */
export interface RedisBackplaneOptions {
  /**
   * Where Redis is, as a URL: `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS. Give this,
   * `connectionString` or `options`.
   */
  readonly url?: string;
  /**
   * Where Redis is, as the StackExchange.Redis connection string the .NET servers use, pasted unchanged: endpoints
   * `host[:port]` (one server, or Redis Cluster seed nodes, or sentinels with `serviceName=`) and the options
   * `ssl`, `sslHost`, `user`, `password`, `channelPrefix`, `abortConnect`, `connectTimeout`, `syncTimeout`,
   * `defaultDatabase`, `serviceName`, `name`. Other keys are ignored with one warning. For example
   * `my-cache.redis.cache.windows.net:6380,password=…,ssl=True,abortConnect=False`.
   */
  readonly connectionString?: string;
  /**
   * ioredis connection options (host, port, username, password, tls, sentinels and name, `retryStrategy`, …); they
   * override what `url` or `connectionString` say. Offline queueing and ioredis's own resubscription are always
   * off: the backplane restores its subscriptions itself and never sends a message late.
   * @default reconnect after 50 ms, 100 ms, … up to 1 s between attempts, for ever; 5 s connect and command timeouts
   */
  readonly options?: RedisConnectionOptions;
  /**
   * TLS: `true`, or a custom CA, a client certificate and key, and the name the server's certificate must carry.
   * Turns TLS on (as `rediss://` or `ssl=true` do); certificate verification is on unless `rejectUnauthorized` is
   * `false`.
   * @default off, unless the URL is `rediss://` or the connection string says `ssl=true`
   */
  readonly tls?: boolean | RedisTlsOptions;
  /**
   * Whether the server refuses to start when Redis cannot be reached within the connect timeout (StackExchange.Redis
   * `abortConnect`). Either way, credentials, certificates or an ACL that Redis refuses fail startup, since no retry
   * can cure them. Registration waits for the first connection up to the connect timeout (5 s by default): keep that
   * below Fastify's `pluginTimeout` (10 s by default).
   * @default the connection string's `abortConnect` (StackExchange.Redis's default: true, false for Azure Cache for
   *   Redis host names); false with `url` or `options`: the server starts and connects when Redis is there
   */
  readonly abortConnect?: boolean;
  /**
   * The StackExchange.Redis `ChannelPrefix` the .NET servers use (`channelPrefix=` in their connection string),
   * written before every channel name with no separator: `myapp` gives `myappMyApp.ChatHub:all`.
   * @default the connection string's `channelPrefix`, else '' (none)
   */
  readonly channelPrefix?: string;
  /**
   * How long adding a connection of another server to a group (or removing it) waits for that server's ack before
   * the call fails. .NET waits 30 s (checked every 5 s).
   * @default 30000
   */
  readonly ackTimeoutMs?: number;
  /**
   * Presence across every server: each server records its connections (id, user, transport, protocol, connected-at)
   * and their groups in Redis, with a heartbeat, so `presence` answers for the whole fleet, user-level groups work
   * and join/leave events reach every server. Costs one pipelined round trip per connect, disconnect, join and leave.
   * `true`, or `{ heartbeatIntervalMs }`: a server silent for three heartbeats is taken for dead and its entries
   * removed. Not on a Redis Cluster. See docs/protocol.md §3.9.
   * @default false (presence answers for this server only); heartbeat 5000 ms when on
   */
  readonly presence?: boolean | { readonly heartbeatIntervalMs?: number };
  /**
   * Payload bytes of publishes kept while Redis is unreachable (or failing over, or this server's subscriptions are
   * not back yet); they are sent, in order, once it is back. A publish that would pass the bound is dropped, counted
   * (`signalr_backplane_publishes_dropped_total`) and logged. 0 keeps no queue: a publish then fails at once while
   * Redis is down, as with .NET's backplane.
   * @default 16777216 (16 MiB)
   */
  readonly maximumQueuedPublishBytes?: number;
  /**
   * How long a publish may wait for Redis; older ones are dropped, counted and logged like those past the byte
   * bound. Messages are for people connected now: one sent minutes late is rarely wanted.
   * @default 60000
   */
  readonly maximumQueuedPublishAgeMs?: number;
}

/** Options of the fastify-signalr plugin: the hubs, and defaults for every hub's {@link HubOptions}. */
export interface SignalROptions extends Partial<HubOptions> {
  readonly hubs: readonly HubRegistration[];
  /**
   * Raw connection endpoints, without a hub protocol (ASP.NET Core's `MapConnectionHandler<T>`): negotiate and
   * every transport at a path, for clients of the low-level connection API; see {@link ConnectionHandlerRegistration}.
   * @default none
   */
  readonly connectionHandlers?: readonly ConnectionHandlerRegistration[];
  /**
   * Filters around every hub's method invocations and lifecycle hooks (ASP.NET Core's global `AddFilter`); they
   * run first, in the order given, then each hub's own `hubFilters`. See {@link HubFilter}.
   * @default none
   */
  readonly hubFilters?: readonly HubFilter[];
  /**
   * The hub protocols every hub offers unless it lists its own.
   * @default every protocol this server implements (json, messagepack)
   */
  readonly protocols?: readonly HubProtocol[];
  /**
   * Whether clients are told they may reconnect when the server shuts down (`allowReconnect` in the Close
   * message). With it, clients that use automatic reconnect come back to a restarted or sibling server.
   * @default true
   */
  readonly allowReconnectOnShutdown?: boolean;
  /**
   * Largest WebSocket frame or POST body accepted, in bytes, for every hub. The official clients batch queued
   * messages into one frame or body, so this is larger than the message limit; a bigger frame closes the socket
   * with status 1009, a bigger POST gets 413.
   * @default 1048576, or 4 × the largest `maximumReceiveMessageSize` when that is larger (100 MiB when a hub has
   *   no message limit)
   */
  readonly maximumReceiveChunkSize?: number;
  /**
   * Origins of browser pages on other origins that may connect (CORS): a list such as
   * `['https://app.example.com']`, `'*'` for any origin (echoed back, with credentials, as ASP.NET Core's
   * `SetIsOriginAllowed(_ => true).AllowCredentials()`), or a predicate. WebSocket upgrades from a page of any
   * other origin are refused with 403.
   *
   * `'*'` is unsafe with cookie authentication: any site's page, even a sandboxed one (`Origin: null`), would
   * connect with its visitor's cookies and act as them. The server refuses to start with `'*'` when a session
   * plugin decorates requests with `session` (`@fastify/session`, `@fastify/secure-session`); with bearer tokens
   * (the official clients' `accessTokenFactory`) it is safe, since a page of another site has no token to send.
   * @default none: same-origin pages only
   */
  readonly allowedOrigins?: readonly string[] | '*' | ((origin: string) => boolean);
  /**
   * The query parameter whose value is taken as a bearer token when a request has no `Authorization` header:
   * browsers cannot set headers on WebSockets and Server-Sent Events, so the official client sends its access token
   * there. `false` turns this off.
   * @default 'access_token'
   */
  readonly accessTokenQueryParameter?: string | false;
  /**
   * Most connections this server holds at once, over all hubs (negotiated ones included); further negotiations and
   * WebSocket connections get 503 — unless a negotiated connection never started its transport: the oldest such
   * gives its place to the newcomer, so negotiations nobody uses cannot keep the server full. `null` for no limit.
   * @default null
   */
  readonly maximumConnections?: number | null;
  /**
   * Scale out through Redis, interoperating with ASP.NET Core's Redis backplane; see {@link RedisBackplaneOptions}.
   * @default none: every hub keeps its connections, groups and users in memory (one server)
   */
  readonly redis?: RedisBackplaneOptions;
  /**
   * The management REST API, shaped as Azure SignalR Service's data-plane REST API (sends, groups, closes, existence
   * checks, client results), for back ends and tools that push to clients over HTTP; see {@link ManagementOptions}.
   * @default none: no management API
   */
  readonly management?: ManagementOptions;
  /**
   * Serve ASP.NET SignalR 2.x clients (jquery.signalR, signalr-no-jquery, Microsoft.AspNet.SignalR.Client) with the
   * same hubs, at `/signalr`; see {@link AspNetSignalROptions}.
   * @default none: 2.x clients are not served
   */
  readonly aspNetSignalR?: AspNetSignalROptions | true;
}

/** Default user id: the id claim of the authenticated user, as ASP.NET Core's NameIdentifier claim. */
export const defaultUserIdProvider: UserIdProvider = (request) => {
  const user = (request as { user?: unknown }).user;
  if (typeof user !== 'object' || user === null) return undefined;
  const claims = user as Record<string, unknown>;
  for (const claim of ['sub', 'nameid', 'id']) {
    const value = claims[claim];
    if (typeof value === 'string' && value !== '') return value;
    if (typeof value === 'number') return String(value);
  }
  return undefined;
};

/** ASP.NET Core's defaults (docs/protocol.md §1.11), and ours for the options .NET does not have. */
const HUB_OPTION_DEFAULTS: HubOptions = Object.freeze({
  keepAliveIntervalMs: 15_000,
  clientTimeoutIntervalMs: 30_000,
  handshakeTimeoutMs: 15_000,
  maximumReceiveMessageSize: 32 * 1024,
  enableDetailedErrors: false,
  maximumParallelInvocationsPerClient: 1,
  streamBufferCapacity: 10,
  transportMaxBufferSize: 64 * 1024,
  maximumStreamsPerConnection: 100,
  maximumPendingClientResultsPerConnection: 100,
  maximumPendingClientResults: 10_000,
  maximumGroupsPerConnection: 1_000,
  maximumGroupNameLength: 1_024,
  transports: ALL_TRANSPORTS,
  disconnectTimeoutMs: 15_000,
  longPollTimeoutMs: 90_000,
  sendTimeoutMs: 10_000,
  allowStatefulReconnects: false,
  statefulReconnectBufferSize: 100_000,
  maximumBufferedOutboundBytes: 1024 * 1024,
  userIdProvider: defaultUserIdProvider,
  closeOnAuthenticationExpiration: false,
  authenticationExpiration: defaultAuthenticationExpiration,
});

const DEFAULT_FRAME_SIZE = 1024 * 1024;
const UNLIMITED_FRAME_SIZE = 100 * 1024 * 1024;

const positiveMs = z.number().int().positive();
const hookSchema = z.custom<onRequestHookHandler>((value) => typeof value === 'function', 'must be a hook function');

const hubOptionsShape = {
  keepAliveIntervalMs: positiveMs.optional(),
  clientTimeoutIntervalMs: positiveMs.optional(),
  handshakeTimeoutMs: positiveMs.optional(),
  maximumReceiveMessageSize: z.number().int().positive().nullable().optional(),
  enableDetailedErrors: z.boolean().optional(),
  maximumParallelInvocationsPerClient: z.number().int().positive().optional(),
  streamBufferCapacity: z.number().int().positive().optional(),
  transportMaxBufferSize: z.number().int().positive().optional(),
  maximumStreamsPerConnection: z.number().int().positive().nullable().optional(),
  maximumPendingClientResultsPerConnection: z.number().int().positive().nullable().optional(),
  maximumPendingClientResults: z.number().int().positive().nullable().optional(),
  maximumGroupsPerConnection: z.number().int().positive().nullable().optional(),
  maximumGroupNameLength: z.number().int().positive().nullable().optional(),
  transports: z
    .array(z.enum(ALL_TRANSPORTS as [TransportName, ...TransportName[]]))
    .refine((list) => new Set(list).size === list.length, 'lists a transport twice')
    .optional(),
  disconnectTimeoutMs: positiveMs.optional(),
  longPollTimeoutMs: positiveMs.optional(),
  sendTimeoutMs: positiveMs.optional(),
  allowStatefulReconnects: z.boolean().optional(),
  statefulReconnectBufferSize: z.number().int().positive().optional(),
  maximumBufferedOutboundBytes: z.number().int().positive().nullable().optional(),
  userIdProvider: z.custom<UserIdProvider>((value) => typeof value === 'function', 'must be a function').optional(),
  closeOnAuthenticationExpiration: z.boolean().optional(),
  authenticationExpiration: z.custom<AuthenticationExpiration>((value) => typeof value === 'function', 'must be a function').optional(),
};

const protocolsSchema = z
  .array(z.custom<HubProtocol>((value) => typeof value === 'object' && value !== null && 'writeMessage' in value))
  .min(1);

const hubFilterSchema = z.custom<HubFilter>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    ['invokeMethod', 'onConnected', 'onDisconnected'].some((member) => typeof (value as Record<string, unknown>)[member] === 'function'),
  'must be an object with invokeMethod, onConnected or onDisconnected',
);

const hubRegistrationSchema = z.strictObject({
  ...hubOptionsShape,
  hubFilters: z.array(hubFilterSchema).optional(),
  path: z.string().regex(/^\/[^?#]*$/, "must start with '/' and hold no query or fragment"),
  hub: z.custom<HubClass>((value) => typeof value === 'function', 'must be a hub class'),
  name: z.string().min(1).optional(),
  protocols: protocolsSchema.optional(),
  onRequest: z
    .union([hookSchema, z.array(hookSchema)])
    .optional(),
  authorize: z.custom<(request: FastifyRequest) => boolean | Promise<boolean>>((value) => typeof value === 'function', 'must be a function').optional(),
});

const connectionHandlerSchema = z.strictObject({
  path: z.string().regex(/^\/[^?#]*$/, "must start with '/' and hold no query or fragment"),
  onConnected: z.custom<ConnectionHandlerRegistration['onConnected']>((value) => typeof value === 'function', 'must be a function'),
  transports: hubOptionsShape.transports,
  disconnectTimeoutMs: hubOptionsShape.disconnectTimeoutMs,
  longPollTimeoutMs: hubOptionsShape.longPollTimeoutMs,
  sendTimeoutMs: hubOptionsShape.sendTimeoutMs,
  transportMaxBufferSize: hubOptionsShape.transportMaxBufferSize,
  maximumBufferedOutboundBytes: hubOptionsShape.maximumBufferedOutboundBytes,
  userIdProvider: hubOptionsShape.userIdProvider,
  onRequest: hubRegistrationSchema.shape.onRequest,
  authorize: hubRegistrationSchema.shape.authorize,
});

const pem = (what: string) => `must be PEM text or a Buffer${what}`;
const redisTlsSchema = z.strictObject({
  ca: z
    .custom<RedisTlsOptions['ca']>(
      (value) => typeof value === 'string' || Buffer.isBuffer(value) || (Array.isArray(value) && value.every((item) => typeof item === 'string' || Buffer.isBuffer(item))),
      pem(', or a list of them'),
    )
    .optional(),
  cert: z.custom<string | Buffer>((value) => typeof value === 'string' || Buffer.isBuffer(value), pem('')).optional(),
  key: z.custom<string | Buffer>((value) => typeof value === 'string' || Buffer.isBuffer(value), pem('')).optional(),
  servername: z.string().min(1).optional(),
  rejectUnauthorized: z.boolean().optional(),
});

const signalROptionsSchema = z.strictObject({
  ...hubOptionsShape,
  hubs: z.array(hubRegistrationSchema),
  connectionHandlers: z.array(connectionHandlerSchema).optional(),
  hubFilters: z.array(hubFilterSchema).optional(),
  protocols: protocolsSchema.optional(),
  allowReconnectOnShutdown: z.boolean().optional(),
  maximumReceiveChunkSize: z.number().int().positive().optional(),
  allowedOrigins: z
    .union([
      z.literal('*'),
      z.array(z.url({ protocol: /^https?$/, error: 'must be an origin such as https://app.example.com' })),
      z.custom<(origin: string) => boolean>((value) => typeof value === 'function'),
    ])
    .optional(),
  accessTokenQueryParameter: z.union([z.string().min(1), z.literal(false)]).optional(),
  maximumConnections: z.number().int().positive().nullable().optional(),
  // Checked by resolveAspNetOptions.
  aspNetSignalR: z.union([z.literal(true), z.looseObject({})]).optional(),
  management: z
    .strictObject({
      accessKey: z.string().min(1),
      path: z.string().regex(/^\/[^?#]*$/, "must start with '/' and hold no query or fragment").optional(),
      publicEndpoint: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://signalr.example.com' }).optional(),
      invokeTimeoutMs: positiveMs.optional(),
    })
    .optional(),
  redis: z
    .strictObject({
      url: z
        .string()
        .refine(isRedisUrl, 'must be a redis:// or rediss:// URL (give a StackExchange.Redis connection string as connectionString)')
        .optional(),
      connectionString: z.string().optional(),
      options: z
        .custom<RedisConnectionOptions>((value) => typeof value === 'object' && value !== null, 'must be an object')
        .optional(),
      tls: z
        .custom<boolean | RedisTlsOptions>(
          (value) => typeof value === 'boolean' || (typeof value === 'object' && value !== null),
          'must be true, false or TLS options { ca, cert, key, servername, rejectUnauthorized }',
        )
        // A union would only say "invalid input"; the object's own issues name the bad field.
        .superRefine((value, context) => {
          if (typeof value === 'boolean') return;
          const parsed = redisTlsSchema.safeParse(value);
          if (!parsed.success) for (const issue of parsed.error.issues) context.addIssue({ ...issue, code: 'custom', message: issue.message });
        })
        .optional(),
      abortConnect: z.boolean().optional(),
      channelPrefix: z.string().optional(),
      ackTimeoutMs: positiveMs.optional(),
      presence: z
        .union([z.boolean(), z.strictObject({ heartbeatIntervalMs: z.number().int().min(10).optional() })], {
          error: 'must be true, false or { heartbeatIntervalMs }',
        })
        .optional(),
      maximumQueuedPublishBytes: z.number().int().min(0).optional(),
      maximumQueuedPublishAgeMs: positiveMs.optional(),
    })
    .refine(
      (redis) => redis.url !== undefined || redis.connectionString !== undefined || redis.options !== undefined,
      'needs a url, a connectionString or options',
    )
    .refine((redis) => redis.url === undefined || redis.connectionString === undefined, 'takes a url or a connectionString, not both')
    .optional(),
});

/** Default of {@link RedisBackplaneOptions.maximumQueuedPublishBytes}. */
export const DEFAULT_MAXIMUM_QUEUED_PUBLISH_BYTES = 16 * 1024 * 1024;
/** Default of {@link RedisBackplaneOptions.maximumQueuedPublishAgeMs}. */
export const DEFAULT_MAXIMUM_QUEUED_PUBLISH_AGE_MS = 60_000;

/** The Redis backplane options after defaults. */
export interface ResolvedRedisOptions {
  /** Where Redis is and how to connect, from every form of the option. */
  readonly target: RedisTarget;
  readonly channelPrefix: string;
  readonly ackTimeoutMs: number;
  /** Presence across servers, or null when off. */
  readonly presence: { readonly heartbeatIntervalMs?: number } | null;
  /** Bounds of the queue of publishes kept while Redis is unreachable (`maximumBytes` 0: no queue). */
  readonly publishQueue: { readonly maximumBytes: number; readonly maximumAgeMs: number };
}

/** Everything a hub runs with, after defaults. */
export interface ResolvedHubOptions extends HubOptions {
  readonly path: string;
  readonly hub: HubClass;
  readonly name: string;
  readonly protocols: readonly HubProtocol[];
  readonly onRequest: readonly onRequestHookHandler[];
  readonly authorize: ((request: FastifyRequest) => boolean | Promise<boolean>) | undefined;
  /** The plugin-wide filters, then the hub's own. */
  readonly hubFilters: readonly HubFilter[];
}

/** Plugin options after validation and defaults. */
export interface ResolvedSignalROptions {
  readonly hubs: readonly ResolvedHubOptions[];
  readonly connectionHandlers: readonly ResolvedConnectionHandler[];
  readonly allowReconnectOnShutdown: boolean;
  readonly maximumReceiveChunkSize: number;
  readonly allowedOrigins: OriginPolicy;
  readonly accessTokenQueryParameter: string | false;
  readonly maximumConnections: number | null;
  /** The Redis backplane, or `null` for in-memory hubs. */
  readonly redis: ResolvedRedisOptions | null;
}

/** The bounds a hub's lifetime manager enforces, from its options. */
export function lifetimeLimits(options: HubOptions): LifetimeLimits {
  return {
    clientResults: {
      maximumPerConnection: options.maximumPendingClientResultsPerConnection,
      maximumTotal: options.maximumPendingClientResults,
    },
    maximumGroupsPerConnection: options.maximumGroupsPerConnection,
  };
}

/** Thrown by `app.register` for invalid options; the message names every bad option. */
export class SignalROptionsError extends Error {
  override readonly name = 'SignalROptionsError';
  /** The stable code of this error ({@link errorCodes}). */
  readonly code: SignalRErrorCode = 'SIGNALR_ERR_OPTIONS';
}

/**
 * Validates the plugin options and applies the defaults; the result is frozen.
 * @param defaultProtocols the protocols hubs get when they do not list their own
 */
export function resolveOptions(options: unknown, defaultProtocols: readonly HubProtocol[]): ResolvedSignalROptions {
  const parsed = signalROptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new SignalROptionsError(`Invalid fastify-signalr options:\n${z.prettifyError(parsed.error)}`);
  }
  const global = parsed.data;
  const paths = new Set<string>();
  const hubs = global.hubs.map((hub) => {
    const path = hub.path.length > 1 ? hub.path.replace(/\/+$/, '') : hub.path;
    if (paths.has(path)) throw new SignalROptionsError(`Invalid fastify-signalr options: two hubs at path '${path}'.`);
    paths.add(path);
    // Each hub option: the hub's own value, else the plugin-wide value, else the default (`null` is a value).
    const option = <K extends keyof HubOptions>(key: K): HubOptions[K] =>
      (hub[key] !== undefined ? hub[key] : global[key] !== undefined ? global[key] : HUB_OPTION_DEFAULTS[key]) as HubOptions[K];
    const resolved: ResolvedHubOptions = {
      path,
      hub: hub.hub,
      name: hub.name ?? (hub.hub.name || path),
      protocols: Object.freeze([...(hub.protocols ?? global.protocols ?? defaultProtocols)]),
      onRequest: Object.freeze(hub.onRequest === undefined ? [] : [hub.onRequest].flat()),
      authorize: hub.authorize,
      hubFilters: Object.freeze([...(global.hubFilters ?? []), ...(hub.hubFilters ?? [])]),
      keepAliveIntervalMs: option('keepAliveIntervalMs'),
      clientTimeoutIntervalMs: option('clientTimeoutIntervalMs'),
      handshakeTimeoutMs: option('handshakeTimeoutMs'),
      maximumReceiveMessageSize: option('maximumReceiveMessageSize'),
      enableDetailedErrors: option('enableDetailedErrors'),
      maximumParallelInvocationsPerClient: option('maximumParallelInvocationsPerClient'),
      streamBufferCapacity: option('streamBufferCapacity'),
      transportMaxBufferSize: option('transportMaxBufferSize'),
      maximumStreamsPerConnection: option('maximumStreamsPerConnection'),
      maximumPendingClientResultsPerConnection: option('maximumPendingClientResultsPerConnection'),
      maximumPendingClientResults: option('maximumPendingClientResults'),
      maximumGroupsPerConnection: option('maximumGroupsPerConnection'),
      maximumGroupNameLength: option('maximumGroupNameLength'),
      transports: Object.freeze([...option('transports')]),
      disconnectTimeoutMs: option('disconnectTimeoutMs'),
      longPollTimeoutMs: option('longPollTimeoutMs'),
      sendTimeoutMs: option('sendTimeoutMs'),
      allowStatefulReconnects: option('allowStatefulReconnects'),
      statefulReconnectBufferSize: option('statefulReconnectBufferSize'),
      maximumBufferedOutboundBytes: option('maximumBufferedOutboundBytes'),
      userIdProvider: option('userIdProvider'),
      closeOnAuthenticationExpiration: option('closeOnAuthenticationExpiration'),
      authenticationExpiration: option('authenticationExpiration'),
    };
    return Object.freeze(resolved);
  });
  const connectionHandlers = (global.connectionHandlers ?? []).map((handler) => {
    const path = handler.path.length > 1 ? handler.path.replace(/\/+$/, '') : handler.path;
    if (paths.has(path)) throw new SignalROptionsError(`Invalid fastify-signalr options: two endpoints at path '${path}'.`);
    paths.add(path);
    const option = <
      K extends 'transports' | 'disconnectTimeoutMs' | 'longPollTimeoutMs' | 'sendTimeoutMs' | 'transportMaxBufferSize' | 'maximumBufferedOutboundBytes' | 'userIdProvider',
    >(
      key: K,
    ): HubOptions[K] =>
      (handler[key] !== undefined ? handler[key] : global[key] !== undefined ? global[key] : HUB_OPTION_DEFAULTS[key]) as HubOptions[K];
    const resolved: ResolvedConnectionHandler = {
      path,
      onConnected: handler.onConnected,
      transports: Object.freeze([...option('transports')]),
      disconnectTimeoutMs: option('disconnectTimeoutMs'),
      longPollTimeoutMs: option('longPollTimeoutMs'),
      sendTimeoutMs: option('sendTimeoutMs'),
      transportMaxBufferSize: option('transportMaxBufferSize'),
      maximumBufferedOutboundBytes: option('maximumBufferedOutboundBytes'),
      userIdProvider: option('userIdProvider'),
      onRequest: Object.freeze(handler.onRequest === undefined ? [] : [handler.onRequest].flat()),
      authorize: handler.authorize,
      allowStatefulReconnects: false,
    };
    return Object.freeze(resolved);
  });
  const frameSize =
    global.maximumReceiveChunkSize ??
    hubs.reduce(
      (size, hub) =>
        Math.max(size, hub.maximumReceiveMessageSize === null ? UNLIMITED_FRAME_SIZE : 4 * hub.maximumReceiveMessageSize),
      DEFAULT_FRAME_SIZE,
    );
  const redis = global.redis;
  let target: RedisTarget | undefined;
  if (redis !== undefined) {
    try {
      target = resolveRedisTarget(redis);
    } catch (error) {
      if (!(error instanceof RedisConfigurationError)) throw error;
      throw new SignalROptionsError(`Invalid fastify-signalr options: redis: ${error.message}`);
    }
    const names = new Set<string>();
    for (const hub of hubs) {
      if (names.has(hub.name)) {
        throw new SignalROptionsError(
          `Invalid fastify-signalr options: two hubs named '${hub.name}' would share their Redis channels; give each its own \`name\`.`,
        );
      }
      names.add(hub.name);
    }
  }
  return Object.freeze({
    hubs: Object.freeze(hubs),
    connectionHandlers: Object.freeze(connectionHandlers),
    redis:
      redis === undefined || target === undefined
        ? null
        : Object.freeze({
            target,
            channelPrefix: redis.channelPrefix ?? target.channelPrefix ?? '',
            ackTimeoutMs: redis.ackTimeoutMs ?? 30_000,
            presence:
              redis.presence === undefined || redis.presence === false
                ? null
                : redis.presence === true
                  ? {}
                  : { ...redis.presence },
            publishQueue: Object.freeze({
              maximumBytes: redis.maximumQueuedPublishBytes ?? DEFAULT_MAXIMUM_QUEUED_PUBLISH_BYTES,
              maximumAgeMs: redis.maximumQueuedPublishAgeMs ?? DEFAULT_MAXIMUM_QUEUED_PUBLISH_AGE_MS,
            }),
          }),
    allowReconnectOnShutdown: global.allowReconnectOnShutdown ?? true,
    maximumReceiveChunkSize: frameSize,
    allowedOrigins: originPolicy(global.allowedOrigins),
    accessTokenQueryParameter: global.accessTokenQueryParameter ?? 'access_token',
    maximumConnections: global.maximumConnections ?? null,
  });
}
