/**
 * The Redis backplane's options (the plugin's `redis`), as `RedisOptions` of
 * Microsoft.AspNetCore.SignalR.StackExchangeRedis: where Redis is, TLS, the channel prefix, the group ack timeout,
 * presence and the queue of publishes kept while Redis is away. Described once here; the connection itself is read
 * by the Redis configuration (`resolveRedisTarget`), which this file only calls.
 */
import { z } from 'zod';
import type { RedisConnectionOptions } from './redis-connector';
import { isRedisUrl, resolveRedisTarget, type RedisTarget, type RedisTlsOptions } from './redis-config';
import { RedisShardedPubSubError, shardedNeedsClusterExplanation } from './redis-errors';
import { DEFAULT_GROUP_ACK_TIMEOUT_MS } from './redis-lifetime-manager';
import { DEFAULT_STREAM_MAXIMUM_AGE_MS, DEFAULT_STREAM_MAXIMUM_LENGTH } from './streams-bus';
import {
  booleanDescriptor,
  customDescriptor,
  integerDescriptor,
  optionalShape,
  type DescriptorsOf,
} from '../shared/option-descriptors';
import { DEFAULT_PRESENCE_HEARTBEAT_MS } from './redis-presence';

/** Presence across servers, when it is given as an object. */
export interface RedisPresenceOptions {
  /**
   * How often each server renews its heartbeat in Redis; a server silent for three heartbeats is taken for dead.
   * @default 5000
   */
  readonly heartbeatIntervalMs?: number;
}

/**
 * The Redis backplane: several servers — of this library, and ASP.NET Core servers with
 * `Microsoft.AspNetCore.SignalR.StackExchangeRedis` — serve one app through one Redis (docs/protocol.md §3).
 * Each hub's channels are named after its `name`, which must equal the .NET hub's full type name to share them.
 */
