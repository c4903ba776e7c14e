// Over 600 lines: one state machine (two connections, the wanted channels, the outage queue) whose transitions are read together.
/**
 * The backplane bus on ioredis. Only this file and `redis-connector.ts` know ioredis (a lint rule holds it).
 *
 * Two connections, as Redis requires: one publishes, one is in subscriber mode (a subscribed connection cannot
 * publish). The set of wanted channels is kept here, not in ioredis: ioredis's own resubscription
 * (`autoResubscribe`) and resending of unanswered commands (`autoResendUnfulfilledCommands`) are turned off so that
 * - a subscription asked for while Redis is down is recorded and made when the connection comes back;
 * - after a reconnection (a Redis restart loses every subscription) each wanted channel is subscribed again, one
 *   SUBSCRIBE per channel in the order they were first wanted, as StackExchange.Redis does
 *   (docs/protocol.md §3.4, §3.8);
 * - a publish made while Redis is unreachable, or before every wanted channel is subscribed again, waits in this
 *   bus's own queue ({@link PublishQueue}), bounded by bytes and by age, and is sent once the connection and its
 *   subscriptions are back, in the order publishes were made (ioredis's offline queue is off: it is unbounded and
 *   would send before the subscriptions are back). A publish sent but unanswered when its connection dropped goes
 *   back to the head of the queue and is sent again: at least once, never out of order. Without a queue
 *   (`publishQueue` absent, as for the emitter) a publish fails at once while Redis is down.
 *
 * SUBSCRIBE and UNSUBSCRIBE go out through a window of at most {@link SUBSCRIPTION_WINDOW_BYTES} of channel names
 * awaiting Redis's replies. Each reply repeats the channel name, and Redis kills a subscriber whose unread replies
 * pass its `client-output-buffer-limit pubsub` (32 MB at once, or 8 MB for 60 s, by default): without the window,
 * a connection leaving a thousand long-named groups, or a resubscription after an outage, could get the subscriber
 * dropped and lose what other servers publish meanwhile.
 *
 * What other servers published while this server's subscription connection was down is lost: Redis pub/sub
 * stores nothing (docs/protocol.md §3.1, §3.8), and no queue on this side can bring it back. Each outage is logged
 * once when it starts and once when it ends, with the number of messages queued, sent late and dropped meanwhile
 * (and once more at the first drop, so a long outage shows it while it lasts).
 *
 * Where the connections go and how they are opened (endpoint rings, Redis Cluster nodes, Sentinel) is
 * `redis-connector.ts`; the texts that explain a Redis failure to an operator are `redis-errors.ts`.
 *
 * Configuration errors that no retry can cure — credentials refused, a TLS handshake that fails, an ACL without
 * the backplane's commands or channels — fail startup ({@link RedisBus.ready}); on a running server they are logged
 * once and retried. Errors are logged by message and code only, never whole (`describeRedisError`).
 */
import type Redis from 'ioredis';
import type { Cluster } from 'ioredis';
import {
  BackplaneUnavailableError,
  type BackplaneBus,
  type BackplaneHealth,
  type BackplaneLogger,
  type BackplaneState,
  type BackplaneStore,
  type ChannelListener,
  type StoreCommand,
  type PublishOptions,
} from '../lifetime/backplane-bus';
import { logEvent } from '../shared/log-events';
import { PublishQueue, type PublishQueueLimits, type QueuedPublish } from './publish-queue';
import type { RedisTarget } from './redis-config';
import {
  clusterNodes,
  EndpointRing,
  openCluster,
  openConnection,
  Session,
  type ConnectionRole,
  type EndpointCursor,
} from './redis-connector';
import {
  CLUSTER_SLOTS_FORBIDDEN,
  connectTimeoutExplanation,
  CONNECTION_LOST,
  describeRedisError,
  explainFatal,
  fatalKind,
  isConnectionLoss,
  RedisBackplaneStartupError,
  RedisShardedPubSubError,
  shardedNeedsClusterExplanation,
  type FatalKind,
} from './redis-errors';
import { ShardSubscribers } from './shard-subscribers';
import { ByteWindow, SUBSCRIPTION_REPLY_OVERHEAD, SUBSCRIPTION_WINDOW_BYTES } from './subscription-window';

/** Options of {@link RedisBus}. */
export interface RedisBusOptions {
  /** Where Redis is and how to reach it (see `resolveRedisTarget`). */
  readonly target: RedisTarget;
  readonly log: BackplaneLogger;
  /**
   * Keep publishes made while Redis is unreachable, within these bounds, and send them once it is back. Absent:
   * a publish fails at once while Redis is down.
   */
  readonly publishQueue?: PublishQueueLimits;
  /**
   * The key servers in streams mode keep while they use this channel prefix (`modeMarkerKey`): found at a
   * connection, startup fails (they cannot read pub/sub), and a running server logs it as an error.
   */
  readonly streamsMarkerKey?: string;
  /**
   * Sharded pub/sub on a Redis Cluster (docs/protocol.md §3.11): publishes go out as `SPUBLISH` through an ioredis
   * `Cluster` (routed to the node owning the channel's slot), subscriptions are `SSUBSCRIBE`s on one connection per
   * node ({@link ShardSubscribers}). The target must be a cluster's seed nodes; a single server fails startup.
   */
  readonly shardedPubSub?: boolean;
}

