/**
 * The backplane bus on ioredis — the only file of the server that knows ioredis.
 *
 * Two connections, as Redis requires: one publishes, one is in subscriber mode (a subscribed connection cannot
 * publish). The set of wanted channels is kept here, not in ioredis: ioredis's own resubscription
 * (`autoResubscribe`) and resending of unanswered commands (`autoResendUnfulfilledCommands`) are turned off so that
 * - a subscription asked for while Redis is down is recorded and made when the connection comes back;
 * - after a reconnection (a Redis restart loses every subscription) each wanted channel is subscribed again, one
 *   SUBSCRIBE per channel in the order they were first wanted, as StackExchange.Redis does (spec §3.4, §3.8);
 * - a publish never waits in an offline queue: while Redis is down it fails at once, so the lifetime manager can
 *   deliver to its own clients directly, and a publish is never sent late, after the outage, out of order.
 *
 * Nothing is replayed after an outage: Redis pub/sub stores nothing, so what was published meanwhile is lost, as
 * with .NET's backplane (spec §3.1, §3.8). Each outage is logged once when it starts and once when it ends, with
 * the number of messages this server could not publish meanwhile.
 */
import { hostname } from 'node:os';
import Redis, { type RedisOptions } from 'ioredis';
import {
  BackplaneUnavailableError,
  type BackplaneBus,
  type BackplaneHealth,
  type BackplaneLogger,
  type BackplaneState,
  type ChannelListener,
} from './backplane-bus';

/** ioredis connection options (host, port, password, tls, db, retryStrategy, …), as ioredis documents them. */
export type RedisConnectionOptions = RedisOptions;

/** Options of {@link RedisBus}. */
export interface RedisBusOptions {
  /** A `redis://` or `rediss://` URL. */
  readonly url?: string;
  /** ioredis options; they override what the URL says. */
  readonly options?: RedisConnectionOptions;
  readonly log: BackplaneLogger;
}

/** How long a publish or subscribe may wait for Redis's reply unless the ioredis options say otherwise. */
const DEFAULT_COMMAND_TIMEOUT_MS = 5000;

/**
 * Reconnection delays unless the ioredis options say otherwise: 50 ms, 100 ms, … growing by 50 ms up to 1 s, so a
 * restarted Redis is found again within a second.
 */
function defaultRetryStrategy(attempt: number): number {
  return Math.min(attempt * 50, 1000);
}

const CONNECTION_LOST = 'the Redis connection closed before the reply';

/**
 * One period of one connection being up. Commands sent during it are tracked so that they settle when the
 * connection closes: ioredis leaves a command without a reply unsettled when it neither resends it nor queues it.
 */
class Session {
  private readonly pending = new Set<() => void>();
  private ended = false;

  /** Settles with `command`, or rejects with `lost()` when the connection closes first. */
  track<T>(command: Promise<T>, lost: () => Error): Promise<T> {
    if (this.ended) return Promise.reject(lost());
    return new Promise<T>((resolve, reject) => {
      const abort = () => reject(lost());
      this.pending.add(abort);
      command.then(
        (value) => {
          this.pending.delete(abort);
          resolve(value);
        },
        (error: unknown) => {
          this.pending.delete(abort);
          reject(error);
        },
      );
    });
  }

  end(): void {
    this.ended = true;
    for (const abort of this.pending) abort();
    this.pending.clear();
  }
}

/** A {@link BackplaneBus} on two ioredis connections. */
export class RedisBus implements BackplaneBus {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly log: BackplaneLogger;
  /** Wanted channels, in the order they were first wanted, with their listener. */
  private readonly listeners = new Map<string, ChannelListener>();
  private readonly stateListeners = new Set<(health: BackplaneHealth) => void>();

  private pubReady = false;
  private subReady = false;
  /** Every wanted channel is subscribed on the current subscription connection. */
  private resubscribed = false;
  /** Channels Redis confirmed subscribed on the current subscription connection. */
  private readonly confirmed = new Set<string>();
  private pubSession = new Session();
  private subSession = new Session();

  private state: BackplaneState = 'connecting';
  private since = Date.now();
  private outages = 0;
  private unpublished = 0;
  private published = 0;
  private received = 0;
  /** Messages not published during the current outage (for the log line that ends it). */
  private unpublishedInOutage = 0;
  private lastError: string | undefined;
  private closed = false;

