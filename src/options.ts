/**
 * The plugin's options: every limit and timeout the server has, with ASP.NET Core's defaults
 * (docs/protocol.md §1.11), validated once at registration into a frozen object. A bad value fails `app.register` with a message that
 * names the option.
 *
 * Each layer describes its own options in a leaf file, as .NET splits them: the hub layer's (`HubOptions` in .NET)
 * in `hub/hub-options.ts`, the HTTP layer's (`HttpConnectionDispatcherOptions`) in `connections/dispatcher-options.ts`,
 * the Redis backplane's in `redis/redis-options.ts`; the descriptors in them are the one source of each option's default,
 * validation, environment variable and README row (`option-descriptors.ts`). This file only adds the registration
 * options (hubs, filters, protocols, Redis, management) and resolves everything; nothing below it imports it.
 */
import type { onRequestHookHandler } from 'fastify';
import { z } from 'zod';
import type { HubProtocol } from '../protocol/hub-protocol';
import type { HubClass } from './hub/hub';
import type { HubFilter } from './hub/hub-filters';
import { hubConnectionOptionDescriptors, type HubOptions, type ResolvedHubOptions } from './hub/hub-options';
import { RedisConfigurationError } from './redis/redis-config';
import { managementOptionDescriptors, type ManagementOptions } from './management/management-options';
import { adminOptionsSchema, type AdminOptions } from './admin/admin-options';
import type { AspNetSignalROptions } from './aspnet/aspnet-options';
import {
  booleanDescriptor,
  customDescriptor,
  defaultsOf,
  optionalShape,
  type DescriptorsOf,
} from './shared/option-descriptors';
import {
  redisBackplaneSchema,
  resolveRedisOptions,
  type RedisBackplaneOptions,
  type ResolvedRedisOptions,
} from './redis/redis-options';
import type { ConnectionHandlerRegistration, ResolvedConnectionHandler } from './transports/connection-handler';
import { originPolicy, type OriginPolicy } from './transports/cors';
import {
  DEFAULT_MAXIMUM_RECEIVE_CHUNK_SIZE,
  RAW_CONNECTION_OPTIONS,
  UNLIMITED_MAXIMUM_RECEIVE_CHUNK_SIZE,
  httpDispatcherOptionDescriptors,
  httpServerOptionDescriptors,
  type HttpServerOptions,
  type RawConnectionOptions,
  type RequestAuthorizer,
} from './connections/dispatcher-options';
import type { SignalRErrorCode } from './shared/errors';

export type { HubConnectionOptions, HubOptions, ResolvedHubOptions } from './hub/hub-options';
export { lifetimeLimits } from './hub/hub-options';
export {
  defaultAuthenticationExpiration,
  defaultUserIdProvider,
  type AuthenticationExpiration,
  type HttpDispatcherOptions,
  type HttpServerOptions,
  type UserIdProvider,
} from './connections/dispatcher-options';
export type { RedisBackplaneOptions, RedisPresenceOptions, ResolvedRedisOptions } from './redis/redis-options';

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
   * @default json, messagepack (every protocol this server implements)
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
  readonly authorize?: RequestAuthorizer;
  /**
   * Filters around this hub's method invocations and lifecycle hooks (ASP.NET Core's hub-specific `AddFilter`);
   * they run after the plugin-wide `hubFilters`, in the order given. See {@link HubFilter}.
   * @default none
   */
  readonly hubFilters?: readonly HubFilter[];
}

/** Options of the fastify-signalr plugin: the hubs, and defaults for every hub's {@link HubOptions}. */
export interface SignalROptions extends Partial<HubOptions>, HttpServerOptions {
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
   * @default json, messagepack (every protocol this server implements)
   */
  readonly protocols?: readonly HubProtocol[];
  /**
   * Whether clients are told they may reconnect when the server shuts down (`allowReconnect` in the Close
   * message). With it, clients that use automatic reconnect come back to a restarted or sibling server.
   * @default true
   */
  readonly allowReconnectOnShutdown?: boolean;
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
   * The live admin page (servers, connections, groups, rates, a live trace and actions) and its hub; see
   * {@link AdminOptions}. Nothing is served without its `authorize` function.
   * @default none: no admin page
   */
  readonly admin?: AdminOptions;
  /**
   * Serve ASP.NET SignalR 2.x clients (jquery.signalR, signalr-no-jquery, Microsoft.AspNet.SignalR.Client) with the
   * same hubs, at `/signalr`; see {@link AspNetSignalROptions}.
   * @default none: 2.x clients are not served
   */
  readonly aspNetSignalR?: AspNetSignalROptions | true;
}

