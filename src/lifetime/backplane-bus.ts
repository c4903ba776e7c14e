/**
 * The routing ↔ Redis boundary: the little a backplane lifetime manager needs of Redis pub/sub. Publish bytes to
 * a channel, subscribe and unsubscribe literal channels, and know whether messages flow. `RedisBus`
 * (`src/redis/redis-bus.ts`, .NET's pub/sub layout) and `StreamsBus` (`src/redis/streams-bus.ts`, the same channels
 * and payloads through Redis Streams) are the production implementations, and with `redis-connector.ts` the only
 * files that talk to ioredis; `InMemoryBus` (`in-memory-bus.ts`) delivers the same way between buses of one process,
 * for tests.
 *
 * Spec: docs/protocol.md §3.1 (pure pub/sub, nothing is stored), §3.8 (connection loss).
 */
import type { SignalRErrorCode } from '../shared/errors';

/** Receives the payloads published on one subscribed channel. Called synchronously; must not throw or block. */
export type ChannelListener = (payload: Buffer) => void;

/**
 * The backplane's state, as the health flag shows it:
 * - `connecting`: not connected yet since start, no failure seen;
 * - `connected`: publishing works and every recorded subscription is in place;
 * - `disconnected`: Redis is unreachable (or a subscription connection is not back yet); retrying;
 * - `closed`: the server shut the backplane down.
 */
export type BackplaneState = 'connecting' | 'connected' | 'disconnected' | 'closed';

/** A snapshot of the backplane's health. */
export interface BackplaneHealth {
  readonly state: BackplaneState;
  /** `state === 'connected'`: messages reach the other servers and theirs reach this one. */
  readonly connected: boolean;
  /** When `state` last changed (ms since the epoch). */
  readonly since: number;
  /** How many times an established connection to Redis was lost. */
  readonly outages: number;
  /**
   * Messages this server could not hand to Redis since it started (no connection, or the publish failed). They
   * reached this server's own clients only, or nobody when they were meant for another server.
   */
  readonly unpublishedMessages: number;
  /** Publishes waiting for Redis now (its connection or its subscriptions are not back yet). */
  readonly queuedMessages: number;
  /** Payload bytes of `queuedMessages`. */
  readonly queuedBytes: number;
  /** Publishes that had to wait for Redis since the server started. */
  readonly queuedMessagesTotal: number;
  /** Queued publishes sent once Redis was back (Redis confirmed each). */
  readonly replayedMessages: number;
  /**
   * Queued publishes dropped because they fell out of the queue's bounds (bytes or age); also counted in
   * `unpublishedMessages`.
   */
  readonly droppedMessages: number;
  /** Messages this server published to Redis since it started (Redis confirmed each). */
  readonly publishedMessages: number;
  /** Messages that arrived from Redis on this server's subscriptions since it started (its own included). */
  readonly receivedMessages: number;
  /** Channels this server wants subscribed (restored after every reconnection). */
  readonly subscriptions: number;
  /**
   * Sharded pub/sub only (`redis.shardedPubSub`): subscriber connections open now, one per cluster node that owns
   * the slot of a wanted channel.
   */
  readonly shardConnections?: number;
  /** Sharded pub/sub only: channels Redis confirmed subscribed (`SSUBSCRIBE`) on the node that owns them now. */
  readonly shardedSubscriptions?: number;
  /** The last connection error, if any since the last successful connection. */
  readonly lastError?: string;
}

/** One Redis command: its name, then its arguments. */
export type StoreCommand = readonly [string, ...(string | number | Buffer)[]];

/**
 * Keyed storage on the backplane's Redis, for state of our own beyond .NET's pure pub/sub (presence). Every call is
 * one pipeline: one round trip, however many commands.
 */
export interface BackplaneStore {
  /**
   * Sends `commands` in one pipeline and resolves with each reply, in order. Rejects at once when Redis is not
   * connected, and when any command fails (its error), so a caller never acts on half an answer.
   */
  pipeline(commands: readonly StoreCommand[]): Promise<unknown[]>;
}

/** How one publish behaves while Redis is unreachable. */
export interface PublishOptions {
  /** Withdraws the publish while it still waits for Redis; the promise then rejects. */
  readonly signal?: AbortSignal;
  /**
   * The caller already delivered the message to this server's own clients, because the bus did not receive the
   * channel at that moment ({@link BackplaneBus.receives} was false). When it is sent later and comes back through
   * this server's subscription, that echo is not delivered again.
   */
  readonly deliveredLocally?: boolean;
  /**
   * Resolve (with -1) as soon as the publish is queued instead of when Redis replies, for a caller that must not
   * wait for an outage to end. Connected, it still resolves with Redis's reply.
   */
  readonly resolveWhenQueued?: boolean;
}

/** Pub/sub over literal channel names. Every method is safe to call in any state; none throws synchronously. */
export interface BackplaneBus {
  /**
   * True when a message published on `channel` now comes back to this server: the subscription connection is up
   * and Redis confirmed the channel's SUBSCRIBE on it. A lifetime manager delivers to its own clients directly
   * while false.
   */
  receives(channel: string): boolean;
  /** True when a publish can be attempted now. */
  readonly publishing: boolean;
  /**
   * True when the count a publish resolves with is every subscriber of the channel. False on a Redis Cluster, where
   * PUBLISH counts only the subscribers attached to the node it was sent to (the message still reaches every node),
   * and while it is not known whether Redis is a cluster.
   */
  readonly publishCountsEveryReceiver: boolean;
  /**
   * Publishes `payload` on `channel` and resolves with the number of subscribers Redis delivered it to. Publishes
   * leave in the order they were made. While Redis is unreachable (or the subscriptions are not back yet) the
   * publish waits in a bounded queue and is sent once they are back; it rejects when it falls out of the queue's
   * bounds, when `options.signal` aborts while it waits, when Redis answers with an error, and at once when the bus
   * keeps no queue and Redis is not connected.
   */
  publish(channel: string, payload: Buffer, options?: PublishOptions): Promise<number>;
  /**
   * Records a subscription and sends SUBSCRIBE when connected. Resolves once Redis confirmed it, or at once when
   * not connected (the subscription is made when the connection comes back). Never rejects.
   */
  subscribe(channel: string, listener: ChannelListener): Promise<void>;
  /** Forgets a subscription and sends UNSUBSCRIBE when connected; resolves like {@link subscribe}. */
  unsubscribe(channel: string): Promise<void>;
  /** Current health. */
  health(): BackplaneHealth;
  /** Calls `listener` on every state change; returns a function that removes it. */
  onStateChange(listener: (health: BackplaneHealth) => void): () => void;
  /** Disconnects from Redis; nothing is published or received afterwards. */
  close(): Promise<void>;
  /** Keyed storage on the same Redis (the publishing connection), when the bus offers it. */
  readonly store?: BackplaneStore;
}

/** What a lifetime manager or the bus writes to the server log (Fastify's logger fits). */
export interface BackplaneLogger {
  error(object: object, message: string): void;
  warn(object: object, message: string): void;
  info(object: object, message: string): void;
  debug(object: object, message: string): void;
}

/** The error of a publish attempted while Redis is not connected (StackExchange.Redis's equivalent type name). */
export class BackplaneUnavailableError extends Error {
  override readonly name = 'RedisConnectionException';
  /** The stable code of this error ({@link errorCodes}). */
  readonly code: SignalRErrorCode = 'SIGNALR_ERR_BACKPLANE_UNAVAILABLE';
  constructor(message = 'The Redis backplane is not connected.') {
    super(message);
  }
}
