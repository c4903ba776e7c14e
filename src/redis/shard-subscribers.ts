/**
 * The subscribing half of sharded pub/sub (`redis.shardedPubSub`, docs/protocol.md §3.11): one subscriber
 * connection per cluster node that owns the slot of a wanted channel, each channel subscribed with `SSUBSCRIBE` on
 * the node that owns its slot now, and subscribed again wherever it goes when that changes. With `redis-bus.ts` and
 * `redis-connector.ts`, the only files that know ioredis.
 *
 * Why not ioredis's own `Cluster({ shardedSubscribers: true })` (ioredis 5.11): its subscriber connections do not
 * reconnect by themselves (they wait for the next slot refresh), it resubscribes in bulk out of the caller's sight,
 * so nobody could say which channel Redis confirmed — which is what lets the lifetime manager deliver to its own
 * clients meanwhile — and its channel list grows on every `SSUBSCRIBE` of a channel already wanted. Here the wanted
 * channels are this file's: one `SSUBSCRIBE` per channel, through the same byte window as classic subscriptions.
 *
 * What a subscription survives, and how:
 * - **A slot that moves** (`CLUSTER SETSLOT … NODE`, a reshard): the node that lost it sends an unsolicited
 *   `sunsubscribe` for each of its channels. ioredis 5 pairs that push with the oldest command awaiting a reply (or,
 *   with none, reports "Command queue state error"), so from then on that connection's replies are off by one. The
 *   connection is therefore dropped and opened again at the first sign — that error, or a reply whose subscription
 *   count is below what Redis confirmed — and every channel of that node is routed again after a refresh of the
 *   slot table: the moved one goes to its new owner.
 * - **`MOVED`** in reply to an `SSUBSCRIBE` (the table was stale): the channel goes at once to the node the reply
 *   names, and the table is refreshed.
 * - **A node restart**: the connection reconnects (the connector's retry strategy) and subscribes its channels
 *   again; **a failover**: the slot table (the publishing `Cluster` refreshes it on `MOVED`, on failures and every
 *   few seconds; this file asks too while a channel is not confirmed) names the promoted replica, and the channels
 *   move there. A connection to a node that owns no wanted channel's slot is closed.
 * Until a channel is confirmed on the node that owns it, {@link ShardSubscribers.receives} is false for it.
 */
import type Redis from 'ioredis';
import type { Cluster } from 'ioredis';
import type { BackplaneLogger } from '../lifetime/backplane-bus';
import { logEvent } from '../shared/log-events';
import { clusterSlot } from './cluster-slot';
import type { RedisTarget } from './redis-config';
import { EndpointRing, openConnection, Session } from './redis-connector';
import { CONNECTION_LOST, describeRedisError, fatalKind, isConnectionLoss } from './redis-errors';
import { ByteWindow, SUBSCRIPTION_REPLY_OVERHEAD, SUBSCRIPTION_WINDOW_BYTES } from './subscription-window';

/** How often the slot table is asked again and unconfirmed channels retried while any wanted channel is not confirmed. */
export const SHARD_REPAIR_INTERVAL_MS = 500;

/** What ioredis reports when a reply came that no command was waiting for (an unsolicited `sunsubscribe`). */
const OUT_OF_STEP = /Command queue state error/;

/** Options of {@link ShardSubscribers}. */
export interface ShardSubscribersOptions {
  readonly target: RedisTarget;
  /** The publishing cluster client: its slot table says which node owns a slot, its refreshes say when that changes. */
  readonly cluster: Cluster;
  readonly log: BackplaneLogger;
  /** A message on a subscribed channel (channel and payload as Redis sent them). */
  readonly onMessage: (channel: Buffer, payload: Buffer) => void;
  /** Which channels are confirmed changed (the bus recomputes its state). */
  readonly onChange: () => void;
  /** Channels that stopped being received on their connection (echoes of them will not come). */
  readonly onLost: (channels: readonly string[]) => void;
  /** Redis refused a subscription for a reason no retry cures (an ACL without the channel). */
  readonly onFatal: (text: string, channel: string) => void;
}

/** One subscriber connection to one cluster node. */
interface ShardNode {
  /** `host:port`, as the slot table names the node. */
  readonly key: string;
  readonly redis: Redis;
  ready: boolean;
  session: Session;
  /** Wanted channels whose slot this node owns (as far as this side knows). */
  readonly channels: Set<string>;
  /** Of those, the ones Redis confirmed on the current connection. */
  readonly confirmed: Set<string>;
  /** Of those, the ones whose SSUBSCRIBE awaits its reply. */
  readonly pending: Set<string>;
}