const pathSchema = z.string().regex(/^\/[^?#]*$/, "must start with '/' and hold no query or fragment");
const hookSchema = z.custom<onRequestHookHandler>((value) => typeof value === 'function', 'must be a hook function');
const hubFilterSchema = z.custom<HubFilter>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    ['invokeMethod', 'onConnected', 'onDisconnected'].some(
      (member) => typeof (value as Record<string, unknown>)[member] === 'function',
    ),
  'must be an object with invokeMethod, onConnected or onDisconnected',
);

/** The options of a hub registration beyond its path, class and {@link HubOptions}. */
type RegistrationOptions = Omit<HubRegistration, 'path' | 'hub' | keyof HubOptions>;

/** Each option of a hub registration; `hubFilters` and `protocols` may also be set for every hub. */
export const registrationOptionDescriptors: DescriptorsOf<RegistrationOptions> = Object.freeze({
  name: customDescriptor(
    "the hub's name on the Redis backplane (the .NET hub's full type name to share channels)",
    z.string().min(1),
    { defaultText: 'the class name (the hub path when the class has no name)' },
    { scope: 'per hub' },
  ),
  protocols: customDescriptor(
    'hub protocols offered',
    z
      .array(z.custom<HubProtocol>((value) => typeof value === 'object' && value !== null && 'writeMessage' in value))
      .min(1) as z.ZodType<readonly HubProtocol[]>,
    { defaultText: 'json, messagepack (every protocol this server implements)' },
  ),
  onRequest: customDescriptor(
    'Fastify `onRequest` hooks for every request of the hub (authentication)',
    z.union([hookSchema, z.array(hookSchema)]) as z.ZodType<onRequestHookHandler | readonly onRequestHookHandler[]>,
    { defaultText: 'none' },
    { scope: 'per hub' },
  ),
  authorize: customDescriptor(
    'who may use the hub, decided after the hooks: `false` answers 401 without a user, 403 with one',
    z.custom<RequestAuthorizer>((value) => typeof value === 'function', 'must be a function'),
    { defaultText: 'everyone' },
    { scope: 'per hub' },
  ),
  hubFilters: customDescriptor(
    "[hub filters](#hub-filters) around every invocation and lifecycle hook; the top-level ones run first, then the hub's own",
    z.array(hubFilterSchema) as z.ZodType<readonly HubFilter[]>,
    { defaultText: 'none' },
  ),
});

const hubConnectionShape = optionalShape(hubConnectionOptionDescriptors);
const dispatcherShape = optionalShape(httpDispatcherOptionDescriptors);
const registrationShape = optionalShape(registrationOptionDescriptors);
// In this order, problems are listed as they always were: the hub options, then the registration's own fields.
const hubRegistrationSchema = z.strictObject({
  ...hubConnectionShape,
  ...dispatcherShape,
  hubFilters: registrationShape.hubFilters,
  path: pathSchema,
  hub: z.custom<HubClass>((value) => typeof value === 'function', 'must be a hub class'),
  name: registrationShape.name,
  protocols: registrationShape.protocols,
  onRequest: registrationShape.onRequest,
  authorize: registrationShape.authorize,
});

const connectionHandlerSchema = z.strictObject({
  path: pathSchema,
  onConnected: z.custom<ConnectionHandlerRegistration['onConnected']>(
    (value) => typeof value === 'function',
    'must be a function',
  ),
  ...(Object.fromEntries(RAW_CONNECTION_OPTIONS.map((key) => [key, dispatcherShape[key]])) as Pick<
    typeof dispatcherShape,
    keyof RawConnectionOptions
  >),
  onRequest: registrationShape.onRequest,
  authorize: registrationShape.authorize,
});

/** The plugin's own options beyond the hubs, {@link HubOptions}, the server-wide HTTP ones and the registration ones. */
type PluginOptions = Omit<
  SignalROptions,
  'hubs' | 'hubFilters' | 'protocols' | keyof HubOptions | keyof HttpServerOptions
>;

/** Each option of the plugin that is set at the top level only. */
export const pluginOptionDescriptors: DescriptorsOf<PluginOptions> = Object.freeze({
  allowReconnectOnShutdown: booleanDescriptor('shutdown Close messages tell clients they may reconnect', true, {
    scope: 'top level',
  }),
  connectionHandlers: customDescriptor(
    "[raw connection endpoints](#raw-connections-no-hub-protocol), as ASP.NET Core's `MapConnectionHandler<T>`",
    z.array(connectionHandlerSchema) as unknown as z.ZodType<readonly ConnectionHandlerRegistration[]>,
    { defaultText: 'none' },
    { scope: 'top level' },
  ),
  redis: customDescriptor(
    'the Redis backplane: `{ url | connectionString | options, tls, abortConnect, channelPrefix, ackTimeoutMs, presence, ' +
      'maximumQueuedPublishBytes, maximumQueuedPublishAgeMs, mode, streamMaximumLength, streamMaximumAgeMs, streamCount }`, ' +
      '[below](#scale-out-with-redis)',
    redisBackplaneSchema as unknown as z.ZodType<RedisBackplaneOptions>,
    { defaultText: 'none: every hub keeps its connections, groups and users in memory (one server)' },
    { scope: 'top level' },
  ),
  management: customDescriptor(
    "the management REST API (Azure SignalR Service's routes): `{ accessKey, path, publicEndpoint, invokeTimeoutMs }`, " +
      '[below](#the-management-rest-api-azure-signalr-services-routes)',
    z.strictObject({
      ...optionalShape(managementOptionDescriptors),
      accessKey: managementOptionDescriptors.accessKey.schema,
    }),
    { defaultText: 'none: no management API' },
    { scope: 'top level' },
  ),
  admin: customDescriptor(
    'the [live admin page](#the-admin-page) and its hub: `{ authorize, path, challenge, snapshotIntervalMs, ' +
      'traceMessagesPerSecond, traceArgumentCharacters }`',
    adminOptionsSchema as unknown as z.ZodType<AdminOptions>,
    { defaultText: 'none: no admin page' },
    { scope: 'top level' },
  ),
  aspNetSignalR: customDescriptor(
    'serve ASP.NET SignalR 2.x clients with the same hubs at `/signalr`: `true` or `{ path, tokenSecret, disconnectTimeoutMs, ' +
      'keepAliveMs, connectionTimeoutMs, transportConnectTimeoutMs, longPollDelayMs, messageBufferSize, webSockets, ' +
      'maximumMessageSize, maximumBufferedOutboundBytes }`, [above](#coming-from-aspnet-signalr-2x-net-framework)',
    // Its members are checked by resolveAspNetOptions when the plugin mounts the endpoint.
    z.union([z.literal(true), z.looseObject({})]) as unknown as z.ZodType<AspNetSignalROptions | true>,
    { defaultText: 'none: 2.x clients are not served' },
    { scope: 'top level' },
  ),
});

const signalROptionsSchema = z.strictObject({
  ...hubConnectionShape,
  ...dispatcherShape,
  hubs: z.array(hubRegistrationSchema),
  connectionHandlers: pluginOptionDescriptors.connectionHandlers.schema.optional(),
  hubFilters: registrationShape.hubFilters,
  protocols: registrationShape.protocols,
  allowReconnectOnShutdown: pluginOptionDescriptors.allowReconnectOnShutdown.schema.optional(),
  ...optionalShape(httpServerOptionDescriptors),
  management: pluginOptionDescriptors.management.schema.optional(),
  admin: pluginOptionDescriptors.admin.schema.optional(),
  aspNetSignalR: pluginOptionDescriptors.aspNetSignalR.schema.optional(),
  redis: redisBackplaneSchema.optional(),
});

/** Every hub option's default: .NET's (docs/protocol.md §1.11), and ours for the options .NET does not have. */
const HUB_OPTION_DEFAULTS: HubOptions = Object.freeze({
  ...defaultsOf(hubConnectionOptionDescriptors),
  ...defaultsOf(httpDispatcherOptionDescriptors),
});
const HUB_OPTION_NAMES = Object.keys(HUB_OPTION_DEFAULTS) as (keyof HubOptions)[];

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

/** Thrown by `app.register` for invalid options; the message names every bad option. */
export class SignalROptionsError extends Error {
  override readonly name = 'SignalROptionsError';
  /** The stable code of this error ({@link errorCodes}). */
  readonly code: SignalRErrorCode = 'SIGNALR_ERR_OPTIONS';
}

/** A path without its trailing slashes (but `/` itself). */
function trimPath(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
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
  // Each hub option: the endpoint's own value, else the plugin-wide value, else the default (`null` is a value).
  const option = <K extends keyof HubOptions>(own: Partial<Record<K, unknown>>, key: K): HubOptions[K] => {
    const value =
      own[key] !== undefined ? own[key] : global[key] !== undefined ? global[key] : HUB_OPTION_DEFAULTS[key];
    return (Array.isArray(value) ? Object.freeze([...value]) : value) as HubOptions[K];
  };
  const paths = new Set<string>();
  const hubs = global.hubs.map((hub) => {
    const path = trimPath(hub.path);
    if (paths.has(path)) throw new SignalROptionsError(`Invalid fastify-signalr options: two hubs at path '${path}'.`);
    paths.add(path);
    const hubOptions = Object.fromEntries(
      HUB_OPTION_NAMES.map((key) => [key, option(hub, key)]),
    ) as unknown as HubOptions;
    const resolved: ResolvedHubOptions = {
      path,
      hub: hub.hub,
      name: hub.name ?? (hub.hub.name || path),
      protocols: Object.freeze([...(hub.protocols ?? global.protocols ?? defaultProtocols)]),
      onRequest: Object.freeze(hub.onRequest === undefined ? [] : [hub.onRequest].flat()),
      authorize: hub.authorize,
      hubFilters: Object.freeze([...(global.hubFilters ?? []), ...(hub.hubFilters ?? [])]),
      ...hubOptions,
    };
    return Object.freeze(resolved);
  });
  const connectionHandlers = (global.connectionHandlers ?? []).map((handler) => {
    const path = trimPath(handler.path);
    if (paths.has(path))
      throw new SignalROptionsError(`Invalid fastify-signalr options: two endpoints at path '${path}'.`);
    paths.add(path);
    const resolved: ResolvedConnectionHandler = {
      path,
      onConnected: handler.onConnected,
      ...(Object.fromEntries(RAW_CONNECTION_OPTIONS.map((key) => [key, option(handler, key)])) as RawConnectionOptions),
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
        Math.max(
          size,
          hub.maximumReceiveMessageSize === null
            ? UNLIMITED_MAXIMUM_RECEIVE_CHUNK_SIZE
            : 4 * hub.maximumReceiveMessageSize,
        ),
      DEFAULT_MAXIMUM_RECEIVE_CHUNK_SIZE,
    );
  let redis: ResolvedRedisOptions | null = null;
  if (global.redis !== undefined) {
    try {
      redis = resolveRedisOptions(global.redis);
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
    redis,
    allowReconnectOnShutdown:
      global.allowReconnectOnShutdown ?? pluginOptionDescriptors.allowReconnectOnShutdown.default!,
    maximumReceiveChunkSize: frameSize,
    allowedOrigins: originPolicy(global.allowedOrigins),
    accessTokenQueryParameter:
      global.accessTokenQueryParameter ?? httpServerOptionDescriptors.accessTokenQueryParameter.default!,
    maximumConnections:
      global.maximumConnections !== undefined
        ? global.maximumConnections
        : httpServerOptionDescriptors.maximumConnections.default!,
  });
}
