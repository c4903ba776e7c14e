/**
 * The Redis backplane of one server: one bus (two Redis connections) shared by every hub, and one
 * {@link RedisLifetimeManager} per hub, each with its own server name as in .NET (docs/protocol.md §3.1: one
 * `RedisHubLifetimeManager<THub>` per hub type per process).
 */
import type { HubProtocol } from '../../protocol/hub-protocol';
import { jsonHubProtocol } from '../../protocol/json-hub-protocol';
import { messagePackHubProtocol } from '../../protocol/messagepack-hub-protocol';
import { lifetimeLimits, type ResolvedHubOptions } from '../hub/hub-options';
import type { ResolvedRedisOptions } from './redis-options';
import type { BackplaneBus, BackplaneHealth, BackplaneLogger } from '../lifetime/backplane-bus';
import { RedisBus } from './redis-bus';
import { RedisLifetimeManager } from './redis-lifetime-manager';
import { StreamsBus, modeMarkerKey } from '../redis/streams-bus';

/** The backplane's health, with the name each hub goes by on it. */
export interface BackplaneStatus extends BackplaneHealth {
  /** Each hub's path, backplane name and this server's name for it (in its ack and return channels). */
  readonly hubs: readonly { readonly path: string; readonly name: string; readonly serverName: string }[];
  /** The channel prefix written before every channel name. */
  readonly channelPrefix: string;
  /** The layout: `pubsub` (.NET's) or `streams` (Redis Streams; our servers only). */
  readonly mode: 'pubsub' | 'streams';
  /** Pub/sub mode on a Redis Cluster with `SPUBLISH`/`SSUBSCRIBE` (`redis.shardedPubSub`). */
  readonly shardedPubSub: boolean;
  /** Where Redis is (endpoints or sentinels, TLS, user; never a password). */
  readonly redis: string;
}

/**
 * The protocols an invocation is published in: `json` and `messagepack` always, in .NET's order — a .NET server
 * on the same Redis aborts its clients whose protocol a payload lacks (docs/protocol.md §3.3) — then any other protocol
 * the hub offers. A hub's own implementation of a protocol name is preferred to the built-in one.
 */
export function publishedProtocols(hubProtocols: readonly HubProtocol[]): HubProtocol[] {
  const byName = new Map<string, HubProtocol>();
  for (const protocol of [...hubProtocols, jsonHubProtocol, messagePackHubProtocol]) {
    if (!byName.has(protocol.name)) byName.set(protocol.name, protocol);
  }
  const ordered = ['json', 'messagepack'].map((name) => byName.get(name) as HubProtocol);
  for (const [name, protocol] of byName) if (name !== 'json' && name !== 'messagepack') ordered.push(protocol);
  return ordered;
}

/**
 * The bus of `options.mode`: pub/sub ({@link RedisBus}, refusing to start beside servers in streams mode), or
 * Redis Streams ({@link StreamsBus}).
 */
function createBus(options: ResolvedRedisOptions, log: BackplaneLogger): BackplaneBus {
  if (options.mode === 'streams') {
    return new StreamsBus({
      target: options.target,
      log,
      publishQueue: options.publishQueue,
      keyPrefix: options.channelPrefix,
      retention: options.streams,
      ...(options.streams.count !== undefined && { streamCount: options.streams.count }),
    });
  }
  return new RedisBus({
    target: options.target,
    log,
    publishQueue: options.publishQueue,
    streamsMarkerKey: modeMarkerKey(options.channelPrefix),
    shardedPubSub: options.shardedPubSub,
  });
}

/** The bus and the lifetime managers of one server. */
export class RedisBackplane {
  private readonly managers: { readonly hub: ResolvedHubOptions; readonly manager: RedisLifetimeManager }[] = [];

  /**
   * @param bus the pub/sub connection; a {@link RedisBus} on `options` by default (it starts connecting at once,
   *   and keeps retrying while Redis is unreachable)
   */
  constructor(
    private readonly options: ResolvedRedisOptions,
    private readonly log: BackplaneLogger,
    readonly bus: BackplaneBus = createBus(options, log),
  ) {}

  /**
   * Settles when the first connection attempt has an outcome (see `RedisBus.ready`): rejects, after closing the
   * bus, when the server should not start — Redis refused the credentials, TLS or the ACL, or (with
   * `abortConnect`) could not be reached in time.
   */
  async ready(): Promise<void> {
    if (!(this.bus instanceof RedisBus) && !(this.bus instanceof StreamsBus)) return;
    try {
      await this.bus.ready();
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** The lifetime manager of one hub. */
  createManager(hub: ResolvedHubOptions, log: BackplaneLogger = this.log): RedisLifetimeManager {
    const manager = new RedisLifetimeManager({
      bus: this.bus,
      hubName: hub.name,
      channelPrefix: this.options.channelPrefix,
      protocols: publishedProtocols(hub.protocols),
      ackTimeoutMs: this.options.ackTimeoutMs,
      log,
      limits: lifetimeLimits(hub),
      ...(this.options.presence !== null && { presence: this.options.presence }),
    });
    this.managers.push({ hub, manager });
    return manager;
  }

  /** Health and names, for a health endpoint. */
  status(): BackplaneStatus {
    return {
      ...this.bus.health(),
      channelPrefix: this.options.channelPrefix,
      mode: this.options.mode,
      shardedPubSub: this.options.shardedPubSub,
      redis: this.options.target.description,
      hubs: this.managers.map(({ hub, manager }) => ({
        path: hub.path,
        name: hub.name,
        serverName: manager.serverName,
      })),
    };
  }

  /** Disconnects from Redis; call after the lifetime managers are closed. */
  close(): Promise<void> {
    return this.bus.close();
  }
}