export interface RedisBackplaneOptions {
  /**
   * Where Redis is, as a URL: `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS. Give this,
   * `connectionString` or `options`.
   * @default none (one of `url`, `connectionString` and `options` is required)
   */
  readonly url?: string;
  /**
   * Where Redis is, as the StackExchange.Redis connection string the .NET servers use, pasted unchanged: endpoints
   * `host[:port]` (one server, or Redis Cluster seed nodes, or sentinels with `serviceName=`) and the options
   * `ssl`, `sslHost`, `user`, `password`, `channelPrefix`, `abortConnect`, `connectTimeout`, `syncTimeout`,
   * `defaultDatabase`, `serviceName`, `name`. Other keys are ignored with one warning. For example
   * `my-cache.redis.cache.windows.net:6380,password=…,ssl=True,abortConnect=False`.
   * @default none (one of `url`, `connectionString` and `options` is required)
   */
  readonly connectionString?: string;
  /**
   * ioredis connection options (host, port, username, password, tls, sentinels and name, `retryStrategy`, …); they
   * override what `url` or `connectionString` say. Offline queueing and ioredis's own resubscription are always
   * off: the backplane restores its subscriptions itself and never sends a message late.
   * @default reconnect after 50 ms, 100 ms, … up to 1 s between attempts, for ever; 5 s connect and command timeouts
   */
  readonly options?: RedisConnectionOptions;
  /**
   * TLS: `true`, or a custom CA, a client certificate and key, and the name the server's certificate must carry.
   * Turns TLS on (as `rediss://` or `ssl=true` do); certificate verification is on unless `rejectUnauthorized` is
   * `false`.
   * @default off, unless the URL is `rediss://` or the connection string says `ssl=true`
   */
  readonly tls?: boolean | RedisTlsOptions;
  /**
   * Whether the server refuses to start when Redis cannot be reached within the connect timeout (StackExchange.Redis
   * `abortConnect`). Either way, credentials, certificates or an ACL that Redis refuses fail startup, since no retry
   * can cure them. Registration waits for the first connection up to the connect timeout (5 s by default): keep that
   * below Fastify's `pluginTimeout` (10 s by default).
   * @default the connection string's `abortConnect` (StackExchange.Redis: `true`, `false` for Azure host names);
   *   `false` with `url` or `options`: the server starts and connects when Redis is there
   */
  readonly abortConnect?: boolean;
  /**
   * The StackExchange.Redis `ChannelPrefix` the .NET servers use (`channelPrefix=` in their connection string),
   * written before every channel name with no separator: `myapp` gives `myappMyApp.ChatHub:all`.
   * @default the connection string's `channelPrefix`, else '' (none)
   */
  readonly channelPrefix?: string;
  /**
   * How long adding a connection of another server to a group (or removing it) waits for that server's ack before
   * the call fails. .NET waits 30 s (checked every 5 s).
   * @default 30000
   */
  readonly ackTimeoutMs?: number;
  /**
   * Presence across every server: each server records its connections (id, user, transport, protocol, connected-at)
   * and their groups in Redis, with a heartbeat, so `presence` answers for the whole fleet, user-level groups work
   * and join/leave events reach every server. Costs one pipelined round trip per connect, disconnect, join and leave.
   * `true`, or `{ heartbeatIntervalMs }`: a server silent for three heartbeats is taken for dead and its entries
   * removed. Not on a Redis Cluster. See docs/protocol.md §3.9.
   * @default false (presence answers for this server only)
   */
  readonly presence?: boolean | RedisPresenceOptions;
  /**
   * Payload bytes of publishes kept while Redis is unreachable (or failing over, or this server's subscriptions are
   * not back yet); they are sent, in order, once it is back. A publish that would pass the bound is dropped, counted
   * (`signalr_backplane_publishes_dropped_total`) and logged. 0 keeps no queue: a publish then fails at once while
   * Redis is down, as with .NET's backplane.
   * @default 16777216
   */
  readonly maximumQueuedPublishBytes?: number;
  /**
   * How long a publish may wait for Redis; older ones are dropped, counted and logged like those past the byte
   * bound. Messages are for people connected now: one sent minutes late is rarely wanted.
   * @default 60000
   */
  readonly maximumQueuedPublishAgeMs?: number;
  /**
   * `'pubsub'`: the layout of ASP.NET Core's Redis backplane (.NET servers can share the Redis). `'streams'`: every
   * channel's messages go through Redis Streams, read from each server's last position, so nothing published while
   * a server was cut off from Redis is lost within the retained window — for fleets of fastify-signalr servers only
   * (.NET servers cannot read it; a mixed fleet fails to start). See the README, "Replayable backplane".
   * @default 'pubsub'
   */
  readonly mode?: 'pubsub' | 'streams';
  /**
   * Streams mode: entries kept per stream at most (approximate `MAXLEN`).
   * @default 100000
   */
  readonly streamMaximumLength?: number;
  /**
   * Streams mode: how long entries are kept at most, in ms (approximate `MINID`): the longest gap a server can
   * read back.
   * @default 60000
   */
  readonly streamMaximumAgeMs?: number;
  /**
   * Streams mode: how many streams carry a channel prefix's traffic (a channel's stream is a hash of its name).
   * Every server of a fleet must use the same count.
   * @default 1, or 8 on a Redis Cluster
   */
  readonly streamCount?: number;
  /**
   * Redis Cluster only: every backplane channel is published with `SPUBLISH` and subscribed with `SSUBSCRIBE` on
   * the node that owns its slot, so each message crosses only the shard that owns its channel instead of every node
   * of the cluster (classic `PUBLISH` is broadcast to all of them). ASP.NET Core servers publish with classic
   * `PUBLISH`, so they cannot share a cluster with servers in this mode: a fleet turns it on for every server at
   * once. Refused with a single Redis or Sentinel (`SIGNALR_ERR_REDIS_SHARDED_NEEDS_CLUSTER`). See
   * docs/protocol.md §3.11.
   * @default false
   */
  readonly shardedPubSub?: boolean;
}

/** Each option of presence across servers. */
export const redisPresenceOptionDescriptors: DescriptorsOf<RedisPresenceOptions> = Object.freeze({
  heartbeatIntervalMs: integerDescriptor(
    'how often each server renews its presence heartbeat; a server silent for three of them is taken for dead',
    DEFAULT_PRESENCE_HEARTBEAT_MS,
    { min: 10, env: 'SIGNALR_PRESENCE_HEARTBEAT_MS' },
  ),
});

const pem = (what: string) => `must be PEM text or a Buffer${what}`;
const redisTlsSchema = z.strictObject({
  ca: z
    .custom<RedisTlsOptions['ca']>(
      (value) =>
        typeof value === 'string' ||
        Buffer.isBuffer(value) ||
        (Array.isArray(value) && value.every((item) => typeof item === 'string' || Buffer.isBuffer(item))),
      pem(', or a list of them'),
    )
    .optional(),
  cert: z.custom<string | Buffer>((value) => typeof value === 'string' || Buffer.isBuffer(value), pem('')).optional(),
  key: z.custom<string | Buffer>((value) => typeof value === 'string' || Buffer.isBuffer(value), pem('')).optional(),
  servername: z.string().min(1).optional(),
  rejectUnauthorized: z.boolean().optional(),
});

const REQUIRED_LOCATION = 'none (one of `url`, `connectionString` and `options` is required)';

