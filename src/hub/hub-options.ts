/**
 * The hub layer's options, as ASP.NET Core's `HubOptions`: keep-alive, timeouts, message size, invocations, streams,
 * client results and groups — with .NET's defaults where .NET has the option (docs/protocol.md §1.11) and ours
 * where it has none. A leaf of the hub folder: the HTTP layer's options come from `connections/dispatcher-options`,
 * and `options.ts` aggregates both into the plugin's options.
 */
import type { HubProtocol } from '../../protocol/hub-protocol';
import { DEFAULT_LIFETIME_LIMITS, type LifetimeLimits } from '../lifetime/client-results';
import {
  booleanDescriptor,
  integerDescriptor,
  limitDescriptor,
  type DescriptorsOf,
} from '../shared/option-descriptors';
import type { HttpDispatcherOptions, ResolvedRouteOptions } from '../connections/dispatcher-options';
import type { HubClass } from './hub';
import type { HubFilter } from './hub-filters';

/** Limits and timeouts of hub connections (ASP.NET Core's `HubOptions`); each may be set for all hubs or per hub. */
export interface HubConnectionOptions {
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
   * With stateful reconnect, how many bytes of sent messages the server keeps for replay before it treats further
   * sends as pressure (they are still kept, up to `maximumBufferedOutboundBytes`).
   * @default 100000
   */
  readonly statefulReconnectBufferSize: number;
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
}

/**
 * Each hub connection option: its default (.NET's where .NET has it), validation, variable and README row. The
 * bounds a lifetime manager enforces take the manager's own defaults, which it also applies when built directly.
 */
export const hubConnectionOptionDescriptors: DescriptorsOf<HubConnectionOptions> = Object.freeze({
  keepAliveIntervalMs: integerDescriptor('server Ping interval (not on long polling)', 15_000, {
    env: 'SIGNALR_KEEP_ALIVE_INTERVAL_MS',
  }),
  clientTimeoutIntervalMs: integerDescriptor(
    'a client that pinged once and is then silent this long is closed with an error',
    30_000,
    { env: 'SIGNALR_CLIENT_TIMEOUT_INTERVAL_MS' },
  ),
  handshakeTimeoutMs: integerDescriptor('time to complete the handshake', 15_000, {
    env: 'SIGNALR_HANDSHAKE_TIMEOUT_MS',
  }),
  maximumReceiveMessageSize: limitDescriptor(
    'largest client message (bytes, framing included); `null` = no limit',
    32_768,
    {
      env: 'SIGNALR_MAXIMUM_RECEIVE_MESSAGE_SIZE',
    },
  ),
  enableDetailedErrors: booleanDescriptor(
    'error details in Completion and Close errors (`HubException` messages always pass)',
    false,
    { env: 'SIGNALR_ENABLE_DETAILED_ERRORS' },
  ),
  maximumParallelInvocationsPerClient: integerDescriptor(
    'invocations of one client running at once; more wait their turn',
    1,
    { env: 'SIGNALR_MAXIMUM_PARALLEL_INVOCATIONS_PER_CLIENT' },
  ),
  streamBufferCapacity: integerDescriptor('items buffered per client-to-server stream', 10),
  statefulReconnectBufferSize: integerDescriptor(
    'bytes of unacknowledged messages kept for replay before it counts as pressure',
    100_000,
  ),
  maximumStreamsPerConnection: limitDescriptor(
    'streams open at once per connection, each direction; more fail with an error; `null` = no bound',
    100,
    { env: 'SIGNALR_MAXIMUM_STREAMS_PER_CONNECTION' },
  ),
  maximumPendingClientResultsPerConnection: limitDescriptor(
    'client results one connection may owe; more fail at once with a `HubException`; `null` = no bound',
    DEFAULT_LIFETIME_LIMITS.clientResults.maximumPerConnection,
    { env: 'SIGNALR_MAXIMUM_PENDING_CLIENT_RESULTS_PER_CONNECTION' },
  ),
  maximumPendingClientResults: limitDescriptor(
    'client results a hub waits for at once on this server; `null` = no bound',
    DEFAULT_LIFETIME_LIMITS.clientResults.maximumTotal,
    { env: 'SIGNALR_MAXIMUM_PENDING_CLIENT_RESULTS' },
  ),
  maximumGroupsPerConnection: limitDescriptor(
    'groups one connection may be in; `addToGroup` past it fails with a `HubException`; `null` = no bound',
    DEFAULT_LIFETIME_LIMITS.maximumGroupsPerConnection,
    { env: 'SIGNALR_MAXIMUM_GROUPS_PER_CONNECTION' },
  ),
  maximumGroupNameLength: limitDescriptor(
    'longest group name `addToGroup` takes (characters); `null` = no bound',
    1_024,
    { env: 'SIGNALR_MAXIMUM_GROUP_NAME_LENGTH' },
  ),
});

/** Limits and timeouts of a hub: those of its connections and those of its HTTP endpoint. */
export interface HubOptions extends HubConnectionOptions, HttpDispatcherOptions {}

/** Everything a hub runs with, after defaults. */
export interface ResolvedHubOptions extends HubOptions, ResolvedRouteOptions {
  readonly path: string;
  readonly hub: HubClass;
  readonly name: string;
  readonly protocols: readonly HubProtocol[];
  /** The plugin-wide filters, then the hub's own. */
  readonly hubFilters: readonly HubFilter[];
}

/** The bounds a hub's lifetime manager enforces, from its options. */
export function lifetimeLimits(options: HubConnectionOptions): LifetimeLimits {
  return {
    clientResults: {
      maximumPerConnection: options.maximumPendingClientResultsPerConnection,
      maximumTotal: options.maximumPendingClientResults,
    },
    maximumGroupsPerConnection: options.maximumGroupsPerConnection,
  };
}