/**
 * How often a bus in sharded mode asks every node of the cluster whether classic subscribers listen to its `all`
 * channels (`PUBSUB NUMSUB`): a .NET server, or one of ours without `shardedPubSub`, on the same channels cannot
 * exchange messages with it.
 */
export const CLASSIC_SUBSCRIBER_CHECK_MS = 30_000;

/**
 * How long queued publishes are held after this server's connection and subscriptions are back, before they are
 * sent: the longest delay of the default reconnection strategy (1 s), plus 1.5 s for connecting and subscribing
 * again on a busy host, so that the other servers, which lost Redis at the same moment, are subscribed again when
 * the backlog arrives — Redis delivers a message only to those subscribed at that instant, and no server can see
 * whether the others are. Publishes made meanwhile queue behind, so order holds.
 */
export const REPLAY_GRACE_MS = 2500;

/** How soon the queue is tried again after a publish failed with its connection while the bus still looked up. */
const RETRY_AFTER_LOSS_MS = 100;

/** A {@link BackplaneBus} on two ioredis connections (or, sharded, a cluster client and one connection per node). */
export class RedisBus implements BackplaneBus {
  /** The publishing connection; with sharded pub/sub a `Cluster`, which routes each SPUBLISH to its slot's node. */
  private readonly pub: Redis | Cluster;
  /** The classic subscription connection; absent with sharded pub/sub. */
  private readonly sub: Redis | undefined;
  /** The sharded subscriptions, one connection per node; present only with sharded pub/sub. */
  private readonly shards: ShardSubscribers | undefined;
  /** Channels found with classic subscribers beside this sharded bus (warned once each until they go). */
  private readonly classicSubscribed = new Set<string>();
  private classicTimer: NodeJS.Timeout | undefined;
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
  /** SUBSCRIBE/UNSUBSCRIBE commands awaiting their replies, by channel-name bytes. */
  private readonly subscriptionWindow = new ByteWindow(SUBSCRIPTION_WINDOW_BYTES);

  private state: BackplaneState = 'connecting';
  private since = Date.now();
  private outages = 0;
  private unpublished = 0;
  private published = 0;
  private received = 0;
  /** Messages not published during the current outage (for the log line that ends it). */
  private unpublishedInOutage = 0;
  private lastError: string | undefined;
  /** The last configuration error logged since the last connection, so a retry loop logs it once. */
  private lastFatalLogged: string | undefined;
  private closed = false;

  /** Publishes not confirmed by Redis yet: in flight, then waiting for the connection. */
  private readonly queue: PublishQueue;
  /** Drops publishes that waited too long; runs only while some wait. */
  private ageTimer: NodeJS.Timeout | undefined;
  private queuedTotal = 0;
  private replayed = 0;
  private dropped = 0;
  /** Counts of the current outage, for its log lines. */
  private queuedInOutage = 0;
  private replayedInOutage = 0;
  private droppedInOutage = 0;
  /**
   * Payloads this server published after delivering them to its own clients, by channel, in the order sent: their
   * echo from Redis is skipped, once each, so no client gets a message twice.
   */
  private readonly echoes = new Map<string, Buffer[]>();
  /** Messages flowed at the last state update (to see them start flowing again). */
  private wasFlowing = false;
  /** The backlog waits {@link REPLAY_GRACE_MS} for the other servers; set while it does. */
  private replayTimer: NodeJS.Timeout | undefined;
  /** Tries the queue again after a loss its connection did not (yet) report as a close. */
  private retryTimer: NodeJS.Timeout | undefined;

  private readonly target: RedisTarget;
  private readonly ring: EndpointRing;
  /**
   * What Redis is: a Redis Cluster, a single server (also a Sentinel-managed master), or not known — a user that
   * may not run `CLUSTER SLOTS` cannot tell.
   */
  private topology: 'unknown' | 'cluster' | 'single';
  /** Whether the publishing connection asks for the cluster's nodes after each connection. */
  private askCluster: boolean;
  /** The publishing connection is asking; the bus reports itself connected once it knows. */
  private probing = false;
  /** The publishing connection asks whether servers in streams mode use the prefix; connected once it knows. */
  private checkingMode = false;
  private readonly streamsMarkerKey: string | undefined;
  private readonly startup: {
    readonly promise: Promise<void>;
    settled: boolean;
    resolve(): void;
    reject(error: Error): void;
    timer?: NodeJS.Timeout;
  };