  constructor(options: RedisBusOptions) {
    this.log = options.log;
    const base: RedisOptions = {
      commandTimeout: DEFAULT_COMMAND_TIMEOUT_MS,
      retryStrategy: defaultRetryStrategy,
      // ioredis waits this long for a closing socket that never reports its close (one that never connected);
      // its 2 s default would keep a stopping server alive for nothing.
      disconnectTimeout: 200,
      ...options.options,
      // Decisions this bus depends on (see the file comment); not overridable.
      enableOfflineQueue: false,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      lazyConnect: false,
    };
    const name = `${hostname().replace(/[^\x21-\x7e]/g, '')}(fastify-signalr)`;
    const create = (role: string): Redis => {
      const connectionOptions = { connectionName: `${name}:${role}`, ...base };
      return options.url === undefined ? new Redis(connectionOptions) : new Redis(options.url, connectionOptions);
    };
    this.pub = create('pub');
    this.sub = create('sub');
    this.watch(this.pub, 'pub');
    this.watch(this.sub, 'sub');
    this.sub.on('messageBuffer', (channel: Buffer, payload: Buffer) => this.dispatch(channel, payload));
  }

  receives(channel: string): boolean {
    return this.subReady && this.confirmed.has(channel);
  }

  get publishing(): boolean {
    return this.pubReady;
  }

  async publish(channel: string, payload: Buffer): Promise<number> {
    if (!this.pubReady) {
      this.countUnpublished();
      throw new BackplaneUnavailableError();
    }
    try {
      const receivers = await this.pubSession.track(
        this.pub.publish(channel, payload),
        () => new BackplaneUnavailableError(`Publishing failed: ${CONNECTION_LOST}.`),
      );
      this.published++;
      return receivers;
    } catch (error) {
      this.countUnpublished();
      throw error;
    }
  }