interface WantedChannel {
  readonly slot: number;
  node: ShardNode | undefined;
  /** Callers of `want` waiting for the first confirmation. */
  waiters: (() => void)[];
}

/** The sharded subscriptions of one bus (see the file's description). */
export class ShardSubscribers {
  /** Wanted channels, in the order they were first wanted. */
  private readonly channels = new Map<string, WantedChannel>();
  private readonly nodes = new Map<string, ShardNode>();
  /** Owners that `MOVED` replies named, by slot, until the next refresh of the slot table. */
  private readonly moved = new Map<number, string>();
  private readonly window = new ByteWindow(SUBSCRIPTION_WINDOW_BYTES);
  private repairTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly onRefresh = () => {
    this.moved.clear();
    this.route();
  };

  constructor(private readonly options: ShardSubscribersOptions) {
    options.cluster.on('refresh', this.onRefresh);
    options.cluster.on('ready', this.onRefresh);
  }

  /** True when `channel` is confirmed on the connection to the node that owns its slot, and that connection is up. */
  receives(channel: string): boolean {
    const node = this.channels.get(channel)?.node;
    return node !== undefined && node.ready && node.confirmed.has(channel);
  }

  /**
   * Every wanted channel is received (also true with none). Counted per node, not per channel — the bus asks at every
   * confirmation, thousands of times in a resubscription — which holds because a node's confirmed channels are always
   * wanted channels placed on that node (each path that moves, forgets or loses a channel takes it out).
   */
  get complete(): boolean {
    return this.confirmedCount === this.channels.size;
  }

  /** Subscriber connections open now (one per node owning a wanted channel's slot). */
  get connections(): number {
    return this.nodes.size;
  }

  /** Channels confirmed subscribed on their node now. */
  get confirmedCount(): number {
    let count = 0;
    for (const node of this.nodes.values()) if (node.ready) count += node.confirmed.size;
    return count;
  }

  /**
   * Records `channel` as wanted and subscribes it on its node. Resolves once Redis confirmed it — after the node's
   * connection is made, when it is the first channel there — or as soon as that connection fails or closes, or at
   * once when no owner is known yet (it is subscribed when it can be; `receives` says which). Never rejects.
   */
  want(channel: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    const known = this.channels.get(channel);
    if (known !== undefined) return Promise.resolve();
    const entry: WantedChannel = { slot: clusterSlot(channel), node: undefined, waiters: [] };
    this.channels.set(channel, entry);
    const confirmed = new Promise<void>((resolve) => entry.waiters.push(resolve));
    this.place(channel, entry);
    // No owner known (the cluster client has no slot table yet): subscribed once it has one.
    if (entry.node === undefined) this.release(entry);
    this.scheduleRepair();
    return confirmed;
  }

  /** Forgets `channel` and sends SUNSUBSCRIBE on its node when subscribed there; resolves once Redis answered. */
  async unwant(channel: string): Promise<void> {
    const entry = this.channels.get(channel);
    if (entry === undefined) return;
    this.channels.delete(channel);
    this.release(entry);
    const node = entry.node;
    if (node === undefined) return;
    node.channels.delete(channel);
    const subscribed = node.confirmed.delete(channel) || node.pending.has(channel);
    if (subscribed && node.ready) await this.send(node, channel);
  }

  /** Closes every subscriber connection; nothing is received afterwards. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.repairTimer);
    this.repairTimer = undefined;
    this.options.cluster.off('refresh', this.onRefresh);
    this.options.cluster.off('ready', this.onRefresh);
    for (const entry of this.channels.values()) this.release(entry);
    this.channels.clear();
    for (const node of this.nodes.values()) this.drop(node);
  }

  // ------------------------------------------------------------------------------------------------------------

  /** The node that owns `slot` now: a `MOVED` reply's word first, then the cluster client's slot table. */
  private ownerOf(slot: number): string | undefined {
    return this.moved.get(slot) ?? this.options.cluster.slots[slot]?.[0];
  }

  /** Puts every wanted channel on the node that owns its slot now, and closes connections no channel needs. */
  private route(): void {
    if (this.closed) return;
    for (const [channel, entry] of this.channels) this.place(channel, entry);
    for (const node of [...this.nodes.values()]) if (node.channels.size === 0) this.drop(node);
    this.options.onChange();
  }

