/**
 * Steady traffic between two servers for the loss measurements: a sender client on each server sends one message
 * every 10 ms (100 messages/s per server), in turn a broadcast, a send to a group and a send to a user on the other
 * server; a receiver client on each server is in that group and is that user. `measure()` then says, per sender and
 * receiver, how many messages were lost, how many arrived twice, and whether they arrived in the order sent.
 */
import { ClientPool, delay, type TestClient } from './clients';
import { connectClient, texts } from './backplane-exchange';
import type { ServerProcess } from './server-process';

export const TRAFFIC_INTERVAL_MS = 10;
const ROOM = 'loss-room';

/** What a message is sent to: everyone, the receivers' group, or the other server's receiver as a user. */
export type Kind = 'all' | 'group' | 'user';
export const KINDS: readonly Kind[] = ['all', 'group', 'user'];

interface Sent {
  readonly text: string;
  readonly kind: Kind;
  readonly at: number;
  ok: boolean;
}

/** What one receiver got of one sender's messages. */
export interface Crossing {
  readonly sent: number;
  readonly lost: number;
  readonly duplicates: number;
  /** The first arrival of each message came in the order sent. */
  readonly inOrder: boolean;
  /** Messages lost, as texts (for the failure message). */
  readonly lostTexts: readonly string[];
  /** Hub calls that failed (never expected: a send resolves once queued). */
  readonly failedCalls: number;
}

