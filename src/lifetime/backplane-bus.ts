/**
 * The routing ↔ Redis boundary: the little a backplane lifetime manager needs of Redis pub/sub. Publish bytes to
 * a channel, subscribe and unsubscribe literal channels, and know whether messages flow. `RedisBus`
 * (`redis-bus.ts`) is the one implementation, and the only file that talks to ioredis.
 *
 * Spec: docs/protocol.md §3.1 (pure pub/sub, nothing is stored), §3.8 (connection loss).
 */

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
  /** Messages this server published to Redis since it started (Redis confirmed each). */
  readonly publishedMessages: number;
  /** Messages that arrived from Redis on this server's subscriptions since it started (its own included). */
  readonly receivedMessages: number;
  /** Channels this server wants subscribed (restored after every reconnection). */
  readonly subscriptions: number;
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
   * Publishes `payload` on `channel` and resolves with the number of subscribers Redis delivered it to. Rejects
   * at once when Redis is not connected, and when the publish fails or its connection drops before the reply.
   */
  publish(channel: string, payload: Buffer): Promise<number>;
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
  constructor(message = 'The Redis backplane is not connected.') {
    super(message);
  }
}
