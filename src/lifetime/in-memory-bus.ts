/**
 * A {@link BackplaneBus} without Redis: several buses — several "servers" of one process — share one
 * {@link InMemoryBroker}, which delivers what one publishes to every bus subscribed to the channel, as Redis pub/sub
 * does. A backplane lifetime manager runs on it unchanged, with the same payloads it publishes on Redis, so the
 * cross-server semantics of routing, groups, users, acks and client results can be tested without a redis-server
 * (socket.io's cluster adapter is tested the same way).
 *
 * What it keeps of Redis pub/sub: delivery is asynchronous (never inside `publish`), in publish order for every
 * subscriber (across channels too: one broker queue, as one Redis server's single thread), to the buses subscribed
 * when the message is published; a publish resolves with that number of subscribers; each receiver gets its own
 * copy of the bytes; nothing is stored for a bus that subscribes later. What it leaves out: outages (it is always
 * connected until closed, so it never queues) and keyed storage (`store` is absent, so fleet-wide presence needs
 * Redis).
 */
import {
  BackplaneUnavailableError,
  type BackplaneBus,
  type BackplaneHealth,
  type BackplaneLogger,
  type BackplaneState,
  type ChannelListener,
  type PublishOptions,
} from './backplane-bus';

/** One published message on its way to the buses subscribed when it was published. */
interface Delivery {
  readonly channel: string;
  readonly payload: Buffer;
  readonly receivers: readonly InMemoryBus[];
}

/** The shared "Redis" of the in-memory buses: who subscribed which channel, and the messages not yet delivered. */
export class InMemoryBroker {
  private readonly subscribers = new Map<string, Set<InMemoryBus>>();
  private readonly pending: Delivery[] = [];
  private draining = false;

  /** A new bus (one "server") on this broker. */
  bus(options: { readonly log?: BackplaneLogger } = {}): InMemoryBus {
    return new InMemoryBus(this, options.log ?? SILENT);
  }

  /** How many buses are subscribed to `channel` now (as `PUBSUB NUMSUB`). */
  subscriberCount(channel: string): number {
    return this.subscribers.get(channel)?.size ?? 0;
  }

  /** @internal */
  publish(channel: string, payload: Buffer): number {
    const receivers = [...(this.subscribers.get(channel) ?? [])];
    if (receivers.length === 0) return 0;
    // Copied now: the publisher may reuse its buffer once publish returned, as it may with Redis.
    this.pending.push({ channel, payload: Buffer.from(payload), receivers });
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => this.drain());
    }
    return receivers.length;
  }

  /** @internal */
  subscribe(channel: string, bus: InMemoryBus): void {
    let buses = this.subscribers.get(channel);
    if (buses === undefined) this.subscribers.set(channel, (buses = new Set()));
    buses.add(bus);
  }

  /** @internal */
  unsubscribe(channel: string, bus: InMemoryBus): void {
    const buses = this.subscribers.get(channel);
    if (buses === undefined) return;
    buses.delete(bus);
    if (buses.size === 0) this.subscribers.delete(channel);
  }

  /**
   * Delivers every message published so far, in order. Those published by a listener meanwhile are queued behind
   * and scheduled anew by `publish`, so order holds and no listener runs inside another's publish.
   */
  private drain(): void {
    const batch = this.pending.splice(0);
    this.draining = false;
    for (const { channel, payload, receivers } of batch) {
      for (const bus of receivers) bus.deliver(channel, receivers.length === 1 ? payload : Buffer.from(payload));
    }
  }
}

const SILENT: BackplaneLogger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
};

/** One server's connection to an {@link InMemoryBroker}; make it with {@link InMemoryBroker.bus}. */
export class InMemoryBus implements BackplaneBus {
  private readonly listeners = new Map<string, ChannelListener>();
  private readonly stateListeners = new Set<(health: BackplaneHealth) => void>();
  private state: BackplaneState = 'connected';
  private since = Date.now();
  private published = 0;
  private received = 0;
  private unpublished = 0;

  /** @internal */
  constructor(
    private readonly broker: InMemoryBroker,
    private readonly log: BackplaneLogger,
  ) {}

  /** Every subscriber of a channel is on the broker, so a publish counts them all. */
  readonly publishCountsEveryReceiver = true;

  get publishing(): boolean {
    return this.state === 'connected';
  }

  receives(channel: string): boolean {
    return this.state === 'connected' && this.listeners.has(channel);
  }

  publish(channel: string, payload: Buffer, options: PublishOptions = {}): Promise<number> {
    if (this.state === 'closed') {
      this.unpublished++;
      return Promise.reject(new BackplaneUnavailableError('The backplane is closed.'));
    }
    if (options.signal?.aborted) {
      this.unpublished++;
      return Promise.reject(new BackplaneUnavailableError('The publish was canceled.'));
    }
    const receivers = this.broker.publish(channel, payload);
    this.published++;
    return Promise.resolve(receivers);
  }

  subscribe(channel: string, listener: ChannelListener): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    this.listeners.set(channel, listener);
    this.broker.subscribe(channel, this);
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    if (this.listeners.delete(channel)) this.broker.unsubscribe(channel, this);
    return Promise.resolve();
  }

  health(): BackplaneHealth {
    return {
      state: this.state,
      connected: this.state === 'connected',
      since: this.since,
      outages: 0,
      unpublishedMessages: this.unpublished,
      queuedMessages: 0,
      queuedBytes: 0,
      queuedMessagesTotal: 0,
      replayedMessages: 0,
      droppedMessages: 0,
      publishedMessages: this.published,
      receivedMessages: this.received,
      subscriptions: this.listeners.size,
    };
  }

  onStateChange(listener: (health: BackplaneHealth) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  close(): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    for (const channel of this.listeners.keys()) this.broker.unsubscribe(channel, this);
    this.listeners.clear();
    this.state = 'closed';
    this.since = Date.now();
    const health = this.health();
    for (const listener of this.stateListeners) {
      try {
        listener(health);
      } catch (error) {
        this.log.error({ err: error }, 'backplane: a state listener failed');
      }
    }
    return Promise.resolve();
  }

  /** @internal A message the broker delivers; dropped when this bus no longer listens to its channel. */
  deliver(channel: string, payload: Buffer): void {
    this.received++;
    const listener = this.listeners.get(channel);
    if (listener === undefined) return;
    try {
      listener(payload);
    } catch (error) {
      this.log.error({ err: error }, 'backplane: a message handler failed');
    }
  }
}
