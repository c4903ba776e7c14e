/**
 * The logging vocabulary every layer shares, with no dependency of its own:
 *
 * - {@link LOG_EVENTS}, the catalogue of the stable `event` names that lines an operator acts on carry, each with
 *   its level(s) and meaning — the README's Logs table is this catalogue, row for row
 *   (`test/unit/log-events.test.ts`);
 * - {@link logEvent}, the one way such a line is written, so its name is one of the catalogue's and its level one the
 *   catalogue gives it (the `logging/events-from-catalogue` lint rule refuses an event name written anywhere else);
 * - the {@link Logger} shape the server's layers write to (any pino logger, Fastify's included, is one), so the hub
 *   runtime and the Redis backplane log without knowing Fastify.
 */

/** The levels the server logs at. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * Where the server's layers write their lines: one structured object and a message per line, as pino takes them.
 * Fastify's `app.log` (and its children) is one.
 */
export interface Logger {
  /** Something failed that an operator should look at. */
  error(object: object, message: string): void;
  /** Something went wrong and was handled, or is about to be. */
  warn(object: object, message: string): void;
  /** A step in the life of the server or a connection. */
  info(object: object, message: string): void;
  /** Detail for finding a fault; some of it is per message. */
  debug(object: object, message: string): void;
}

/** One entry of {@link LOG_EVENTS}. */
export interface LogEvent {
  /** The levels lines with this event are logged at; most events have one. */
  readonly levels: readonly LogLevel[];
  /** When the line is logged, and the fields (in backquotes) that come with it. */
  readonly meaning: string;
}

/** One catalogue entry, typed with its levels (which `logEvent` checks) but not its wording (which may improve). */
function entry<const Levels extends readonly LogLevel[]>(
  levels: Levels,
  meaning: string,
): { readonly levels: Levels; readonly meaning: string } {
  return Object.freeze({ levels: Object.freeze(levels), meaning });
}

/**
 * Every stable log event, by name. Operators filter on the `event` field of a JSON line without parsing messages,
 * so a name, once released, is kept; a new one is added here (and to the README's Logs table) first.
 */
export const LOG_EVENTS = Object.freeze({
  'signalr.server.started': entry(
    ['info'],
    'the chat sample is listening; with the effective configuration (`config`, passwords masked)',
  ),
  'signalr.server.demo_exposed': entry(
    ['warn'],
    'the chat sample listens beyond loopback (`host`): anyone who reaches it may claim any user id',
  ),
  'signalr.server.cors_any_origin': entry(['warn'], "the chat sample runs with `CORS_ORIGINS='*'`"),
  'signalr.connection.started': entry(
    ['info'],
    "a connection's handshake completed and `onConnected` ran (`connectionId`, `transport`, `protocol`)",
  ),
  'signalr.connection.ended': entry(
    ['info'],
    'a connection ended (`status`, `durationMs`, `transport`, `protocol`; `err` when its transport failed)',
  ),
  'signalr.handshake.failed': entry(['info'], "a client's handshake failed or timed out (`error`, `transport`)"),
  'signalr.invocation.failed': entry(
    ['error'],
    'a hub method threw something other than a `HubException`, or its result could not be serialized; five per ' +
      'connection per 10 s in full, then one line with the count (`suppressed`)',
  ),
  'signalr.connection.slow_client': entry(
    ['warn'],
    'a client closed for not reading (`waiting`, `limit`: bytes it had not taken, and the bound)',
  ),
  'signalr.connection.error': entry(
    ['error'],
    'a connection failed in the server (`err`): a message could not be serialized, or its message loop, ' +
      '`onConnected`, `onDisconnected` or the lifetime manager threw',
  ),
  'signalr.connection.authentication_expired': entry(
    ['info'],
    'a connection closed because its token expired (`closeOnAuthenticationExpiration`)',
  ),
  'signalr.log.dropped': entry(['warn'], "log lines dropped while the log's reader was too slow (`dropped`)"),
  'signalr.backplane.connected': entry(['info'], 'Redis reachable (`subscriptions`)'),
  'signalr.backplane.disconnected': entry(
    ['error'],
    'Redis lost or unreachable (`lastError`); the server serves its own clients meanwhile',
  ),
  'signalr.backplane.reconnected': entry(
    ['warn'],
    "Redis back, with the outage's length and the messages queued, sent late and dropped meanwhile (`outageMs`, " +
      '`queuedMessages`, `replayedMessages`, `droppedMessages`)',
  ),
  'signalr.backplane.publish_dropped': entry(
    ['error'],
    "the first publish of an outage dropped by the queue's bounds (`bound`: `bytes` or `age`); the count follows " +
      'in `.reconnected`',
  ),
  'signalr.backplane.subscribe_failed': entry(
    ['warn', 'error'],
    'a SUBSCRIBE failed while Redis was connected (warn, `channel`), or channels could not be subscribed again ' +
      'after a reconnection (error, `failed`)',
  ),
  'signalr.backplane.unsubscribe_failed': entry(
    ['warn'],
    'an UNSUBSCRIBE failed while Redis was connected (`channel`)',
  ),
  'signalr.backplane.classic_subscribers': entry(
    ['warn'],
    'sharded pub/sub (`redis.shardedPubSub`): classic subscribers — a .NET server, or one of ours without the ' +
      "option — listen to this server's `all` channel on the cluster, and cannot exchange messages with it " +
      '(`channel`, `subscribers`)',
  ),
  'signalr.backplane.info': entry(
    ['info'],
    'other backplane news: the nodes of a Redis Cluster found, messages of another server converted, a shard ' +
      'subscriber connection opened again after a slot moved',
  ),
  'signalr.backplane.warning': entry(
    ['warn'],
    'other backplane trouble: invalid data from Redis, a message that could not be published',
  ),
  'signalr.backplane.error': entry(
    ['error'],
    'other backplane failures: a configuration Redis refuses, a message handler that threw',
  ),
  'signalr.admin.action': entry(
    ['info'],
    'an admin page action ran (`action`: `close`, `send` or `remove-from-group`; `by`, `hub`, its target, `ok`)',
  ),
  'signalr.shutdown.started': entry(
    ['info'],
    'a graceful shutdown began: new connections are refused (`reason`, `connections`, `drainTimeoutMs`)',
  ),
  'signalr.shutdown.drained': entry(
    ['info'],
    'the drain ended (`cut`, `cutConnections`: connections still open at the drain timeout)',
  ),
  'signalr.shutdown.completed': entry(['info'], 'the server closed; the process exits (`durationMs`, `exitCode`)'),
  'signalr.shutdown.failed': entry(
    ['error'],
    'closing the server failed during a graceful shutdown (`err`); the process exits with code 1',
  ),
  'signalr.shutdown.forced': entry(
    ['warn'],
    'a second SIGTERM or SIGINT during a graceful shutdown: the process exits at once with code 1 (`signal`)',
  ),
}) satisfies Readonly<Record<string, LogEvent>>;

/** The name of a stable log event: a key of {@link LOG_EVENTS}. */
export type LogEventName = keyof typeof LOG_EVENTS;

/** The levels {@link LOG_EVENTS} gives an event. */
export type LogEventLevel<Name extends LogEventName> = (typeof LOG_EVENTS)[Name]['levels'][number];

/**
 * Writes one line with a stable event: `{ event: name, ...fields }` and the message, at `level` — which must be one
 * the catalogue gives the event (checked when compiling).
 */
export function logEvent<Name extends LogEventName>(
  log: Logger,
  level: LogEventLevel<Name>,
  name: Name,
  fields: object,
  message: string,
): void {
  log[level]({ event: name, ...fields }, message);
}
