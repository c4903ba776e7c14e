// Over 600 lines: one state machine (writer, readers, read positions, outage queue, mixed-fleet guard) read together.
/**
 * The replayable backplane bus (`redis: { mode: 'streams' }`): the channels and MessagePack payloads of the pub/sub
 * layout, carried as entries of Redis Streams instead of PUBLISH messages, so that a server that loses Redis, or its
 * reading connection, reads on from the last entry it saw and misses nothing published meanwhile — by any server —
 * within the retained window. A {@link BackplaneBus} like `RedisBus`: the lifetime manager, group commands with acks
 * and client results run on it unchanged.
 *
 * The layout (docs/protocol.md §3.10):
 * - the traffic of one channel prefix goes to {@link streamCount} streams, `{<prefix>signalr:stream:<n>}`; a channel
 *   goes to stream `fnv1a32(channel) % count`. One stream on a single server or Sentinel master (one total order),
 *   {@link DEFAULT_CLUSTER_STREAM_COUNT} on a Redis Cluster, so no node carries the whole fleet's traffic; the
 *   braces are a hash tag, so each stream has its own slot;
 * - an entry has the fields `channel` and `payload` (the exact bytes the pub/sub layout would PUBLISH), and
 *   `writer` (`<writer id>:<sequence>`) when the publish queue wrote it: a write sent again after its reply was lost
 *   may be in the stream twice, and readers deliver only the first (see {@link WriterSequences});
 * - XADD trims with an approximate MAXLEN ({@link StreamRetention.maximumLength}); the age bound
 *   ({@link StreamRetention.maximumAgeMs}) is an approximate `XTRIM … MINID` sent at most once a second per stream;
 * - `<prefix>signalr:backplane-mode` holds `streams:<count>` while streams-mode servers run (renewed every
 *   {@link MARKER_REFRESH_MS}, expiring after {@link MARKER_TTL_MS}): the mixed-fleet guard (below).
 *
 * Connections: one publishing connection (XADD, the guard, keyed storage) and the readers. On a single server or
 * Sentinel master one reader connection reads every stream with one blocking XREAD; on a Redis Cluster, where one
 * XREAD may only name keys of one slot, each stream has its own reader (an ioredis `Cluster` client, which follows
 * the stream's slot to whichever node serves it after a failover). A reader starts at the stream's last id when it
 * first connects (no history is replayed at boot), and keeps its position across every reconnection; after one it
 * logs how many entries the stream trimmed before this server read them (Redis 7's `entries-added`), if any.
 *
 * What a server does with entries: it delivers those whose channel it subscribed to (a subscription is a local
 * filter; nothing is sent to Redis), its own publishes included, as pub/sub echoes them. So every server's clients
 * see the stream's order, and {@link StreamsBus.receives} is true for every subscribed channel even while Redis is
 * down: a publish then waits in the bounded queue and reaches this server's clients too once it is in the stream.
 * A queued publish dropped by the queue's bounds is delivered to this server's own clients at the drop, so an outage
 * longer than the queue allows costs what the pub/sub layout would, not more.
 *
 * Mixed fleets are refused: .NET servers read pub/sub only. At each connection and every {@link MARKER_REFRESH_MS}
 * this bus asks Redis (every node of a cluster) for pub/sub subscribers of the channels it uses (`PUBSUB NUMSUB`):
 * any means a server in pub/sub mode — ours or ASP.NET Core's — shares this Redis and channel prefix, and the server
 * does not start (or, running, logs it as an error). A marker with another stream count fails startup the same way.
 * Servers of ours in pub/sub mode refuse to start while the marker exists (`RedisBus`).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type Redis from 'ioredis';
import { Cluster, type ClusterNode, type RedisOptions } from 'ioredis';
import {
  BackplaneUnavailableError,
  type BackplaneBus,
  type BackplaneHealth,
  type BackplaneLogger,
  type BackplaneState,
  type BackplaneStore,
  type ChannelListener,
  type PublishOptions,
} from '../lifetime/backplane-bus';
import { logEvent } from '../shared/log-events';
import { PublishQueue, type PublishQueueLimits, type QueuedPublish } from './publish-queue';
import type { RedisTarget } from './redis-config';
import {
  clusterNodes,
  defaultRetryStrategy,
  EndpointRing,
  openConnection,
  Session,
  type ConnectionRole,
} from './redis-connector';
import {
  CONNECTION_LOST,
  connectTimeoutExplanation,
  describeRedisError as describe,
  explainFatal,
  fatalKind,
  isConnectionLoss,
  RedisBackplaneStartupError,
} from './redis-errors';

/** How much of its streams Redis keeps: whichever bound trims first. Both are approximate (whole stream nodes). */
export interface StreamRetention {
  /** Entries kept per stream at most (XADD `MAXLEN ~`). */
  readonly maximumLength: number;
  /** How long an entry is kept at most, in ms (`XTRIM MINID ~`). */
  readonly maximumAgeMs: number;
}