  /** Moves `channel` to the node owning its slot, subscribing it there, when it is not there already. */
  private place(channel: string, entry: WantedChannel): void {
    const key = this.ownerOf(entry.slot);
    const current = entry.node;
    if (current !== undefined && current.key === key) return;
    if (current !== undefined) {
      current.channels.delete(channel);
      const subscribed = current.confirmed.delete(channel) || current.pending.has(channel);
      // Still subscribed where the slot no longer lives (the node may not have said so yet): leave it.
      if (subscribed && current.ready) void this.send(current, channel);
      this.options.onLost([channel]);
    }
    entry.node = undefined;
    if (key === undefined) return;
    const node = this.nodes.get(key) ?? this.open(key);
    node.channels.add(channel);
    entry.node = node;
    if (node.ready) void this.subscribeOn(node, channel);
  }

  /** Opens the subscriber connection to the node `key` (`host:port`). */
  private open(key: string): ShardNode {
    const colon = key.lastIndexOf(':');
    const endpoint = { host: key.slice(0, colon), port: Number(key.slice(colon + 1)) };
    const plan = { mode: 'endpoints' as const, endpoints: [endpoint], redisOptions: this.options.target.redisOptions };
    const { redis } = openConnection(plan, 'shard', new EndpointRing([endpoint]));
    const node: ShardNode = {
      key,
      redis,
      ready: false,
      session: new Session(),
      channels: new Set(),
      confirmed: new Set(),
      pending: new Set(),
    };
    this.nodes.set(key, node);
    redis.on('smessageBuffer', (channel: Buffer, payload: Buffer) => this.options.onMessage(channel, payload));
    redis.on('ready', () => {
      if (this.nodes.get(key) !== node) return;
      node.ready = true;
      node.session = new Session();
      for (const channel of node.channels) void this.subscribeOn(node, channel);
      this.options.onChange();
    });
    redis.on('close', () => this.lost(node));
    redis.on('error', (error: Error) => {
      if (OUT_OF_STEP.test(error.message)) {
        this.restart(node, 'a reply no command was waiting for (a slot moved away from the node)');
        return;
      }
      this.options.log.debug(
        { error: describeRedisError(error, this.options.target.secrets), node: key },
        'Redis backplane: shard subscriber connection error',
      );
    });
    return node;
  }

  /** The connection of `node` closed: nothing is confirmed on it any more; the topology may have changed. */
  private lost(node: ShardNode): void {
    const wasReady = node.ready;
    node.ready = false;
    node.session.end();
    const lost = [...node.confirmed];
    node.confirmed.clear();
    node.pending.clear();
    if (lost.length > 0) this.options.onLost(lost);
    // Whoever waits for a channel of this node goes on: it is subscribed when the node is back, or elsewhere.
    for (const channel of node.channels) {
      const entry = this.channels.get(channel);
      if (entry !== undefined) this.release(entry);
    }
    if (this.closed || this.nodes.get(node.key) !== node) return;
    if (wasReady) this.options.cluster.refreshSlotsCache();
    this.scheduleRepair();
    this.options.onChange();
  }

  /**
   * The connection of `node` is out of step with its replies (see the file's description): it is dropped and opened
   * again, after the slot table is asked anew, so each of its channels goes to the node that owns it now.
   */
  private restart(node: ShardNode, why: string): void {
    if (this.closed || this.nodes.get(node.key) !== node) return;
    logEvent(
      this.options.log,
      'info',
      'signalr.backplane.info',
      { node: node.key, channels: node.channels.size },
      `Redis backplane: shard subscriber connection to ${node.key} opened again: ${why}`,
    );
    this.nodes.delete(node.key);
    const channels = [...node.channels];
    this.drop(node);
    for (const channel of channels) {
      const entry = this.channels.get(channel);
      if (entry !== undefined && entry.node === node) entry.node = undefined;
    }
    this.options.cluster.refreshSlotsCache(() => this.route());
    this.route();
    this.scheduleRepair();
  }

  /** Closes the connection of `node` and forgets it. */
  private drop(node: ShardNode): void {
    if (this.nodes.get(node.key) === node) this.nodes.delete(node.key);
    this.lost(node);
    node.redis.removeAllListeners('smessageBuffer');
    node.redis.removeAllListeners('ready');
    node.redis.removeAllListeners('close');
    node.redis.removeAllListeners('error');
    // An error the socket still reports after the disconnect must not go unhandled.
    node.redis.on('error', () => undefined);
    node.redis.disconnect();
  }

