/**
 * The HTTP layer's options, as ASP.NET Core's `HttpConnectionDispatcherOptions` and Kestrel-level limits: the
 * transports offered, buffer sizes, long polling, send timeouts, the user and authentication of a request, CORS and
 * the access-token query parameter. They belong to the HTTP connection layer, as `HttpConnectionDispatcherOptions`
 * belongs to .NET's Microsoft.AspNetCore.Http.Connections, so the hub runtime and the transports, which both build on
 * that layer, read them without importing each other. A leaf: `options.ts` aggregates them into the plugin's options.
 */
import type { FastifyRequest, onRequestHookHandler } from 'fastify';
import { z } from 'zod';
import { ALL_TRANSPORTS, type TransportName } from '../../protocol/negotiate';
import {
  booleanDescriptor,
  customDescriptor,
  functionDescriptor,
  integerDescriptor,
  limitDescriptor,
  subsetDescriptor,
  type DescriptorsOf,
} from '../shared/option-descriptors';

/** Resolves the user id of a connection from the request that started its transport. */
export type UserIdProvider = (request: FastifyRequest) => string | null | undefined;

/** When a request's authentication expires: ms since the epoch, a `Date`, or `undefined` for never. */
export type AuthenticationExpiration = (request: FastifyRequest) => number | Date | undefined;

/** Admits a request after the `onRequest` hooks ran; `false` refuses it (401 without a user, 403 with one). */
export type RequestAuthorizer = (request: FastifyRequest) => boolean | Promise<boolean>;

/** The `exp` claim (seconds since the epoch, RFC 7519 §4.1.4) of `request.user`, in ms; `undefined` without one. */
export const defaultAuthenticationExpiration: AuthenticationExpiration = (request) => {
  const exp = ((request as { user?: unknown }).user as { exp?: unknown } | undefined)?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
};

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

/**
 * The HTTP endpoint of a hub or raw connection endpoint (ASP.NET Core's `HttpConnectionDispatcherOptions`); each may
 * be set for all endpoints or per endpoint.
 */
