/**
 * `fastify-signalr/emitter`: send to a hub's clients from any process through the Redis backplane, without Fastify
 * and without serving clients. See {@link createEmitter}.
 */
export {
  createEmitter,
  EmitterClosedError,
  GroupCommandTimeoutError,
  type EmitterOptions,
  type EmitterRedisOptions,
  type HubEmitter,
} from './redis-emitter';
export type {
  ClientProxy,
  GroupManager,
  HubClients,
  HubClientsFor,
  SingleClientProxy,
  TypedClientProxy,
  TypedSingleClientProxy,
  UntypedClient,
} from '../hub/hub';
export type { BackplaneHealth, BackplaneLogger } from '../lifetime/backplane-bus';
export { RedisConfigurationError, type RedisTlsOptions } from '../redis/redis-config';
export {
  errorCodes,
  isSignalRError,
  type ErrorCodeEntry,
  type SignalRError,
  type SignalRErrorCode,
} from '../shared/errors';
export type { HubProtocol } from '../../protocol/hub-protocol';
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
} from '../lifetime/presence';