  /** Sends the SSUBSCRIBE of `channel` on `node` and records the confirmation; follows a `MOVED` reply. */
  private async subscribeOn(node: ShardNode, channel: string): Promise<void> {
    // Sent again even while an earlier one is in flight: that one may be followed by the SUNSUBSCRIBE of a leave.
    if (node.confirmed.has(channel)) return;
    const session = node.session;
    node.pending.add(channel);
    let error: Error | undefined;
    /** The reply's count: how many sharded channels Redis holds for this connection. */
    let count = Number.NaN;
    try {
      await this.window.run(Buffer.byteLength(channel) + SUBSCRIPTION_REPLY_OVERHEAD, async () => {
        if (session !== node.session || !node.ready) throw new Error(CONNECTION_LOST);
        count = Number(await session.track(node.redis.ssubscribe(channel), () => new Error(CONNECTION_LOST)));
      });
    } catch (caught) {
      error = caught as Error;
    }
    const entry = this.channels.get(channel);
    if (session !== node.session) {
      // The connection closed meanwhile; the next one subscribes it again.
      if (entry !== undefined) this.release(entry);
      return;
    }
    node.pending.delete(channel);
    if (entry === undefined) return;
    if (error === undefined) {
      if (entry.node === node && node.channels.has(channel)) {
        node.confirmed.add(channel);
        // Redis holds at least what it confirmed (more while SUNSUBSCRIBEs are on their way). Fewer: the reply was an
        // unsolicited sunsubscribe that ioredis paired with this command, and the replies are out of step (see the
        // file's description; when the count cannot show it, the reply left over at the end does, as an error).
        if (count < node.confirmed.size) {
          this.release(entry);
          this.restart(node, 'a channel was unsubscribed by the node (a slot moved away from it)');
          return;
        }
        this.options.onChange();
      }
      this.release(entry);
      return;
    }
    const text = describeRedisError(error, this.options.target.secrets);
    const moved = /^MOVED (\d+) (\S+)/.exec(text);
    if (moved !== null) {
      this.moved.set(Number(moved[1]), moved[2]);
      this.options.cluster.refreshSlotsCache();
      this.place(channel, entry);
      if (entry.node === undefined) this.release(entry);
      this.scheduleRepair();
      return;
    }
    this.release(entry);
    if (fatalKind(error) === 'permission') {
      this.options.onFatal(text, channel);
      return;
    }
    if (!isConnectionLoss(error) && text !== CONNECTION_LOST && node.ready) {
      logEvent(
        this.options.log,
        'warn',
        'signalr.backplane.subscribe_failed',
        { error: text, channel, node: node.key },
        'Redis backplane: ssubscribe failed',
      );
    }
    this.scheduleRepair();
  }

  /** Sends the SUNSUBSCRIBE of `channel` on `node` through the window; never rejects. */
  private async send(node: ShardNode, channel: string): Promise<void> {
    const session = node.session;
    try {
      await this.window.run(Buffer.byteLength(channel) + SUBSCRIPTION_REPLY_OVERHEAD, async () => {
        if (session !== node.session || !node.ready) return;
        await session.track(node.redis.sunsubscribe(channel), () => new Error(CONNECTION_LOST));
      });
    } catch (error) {
      if (session !== node.session || !node.ready) return;
      logEvent(
        this.options.log,
        'warn',
        'signalr.backplane.unsubscribe_failed',
        { error: describeRedisError(error as Error, this.options.target.secrets), channel, node: node.key },
        'Redis backplane: sunsubscribe failed',
      );
    }
  }

  /** Lets the callers of `want` for `entry` go on. */
  private release(entry: WantedChannel): void {
    const waiters = entry.waiters;
    entry.waiters = [];
    for (const resolve of waiters) resolve();
  }

  /**
   * While a wanted channel is not received, asks for the slot table again and retries what is not confirmed, every
   * {@link SHARD_REPAIR_INTERVAL_MS}: the safety net under every path above (a failover the table shows late, a
   * subscription that failed, a node that came back as a replica).
   */
  private scheduleRepair(): void {
    if (this.closed || this.repairTimer !== undefined) return;
    this.repairTimer = setTimeout(() => {
      this.repairTimer = undefined;
      if (this.closed || this.complete) return;
      this.options.cluster.refreshSlotsCache();
      this.route();
      for (const [channel, entry] of this.channels) {
        const node = entry.node;
        if (node !== undefined && node.ready && !node.pending.has(channel)) void this.subscribeOn(node, channel);
      }
      this.scheduleRepair();
    }, SHARD_REPAIR_INTERVAL_MS);
    this.repairTimer.unref();
  }
}