/** Each option of the Redis backplane. */
export const redisOptionDescriptors: DescriptorsOf<RedisBackplaneOptions> = Object.freeze({
  url: customDescriptor(
    'where Redis is, as a `redis://` or `rediss://` URL',
    z
      .string()
      .refine(
        isRedisUrl,
        'must be a redis:// or rediss:// URL (give a StackExchange.Redis connection string as connectionString)',
      ),
    { defaultText: REQUIRED_LOCATION },
  ),
  connectionString: customDescriptor(
    "where Redis is, as the .NET servers' StackExchange.Redis connection string",
    z.string(),
    { defaultText: REQUIRED_LOCATION },
  ),
  options: customDescriptor(
    'ioredis connection options; they win over `url` and `connectionString`',
    z.custom<RedisConnectionOptions>((value) => typeof value === 'object' && value !== null, 'must be an object'),
    {
      defaultText:
        'reconnect after 50 ms, 100 ms, … up to 1 s between attempts, for ever; 5 s connect and command timeouts',
    },
  ),
  tls: customDescriptor(
    "`true`, or `{ ca, cert, key, servername, rejectUnauthorized }`: a private CA, a client certificate, the name on the server's certificate; verification is on unless `rejectUnauthorized: false`",
    z
      .custom<boolean | RedisTlsOptions>(
        (value) => typeof value === 'boolean' || (typeof value === 'object' && value !== null),
        'must be true, false or TLS options { ca, cert, key, servername, rejectUnauthorized }',
      )
      // A union would only say "invalid input"; the object's own issues name the bad field.
      .superRefine((value, context) => {
        if (typeof value === 'boolean') return;
        const parsed = redisTlsSchema.safeParse(value);
        if (!parsed.success) {
          for (const issue of parsed.error.issues)
            context.addIssue({ ...issue, code: 'custom', message: issue.message });
        }
      }),
    { defaultText: 'off, unless the URL is `rediss://` or the connection string says `ssl=true`' },
  ),
  abortConnect: customDescriptor(
    'refuse to start when Redis cannot be reached within the connect timeout',
    z.boolean(),
    {
      defaultText:
        "the connection string's `abortConnect` (StackExchange.Redis: `true`, `false` for Azure host names); `false` with " +
        '`url` or `options`: the server starts and connects when Redis is there',
    },
  ),
  channelPrefix: customDescriptor(
    "the .NET servers' StackExchange.Redis `ChannelPrefix`, written before every channel with no separator",
    z.string(),
    { defaultText: "the connection string's `channelPrefix`, else '' (none)" },
  ),
  ackTimeoutMs: integerDescriptor(
    "how long adding a connection of another server to a group (or removing it) waits for that server's ack",
    DEFAULT_GROUP_ACK_TIMEOUT_MS,
    { env: 'REDIS_ACK_TIMEOUT_MS' },
  ),
  presence: customDescriptor(
    '`true` or `{ heartbeatIntervalMs }`: record connections, users and groups in Redis so `presence` answers for ' +
      'every server — see [Presence](#presence-who-is-connected-on-every-server)',
    z.union([z.boolean(), z.strictObject(optionalShape(redisPresenceOptionDescriptors))], {
      error: 'must be true, false or { heartbeatIntervalMs }',
    }),
    { default: false, defaultText: 'false (presence answers for this server only)' },
  ),
  maximumQueuedPublishBytes: integerDescriptor(
    'payload bytes of publishes kept while Redis is unreachable and sent once it is back ' +
      '([When Redis goes away](#when-redis-goes-away)); a publish that would pass it ' +
      'is dropped and counted; `0`: no queue, a publish fails at once while Redis is down, as with .NET',
    16 * 1024 * 1024,
    { min: 0, env: 'REDIS_MAX_QUEUED_PUBLISH_BYTES' },
  ),
  maximumQueuedPublishAgeMs: integerDescriptor(
    'how long a publish may wait for Redis; older ones are dropped and counted',
    60_000,
    { env: 'REDIS_MAX_QUEUED_PUBLISH_AGE_MS' },
  ),
  mode: customDescriptor<'pubsub' | 'streams'>(
    "the backplane's layout: `'pubsub'` (ASP.NET Core's; .NET servers can share it) or `'streams'` (Redis Streams, " +
      'read back after any disconnection; our servers only), [below](#replayable-backplane-streams-mode)',
    z.enum(['pubsub', 'streams']),
    { default: 'pubsub' },
  ),
  streamMaximumLength: integerDescriptor(
    'streams mode: entries kept per stream at most (approximate)',
    DEFAULT_STREAM_MAXIMUM_LENGTH,
    {
      env: 'REDIS_STREAM_MAX_LENGTH',
    },
  ),
  streamMaximumAgeMs: integerDescriptor(
    'streams mode: how long entries are kept at most (approximate): the longest gap a server can read back',
    DEFAULT_STREAM_MAXIMUM_AGE_MS,
    { env: 'REDIS_STREAM_MAX_AGE_MS' },
  ),
  streamCount: customDescriptor(
    "streams mode: how many streams carry a channel prefix's traffic (a channel's stream is a hash of its name); " +
      'every server of a fleet must use the same count',
    z.number().int().min(1).max(1024),
    { defaultText: '1, or 8 on a Redis Cluster' },
  ),
  shardedPubSub: booleanDescriptor(
    'Redis Cluster only: publish with `SPUBLISH` and subscribe with `SSUBSCRIBE` on the node owning each ' +
      "channel's slot, so a message crosses one shard instead of every node; .NET servers cannot share the cluster " +
      '([Sharded pub/sub](#sharded-pubsub-on-a-redis-cluster))',
    false,
    { env: 'SIGNALR_REDIS_SHARDED' },
  ),
});