class Sender {
  readonly sent: Sent[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(
    private readonly client: TestClient,
    readonly label: string,
    private readonly peerUser: string,
  ) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    const start = Date.now();
    for (let i = 0; this.running; i++) {
      const kind = KINDS[i % KINDS.length];
      const text = `${this.label}-${i}`;
      const entry: Sent = { text, kind, at: Date.now(), ok: true };
      this.sent.push(entry);
      const call =
        kind === 'all'
          ? this.client.connection.invoke('SendMessage', this.label, text)
          : kind === 'group'
            ? this.client.connection.invoke('SendToRoom', ROOM, this.label, text)
            : this.client.connection.invoke('SendToUser', this.peerUser, this.label, text);
      await call.catch(() => {
        entry.ok = false;
      });
      const next = start + (i + 1) * TRAFFIC_INTERVAL_MS;
      await delay(Math.max(0, next - Date.now()));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

/** What each receiver had received at one instant (see `Traffic.cut`). */
export interface Cut {
  readonly at: number;
  readonly delivered: { readonly a: ReadonlySet<string>; readonly b: ReadonlySet<string> };
}

/** One route's messages split at a fault's window (see `Traffic.duringFault`). */
export interface FaultWindow {
  /** When the window opened for this route: the first message still on its way at the cut. */
  readonly began: number;
  /** The messages made inside the window. */
  readonly inside: Crossing;
  /** Messages made outside the window that were lost. */
  readonly lostOutside: readonly string[];
  /** Repeated arrivals of messages made outside the window. */
  readonly duplicatesOutside: number;
}

/** The publish queue's counters on one server, from `/metrics` (the server runs with `METRICS_ENABLED=true`). */
export async function queueCounts(server: ServerProcess) {
  const metrics = await server.metrics();
  return {
    queuedNow: metrics.sum('signalr_backplane_queued_publishes'),
    queuedBytes: metrics.sum('signalr_backplane_queued_publish_bytes'),
    queued: metrics.sum('signalr_backplane_publishes_queued_total'),
    replayed: metrics.sum('signalr_backplane_publishes_replayed_total'),
    dropped: metrics.sum('signalr_backplane_publishes_dropped_total'),
    publishErrors: metrics.sum('signalr_backplane_publish_errors_total'),
  };
}

/** Two senders and two receivers, one of each on each server. */
export class Traffic {
  private senders: Sender[] = [];

  private constructor(
    private readonly pools: readonly ClientPool[],
    readonly receivers: { readonly a: TestClient; readonly b: TestClient },
    private readonly senderClients: { readonly a: TestClient; readonly b: TestClient },
  ) {}

  /** Connects the clients (receivers join the group) on servers `a` and `b`. */
  static async connect(a: ServerProcess, b: ServerProcess): Promise<Traffic> {
    const poolA = new ClientPool(() => a.hubUrl);
    const poolB = new ClientPool(() => b.hubUrl);
    const [ra, rb, sa, sb] = await Promise.all([
      connectClient(poolA, 'receiver-a', false),
      connectClient(poolB, 'receiver-b', true),
      connectClient(poolA, 'sender-a', true),
      connectClient(poolB, 'sender-b', false),
    ]);
    await Promise.all([ra.connection.invoke('JoinRoom', ROOM), rb.connection.invoke('JoinRoom', ROOM)]);
    return new Traffic([poolA, poolB], { a: ra, b: rb }, { a: sa, b: sb });
  }

  /** Starts sending from both servers. */
  start(tag: string): void {
    this.senders = [
      new Sender(this.senderClients.a, `${tag}-A`, 'receiver-b'),
      new Sender(this.senderClients.b, `${tag}-B`, 'receiver-a'),
    ];
  }

  /** Stops sending; resolves once every hub call returned. */
  async stop(): Promise<void> {
    await Promise.all(this.senders.map((sender) => sender.stop()));
  }

  /** Messages the sender on `from` made between `since` and `until` (ms since the epoch). */
  sentBy(from: 'a' | 'b', since = 0, until = Infinity): number {
    return this.sender(from).sent.filter((entry) => entry.at >= since && entry.at < until).length;
  }

  /**
   * What the receiver on `to` got of the messages the sender on `from` made (a user send is meant for the other
   * server's receiver only), optionally only those made in [`since`, `until`), and only those sent to `kind`.
   */
  measure(from: 'a' | 'b', to: 'a' | 'b', since = 0, until = Infinity, kind?: Kind): Crossing {
    const sender = this.sender(from);
    const expected = sender.sent.filter(
      (entry) =>
        (entry.kind !== 'user' || from !== to) &&
        entry.at >= since &&
        entry.at < until &&
        (kind === undefined || entry.kind === kind),
    );
    const wanted = new Set(expected.map((entry) => entry.text));
    const arrivals = texts(this.receivers[to]).filter((text) => wanted.has(text));
    const seen = new Set<string>();
    const order: string[] = [];
    for (const text of arrivals) {
      if (!seen.has(text)) order.push(text);
      seen.add(text);
    }
    const expectedOrder = expected.map((entry) => entry.text).filter((text) => seen.has(text));
    const lostTexts = expected.filter((entry) => !seen.has(entry.text)).map((entry) => entry.text);
    return {
      sent: expected.length,
      lost: lostTexts.length,
      duplicates: arrivals.length - seen.size,
      inOrder: order.every((text, index) => text === expectedOrder[index]),
      lostTexts,
      failedCalls: expected.filter((entry) => !entry.ok).length,
    };
  }

  /** Records what each receiver has received so far, e.g. at the instant a fault is caused. */
  cut(): Cut {
    return {
      at: Date.now(),
      delivered: { a: new Set(texts(this.receivers.a)), b: new Set(texts(this.receivers.b)) },
    };
  }

  /**
   * When the fault recorded by `cut` began for the messages from `from` to `to`: the send time of the first message
   * after the last one the receiver had at the cut, or the cut's own time if none was outstanding. Messages are still
   * on their way (sender → its server → Redis → the other server) for some milliseconds after they are made, so those
   * in flight at the fault belong to it as much as those made during it. A message made before one that had arrived
   * by the cut travelled the same ordered path ahead of it: if it never arrives, it is lost outside the fault.
   */
  faultBeganAt(from: 'a' | 'b', to: 'a' | 'b', cut: Cut): number {
    const delivered = cut.delivered[to];
    const before = this.sender(from).sent.filter(
      (entry) => (entry.kind !== 'user' || from !== to) && entry.at < cut.at,
    );
    let last = -1;
    before.forEach((entry, index) => {
      if (delivered.has(entry.text)) last = index;
    });
    return last + 1 < before.length ? before[last + 1].at : cut.at;
  }

  /**
   * The messages from `from` to `to` that belong to a fault recorded by `cut` and over at `endedAt`: made from
   * `faultBeganAt(cut)` until `endedAt`. For a Redis process killed, `endedAt` is the instant it had exited: a
   * publish Redis had answered but not yet written to the other server's subscriber, or a stream entry not yet read
   * when Redis restarts empty, is gone with the process, and no queue on the sending side can know of it. For a
   * failover, it is when both servers are attached to the new master: a write the old master accepted after its
   * replica stopped following it is gone with its data. A write whose reply was lost is sent again, so a message of
   * the window may also arrive twice. `lostOutside` lists the lost messages made outside that window.
   */
  duringFault(from: 'a' | 'b', to: 'a' | 'b', cut: Cut, endedAt: number): FaultWindow {
    const began = this.faultBeganAt(from, to, cut);
    const [before, after] = [this.measure(from, to, 0, began), this.measure(from, to, endedAt)];
    return {
      began,
      inside: this.measure(from, to, began, endedAt),
      lostOutside: [...before.lostTexts, ...after.lostTexts],
      duplicatesOutside: before.duplicates + after.duplicates,
    };
  }

  /** Waits until the receivers stop getting messages (nothing new for `quietMs`). */
  async settle(quietMs = 2500, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    let quietSince = Date.now();
    while (Date.now() < deadline) {
      const count = texts(this.receivers.a).length + texts(this.receivers.b).length;
      if (count !== last) {
        last = count;
        quietSince = Date.now();
      } else if (Date.now() - quietSince >= quietMs) {
        return;
      }
      await delay(100);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((pool) => pool.stopAll()));
  }

  private sender(from: 'a' | 'b'): Sender {
    return this.senders[from === 'a' ? 0 : 1];
  }
}