export interface HttpDispatcherOptions {
  /**
   * The transports offered, in any subset; negotiate lists them in .NET's order.
   * @default ['WebSockets', 'ServerSentEvents', 'LongPolling']
   */
  readonly transports: readonly TransportName[];
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
   * A negotiated connection that does not start a transport within this time, or a long-polling connection
   * without a poll for this long, is dropped.
   * @default 15000
   */
  readonly disconnectTimeoutMs: number;
  /**
   * How long a long poll waits for data before answering 200 with no body.
   * @default 90000
   */
  readonly longPollTimeoutMs: number;
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
   * Bytes that may wait for one client (queued, in the socket's buffer, or kept for replay) before the client is
   * taken for one that does not read and is closed with an error. `null` for no bound.
   * @default 1048576
   */
  readonly maximumBufferedOutboundBytes: number | null;
  /**
   * Whether clients may use stateful reconnect (.NET 8+, `withStatefulReconnect()`): a client whose WebSocket drops
   * reopens it within `disconnectTimeoutMs` and resumes the same connection; unacknowledged messages are replayed
   * both ways.
   * @default false
   */
  readonly allowStatefulReconnects: boolean;
  /**
   * Resolves `context.userIdentifier` from the request that started the connection's transport.
   * @default the `sub`, `nameid` or `id` claim of `request.user` (as auth plugins such as `@fastify/jwt` set it),
   *   else none
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

/** Each HTTP endpoint option: its default, validation, variable and README row. */
export const httpDispatcherOptionDescriptors: DescriptorsOf<HttpDispatcherOptions> = Object.freeze({
  transports: subsetDescriptor(
    'transports offered: any subset of `WebSockets`, `ServerSentEvents`, `LongPolling`',
    ALL_TRANSPORTS as readonly [TransportName, ...TransportName[]],
    ALL_TRANSPORTS,
    'transports',
    { env: 'SIGNALR_TRANSPORTS' },
  ),
  transportMaxBufferSize: integerDescriptor(
    'bytes POSTed to a connection before its transport starts; more get 413 (POSTs to one connection are read one at a time)',
    65_536,
    { env: 'SIGNALR_TRANSPORT_MAX_BUFFER_SIZE' },
  ),
  disconnectTimeoutMs: integerDescriptor(
    'drop a negotiated connection that never connects, or a long-polling one that stops polling',
    15_000,
    { env: 'SIGNALR_DISCONNECT_TIMEOUT_MS' },
  ),
  longPollTimeoutMs: integerDescriptor(
    "how long a poll waits for data (a proxy's read timeout must be longer)",
    90_000,
    { env: 'SIGNALR_LONG_POLL_TIMEOUT_MS' },
  ),
  sendTimeoutMs: integerDescriptor(
    "an SSE stream or poll response whose socket sends nothing of what it holds for this long is cut (.NET's " +
      '`TransportSendTimeout`); also the grace a socket gets after its stream ended',
    10_000,
    { env: 'SIGNALR_SEND_TIMEOUT_MS' },
  ),
  maximumBufferedOutboundBytes: limitDescriptor(
    'bytes that may wait for one client before it is closed as a slow reader; `null` = no bound',
    1_048_576,
    { env: 'SIGNALR_MAXIMUM_BUFFERED_OUTBOUND_BYTES' },
  ),
  allowStatefulReconnects: booleanDescriptor(
    'let `.withStatefulReconnect()` clients resume a dropped WebSocket',
    false,
    {
      env: 'SIGNALR_ALLOW_STATEFUL_RECONNECTS',
    },
  ),
  userIdProvider: functionDescriptor(
    '`context.userIdentifier` and `clients.user(...)`',
    defaultUserIdProvider,
    'the `sub`, `nameid` or `id` claim of `request.user` (as auth plugins such as `@fastify/jwt` set it), else none',
  ),
  closeOnAuthenticationExpiration: booleanDescriptor(
    'close a connection when the token it started with expires (with `allowReconnect`)',
    false,
  ),
  authenticationExpiration: functionDescriptor(
    "when a request's authentication expires (ms since the epoch, a `Date`, or `undefined`)",
    defaultAuthenticationExpiration,
    'the `exp` claim (seconds since the epoch) of `request.user`, as JWT plugins such as `@fastify/jwt` set it',
  ),
});

/** The HTTP options a raw connection endpoint takes (stateful reconnect needs a hub protocol; expiry, a hub). */
export type RawConnectionOptions = Pick<
  HttpDispatcherOptions,
  | 'transports'
  | 'disconnectTimeoutMs'
  | 'longPollTimeoutMs'
  | 'sendTimeoutMs'
  | 'transportMaxBufferSize'
  | 'maximumBufferedOutboundBytes'
  | 'userIdProvider'
>;

/** The names of {@link RawConnectionOptions}, every one (the object's type lists each exactly once). */
export const RAW_CONNECTION_OPTIONS = Object.freeze(
  Object.keys({
    transports: true,
    disconnectTimeoutMs: true,
    longPollTimeoutMs: true,
    sendTimeoutMs: true,
    transportMaxBufferSize: true,
    maximumBufferedOutboundBytes: true,
    userIdProvider: true,
  } satisfies { readonly [K in keyof RawConnectionOptions]: true }) as (keyof RawConnectionOptions)[],
);

/** Who may reach an endpoint: its authentication hooks and authorization, after resolution. */
export interface ResolvedRouteOptions {
  readonly onRequest: readonly onRequestHookHandler[];
  readonly authorize: RequestAuthorizer | undefined;
}

/** Largest WebSocket frame or POST body when no hub's message limit asks for more. */
export const DEFAULT_MAXIMUM_RECEIVE_CHUNK_SIZE = 1024 * 1024;
/** Largest WebSocket frame or POST body when some hub has no message limit. */
export const UNLIMITED_MAXIMUM_RECEIVE_CHUNK_SIZE = 100 * 1024 * 1024;

/** Server-wide HTTP options: set at the top level only, for every endpoint. */
export interface HttpServerOptions {
  /**
   * Largest WebSocket frame or POST body accepted, in bytes, for every hub. The official clients batch queued
   * messages into one frame or body, so this is larger than the message limit; a bigger frame closes the socket
   * with status 1009, a bigger POST gets 413.
   * @default 1048576, or 4 × the largest `maximumReceiveMessageSize` when that is larger (104857600 when a hub has no
   *   message limit)
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
}

/** Each server-wide HTTP option. */
export const httpServerOptionDescriptors: DescriptorsOf<HttpServerOptions> = Object.freeze({
  maximumReceiveChunkSize: customDescriptor(
    'largest WebSocket frame or POST body',
    z.number().int().positive(),
    {
      defaultText:
        `${DEFAULT_MAXIMUM_RECEIVE_CHUNK_SIZE}, or 4 × the largest \`maximumReceiveMessageSize\` when that is larger ` +
        `(${UNLIMITED_MAXIMUM_RECEIVE_CHUNK_SIZE} when a hub has no message limit)`,
    },
    { scope: 'top level' },
  ),
  allowedOrigins: customDescriptor(
    "CORS: origins of pages on other origins, `'*'`, or a predicate",
    z.union([
      z.literal('*'),
      z.array(z.url({ protocol: /^https?$/, error: 'must be an origin such as https://app.example.com' })),
      z.custom<(origin: string) => boolean>((value) => typeof value === 'function'),
    ]) as z.ZodType<readonly string[] | '*' | ((origin: string) => boolean)>,
    { defaultText: 'none: same-origin pages only' },
    { scope: 'top level' },
  ),
  accessTokenQueryParameter: customDescriptor(
    'query parameter taken as a bearer token when there is no `Authorization` header; `false`: none',
    z.union([z.string().min(1), z.literal(false)]),
    { default: 'access_token' },
    { scope: 'top level' },
  ),
  maximumConnections: limitDescriptor(
    'connections held at once; more get 503, after the oldest negotiation never used gave its place up; `null` = no limit',
    null,
    { scope: 'top level', env: 'SIGNALR_MAXIMUM_CONNECTIONS' },
  ),
});
