/**
 * fastify-signalr: a SignalR server for Node.js on Fastify.
 *
 * ```ts
 * import Fastify from 'fastify';
 * import { fastifySignalR, Hub } from 'fastify-signalr';
 *
 * class ChatHub extends Hub {
 *   async sendMessage(user: string, message: string) {
 *     await this.clients.all.send('ReceiveMessage', user, message);
 *   }
 * }
 *
 * const app = Fastify();
 * await app.register(fastifySignalR, { hubs: [{ path: '/chathub', hub: ChatHub }] });
 * await app.listen({ port: 5000 });
 * ```
 *
 * Everything exported here is the package's public API, recorded in `api/fastify-signalr.api.md`; from 1.0 on it
 * follows semantic versioning (CHANGELOG.md). Other modules (the wire protocol, transports, configuration
 * internals) are implementation details that may change in any release.
 */
export { fastifySignalR, type DrainOptions, type DrainReport, type SignalRServer } from './plugin';
export {
  Hub,
  clientStream,
  type ArgumentSchema,
  type ClientStreamParameter,
  type HubParameterSchema,
  type ClientProxy,
  type GroupManager,
  type HubCallerClients,
  type HubCallerContext,
  type HubClass,
  type HubHttpRequest,
  type ClientOf,
  type ClientMethodArguments,
  type ClientMethodName,
  type ClientMethodResult,
  type HubCallerClientsFor,
  type HubClientsFor,
  type TypedClientProxy,
  type TypedSingleClientProxy,
  type UntypedClient,
  type HubClients,
  type HubMethodSchemas,
  type MethodAuthorization,
  type SingleClientProxy,
} from './hub/hub';
export type { HubContext } from './hub/hub-endpoint';
export type { ConnectionContext, ConnectionHandlerRegistration } from './transports/connection-handler';
export { HubDefinitionError } from './hub/hub-methods';
export type { HubFilter, HubInvocationContext, HubLifetimeContext } from './hub/hub-filters';
export { signalRTracing, type SignalRTracingOptions } from './operations/tracing';
export {
  HubException,
  errorCodes,
  isSignalRError,
  type ErrorCodeEntry,
  type SignalRError,
  type SignalRErrorCode,
} from './shared/errors';
export {
  SignalROptionsError,
  defaultUserIdProvider,
  defaultAuthenticationExpiration,
  type AuthenticationExpiration,
  type HttpDispatcherOptions,
  type HttpServerOptions,
  type HubConnectionOptions,
  type HubOptions,
  type HubRegistration,
  type RedisBackplaneOptions,
  type RedisPresenceOptions,
  type SignalROptions,
  type UserIdProvider,
} from './options';
export type { RawConnectionOptions, RequestAuthorizer } from './connections/dispatcher-options';
export type { HubLifetimeManager, ManagedConnection } from './lifetime/hub-lifetime-manager';
export { InMemoryLifetimeManager } from './lifetime/in-memory-lifetime-manager';
export type { ClientResultLimits, LifetimeLimits } from './lifetime/client-results';
export { RedisLifetimeManager } from './redis/redis-lifetime-manager';
export type { BackplaneStatus } from './redis/redis-backplane';
export type { BackplaneState, BackplaneHealth } from './lifetime/backplane-bus';
export { RedisBackplaneStartupError } from './redis/redis-errors';
export type { RedisConnectionOptions } from './redis/redis-connector';
export { RedisConfigurationError, type RedisTlsOptions } from './redis/redis-config';
export { SerializedHubMessage } from './lifetime/serialized-message';
export type {
  GroupPresence,
  HubPresence,
  PresenceConnection,
  PresenceEvent,
  PresenceEventType,
  PresenceListener,
  PresenceMember,
  PresencePage,
  PresencePageOptions,
  PresenceScope,
  PresenceServer,
  UserGroupOptions,
  UserPresence,
} from './lifetime/presence';
export type { ManagementOptions } from './management/management-api';
export type { AdminAuthorization, AdminOptions } from './admin/admin-options';
// Also at `fastify-signalr/emitter`, which loads no Fastify.
export {
  createEmitter,
  EmitterClosedError,
  GroupCommandTimeoutError,
  type EmitterOptions,
  type EmitterRedisOptions,
  type HubEmitter,
} from './emitter';
// The hub protocols a hub can offer (the `protocols` option), and the transport names hub code sees.
export type { HubProtocol } from '../protocol/hub-protocol';
export { jsonHubProtocol } from '../protocol/json-hub-protocol';
export { messagePackHubProtocol } from '../protocol/messagepack-hub-protocol';
export type { TransportName } from '../protocol/negotiate';
export type { ConnectionEndStatus, HubObserver, HubTracer, InvocationOutcome, TracedConnection } from './hub/hub-stats';
export { HubStats } from './hub/hub-stats';
export {
  signalrHealth,
  type LivenessReport,
  type ReadinessReport,
  type SignalRHealthOptions,
} from './operations/health';
export { signalrMetrics, type SignalRMetrics, type SignalRMetricsOptions } from './operations/metrics';
export { installGracefulShutdown, type GracefulShutdown, type GracefulShutdownOptions } from './operations/shutdown';
export { LogDestination, productionLoggerOptions, redactedNotFoundHandler } from './operations/logging';
export {
  LOG_EVENTS,
  logEvent,
  type LogEvent,
  type LogEventLevel,
  type LogEventName,
  type LogLevel,
  type Logger,
} from './shared/log-events';
export {
  ConfigError,
  booleanOption,
  describeConfig,
  enumOption,
  integerOption,
  limitOption,
  listOption,
  loadConfig,
  loadServerConfig,
  serverConfigOptions,
  signalrOptionsFrom,
  stringOption,
  type ConfigOption,
  type ConfigSources,
  type ConfigTable,
  type ConfigValues,
  type ServerConfig,
} from './config';

// ASP.NET SignalR 2.x clients served by the same hubs.
export { callerState, reportProgress } from './aspnet/aspnet-hub-seat';
export type { AspNetSignalROptions } from './aspnet/aspnet-options';