  async subscribe(channel: string, listener: ChannelListener): Promise<void> {
    const known = this.listeners.has(channel);
    this.listeners.set(channel, listener);
    if (known || !this.subReady || this.closed) return;
    await this.subscribeNow(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    if (!this.listeners.delete(channel)) return;
    // Messages may still come until Redis has the UNSUBSCRIBE; nothing is listening for them any more.
    this.confirmed.delete(channel);
    if (!this.subReady || this.closed) return;
    await this.command(() => this.sub.unsubscribe(channel), 'unsubscribe', channel);
  }

  health(): BackplaneHealth {
    return {
      state: this.state,
      connected: this.state === 'connected',
      since: this.since,
      outages: this.outages,
      unpublishedMessages: this.unpublished,
      publishedMessages: this.published,
      receivedMessages: this.received,
      subscriptions: this.listeners.size,
      ...(this.lastError !== undefined && { lastError: this.lastError }),
    };
  }

  onStateChange(listener: (health: BackplaneHealth) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    // disconnect(), not quit(): it does not wait for a Redis that may be gone.
    this.pub.disconnect();
    this.sub.disconnect();
    this.pubSession.end();
    this.subSession.end();
    this.setState('closed');
  }

  // ------------------------------------------------------------------------------------------------------------

  /** Follows one connection's life: ready, errors, closes. */
  private watch(redis: Redis, role: 'pub' | 'sub'): void {
    redis.on('ready', () => {
      if (this.closed) return;
      if (role === 'pub') {
        this.pubReady = true;
        this.pubSession = new Session();
        this.updateState();
      } else {
        this.subReady = true;
        this.subSession = new Session();
        void this.resubscribeAll(this.subSession);
      }
    });
    redis.on('close', () => {
      if (role === 'pub') {
        this.pubReady = false;
        this.pubSession.end();
      } else {
        this.subReady = false;
        this.resubscribed = false;
        this.confirmed.clear();
        this.subSession.end();
      }
      this.updateState();
    });
    // ioredis emits an error per failed attempt; the state change logs the outage once, the rest is detail.
    redis.on('error', (error: Error) => {
      this.lastError = error.message;
      this.log.debug({ err: error, connection: role }, 'Redis backplane connection error');
      this.updateState();
    });
  }

  /**
   * Subscribes every wanted channel on a fresh subscription connection — one SUBSCRIBE per channel, pipelined, in
   * the order the channels were first wanted — and then reports the bus as receiving.
   */
  private async resubscribeAll(session: Session): Promise<void> {
    const channels = [...this.listeners.keys()];
    const results = await Promise.all(channels.map((channel) => this.subscribeNow(channel)));
    if (session !== this.subSession || !this.subReady) return;
    const failed = results.filter((ok) => !ok).length;
    if (failed > 0) {
      this.log.error(
        { event: 'signalr.backplane.subscribe_failed', failed },
        'Redis backplane: some channels could not be subscribed again',
      );
    }
    this.resubscribed = true;
    this.updateState();
  }

  /** Sends a SUBSCRIBE and notes the channel as receiving once Redis confirmed it, unless it is no longer wanted. */
  private async subscribeNow(channel: string): Promise<boolean> {
    const session = this.subSession;
    const ok = await this.command(() => this.sub.subscribe(channel), 'subscribe', channel);
    if (ok && session === this.subSession && this.listeners.has(channel)) this.confirmed.add(channel);
    return ok;
  }

  /** Sends a SUBSCRIBE/UNSUBSCRIBE; resolves true when Redis confirmed it, false otherwise (never rejects). */
  private async command(send: () => Promise<unknown>, what: string, channel: string): Promise<boolean> {
    const session = this.subSession;
    try {
      await session.track(send(), () => new Error(CONNECTION_LOST));
      return true;
    } catch (error) {
      // A lost connection is not worth a log line per channel: the next connection subscribes them all.
      if (session === this.subSession && this.subReady) {
        this.log.warn({ event: `signalr.backplane.${what}_failed`, err: error, channel }, `Redis backplane: ${what} failed`);
      }
      return false;
    }
  }

  private dispatch(channel: Buffer, payload: Buffer): void {
    this.received++;
    const listener = this.listeners.get(channel.toString('utf8'));
    if (listener === undefined) return;
    try {
      listener(payload);
    } catch (error) {
      this.log.error({ err: error }, 'Redis backplane: a message handler failed');
    }
  }

  private countUnpublished(): void {
    this.unpublished++;
    this.unpublishedInOutage++;
  }

  private updateState(): void {
    if (this.closed) return;
    const up = this.pubReady && this.subReady && this.resubscribed;
    if (up) this.setState('connected');
    else if (this.state === 'connected' || this.lastError !== undefined) this.setState('disconnected');
  }

  private setState(next: BackplaneState): void {
    const previous = this.state;
    if (next === previous) return;
    const now = Date.now();
    const duration = now - this.since;
    this.state = next;
    this.since = now;
    if (next === 'connected') {
      if (previous === 'disconnected') {
        this.log.warn(
          {
            event: 'signalr.backplane.reconnected',
            outageMs: duration,
            unpublishedMessages: this.unpublishedInOutage,
            resubscribedChannels: this.listeners.size,
          },
          `Redis backplane connected again after ${duration} ms and subscribed its ${this.listeners.size} channels ` +
            `again; ${this.unpublishedInOutage} message(s) this server sent meanwhile were not published (they ` +
            'reached its own clients at most), and whatever other servers published meanwhile was lost',
        );
      } else {
        this.log.info(
          { event: 'signalr.backplane.connected', subscriptions: this.listeners.size },
          'Redis backplane connected',
        );
      }
      this.lastError = undefined;
      this.unpublishedInOutage = 0;
    } else if (next === 'disconnected') {
      if (previous === 'connected') this.outages++;
      this.unpublishedInOutage = 0;
      this.log.error(
        { event: 'signalr.backplane.disconnected', lastError: this.lastError, previous },
        previous === 'connected'
          ? 'Redis backplane disconnected; serving local clients only until Redis is back (retrying)'
          : 'Redis backplane unreachable; serving local clients only until Redis is reachable (retrying)',
      );
    }
    const health = this.health();
    for (const listener of this.stateListeners) {
      try {
        listener(health);
      } catch (error) {
        this.log.error({ err: error }, 'Redis backplane: a state listener failed');
      }
    }
  }
}
