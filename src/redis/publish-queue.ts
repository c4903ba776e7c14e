/**
 * The publishes of one bus that Redis has not confirmed yet, in the order they were made: those sent and awaiting
 * Redis's reply, then those waiting for the connection (and its subscriptions) to come back. Pure bookkeeping, no
 * I/O: `RedisBus` decides when entries are sent and what a reply means.
 *
 * Why a queue at all: Redis pub/sub stores nothing, so a publish made while the connection is down is lost unless
 * this server keeps it. Keeping it here, bounded by bytes and by age, turns a Redis restart or failover into a delay
 * instead of a loss for everything this server sends. Entries leave in order, so each publisher's messages reach
 * the other servers in the order they were made, across the outage.
 */

/** Bounds of the queue of publishes kept while Redis is unreachable. */
export interface PublishQueueLimits {
  /** Payload bytes waiting at most; a publish that would pass it is dropped. 0 turns the queue off. */
  readonly maximumBytes: number;
  /** How long a publish may wait; older ones are dropped. */
  readonly maximumAgeMs: number;
}

/** One publish on its way to Redis. */
export interface QueuedPublish {
  readonly channel: string;
  readonly payload: Buffer;
  /** When it was made (ms since the epoch): the age bound counts from here. */
  readonly madeAt: number;
  /** This server's own clients already have it: its echo from Redis is not delivered again. */
  deliveredLocally: boolean;
  /** `waiting`: for the connection; `sent`: awaiting Redis's reply; `done`: settled or withdrawn. */
  state: 'waiting' | 'sent' | 'done';
  /** It waited for the connection at least once (so its eventual publish counts as replayed). */
  waited: boolean;
  /**
   * Set when the entry goes back to the queue after a lost connection: whether this is its first wait, so the count
   * of queued publishes counts each publish once however often its connection is lost.
   */
  firstWait?: boolean;
  /** Incremented at each send, so the reply of an earlier attempt (on a connection since lost) is ignored. */
  attempt: number;
  /** Streams mode: its number among its writer's entries, given at the first send and kept for a repeat. */
  sequence?: number;
  /** Settles the publisher's promise: Redis's receiver count, or why it was not published. */
  readonly settle: (error: Error | undefined, receivers: number) => void;
  /** Tells a publisher that does not wait for Redis that its publish is now queued. */
  readonly onQueued?: () => void;
}

/** A first-in first-out list with cheap removal at the head (entries are taken from the head in order). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined as T;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** The items, in order, left in place. */
  toArray(): T[] {
    return this.items.slice(this.head);
  }

  /** Removes every item, in order. */
  drain(): T[] {
    const items = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return items;
  }

  /** Puts `items` before the current ones, in their order. */
  prepend(items: readonly T[]): void {
    this.items = [...items, ...this.items.slice(this.head)];
    this.head = 0;
  }
}

/** The publishes in flight and waiting, with the byte count the bound applies to. */
export class PublishQueue {
  /** Sent, awaiting Redis's reply, in the order sent. */
  readonly inFlight = new Fifo<QueuedPublish>();
  /** Waiting for the connection, in the order made. */
  readonly waiting = new Fifo<QueuedPublish>();
  /** Payload bytes of the entries in `waiting` that are not withdrawn. */
  waitingBytes = 0;
  /** Entries in `waiting` that are not withdrawn. */
  waitingCount = 0;

  constructor(readonly limits: PublishQueueLimits) {}

  /** Whether a publish of `bytes` fits within the byte bound now. */
  fits(bytes: number): boolean {
    return this.limits.maximumBytes > 0 && this.waitingBytes + bytes <= this.limits.maximumBytes;
  }

  enqueue(entry: QueuedPublish): void {
    entry.state = 'waiting';
    entry.waited = true;
    this.waiting.push(entry);
    this.waitingBytes += entry.payload.length;
    this.waitingCount++;
  }

  /** The next waiting entry, taken out of the queue (withdrawn ones skipped); undefined when none. */
  takeWaiting(): QueuedPublish | undefined {
    for (let entry = this.waiting.shift(); entry !== undefined; entry = this.waiting.shift()) {
      if (entry.state !== 'waiting') continue;
      this.waitingBytes -= entry.payload.length;
      this.waitingCount--;
      return entry;
    }
    return undefined;
  }

  /** Takes a waiting entry out of the queue wherever it is (its publisher gave up). */
  withdraw(entry: QueuedPublish): boolean {
    if (entry.state !== 'waiting') return false;
    entry.state = 'done';
    this.waitingBytes -= entry.payload.length;
    this.waitingCount--;
    return true;
  }

  /** Takes out the waiting entries made before `cutoff` (ms since the epoch), oldest first. */
  takeOlderThan(cutoff: number): QueuedPublish[] {
    const expired: QueuedPublish[] = [];
    for (let entry = this.waiting.peek(); entry !== undefined; entry = this.waiting.peek()) {
      if (entry.state === 'waiting' && entry.madeAt >= cutoff) break;
      this.waiting.shift();
      if (entry.state !== 'waiting') continue;
      entry.state = 'done';
      this.waitingBytes -= entry.payload.length;
      this.waitingCount--;
      expired.push(entry);
    }
    return expired;
  }

  /** Drops settled entries from the head of the in-flight list (Redis replies in order). */
  trimInFlight(): void {
    while (this.inFlight.peek()?.state === 'done') this.inFlight.shift();
  }

  /**
   * The connection was lost: entries sent without a reply go back before the waiting ones, in order, to be sent
   * again (Redis may have published some of them: a message can then arrive twice, never not at all).
   */
  requeueInFlight(): QueuedPublish[] {
    const unanswered = this.inFlight.drain().filter((entry) => entry.state === 'sent');
    for (const entry of unanswered) {
      entry.state = 'waiting';
      entry.firstWait = !entry.waited;
      entry.waited = true;
      this.waitingBytes += entry.payload.length;
      this.waitingCount++;
    }
    this.waiting.prepend(unanswered);
    return unanswered;
  }
}