/** Default of {@link StreamRetention.maximumLength}. */
export const DEFAULT_STREAM_MAXIMUM_LENGTH = 100_000;
/** Default of {@link StreamRetention.maximumAgeMs}: as long as a publish may wait in the queue. */
export const DEFAULT_STREAM_MAXIMUM_AGE_MS = 60_000;
/** Streams per channel prefix on a Redis Cluster unless configured. */
export const DEFAULT_CLUSTER_STREAM_COUNT = 8;
/** How often the mode marker is renewed and the fleet checked for pub/sub servers. */
export const MARKER_REFRESH_MS = 10_000;
/** How long the mode marker outlives the last streams-mode server. */
export const MARKER_TTL_MS = 30_000;
/** How long one XREAD blocks before it is sent again. */
const READ_BLOCK_MS = 5_000;
/** A read with no reply this long after its block time is taken for a lost connection. */
const READ_WATCHDOG_MS = READ_BLOCK_MS + 5_000;
/** Entries one XREAD returns at most. */
const READ_COUNT = 1_000;
/** How soon a failed read or publish is tried again. */
const RETRY_MS = 100;
/** Channels `PUBSUB NUMSUB` is asked about at most (the server-wide ones come first). */
const GUARD_CHANNELS = 256;

/** The key of stream `index` of a channel prefix. */
export function streamKey(prefix: string, index: number): string {
  return `{${prefix}signalr:stream:${index}}`;
}

/** The key that says a fleet in streams mode uses this prefix, and with how many streams. */
export function modeMarkerKey(prefix: string): string {
  return `${prefix}signalr:backplane-mode`;
}