  constructor(options: RedisBusOptions) {
    this.log = options.log;
    this.target = options.target;
    this.streamsMarkerKey = options.streamsMarkerKey;
    this.queue = new PublishQueue(options.publishQueue ?? { maximumBytes: 0, maximumAgeMs: 0 });
    this.ring = new EndpointRing(this.target.endpoints);
    this.topology = this.target.mode === 'endpoints' ? 'unknown' : 'single';
    this.askCluster = this.target.mode === 'endpoints';
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<void>((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    // Nobody may wait for startup (a bus made by hand); its failure is then only logged.
    promise.catch(() => undefined);
    this.startup = { promise, settled: false, resolve, reject };
    this.startup.timer = setTimeout(() => this.startupTimedOut(), this.target.connectTimeoutMs);
    this.startup.timer.unref();
    for (const warning of this.target.warnings) this.log.warn({}, warning);

    if (options.shardedPubSub === true && this.target.mode !== 'endpoints') {
      // Sentinel or a socket: one Redis server, no shards (the plugin refuses this before a bus is made).
      this.settleStartup(
        new RedisShardedPubSubError(shardedNeedsClusterExplanation(`${this.target.description} (${this.target.mode})`)),
      );
    }
    if (options.shardedPubSub === true) {
      // The cluster client knows the slots, so none of the classic bus's node discovery is needed.
      this.askCluster = false;
      const cluster = openCluster(this.target, 'pub');
      this.pub = cluster;
      this.sub = undefined;
      this.subReady = true;
      this.resubscribed = true;
      this.shards = new ShardSubscribers({
        target: this.target,
        cluster,
        log: this.log,
        onMessage: (channel, payload) => this.dispatch(channel, payload),
        onChange: () => this.updateState(),
        onLost: (channels) => this.shardChannelsLost(channels),
        onFatal: (text, channel) =>
          this.fatal(this.explain('permission', `ssubscribe '${channel}': ${text}`, this.target.description)),
      });
      this.watch(cluster, 'pub', undefined);
      this.classicTimer = setInterval(() => void this.checkClassicSubscribers(), CLASSIC_SUBSCRIBER_CHECK_MS);
      this.classicTimer.unref();
      return;
    }
    const pub = openConnection(this.target, 'pub', this.ring);
    const sub = openConnection(this.target, 'sub', this.ring);
    this.pub = pub.redis;
    this.sub = sub.redis;
    this.shards = undefined;
    this.watch(this.pub, 'pub', pub.cursor);
    this.watch(this.sub, 'sub', sub.cursor);
    this.sub.on('messageBuffer', (channel: Buffer, payload: Buffer) => this.dispatch(channel, payload));
  }

  /**
   * Settles once the first connection attempts have an outcome: resolves when connected; rejects — and the server
   * should not start — when Redis refused the configuration (credentials, TLS, the ACL of the backplane's channels),
   * or, with `abortConnect`, when Redis could not be reached within the connect timeout. Without `abortConnect`
   * it resolves when Redis is unreachable: the server starts and connects when Redis is there.
   */
  ready(): Promise<void> {
    return this.startup.promise;
  }

  receives(channel: string): boolean {
    if (this.shards !== undefined) return this.shards.receives(channel);
    return this.subReady && this.confirmed.has(channel);
  }

  /** Every wanted channel is subscribed on the current subscription connection(s). */
  private get subscriptionsBack(): boolean {
    if (this.shards !== undefined) return this.shards.complete;
    return this.subReady && this.resubscribed;
  }

  get publishing(): boolean {
    return this.pubReady;
  }

  publish(channel: string, payload: Buffer, options: PublishOptions = {}): Promise<number> {
    if (this.closed) return Promise.reject(new BackplaneUnavailableError('The Redis backplane is closed.'));
    const { signal, deliveredLocally = false, resolveWhenQueued = false } = options;
    if (signal?.aborted) return Promise.reject(new BackplaneUnavailableError('The publish was canceled.'));
    let onQueued: (() => void) | undefined;
    let queuedAtOnce = false;
    const promise = new Promise<number>((resolve, reject) => {
      let onAbort: (() => void) | undefined;
      const entry: QueuedPublish = {
        channel,
        payload,
        madeAt: Date.now(),
        deliveredLocally,
        state: 'waiting',
        waited: false,
        attempt: 0,
        settle: (error, receivers) => {
          if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
          if (error === undefined) resolve(receivers);
          else reject(error);
        },
        ...(resolveWhenQueued && { onQueued: () => onQueued?.() }),
      };
      // Without a queue, a publish goes whenever the publishing connection is up, as before there was one.
      const canSend = this.queue.limits.maximumBytes > 0 ? this.flowing : this.pubReady && !this.closed;
      if (canSend && this.replayTimer === undefined && this.queue.waitingCount === 0) {
        this.transmit(entry);
      } else if (this.queue.fits(payload.length)) {
        this.queue.enqueue(entry);
        queuedAtOnce = true;
        this.queuedTotal++;
        this.queuedInOutage++;
        this.scheduleAgeCheck();
      } else {
        this.countUnpublished();
        if (this.queue.limits.maximumBytes > 0) {
          this.countDropped(1, 'bytes');
          reject(new BackplaneUnavailableError('The Redis backplane is not connected, and its publish queue is full.'));
        } else {
          reject(new BackplaneUnavailableError());
        }
        return;
      }
      // Also for one sent now: a lost connection may put it back in the queue, where its caller can still give up.
      if (signal !== undefined) {
        onAbort = () => {
          if (this.queue.withdraw(entry)) {
            this.countUnpublished();
            entry.settle(new BackplaneUnavailableError('The publish was canceled while it waited for Redis.'), 0);
          }
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    if (!resolveWhenQueued) return promise;
    if (queuedAtOnce) {
      // The caller does not wait; a later drop is counted and logged here.
      promise.catch(() => undefined);
      return Promise.resolve(-1);
    }
    // Sent now; resolves with the reply, or as soon as a lost connection puts it back in the queue.
    return new Promise<number>((resolve, reject) => {
      onQueued = () => resolve(-1);
      promise.then(resolve, reject);
    });
  }

  /**
   * Messages flow both ways: publishing works and every wanted channel is subscribed again, so a queued publish can
   * go (and a group command or client result it carries can get its answer on this server's subscriptions).
   */
  private get flowing(): boolean {
    return this.pubReady && this.subscriptionsBack && !this.closed;
  }

  /** Sends one publish now and settles it with Redis's reply; a lost connection puts it back in the queue. */
  private transmit(entry: QueuedPublish): void {
    entry.state = 'sent';
    const attempt = ++entry.attempt;
    this.queue.inFlight.push(entry);
    // Expected before it is sent: the echo may be read on the subscription connection before the reply.
    if (entry.deliveredLocally && this.receives(entry.channel)) {
      let expected = this.echoes.get(entry.channel);
      if (expected === undefined) this.echoes.set(entry.channel, (expected = []));
      expected.push(entry.payload);
    }
    const session = this.pubSession;
    let lost = false;
    const sent =
      this.shards !== undefined
        ? ((this.pub as Cluster).spublish(entry.channel, entry.payload) as Promise<number>)
        : this.pub.publish(entry.channel, entry.payload);
    session
      .track(sent, () => {
        lost = true;
        return new BackplaneUnavailableError(`Publishing failed: ${CONNECTION_LOST}.`);
      })
      .then(
        (receivers) => {
          if (entry.attempt !== attempt || entry.state !== 'sent') return;
          entry.state = 'done';
          this.queue.trimInFlight();
          this.published++;
          if (entry.waited) {
            this.replayed++;
            this.replayedInOutage++;
          }
          entry.settle(undefined, receivers);
        },
        (error: Error) => {
          if (entry.attempt !== attempt || entry.state !== 'sent') return;
          // Lost with its connection: requeued by the close handler (or just now, when it is already gone).
          if (lost || !this.pubReady || isConnectionLoss(error)) {
            if (this.queue.limits.maximumBytes > 0) {
              this.requeueInFlight();
              return;
            }
            error = new BackplaneUnavailableError(`Publishing failed: ${CONNECTION_LOST}.`);
          }
          entry.state = 'done';
          this.queue.trimInFlight();
          this.countUnpublished();
          if (fatalKind(error) === 'permission') {
            this.fatal(
              this.explain(
                'permission',
                `publish '${entry.channel}': ${describeRedisError(error, this.target.secrets)}`,
                this.target.description,
              ),
            );
          }
          entry.settle(error, 0);
        },
      );
  }

  /**
   * Sharded mode: `channels` are no longer received on their node's connection (it closed, or their slot moved).
   * A publish of this server on one of them that relies on its echo to reach this server's own clients — sent, or
   * queued, while the channel was still received — may never echo now: ioredis's own retry of an SPUBLISH may have
   * it accepted by a node this server is not subscribed to yet. It is delivered to this server's clients at once, in
   * the order made, as the classic bus does for publishes lost with its connection. Should the echo of one already
   * sent come after all, those clients get it twice (at least once, as with a resent publish); one still queued is
   * sent later with its echo skipped.
   */
  private shardChannelsLost(channels: readonly string[]): void {
    const lost = new Set(channels);
    // Expected echoes of these channels can no longer come on the connection they were expected on.
    for (const channel of channels) this.echoes.delete(channel);
    this.deliverUnechoed((channel) => lost.has(channel));
  }

  /**
   * Delivers to this server's clients, in the order made, every publish still waiting or in flight on a channel
   * `lost` says is no longer received, that relied on its echo: later publishes on it reach those clients directly,
   * so an echo that came after them would put it behind them. Sent later, its echo is skipped.
   */
  private deliverUnechoed(lost: (channel: string) => boolean): void {
    for (const entry of [...this.queue.inFlight.toArray(), ...this.queue.waiting.toArray()]) {
      if (entry.state === 'done' || entry.deliveredLocally || !lost(entry.channel)) continue;
      const listener = this.listeners.get(entry.channel);
      entry.deliveredLocally = true;
      if (listener !== undefined) this.deliver(listener, entry.payload);
    }
  }

  /** The publishing connection is gone: what it sent without a reply waits again, ahead of the rest. */
  private requeueInFlight(): void {
    if (this.queue.limits.maximumBytes === 0) return;
    const requeued = this.queue.requeueInFlight();
    if (requeued.length === 0) return;
    for (const entry of requeued) {
      // Its echo, expected on the subscription, may never come now; a resend expects it afresh.
      const expected = this.echoes.get(entry.channel);
      const index = expected?.indexOf(entry.payload) ?? -1;
      if (index >= 0) expected!.splice(index, 1);
      // It was meant to reach this server's clients through its echo, which can no longer come before the messages
      // delivered directly during the outage: deliver it now, so they get everything in the order sent.
      const listener = entry.deliveredLocally ? undefined : this.listeners.get(entry.channel);
      if (listener !== undefined) {
        entry.deliveredLocally = true;
        this.deliver(listener, entry.payload);
      }
    }
    // A publish queued before (sent after a reconnection, then lost with that connection too) is counted once.
    const firstQueued = requeued.filter((entry) => entry.firstWait === true).length;
    this.queuedTotal += firstQueued;
    this.queuedInOutage += requeued.length;
    for (const entry of requeued) entry.onQueued?.();
    this.scheduleAgeCheck();
    // The connection reported the loss before its close: the close and the next connection send the queue. Should
    // the close never come, the queue is tried again shortly rather than left waiting for a state change.
    if (this.flowing && this.retryTimer === undefined) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        if (this.flowing && this.replayTimer === undefined) this.flush();
      }, RETRY_AFTER_LOSS_MS);
      this.retryTimer.unref();
    }
  }

  /** Sends the backlog {@link REPLAY_GRACE_MS} after messages started flowing again, at once when they still flow. */
  private scheduleReplay(): void {
    const flowing = this.flowing;
    const started = flowing && !this.wasFlowing;
    this.wasFlowing = flowing;
    if (!flowing) {
      clearTimeout(this.replayTimer);
      this.replayTimer = undefined;
      return;
    }
    if (this.replayTimer !== undefined || this.queue.waitingCount === 0) return;
    if (!started) {
      this.flush();
      return;
    }
    this.replayTimer = setTimeout(() => {
      this.replayTimer = undefined;
      this.flush();
    }, REPLAY_GRACE_MS);
    this.replayTimer.unref();
  }

  /** Sends every waiting publish, in order, once messages flow again; the too old ones are dropped first. */
  private flush(): void {
    this.dropExpired();
    while (this.flowing && this.replayTimer === undefined) {
      const entry = this.queue.takeWaiting();
      if (entry === undefined) break;
      this.transmit(entry);
    }
  }

  private scheduleAgeCheck(): void {
    for (let entry = this.queue.waiting.peek(); entry !== undefined && entry.state !== 'waiting';) {
      this.queue.waiting.shift();
      entry = this.queue.waiting.peek();
    }
    const oldest = this.queue.waiting.peek();
    if (this.ageTimer !== undefined || oldest === undefined || this.closed) return;
    const wait = Math.max(10, oldest.madeAt + this.queue.limits.maximumAgeMs - Date.now() + 1);
    this.ageTimer = setTimeout(() => {
      this.ageTimer = undefined;
      this.dropExpired();
      this.scheduleAgeCheck();
    }, wait);
    this.ageTimer.unref();
  }

  private dropExpired(): void {
    const expired = this.queue.takeOlderThan(Date.now() - this.queue.limits.maximumAgeMs);
    if (expired.length === 0) return;
    for (const entry of expired) {
      this.countUnpublished();
      entry.settle(new BackplaneUnavailableError('The publish waited for Redis longer than the queue allows.'), 0);
    }
    this.countDropped(expired.length, 'age');
  }

  private countDropped(count: number, bound: 'bytes' | 'age'): void {
    const first = this.droppedInOutage === 0;
    this.dropped += count;
    this.droppedInOutage += count;
    if (first) {
      const { maximumBytes, maximumAgeMs } = this.queue.limits;
      logEvent(
        this.log,
        'error',
        'signalr.backplane.publish_dropped',
        { bound, maximumQueuedPublishBytes: maximumBytes, maximumQueuedPublishAgeMs: maximumAgeMs },
        bound === 'bytes'
          ? `Redis backplane: the publish queue is full (${maximumBytes} bytes); dropping new publishes until Redis is back (the count is logged then)`
          : `Redis backplane: publishes waited longer than ${maximumAgeMs} ms for Redis and are dropped (the count is logged when Redis is back)`,
      );
    }
  }

  /** Keyed storage on the publishing connection: one round trip per call, no offline queue either. */
  readonly store: BackplaneStore = { pipeline: (commands) => this.pipeline(commands) };

  /**
   * Writes every command at once and waits for all replies: one round trip. Plain commands rather than an ioredis
   * `Pipeline` object, which costs more to build than the few commands of a presence change.
   */
  async pipeline(commands: readonly StoreCommand[]): Promise<unknown[]> {
    if (!this.pubReady) throw new BackplaneUnavailableError();
    return this.pubSession.track(
      Promise.all(commands.map(([name, ...args]) => this.pub.call(name, ...args))),
      () => new BackplaneUnavailableError(`A Redis command failed: ${CONNECTION_LOST}.`),
    );
  }

  async subscribe(channel: string, listener: ChannelListener): Promise<void> {
    const known = this.listeners.has(channel);
    this.listeners.set(channel, listener);
    if (this.shards !== undefined) {
      if (known || this.closed) return;
      await this.shards.want(channel);
      if (channel.endsWith(':all')) void this.checkClassicSubscribers([channel]);
      return;
    }
    if (known || !this.subReady || this.closed) return;
    await this.subscribeNow(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    if (!this.listeners.delete(channel)) return;
    this.echoes.delete(channel);
    // Messages may still come until Redis has the UNSUBSCRIBE; nothing is listening for them any more.
    this.confirmed.delete(channel);
    if (this.shards !== undefined) {
      this.classicSubscribed.delete(channel);
      if (!this.closed) await this.shards.unwant(channel);
      return;
    }
    if (!this.subReady || this.closed) return;
    await this.command(() => this.sub!.unsubscribe(channel), 'unsubscribe', channel);
  }

  health(): BackplaneHealth {
    return {
      state: this.state,
      connected: this.state === 'connected',
      since: this.since,
      outages: this.outages,
      unpublishedMessages: this.unpublished,
      queuedMessages: this.queue.waitingCount,
      queuedBytes: this.queue.waitingBytes,
      queuedMessagesTotal: this.queuedTotal,
      replayedMessages: this.replayed,
      droppedMessages: this.dropped,
      publishedMessages: this.published,
      receivedMessages: this.received,
      subscriptions: this.listeners.size,
      ...(this.shards !== undefined && {
        shardConnections: this.shards.connections,
        shardedSubscriptions: this.shards.confirmedCount,
      }),
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
    this.shards?.close();
    clearInterval(this.classicTimer);
    this.classicTimer = undefined;
    this.pub.disconnect();
    this.sub?.disconnect();
    this.pubSession.end();
    this.subSession.end();
    clearTimeout(this.ageTimer);
    this.ageTimer = undefined;
    clearTimeout(this.replayTimer);
    this.replayTimer = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    // Nothing is sent after close: what still waits is not published.
    const unsent = [...this.queue.inFlight.drain(), ...this.queue.waiting.drain()].filter(
      (entry) => entry.state !== 'done',
    );
    this.queue.waitingBytes = 0;
    this.queue.waitingCount = 0;
    for (const entry of unsent) {
      entry.state = 'done';
      this.countUnpublished();
      entry.settle(new BackplaneUnavailableError('The Redis backplane closed before the message was published.'), 0);
    }
    this.settleStartup();
    this.setState('closed');
  }

  // ------------------------------------------------------------------------------------------------------------

  /** Follows one connection's life: ready, errors, closes. */
  private watch(redis: Redis | Cluster, role: ConnectionRole, cursor: EndpointCursor | undefined): void {
    redis.on('ready', () => {
      if (this.closed) return;
      cursor?.connected();
      if (role === 'pub') {
        this.pubReady = true;
        this.pubSession = new Session();
        if (this.streamsMarkerKey !== undefined) this.checkingMode = true;
        if (this.shards !== undefined) this.topology = 'cluster';
        this.updateState();
        void this.discoverCluster();
        void this.checkStreamsFleet();
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
        this.requeueInFlight();
      } else {
        this.subReady = false;
        this.resubscribed = false;
        this.confirmed.clear();
        // Echoes still expected cannot come on the next connection: what relied on one reaches its clients now.
        this.echoes.clear();
        this.deliverUnechoed(() => true);
        this.subSession.end();
      }
      this.updateState();
    });
    // ioredis emits an error per failed attempt; the state change logs the outage once, the rest is detail.
    redis.on('error', (error: Error) => this.onConnectionError(error, role, cursor));
  }

  private onConnectionError(error: Error, role: ConnectionRole, cursor: EndpointCursor | undefined): void {
    if (this.closed) return;
    if (this.shards !== undefined) {
      // The cluster client reports a failed slot refresh; the reason is the last node's error.
      const nodeError = (error as { lastNodeError?: Error }).lastNodeError;
      if (nodeError instanceof Error && /cluster support disabled/i.test(nodeError.message)) {
        this.shardedNeedsCluster();
        return;
      }
      if (nodeError instanceof Error) error = nodeError;
    }
    const text = describeRedisError(error, this.target.secrets);
    this.lastError = text;
    const kind = fatalKind(error);
    if (kind !== undefined) {
      const where =
        cursor?.current !== undefined ? `${cursor.current.host}:${cursor.current.port}` : this.target.description;
      const starting = !this.startup.settled;
      this.fatal(this.explain(kind, text, where));
      // Startup failed with that message; the server stops, so no "retrying" line after it.
      if (starting) return;
    } else {
      this.log.debug({ error: text, connection: role }, 'Redis backplane connection error');
      // Redis is not there (yet): unless told to abort, the server starts and connects when it is.
      if (!this.target.abortConnect) this.settleStartup();
    }
    this.updateState();
  }

  /** A configuration error: fails startup, or is logged (once until the next connection) on a running server. */
  private fatal(message: string): void {
    if (!this.startup.settled) {
      this.settleStartup(new RedisBackplaneStartupError(message));
    } else if (this.lastFatalLogged !== message) {
      this.lastFatalLogged = message;
      this.log.error({}, message);
    }
  }

  /** Sharded pub/sub met a Redis that is not a cluster: startup fails; a running server logs it once. */
  private shardedNeedsCluster(): void {
    const message = shardedNeedsClusterExplanation(this.target.description);
    this.lastError = message;
    if (!this.startup.settled) {
      this.settleStartup(new RedisShardedPubSubError(message));
    } else if (this.lastFatalLogged !== message) {
      this.lastFatalLogged = message;
      this.log.error({}, message);
    }
    this.updateState();
  }

  /**
   * Sharded mode: asks every node of the cluster (classic pub/sub is broadcast to all of them, and `PUBSUB NUMSUB`
   * counts the node's own subscribers only) whether classic subscribers listen to this server's `all` channels —
   * every server of a hub subscribes its `all` channel (docs/protocol.md §3.2), so a .NET server, or one of ours
   * without `shardedPubSub`, shows there. They cannot exchange messages with this server (docs/protocol.md §3.11): warned once per
   * channel until they are gone. Runs at each connection, at each new `all` channel and every
   * {@link CLASSIC_SUBSCRIBER_CHECK_MS}.
   */
  private async checkClassicSubscribers(only?: readonly string[]): Promise<void> {
    if (this.shards === undefined || this.closed || !this.pubReady) return;
    const channels = only ?? [...this.listeners.keys()].filter((channel) => channel.endsWith(':all'));
    if (channels.length === 0) return;
    const counts = new Map<string, number>(channels.map((channel) => [channel, 0]));
    try {
      const nodes = (this.pub as Cluster).nodes('all');
      const replies = await Promise.all(
        nodes.map((node) =>
          this.pubSession.track(node.call('PUBSUB', 'NUMSUB', ...channels), () => new Error(CONNECTION_LOST)),
        ),
      );
      for (const reply of replies) {
        if (!Array.isArray(reply)) continue;
        for (let i = 0; i + 1 < reply.length; i += 2) {
          const channel = String(reply[i]);
          counts.set(channel, (counts.get(channel) ?? 0) + Number(reply[i + 1]));
        }
      }
    } catch {
      // A node that is down, or an ACL without PUBSUB NUMSUB: asked again at the next check.
      return;
    }
    for (const [channel, subscribers] of counts) {
      if (subscribers === 0 || !this.listeners.has(channel)) {
        this.classicSubscribed.delete(channel);
        continue;
      }
      if (this.classicSubscribed.has(channel)) continue;
      this.classicSubscribed.add(channel);
      logEvent(
        this.log,
        'warn',
        'signalr.backplane.classic_subscribers',
        { channel, subscribers },
        `Redis backplane: ${subscribers} classic subscriber(s) listen to '${channel}' on this cluster, while this ` +
          'server uses sharded pub/sub (redis.shardedPubSub): a .NET server, or a server of ours without the option, ' +
          'neither receives what this server sends nor reaches its clients. Give every server of the channel prefix ' +
          'the same mode.',
      );
    }
  }

  private explain(kind: FatalKind, text: string, where: string): string {
    return explainFatal(kind, text, where, this.target.username);
  }

  private settleStartup(error?: Error): void {
    if (this.startup.settled) return;
    this.startup.settled = true;
    clearTimeout(this.startup.timer);
    if (error === undefined) this.startup.resolve();
    else this.startup.reject(error);
  }

  private startupTimedOut(): void {
    if (this.startup.settled) return;
    if (!this.target.abortConnect) {
      this.settleStartup();
      return;
    }
    this.settleStartup(
      new RedisBackplaneStartupError(
        connectTimeoutExplanation(this.target.description, this.target.connectTimeoutMs, this.lastError),
      ),
    );
  }

  /**
   * With a Redis Cluster, learns every node from `CLUSTER SLOTS` after each (re)connection, so a connection whose
   * node is gone moves to another node even when only one seed was configured (classic PUBLISH is broadcast over
   * the cluster bus and SUBSCRIBE on any node receives it; no slot routing is involved). A Redis that is not a
   * cluster says so once; a user without `cluster|slots` keeps to the configured endpoints.
   */
  private async discoverCluster(): Promise<void> {
    if (!this.askCluster) return;
    this.probing = true;
    try {
      const reply = await this.pubSession.track(this.pub.call('CLUSTER', 'SLOTS'), () => new Error(CONNECTION_LOST));
      const nodes = clusterNodes(reply);
      const first = this.topology !== 'cluster';
      this.topology = 'cluster';
      const added = this.ring.add(nodes);
      if (first || added > 0) {
        this.log.info(
          { nodes: nodes.length, endpoints: this.ring.size },
          `Redis backplane: Redis Cluster with ${nodes.length} nodes`,
        );
      }
    } catch (error) {
      const text = describeRedisError(error as Error, this.target.secrets);
      if (/cluster support disabled/i.test(text)) {
        this.topology = 'single';
        this.askCluster = false;
      } else if (/^NOPERM/.test(text)) {
        this.askCluster = false;
        this.log.warn({ error: text }, CLUSTER_SLOTS_FORBIDDEN);
      }
    } finally {
      this.probing = false;
      this.updateState();
    }
  }

  /** Refuses a channel prefix that servers in streams mode use (see {@link RedisBusOptions.streamsMarkerKey}). */
  private async checkStreamsFleet(): Promise<void> {
    if (this.streamsMarkerKey === undefined) return;
    try {
      const marker = await this.pubSession.track(
        this.pub.call('GET', this.streamsMarkerKey),
        () => new Error(CONNECTION_LOST),
      );
      if (marker !== null) {
        this.fatal(
          `Redis backplane: servers in streams mode (redis.mode 'streams') use this Redis and channel prefix ` +
            `(${this.target.description}); a server in pub/sub mode cannot exchange messages with them. Use one mode ` +
            'for every server of a channel prefix, or give the fleets different channel prefixes.',
        );
      }
    } catch {
      // Not answerable here (a key on another cluster node, an ACL without GET): the streams servers check too.
    } finally {
      this.checkingMode = false;
      this.updateState();
    }
  }

  get publishCountsEveryReceiver(): boolean {
    return this.topology === 'single';
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
      logEvent(
        this.log,
        'error',
        'signalr.backplane.subscribe_failed',
        { failed },
        'Redis backplane: some channels could not be subscribed again',
      );
    }
    this.resubscribed = true;
    this.updateState();
  }

  /** Sends a SUBSCRIBE and notes the channel as receiving once Redis confirmed it, unless it is no longer wanted. */
  private async subscribeNow(channel: string): Promise<boolean> {
    const session = this.subSession;
    const ok = await this.command(() => this.sub!.subscribe(channel), 'subscribe', channel);
    if (ok && session === this.subSession && this.listeners.has(channel)) this.confirmed.add(channel);
    return ok;
  }

  /** Sends a SUBSCRIBE/UNSUBSCRIBE; resolves true when Redis confirmed it, false otherwise (never rejects). */
  private async command(
    send: () => Promise<unknown>,
    what: 'subscribe' | 'unsubscribe',
    channel: string,
  ): Promise<boolean> {
    const session = this.subSession;
    try {
      await this.subscriptionWindow.run(Buffer.byteLength(channel) + SUBSCRIPTION_REPLY_OVERHEAD, async () => {
        // Queued behind a lost connection: the next one subscribes every wanted channel anyway.
        if (session !== this.subSession) throw new Error(CONNECTION_LOST);
        await session.track(send(), () => new Error(CONNECTION_LOST));
      });
      return true;
    } catch (error) {
      const text = describeRedisError(error as Error, this.target.secrets);
      if (fatalKind(error as Error) === 'permission') {
        this.fatal(this.explain('permission', `${what} '${channel}': ${text}`, this.target.description));
      } else if (session === this.subSession && this.subReady) {
        // A lost connection is not worth a log line per channel: the next connection subscribes them all.
        const event =
          what === 'subscribe' ? 'signalr.backplane.subscribe_failed' : 'signalr.backplane.unsubscribe_failed';
        logEvent(this.log, 'warn', event, { error: text, channel }, `Redis backplane: ${what} failed`);
      }
      return false;
    }
  }

  private dispatch(channel: Buffer, payload: Buffer): void {
    this.received++;
    const name = channel.toString('utf8');
    const listener = this.listeners.get(name);
    if (listener === undefined) return;
    const expected = this.echoes.get(name);
    if (expected !== undefined && expected[0].equals(payload)) {
      // This server delivered it to its own clients when it was published (see PublishOptions.deliveredLocally).
      expected.shift();
      if (expected.length === 0) this.echoes.delete(name);
      return;
    }
    this.deliver(listener, payload);
  }

  private deliver(listener: ChannelListener, payload: Buffer): void {
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
    this.scheduleReplay();
    const up = this.pubReady && this.subscriptionsBack && !this.probing && !this.checkingMode;
    if (up) {
      if (this.state !== 'connected' && this.shards !== undefined) void this.checkClassicSubscribers();
      this.setState('connected');
    } else if (this.state === 'connected' || this.lastError !== undefined) this.setState('disconnected');
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
        logEvent(
          this.log,
          'warn',
          'signalr.backplane.reconnected',
          {
            outageMs: duration,
            unpublishedMessages: this.unpublishedInOutage,
            queuedMessages: this.queuedInOutage,
            replayedMessages: this.replayedInOutage,
            droppedMessages: this.droppedInOutage,
            resubscribedChannels: this.listeners.size,
          },
          `Redis backplane connected again after ${duration} ms and subscribed its ${this.listeners.size} channels ` +
            `again; ${this.queuedInOutage} message(s) this server sent meanwhile were queued and are being sent now, ` +
            `${this.unpublishedInOutage} were not published (${this.droppedInOutage} dropped by the queue's bounds; ` +
            'they reached its own clients at most), and whatever other servers published while this server was ' +
            'not subscribed was lost',
        );
      } else {
        logEvent(
          this.log,
          'info',
          'signalr.backplane.connected',
          { subscriptions: this.listeners.size },
          'Redis backplane connected',
        );
      }
      this.lastError = undefined;
      this.lastFatalLogged = undefined;
      this.unpublishedInOutage = 0;
      this.queuedInOutage = 0;
      this.replayedInOutage = 0;
      this.droppedInOutage = 0;
      this.settleStartup();
    } else if (next === 'disconnected') {
      if (previous === 'connected') this.outages++;
      this.unpublishedInOutage = 0;
      this.queuedInOutage = this.queue.waitingCount;
      this.replayedInOutage = 0;
      this.droppedInOutage = 0;
      logEvent(
        this.log,
        'error',
        'signalr.backplane.disconnected',
        { lastError: this.lastError, previous },
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