/** Validates the `redis` option: each field by its descriptor, and where Redis is given exactly once. */
export const redisBackplaneSchema = z
  .strictObject(optionalShape(redisOptionDescriptors))
  .refine(
    (redis) => redis.url !== undefined || redis.connectionString !== undefined || redis.options !== undefined,
    'needs a url, a connectionString or options',
  )
  .refine(
    (redis) => redis.url === undefined || redis.connectionString === undefined,
    'takes a url or a connectionString, not both',
  );

/** The Redis backplane options after defaults. */
export interface ResolvedRedisOptions {
  /** Where Redis is and how to connect, from every form of the option. */
  readonly target: RedisTarget;
  readonly channelPrefix: string;
  readonly ackTimeoutMs: number;
  /** Presence across servers, or null when off. */
  readonly presence: RedisPresenceOptions | null;
  /** Bounds of the queue of publishes kept while Redis is unreachable (`maximumBytes` 0: no queue). */
  readonly publishQueue: { readonly maximumBytes: number; readonly maximumAgeMs: number };
  /** The backplane's layout: .NET's pub/sub, or Redis Streams. */
  readonly mode: 'pubsub' | 'streams';
  /** Streams mode: retention, and the stream count when configured. */
  readonly streams: { readonly maximumLength: number; readonly maximumAgeMs: number; readonly count?: number };
  /** Pub/sub mode on a Redis Cluster: `SPUBLISH`/`SSUBSCRIBE` on the node owning each channel's slot. */
  readonly shardedPubSub: boolean;
}

/**
 * Applies the defaults to a validated `redis` option.
 * @throws RedisConfigurationError when the connection string or URL cannot be read
 */
export function resolveRedisOptions(redis: z.output<typeof redisBackplaneSchema>): ResolvedRedisOptions {
  const target = resolveRedisTarget(redis);
  const defaults = redisOptionDescriptors;
  const shardedPubSub = redis.shardedPubSub ?? defaults.shardedPubSub.default!;
  if (shardedPubSub) checkShardedPubSubTarget(target, redis.mode ?? defaults.mode.default!);
  return Object.freeze({
    target,
    channelPrefix: redis.channelPrefix ?? target.channelPrefix ?? '',
    ackTimeoutMs: redis.ackTimeoutMs ?? defaults.ackTimeoutMs.default!,
    presence:
      redis.presence === undefined || redis.presence === false
        ? null
        : redis.presence === true
          ? {}
          : { ...redis.presence },
    publishQueue: Object.freeze({
      maximumBytes: redis.maximumQueuedPublishBytes ?? defaults.maximumQueuedPublishBytes.default!,
      maximumAgeMs: redis.maximumQueuedPublishAgeMs ?? defaults.maximumQueuedPublishAgeMs.default!,
    }),
    mode: redis.mode ?? defaults.mode.default!,
    streams: Object.freeze({
      maximumLength: redis.streamMaximumLength ?? defaults.streamMaximumLength.default!,
      maximumAgeMs: redis.streamMaximumAgeMs ?? defaults.streamMaximumAgeMs.default!,
      ...(redis.streamCount !== undefined && { count: redis.streamCount }),
    }),
    shardedPubSub,
  });
}

/**
 * Refuses `shardedPubSub` where it cannot work, before anything connects: Sentinel and a Unix socket mean one
 * Redis server (sharded channels are a Redis Cluster's), and streams mode has no pub/sub to shard. A single server
 * given by host name is only found out at the first connection (`RedisBus.ready`).
 * @throws RedisShardedPubSubError
 */
function checkShardedPubSubTarget(target: RedisTarget, mode: 'pubsub' | 'streams'): void {
  if (mode === 'streams') {
    throw new RedisShardedPubSubError(
      "redis.shardedPubSub is a pub/sub layout; streams mode (redis.mode 'streams') shards its streams over a cluster " +
        'by itself. Turn one of them off.',
    );
  }
  if (target.mode === 'sentinel') {
    throw new RedisShardedPubSubError(shardedNeedsClusterExplanation(`${target.description} (Sentinel)`));
  }
  if (target.mode === 'ioredis') {
    throw new RedisShardedPubSubError(shardedNeedsClusterExplanation(`${target.description} (a Unix socket)`));
  }
}