/** The stream a channel's entries go to: FNV-1a (32 bits) of its UTF-8 bytes, modulo the stream count. */
export function streamIndexOf(channel: string, count: number): number {
  if (count === 1) return 0;
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(channel, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

/** Options of {@link StreamsBus}. */
export interface StreamsBusOptions {
  readonly target: RedisTarget;
  readonly log: BackplaneLogger;
  /** The channel prefix: stream and marker keys begin with it. */
  readonly keyPrefix: string;
  readonly retention: StreamRetention;
  /** Publishes kept while Redis is unreachable. Absent: a publish fails at once while Redis is down. */
  readonly publishQueue?: PublishQueueLimits;
  /**
   * Streams per channel prefix; every server of the fleet must use the same count (the marker enforces it).
   * @default 1, or {@link DEFAULT_CLUSTER_STREAM_COUNT} on a Redis Cluster
   */
  readonly streamCount?: number;
}

type Client = Redis | Cluster;

/**
 * `session.track(command)`, with the command's own rejection handled: a session that already ended rejects at once,
 * and the command's later failure ("Stream isn't writeable") must not surface as an unhandled rejection.
 */
function tracked<T>(session: Session, command: Promise<T>): Promise<T> {
  command.catch(() => undefined);
  return session.track(command, () => new Error(CONNECTION_LOST));
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** Errors after which a publish is sent again: Redis (or the slot's node) is away or changing hands. */
function isTransient(error: Error): boolean {
  return (
    isConnectionLoss(error) ||
    /^(CLUSTERDOWN|READONLY|LOADING|TRYAGAIN|MASTERDOWN|MOVED|ASK)\b/.test(error.message ?? '') ||
    /Cluster isn't ready|Failed to refresh slots|None of startup nodes|enableOfflineQueue|timed? ?out|closed/i.test(
      error.message ?? '',
    )
  );
}

/** How long a writer's last sequence in a stream is remembered after its latest entry there. */
const WRITER_MEMORY_MS = 10 * 60_000;

/**
 * The last sequence read from each writer in each stream, so that an entry written twice is delivered once. A
 * writer (a server's or emitter's bus) numbers its queued publishes in the order it sends them and sends a write
 * whose reply was lost again ahead of later ones, so within one stream its sequences only rise, save for such a
 * repeat: an entry whose sequence is not above the last one read from its writer there is a repeat. Writers that
 * have written nothing for {@link WRITER_MEMORY_MS} are forgotten (a server that restarted has a new writer id).
 */
export class WriterSequences {
  private readonly last = new Map<string, { sequence: number; at: number }>();
  private prunedAt = 0;

  /** Whether the entry of `writer` (`<id>:<sequence>`) in stream `key` is new; remembers it if so. */
  admit(key: string, writer: string, now = Date.now()): boolean {
    const colon = writer.lastIndexOf(':');
    const sequence = Number(writer.slice(colon + 1));
    if (colon <= 0 || !Number.isSafeInteger(sequence)) return true;
    const name = `${key} ${writer.slice(0, colon)}`;
    const seen = this.last.get(name);
    if (seen !== undefined && sequence <= seen.sequence) return false;
    if (seen === undefined) this.last.set(name, { sequence, at: now });
    else {
      seen.sequence = sequence;
      seen.at = now;
    }
    if (now - this.prunedAt > WRITER_MEMORY_MS) {
      this.prunedAt = now;
      for (const [other, entry] of this.last) if (now - entry.at > WRITER_MEMORY_MS) this.last.delete(other);
    }
    return true;
  }

  /** How many writer and stream pairs are remembered. */
  get size(): number {
    return this.last.size;
  }
}

/** Reads a set of streams with blocking XREADs on one connection, from its positions on. */
class StreamReader {
  /** The last id read of each stream; undefined until the reader first connects. */
  readonly positions: (string | undefined)[];
  /** How many entries each stream had received up to the last one read (`entries-added`); undefined when unknown. */
  private readonly ordinals: (number | undefined)[];
  private session = new Session();

  constructor(
    readonly client: Client,
    readonly keys: readonly string[],
  ) {
    this.positions = keys.map(() => undefined);
    this.ordinals = keys.map(() => undefined);
  }

  get positioned(): boolean {
    return this.positions.every((position) => position !== undefined);
  }

  get ready(): boolean {
    return this.client.status === 'ready';
  }

  /** The connection was lost since the last read: whether the streams were trimmed past a position is asked. */
  gapToCheck = false;

  /** The connection closed: a read in flight will not be answered. */
  lost(): void {
    this.session.end();
    this.session = new Session();
    if (this.positioned) this.gapToCheck = true;
  }

  /**
   * How many entries after this reader's position each stream trimmed before the reader read them — lost for this
   * server's clients. Known from Redis 7's `entries-added`: the stream has trimmed `entries-added − length` entries,
   * and this reader has read up to its ordinal.
   */
  async trimmedPastPosition(): Promise<{ key: string; position: string; lost: number }[]> {
    const trimmed: { key: string; position: string; lost: number }[] = [];
    for (const [index, key] of this.keys.entries()) {
      const ordinal = this.ordinals[index];
      const info = await this.info(key);
      if (info?.entriesAdded === undefined || ordinal === undefined) continue;
      if (info.entriesAdded < ordinal) {
        // Redis lost the stream (restarted empty): every entry it holds now is after this reader's position.
        this.ordinals[index] = 0;
        continue;
      }
      const lost = info.entriesAdded - info.length - ordinal;
      if (lost > 0) {
        trimmed.push({ key, position: this.positions[index] as string, lost });
        this.ordinals[index] = ordinal + lost;
      }
    }
    return trimmed;
  }

  /** Where each stream ends now (`$`, made concrete so that no entry falls between two reads). */
  async position(): Promise<void> {
    for (const [index, key] of this.keys.entries()) {
      if (this.positions[index] !== undefined) continue;
      const info = await this.info(key);
      this.positions[index] = info?.lastGeneratedId ?? '0-0';
      this.ordinals[index] = info === undefined ? 0 : info.entriesAdded;
    }
  }

  /** `XINFO STREAM`'s counters of one stream; undefined when it does not exist. */
  private async info(
    key: string,
  ): Promise<{ lastGeneratedId: string; entriesAdded?: number; length: number } | undefined> {
    let reply: unknown[];
    try {
      reply = (await tracked(this.session, this.client.call('XINFO', 'STREAM', key))) as unknown[];
    } catch (error) {
      if (/no such key/i.test((error as Error).message ?? '')) return undefined;
      throw error;
    }
    const field = (name: string) => {
      const index = reply.findIndex((item) => String(item) === name);
      return index < 0 ? undefined : reply[index + 1];
    };
    const added = field('entries-added');
    return {
      lastGeneratedId: String(field('last-generated-id')),
      length: Number(field('length')),
      // Redis 7 and later count every entry ever added; before, what was trimmed cannot be told.
      ...(added !== undefined && { entriesAdded: Number(added) }),
    };
  }

  /** One blocking XREAD; resolves with the entries read, by stream. */
  async read(): Promise<{ index: number; id: string; fields: Buffer[] }[]> {
    let watchdog: NodeJS.Timeout | undefined;
    const reply = await Promise.race([
      tracked(
        this.session,
        this.client.xreadBuffer(
          'COUNT',
          READ_COUNT,
          'BLOCK',
          READ_BLOCK_MS,
          'STREAMS',
          ...this.keys,
          ...(this.positions as string[]),
        ) as Promise<[Buffer, [Buffer, Buffer[]][]][] | null>,
      ),
      new Promise<never>((_, reject) => {
        watchdog = setTimeout(() => {
          // A read that outlives its block time by this much sits on a dead connection that never reported it.
          this.client.disconnect(true);
          reject(new Error(`${CONNECTION_LOST} (no reply to a blocking read)`));
        }, READ_WATCHDOG_MS);
        watchdog.unref();
      }),
    ]).finally(() => clearTimeout(watchdog));
    const entries: { index: number; id: string; fields: Buffer[] }[] = [];
    for (const [key, items] of reply ?? []) {
      const index = this.keys.indexOf(key.toString('utf8'));
      if (index < 0) continue;
      for (const [id, fields] of items) {
        const text = id.toString('latin1');
        this.positions[index] = text;
        if (this.ordinals[index] !== undefined) this.ordinals[index]! += 1;
        entries.push({ index, id: text, fields });
      }
    }
    return entries;
  }
}

/** A {@link BackplaneBus} on Redis Streams: one publishing connection, one reader per node's worth of streams. */
export class StreamsBus implements BackplaneBus {
  private readonly log: BackplaneLogger;
  private readonly target: RedisTarget;
  private readonly keyPrefix: string;
  private readonly retention: StreamRetention;
  private readonly configuredCount: number | undefined;
  private readonly name: string;
  private readonly ring: EndpointRing;

  private pub: Client | undefined;
  private pubSession = new Session();
  private readers: StreamReader[] = [];
  private keys: string[] = [];
  private topology: 'unknown' | 'single' | 'cluster' = 'unknown';

  private readonly listeners = new Map<string, ChannelListener>();
  private readonly stateListeners = new Set<(health: BackplaneHealth) => void>();
  /** Payloads this server delivered to its own clients before publishing; their entries are skipped once each. */
  private readonly echoes = new Map<string, Buffer[]>();
  /** This bus's `writer` id: random, so a restarted server numbers its entries afresh. */
  private readonly writerId = randomBytes(9).toString('base64url');
  /** The sequence of this bus's latest queued write. */
  private writerSequence = 0;
  private readonly writerSequences = new WriterSequences();

  private pubReady = false;
  /** The fleet check passed on the current publishing connection. */
  private guardPassed = false;
  private closed = false;
  private state: BackplaneState = 'connecting';
  private since = Date.now();
  private outages = 0;
  private lastError: string | undefined;
  private lastFatalLogged: string | undefined;

  private readonly queue: PublishQueue;
  private ageTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private guardTimer: NodeJS.Timeout | undefined;
  /** When each stream was last trimmed by age. */
  private readonly trimmedAt = new Map<string, number>();

  private unpublished = 0;
  private published = 0;
  private received = 0;
  private queuedTotal = 0;
  private replayed = 0;
  private dropped = 0;
  private droppedInOutage = 0;
  private queuedInOutage = 0;
  private replayedInOutage = 0;

  private readonly startup: {
    readonly promise: Promise<void>;
    settled: boolean;
    resolve(): void;
    reject(error: Error): void;
    timer?: NodeJS.Timeout;
  };

  constructor(options: StreamsBusOptions) {
    this.log = options.log;
    this.target = options.target;
    this.keyPrefix = options.keyPrefix;
    this.retention = options.retention;
    this.configuredCount = options.streamCount;
    this.queue = new PublishQueue(options.publishQueue ?? { maximumBytes: 0, maximumAgeMs: 0 });
    this.ring = new EndpointRing(this.target.endpoints);
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<void>((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    promise.catch(() => undefined);
    this.startup = { promise, settled: false, resolve, reject };
    this.startup.timer = setTimeout(() => this.startupTimedOut(), this.target.connectTimeoutMs);
    this.startup.timer.unref();
    for (const warning of this.target.warnings) this.log.warn({}, warning);

    this.name =
      this.target.redisOptions.connectionName ?? `${hostname().replace(/[^\x21-\x7e]/g, '')}(fastify-signalr)`;

    if (this.target.mode === 'endpoints') {
      // Whether Redis is a cluster decides the connections; the first one asks.
      const probe = this.single('pub');
      this.usePublisher(probe);
      probe.once('ready', () => void this.detectTopology(probe));
    } else {
      this.topology = 'single';
      this.usePublisher(this.single('pub'));
      this.startSingleReader();
    }
  }

  /** Like `RedisBus.ready`: settles once the first connection attempts have an outcome, or the fleet check failed. */
  ready(): Promise<void> {
    return this.startup.promise;
  }

  /** Every subscribed channel is received: what is published reaches the stream, and this server reads it back. */
  receives(channel: string): boolean {
    return !this.closed && this.listeners.has(channel);
  }

  get publishing(): boolean {
    return this.pubReady;
  }

  /** An entry has no receiver count: a client result for a connection no server owns waits for its cancellation. */
  get publishCountsEveryReceiver(): boolean {
    return false;
  }

  /** How many streams carry the prefix's traffic (known once connected). */
  get streamCount(): number {
    return this.keys.length;
  }

  /** Resolves with -1 (a stream entry counts no receivers) once Redis stored the entry, or once queued when asked. */
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
        settle: (error) => {
          if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
          if (error === undefined) resolve(-1);
          else reject(error);
        },
        ...(resolveWhenQueued && { onQueued: () => onQueued?.() }),
      };
      if (this.flowing && this.queue.waitingCount === 0) {
        this.transmit(entry);
      } else if (this.queue.fits(payload.length)) {
        this.queue.enqueue(entry);
        queuedAtOnce = true;
        this.queuedTotal++;
        this.queuedInOutage++;
        this.scheduleAgeCheck();
      } else {
        this.unpublished++;
        this.deliverDropped(entry);
        if (this.queue.limits.maximumBytes > 0) {
          this.countDropped(1, 'bytes');
          reject(new BackplaneUnavailableError('The Redis backplane is not connected, and its publish queue is full.'));
        } else {
          reject(new BackplaneUnavailableError());
        }
        return;
      }
      if (signal !== undefined) {
        onAbort = () => {
          if (this.queue.withdraw(entry)) {
            this.unpublished++;
            entry.settle(new BackplaneUnavailableError('The publish was canceled while it waited for Redis.'), 0);
          }
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    if (!resolveWhenQueued) return promise;
    if (queuedAtOnce) {
      promise.catch(() => undefined);
      return Promise.resolve(-1);
    }
    return new Promise<number>((resolve, reject) => {
      onQueued = () => resolve(-1);
      promise.then(resolve, reject);
    });
  }

  async subscribe(channel: string, listener: ChannelListener): Promise<void> {
    this.listeners.set(channel, listener);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.listeners.delete(channel);
    this.echoes.delete(channel);
  }

  /**
   * Keyed storage on the publishing connection (a single server or Sentinel master; presence is not for clusters).
   * A `PUBLISH` among the commands is written as the channel's stream entry instead, so that the servers, which read
   * streams only, receive it; its reply is then the entry's id rather than a receiver count.
   */
  readonly store: BackplaneStore = {
    pipeline: async (commands) => {
      const pub = this.pub;
      if (!this.pubReady || pub === undefined) throw new BackplaneUnavailableError();
      const sent = commands.map(([name, ...args]) => {
        if (name.toUpperCase() !== 'PUBLISH' || args.length !== 2 || this.keys.length === 0)
          return pub.call(name, ...args);
        const [channel, payload] = args;
        const key = this.keys[streamIndexOf(String(channel), this.keys.length)];
        return pub.call(
          'XADD',
          key,
          'MAXLEN',
          '~',
          this.retention.maximumLength,
          '*',
          'channel',
          String(channel),
          'payload',
          payload,
        );
      });
      return tracked(this.pubSession, Promise.all(sent)).catch((error: Error) => {
        throw error.message === CONNECTION_LOST
          ? new BackplaneUnavailableError(`A Redis command failed: ${CONNECTION_LOST}.`)
          : error;
      });
    },
  };

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
    for (const timer of [this.ageTimer, this.retryTimer, this.guardTimer]) clearTimeout(timer);
    this.pub?.disconnect();
    this.pubSession.end();
    for (const reader of this.readers) {
      reader.client.disconnect();
      reader.lost();
    }
    const unsent = [...this.queue.inFlight.drain(), ...this.queue.waiting.drain()].filter(
      (entry) => entry.state !== 'done',
    );
    this.queue.waitingBytes = 0;
    this.queue.waitingCount = 0;
    for (const entry of unsent) {
      entry.state = 'done';
      this.unpublished++;
      entry.settle(new BackplaneUnavailableError('The Redis backplane closed before the message was published.'), 0);
    }
    this.settleStartup();
    this.setState('closed');
  }

  // ------------------------------------------------------------------------------------------------------------
  // Connections

  /** One plain connection (a single server, a Sentinel master, or a cluster seed being asked what it is). */
  private single(role: ConnectionRole): Redis {
    const { redis, cursor } = openConnection(this.target, role, this.ring);
    redis.on('ready', () => cursor?.connected());
    return redis;
  }

  /** A Redis Cluster client (its node connections named for `role`), seeded with every node known. */
  private cluster(role: ConnectionRole): Cluster {
    // Where to connect comes from the seeds and the cluster itself, not from these options.
    const { host: _host, port: _port, path: _path, db: _db, ...own } = this.target.redisOptions;
    const redisOptions: RedisOptions = {
      disconnectTimeout: 200,
      enableReadyCheck: false,
      disableClientInfo: true,
      ...own,
      // As `openConnection`'s: this bus queues and resends on its own terms.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      connectionName: `${this.name}:${role}`,
    };
    const seeds: ClusterNode[] = [];
    for (let index = 0; index < this.ring.size; index++) seeds.push({ ...this.ring.at(index) });
    return new Cluster(seeds, {
      redisOptions,
      enableOfflineQueue: false,
      enableReadyCheck: true,
      clusterRetryStrategy: defaultRetryStrategy,
      retryDelayOnFailover: RETRY_MS,
      retryDelayOnClusterDown: RETRY_MS,
      retryDelayOnTryAgain: RETRY_MS,
      slotsRefreshTimeout: 2000,
    });
  }

  private usePublisher(pub: Client): void {
    this.pub = pub;
    pub.on('ready', () => {
      if (this.closed || pub !== this.pub) return;
      this.pubReady = true;
      this.pubSession = new Session();
      this.guardPassed = false;
      void this.checkFleet(true);
      this.updateState();
    });
    pub.on('close', () => {
      if (pub !== this.pub) return;
      this.pubReady = false;
      this.pubSession.end();
      this.requeueInFlight();
      this.updateState();
    });
    pub.on('error', (error: Error) => this.onConnectionError(error, 'pub'));
    // A cluster client reports node errors too; without a listener they would be unhandled.
    pub.on('node error', (error: Error) => this.onConnectionError(error, 'pub'));
  }

  /** Asks the first connection whether Redis is a cluster, then sets up the publisher and readers for it. */
  private async detectTopology(probe: Redis): Promise<void> {
    if (this.closed) return;
    try {
      const reply = await probe.call('CLUSTER', 'SLOTS');
      const nodes = clusterNodes(reply);
      this.ring.add(nodes);
      this.topology = 'cluster';
      this.log.info({ nodes: nodes.length }, `Redis backplane (streams): Redis Cluster with ${nodes.length} nodes`);
      // The probe was one node's connection; a cluster client routes each stream's commands to its slot's node.
      this.pub = undefined;
      this.pubReady = false;
      probe.disconnect();
      this.usePublisher(this.cluster('pub'));
      this.keys = this.streamKeys(this.configuredCount ?? DEFAULT_CLUSTER_STREAM_COUNT);
      this.readers = this.keys.map((key) => this.startReader(this.cluster('read'), [key]));
    } catch (error) {
      const text = describe(error as Error, this.target.secrets);
      if (!/cluster support disabled/i.test(text)) {
        this.log.warn(
          { error: text },
          'Redis backplane (streams): could not tell whether Redis is a cluster; taken for a single server',
        );
      }
      this.topology = 'single';
      this.startSingleReader();
    }
    this.updateState();
  }

  private streamKeys(count: number): string[] {
    return Array.from({ length: count }, (_, index) => streamKey(this.keyPrefix, index));
  }

  /** A single server reads all its streams with one XREAD on one connection. */
  private startSingleReader(): void {
    this.keys = this.streamKeys(this.configuredCount ?? 1);
    this.readers = [this.startReader(this.single('read'), this.keys)];
  }

  private startReader(client: Client, keys: readonly string[]): StreamReader {
    const reader = new StreamReader(client, keys);
    client.on('ready', () => this.updateState());
    client.on('close', () => {
      reader.lost();
      this.updateState();
    });
    client.on('error', (error: Error) => this.onConnectionError(error, 'read'));
    client.on('node error', (error: Error) => this.onConnectionError(error, 'read'));
    void this.readLoop(reader);
    return reader;
  }

  /** Reads until the bus closes; after any failure, from the same positions again. */
  private async readLoop(reader: StreamReader): Promise<void> {
    while (!this.closed) {
      if (!reader.ready) {
        await new Promise<void>((resolve) => {
          const onReady = () => {
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(() => {
            reader.client.off('ready', onReady);
            resolve();
          }, 250);
          timer.unref();
          reader.client.once('ready', onReady);
        });
        continue;
      }
      try {
        if (!reader.positioned) {
          await reader.position();
          this.updateState();
        }
        if (reader.gapToCheck) {
          reader.gapToCheck = false;
          for (const { key, position, lost } of await reader.trimmedPastPosition().catch(() => [])) {
            logEvent(
              this.log,
              'error',
              'signalr.backplane.error',
              { stream: key, position, lost },
              `Redis backplane (streams): this server was away longer than ${key} keeps entries; ${lost} entries ` +
                `after ${position} were trimmed before it read them and are lost for its clients (raise ` +
                'streamMaximumAgeMs or streamMaximumLength)',
            );
          }
        }
        const entries = await reader.read();
        for (const { index, fields } of entries) this.dispatch(reader.keys[index], fields);
      } catch (error) {
        if (this.closed) return;
        const text = describe(error as Error, this.target.secrets);
        if (fatalKind(error as Error) === 'permission') this.fatal(this.explainPermission(`XREAD: ${text}`));
        else if (reader.ready)
          this.log.debug({ error: text }, 'Redis backplane (streams): a read failed; reading again');
        await delay(RETRY_MS);
      }
    }
  }

  private dispatch(key: string, fields: Buffer[]): void {
    let channel: string | undefined;
    let payload: Buffer | undefined;
    let writer: string | undefined;
    for (let index = 0; index + 1 < fields.length; index += 2) {
      const name = fields[index].toString('latin1');
      if (name === 'channel') channel = fields[index + 1].toString('utf8');
      else if (name === 'payload') payload = fields[index + 1];
      else if (name === 'writer') writer = fields[index + 1].toString('latin1');
    }
    if (channel === undefined || payload === undefined) return;
    this.received++;
    // Every entry counts for its writer's sequence, subscribed channel or not, so a repeat is known as one.
    const repeat = writer !== undefined && !this.writerSequences.admit(key, writer);
    const listener = this.listeners.get(channel);
    if (listener === undefined) return;
    // An own write sent again expects its echo again (see transmit): the copy that arrives takes that expectation,
    // so a later publish of the same bytes is not mistaken for it.
    const expected = this.echoes.get(channel);
    if (expected !== undefined && expected[0].equals(payload)) {
      expected.shift();
      if (expected.length === 0) this.echoes.delete(channel);
      return;
    }
    if (!repeat) this.deliver(listener, payload);
  }

  private deliver(listener: ChannelListener, payload: Buffer): void {
    try {
      listener(payload);
    } catch (error) {
      this.log.error({ err: error }, 'Redis backplane: a message handler failed');
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Publishing

  /**
   * Entries can be written and will be read back: the publisher is up, the fleet check passed, and every reader has
   * its starting position (an entry written before that would be skipped by this server's own reader).
   */
  private get flowing(): boolean {
    return (
      !this.closed &&
      this.pubReady &&
      this.guardPassed &&
      this.topology !== 'unknown' &&
      this.readers.length > 0 &&
      this.readers.every((reader) => reader.positioned)
    );
  }

  private transmit(entry: QueuedPublish): void {
    const pub = this.pub as Client;
    entry.state = 'sent';
    const attempt = ++entry.attempt;
    this.queue.inFlight.push(entry);
    if (entry.deliveredLocally && this.listeners.has(entry.channel)) {
      let expected = this.echoes.get(entry.channel);
      if (expected === undefined) this.echoes.set(entry.channel, (expected = []));
      expected.push(entry.payload);
    }
    const key = this.keys[streamIndexOf(entry.channel, this.keys.length)];
    const session = this.pubSession;
    // Numbered at its first send and sent again under the same number, so readers can tell a repeat.
    entry.sequence ??= ++this.writerSequence;
    tracked(
      session,
      pub.xadd(
        key,
        'MAXLEN',
        '~',
        this.retention.maximumLength,
        '*',
        'channel',
        entry.channel,
        'payload',
        entry.payload,
        'writer',
        `${this.writerId}:${entry.sequence}`,
      ),
    ).then(
      () => {
        if (entry.attempt !== attempt || entry.state !== 'sent') return;
        entry.state = 'done';
        this.queue.trimInFlight();
        this.published++;
        if (entry.waited) {
          this.replayed++;
          this.replayedInOutage++;
        }
        entry.settle(undefined, -1);
      },
      (error: Error) => {
        if (entry.attempt !== attempt || entry.state !== 'sent') return;
        if (this.queue.limits.maximumBytes > 0 && (isTransient(error) || !this.pubReady)) {
          this.requeueInFlight();
          this.scheduleRetry();
          return;
        }
        entry.state = 'done';
        this.queue.trimInFlight();
        this.unpublished++;
        this.unexpectEcho(entry);
        if (fatalKind(error) === 'permission')
          this.fatal(this.explainPermission(`XADD '${key}': ${describe(error, this.target.secrets)}`));
        entry.settle(error, 0);
      },
    );
    this.trimByAge(pub, key);
  }

  /** At most once a second per stream: drops entries older than the retention's age (whole stream nodes). */
  private trimByAge(pub: Client, key: string): void {
    const now = Date.now();
    if (now - (this.trimmedAt.get(key) ?? 0) < 1000) return;
    this.trimmedAt.set(key, now);
    pub.call('XTRIM', key, 'MINID', '~', String(now - this.retention.maximumAgeMs)).catch(() => undefined);
  }

  private unexpectEcho(entry: QueuedPublish): void {
    const expected = this.echoes.get(entry.channel);
    const index = expected?.indexOf(entry.payload) ?? -1;
    if (index >= 0) expected!.splice(index, 1);
  }

  /** Sent without a reply on a connection since lost (or refused for now): waits again, ahead of the rest, in order. */
  private requeueInFlight(): void {
    if (this.queue.limits.maximumBytes === 0) return;
    const requeued = this.queue.requeueInFlight();
    if (requeued.length === 0) return;
    for (const entry of requeued) this.unexpectEcho(entry);
    // A publish queued before (sent after a reconnection, then lost with that connection too) is counted once.
    const firstQueued = requeued.filter((entry) => entry.firstWait === true).length;
    this.queuedTotal += firstQueued;
    this.queuedInOutage += requeued.length;
    for (const entry of requeued) entry.onQueued?.();
    this.scheduleAgeCheck();
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flush();
    }, RETRY_MS);
    this.retryTimer.unref();
  }

  /** Sends the waiting publishes, in order, while entries can be written; the too old ones are dropped first. */
  private flush(): void {
    this.dropExpired();
    while (this.flowing) {
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
      this.unpublished++;
      this.deliverDropped(entry);
      entry.settle(new BackplaneUnavailableError('The publish waited for Redis longer than the queue allows.'), 0);
    }
    this.countDropped(expired.length, 'age');
  }

  /** A publish that will never be in the stream still reaches this server's own clients, as in pub/sub mode. */
  private deliverDropped(entry: QueuedPublish): void {
    const listener = entry.deliveredLocally ? undefined : this.listeners.get(entry.channel);
    if (listener !== undefined) this.deliver(listener, entry.payload);
  }

  private countDropped(count: number, bound: 'bytes' | 'age'): void {
    const first = this.droppedInOutage === 0;
    this.dropped += count;
    this.droppedInOutage += count;
    if (!first) return;
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

  // ------------------------------------------------------------------------------------------------------------
  // The mixed-fleet guard

  /**
   * Refuses to share the prefix with a server in pub/sub mode (a subscriber on one of this server's channels) or with
   * streams-mode servers using another stream count; then renews the marker. `first`: on a fresh publishing
   * connection, where entries wait for the outcome.
   */
  private async checkFleet(first: boolean): Promise<void> {
    const pub = this.pub;
    const session = this.pubSession;
    if (pub === undefined || this.closed) return;
    if (this.topology === 'unknown') {
      // Asked again once the topology is known (the cluster client's own connection starts the check).
      setTimeout(() => {
        if (session === this.pubSession && pub === this.pub) void this.checkFleet(first);
      }, 50).unref();
      return;
    }
    const track = <T>(command: Promise<T>) => tracked(session, command);
    try {
      const marker = modeMarkerKey(this.keyPrefix);
      const mine = `streams:${this.keys.length}`;
      const existing = (await track(pub.get(marker))) as string | null;
      if (existing !== null && existing !== mine) {
        this.refuse(
          `Redis backplane: servers in streams mode on ${this.target.description} use ${existing.replace('streams:', '')} ` +
            `streams for channel prefix '${this.keyPrefix}', this server ${this.keys.length}; every server of a fleet must ` +
            'use the same streamCount.',
        );
        return;
      }
      const channels = [...this.listeners.keys()].slice(0, GUARD_CHANNELS);
      if (channels.length > 0) {
        const nodes: Client[] = pub instanceof Cluster ? pub.nodes('all') : [pub];
        for (const node of nodes) {
          const reply = (await track(node.call('PUBSUB', 'NUMSUB', ...channels))) as unknown[];
          for (let index = 0; index + 1 < reply.length; index += 2) {
            if (Number(reply[index + 1]) > 0) {
              this.refuse(
                `Redis backplane: a server in pub/sub mode (fastify-signalr's default, or ASP.NET Core SignalR) is ` +
                  `subscribed to '${String(reply[index])}' on ${this.target.description}; servers in streams mode cannot ` +
                  'exchange messages with it. Use one mode for every server of a channel prefix (.NET servers read ' +
                  'pub/sub only), or give the fleets different channel prefixes.',
              );
              return;
            }
          }
        }
      }
      await track(pub.set(marker, mine, 'PX', MARKER_TTL_MS));
      if (session !== this.pubSession) return;
      if (!this.guardPassed) {
        this.guardPassed = true;
        this.updateState();
        this.flush();
      }
    } catch (error) {
      if (this.closed || session !== this.pubSession) return;
      const text = describe(error as Error, this.target.secrets);
      if (fatalKind(error as Error) === 'permission') {
        this.fatal(this.explainPermission(`the mixed-fleet check: ${text}`));
        return;
      }
      this.log.debug({ error: text }, 'Redis backplane (streams): the fleet check failed; trying again');
      if (first && !this.guardPassed) {
        setTimeout(() => void this.checkFleet(true), RETRY_MS * 5).unref();
        return;
      }
    } finally {
      if (session === this.pubSession && !this.closed && this.guardTimer === undefined) {
        this.guardTimer = setTimeout(() => {
          this.guardTimer = undefined;
          void this.checkFleet(false);
        }, MARKER_REFRESH_MS);
        this.guardTimer.unref();
      }
    }
  }

  private refuse(message: string): void {
    this.lastError = message;
    this.fatal(message);
  }

  // ------------------------------------------------------------------------------------------------------------
  // State, errors, startup

  private onConnectionError(error: Error, role: string): void {
    if (this.closed) return;
    const text = describe(error, this.target.secrets);
    this.lastError = text;
    const kind = fatalKind(error);
    if (kind !== undefined) {
      this.fatal(explainFatal(kind, text, this.target.description, this.target.username));
    } else {
      this.log.debug({ error: text, connection: role }, 'Redis backplane connection error');
      if (!this.target.abortConnect) this.settleStartup();
    }
    this.updateState();
  }

  private explainPermission(text: string): string {
    return (
      `Redis backplane: user '${this.target.username ?? 'default'}' lacks a permission streams mode needs at ` +
      `${this.target.description} (${text}). Grant the ACL described in the README ("Redis in production").`
    );
  }

  private fatal(message: string): void {
    if (!this.startup.settled) {
      this.settleStartup(new RedisBackplaneStartupError(message));
    } else if (this.lastFatalLogged !== message) {
      this.lastFatalLogged = message;
      this.log.error({}, message);
    }
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

  private updateState(): void {
    if (this.closed) return;
    const up = this.flowing && this.readers.every((reader) => reader.ready);
    if (up) this.setState('connected');
    else if (this.state === 'connected' || this.lastError !== undefined) this.setState('disconnected');
    if (this.flowing && this.queue.waitingCount > 0) this.flush();
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
            queuedMessages: this.queuedInOutage,
            replayedMessages: this.replayedInOutage,
            droppedMessages: this.droppedInOutage,
          },
          `Redis backplane (streams) connected again after ${duration} ms; ${this.queuedInOutage} message(s) this ` +
            `server sent meanwhile were queued and are being written now (${this.droppedInOutage} dropped by the ` +
            "queue's bounds), and the readers go on from the last entry they read",
        );
      } else {
        logEvent(
          this.log,
          'info',
          'signalr.backplane.connected',
          { subscriptions: this.listeners.size, streams: this.keys.length, topology: this.topology },
          `Redis backplane connected (streams mode, ${this.keys.length} stream(s))`,
        );
      }
      this.lastError = undefined;
      this.lastFatalLogged = undefined;
      this.queuedInOutage = 0;
      this.replayedInOutage = 0;
      this.droppedInOutage = 0;
      this.settleStartup();
    } else if (next === 'disconnected') {
      if (previous === 'connected') this.outages++;
      this.queuedInOutage = this.queue.waitingCount;
      this.replayedInOutage = 0;
      this.droppedInOutage = 0;
      logEvent(
        this.log,
        'error',
        'signalr.backplane.disconnected',
        { lastError: this.lastError, previous },
        'Redis backplane (streams) disconnected; publishes wait in the queue and reads go on from the last entry once Redis is back',
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
