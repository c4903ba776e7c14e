/**
 * The publish queue's byte bound holds through a long outage: two server processes of ours on one real
 * redis-server, a client on each broadcasting 100 messages/s of 8 000 characters, Redis killed for 60 s. The queue
 * fills to its (small) bound within the first seconds; from then on every publish is dropped and counted. Sampled
 * every second from `/metrics`, the queued bytes never pass the bound and the server's live memory stays flat:
 * its growth over the second half of the outage is a fraction of what keeping the dropped payloads would cost.
 * The figures are printed for the README's loss table.
 */
import { HttpTransportType } from '@microsoft/signalr';
import { ClientPool, delay, type TestClient } from '../support/clients';
import { queueCounts } from '../support/publish-traffic';
import { RedisServer } from '../support/redis-server';
import { until } from '../support/redis-topology';
import { ServerProcess, stopAll } from '../support/server-process';

/** How long before the kill a publish can still be waiting for Redis's reply (and so be queued again). */
const IN_FLIGHT_AT_KILL_MS = 500;
const OUTAGE_MS = 60_000;
/** Small enough that 100 messages/s fill it in a few seconds. */
const QUEUE_BOUND_BYTES = 2 * 1024 * 1024;
const SEND_INTERVAL_MS = 10;
const TEXT = 'm'.repeat(8000);
/** Readings (one a second) taken together for one memory floor (see `floor`): long enough to span a full collection. */
const FLOOR_WINDOW = 10;

/** One reading of a server's queue and memory, from `/metrics`. */
interface Reading {
  readonly at: number;
  readonly queuedBytes: number;
  readonly queuedNow: number;
  readonly dropped: number;
  /** V8 heap in use plus memory outside it (where Buffers of this size live): what a leak of payloads would grow. */
  readonly liveBytes: number;
  readonly rssBytes: number;
}

async function read(server: ServerProcess): Promise<Reading> {
  const [metrics, counts] = await Promise.all([server.metrics(), queueCounts(server)]);
  return {
    at: Date.now(),
    queuedBytes: counts.queuedBytes,
    queuedNow: counts.queuedNow,
    dropped: counts.dropped,
    liveBytes: metrics.sum('nodejs_heap_size_used_bytes') + metrics.sum('nodejs_external_memory_bytes'),
    rssBytes: metrics.sum('process_resident_memory_bytes'),
  };
}

/**
 * The lowest live-memory reading among `readings`. A reading without a forced collection includes garbage not yet
 * collected (a sawtooth of up to ~10 MB at this message rate); the lowest of ten seconds' readings is nearest to
 * what is still reachable, and that floor is what a leak raises.
 */
const floor = (readings: readonly Reading[]): number => Math.min(...readings.map((reading) => reading.liveBytes));

/** Broadcasts from one client every 10 ms until stopped; counts the calls made (each resolves once queued). */
class Broadcaster {
  readonly madeAt: number[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(
    private readonly client: TestClient,
    private readonly label: string,
  ) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    const start = Date.now();
    for (let i = 0; this.running; i++) {
      this.madeAt.push(Date.now());
      await this.client.connection.invoke('SendMessage', this.label, `${this.label}-${i} ${TEXT}`);
      await delay(Math.max(0, start + (i + 1) * SEND_INTERVAL_MS - Date.now()));
    }
  }

  made(since: number, until = Infinity): number {
    return this.madeAt.filter((at) => at >= since && at < until).length;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

describe('publish queue through 60 s without Redis', () => {
  let redis: RedisServer | undefined;
  let servers: ServerProcess[] = [];
  const pools: ClientPool[] = [];
  const broadcasters: Broadcaster[] = [];

  afterAll(async () => {
    await Promise.all(broadcasters.map((broadcaster) => broadcaster.stop().catch(() => undefined)));
    await Promise.all(pools.map((pool) => pool.stopAll()));
    await stopAll(...servers);
    await redis?.stop();
  }, 30_000);

  test('queued bytes never pass the bound, drops are counted, memory stays flat', async () => {
    redis = await RedisServer.start();
    const env = (label: string) => ({
      REDIS_URL: `127.0.0.1:${redis!.port},abortConnect=False,name=server-${label}`,
      CHAT_HUB_NAME: 'Loss.Memory.ChatHub',
      METRICS_ENABLED: 'true',
      REDIS_MAX_QUEUED_PUBLISH_BYTES: String(QUEUE_BOUND_BYTES),
      // Longer than the outage, so the byte bound alone decides what is kept.
      REDIS_MAX_QUEUED_PUBLISH_AGE_MS: String(2 * OUTAGE_MS),
    });
    servers = await Promise.all([ServerProcess.start('A', env('A')), ServerProcess.start('B', env('B'))]);
    const [a, b] = servers;
    await Promise.all([a.waitForBackplane('connected'), b.waitForBackplane('connected')]);
    for (const server of servers) {
      const pool = new ClientPool(() => server.hubUrl);
      pools.push(pool);
      // Observes nothing: the sender's own copies of its broadcasts are not kept in the test process.
      const client = await pool.connect({ transport: HttpTransportType.WebSockets }, []);
      broadcasters.push(new Broadcaster(client, `memory-${server === a ? 'A' : 'B'}`));
    }
    // Traffic through Redis first, so what the servers allocate for it is in place before the outage.
    await delay(3000);
    const before = await Promise.all(servers.map((server) => queueCounts(server)));

    const killedAt = Date.now();
    await redis.kill();
    const readings: Reading[][] = [[], []];
    for (let next = killedAt + 1000; next <= killedAt + OUTAGE_MS; next += 1000) {
      await delay(Math.max(0, next - Date.now()));
      const both = await Promise.all(servers.map((server) => read(server)));
      both.forEach((reading, i) => readings[i].push(reading));
    }
    const outageEndedAt = Date.now();
    await redis.start();
    await Promise.all([a.waitForBackplane('connected', 20_000), b.waitForBackplane('connected', 20_000)]);
    await Promise.all(broadcasters.map((broadcaster) => broadcaster.stop()));

    const lines: string[] = [];
    for (const [i, server] of servers.entries()) {
      const label = i === 0 ? 'A' : 'B';
      const own = readings[i];
      // The queue never held more than its bound.
      const maxQueuedBytes = Math.max(...own.map((reading) => reading.queuedBytes));
      expect(maxQueuedBytes).toBeLessThanOrEqual(QUEUE_BOUND_BYTES);
      // The bound is reached within the first seconds; from then on the publishes are dropped.
      const boundReached = own.findIndex((reading) => reading.dropped > before[i].dropped);
      expect(boundReached).toBeGreaterThanOrEqual(0);
      expect(boundReached).toBeLessThan(10);
      const last = own[own.length - 1];
      const queuedAtEnd = last.queuedNow;
      const droppedInOutage = last.dropped - before[i].dropped;
      // Each publish made while Redis was down was kept or dropped and counted (those made in the moment before the
      // server saw the connection go could have been sent already), and no more than were made — counting those made
      // in the half second before the kill, whose PUBLISH was on its way without a reply and so went back to the queue.
      const madeInOutage = broadcasters[i].made(killedAt - IN_FLIGHT_AT_KILL_MS, outageEndedAt);
      expect(queuedAtEnd + droppedInOutage).toBeLessThanOrEqual(madeInOutage);
      expect(queuedAtEnd + droppedInOutage).toBeGreaterThanOrEqual(broadcasters[i].made(killedAt + 1000, last.at));

      // Memory over the second half of the time past the bound: its floor at the end against its floor at the start.
      const afterBound = own.slice(boundReached);
      const secondHalf = afterBound.slice(Math.floor(afterBound.length / 2));
      const growth = floor(secondHalf.slice(-FLOOR_WINDOW)) - floor(secondHalf.slice(0, FLOOR_WINDOW));
      const rssGrowth = Math.max(...secondHalf.map((reading) => reading.rssBytes)) - secondHalf[0].rssBytes;
      // What keeping the payloads dropped in that half would cost: their count times a queued publish's bytes.
      const bytesPerPublish = last.queuedBytes / last.queuedNow;
      const droppedInHalf = secondHalf[secondHalf.length - 1].dropped - secondHalf[0].dropped;
      const leakCost = droppedInHalf * bytesPerPublish;
      // The measurement can tell: such a leak would be tens of MB. The resident set would grow by all of it (these
      // payloads live outside the V8 heap, in memory the process has touched); the live floor, ten seconds apart at
      // each end of a half that lasts about thirty, by about two thirds of it.
      expect(leakCost).toBeGreaterThan(20e6);
      expect(rssGrowth).toBeLessThan(leakCost / 4);
      expect(growth).toBeLessThan(leakCost / 2);
      lines.push(
        `${label}: bound ${QUEUE_BOUND_BYTES} B reached ${own[boundReached].at - killedAt} ms into the outage; queued bytes at most ` +
          `${maxQueuedBytes}; ${queuedAtEnd} publishes kept (${Math.round(bytesPerPublish)} B each), ${droppedInOutage} dropped and ` +
          `counted of ${madeInOutage} made; second half (${secondHalf.length} s): live memory (heap + external) floor ` +
          `${mb(floor(secondHalf.slice(0, FLOOR_WINDOW)))} → ${mb(floor(secondHalf.slice(-FLOOR_WINDOW)))} (${mb(growth)}), ` +
          `RSS ${mb(secondHalf[0].rssBytes)}, at most ${mb(secondHalf[0].rssBytes + rssGrowth)} (${mb(rssGrowth)}); ` +
          `keeping the ${droppedInHalf} payloads dropped in it would cost ${mb(leakCost)}`,
      );

      // Once Redis was back, what was kept went out and the queue emptied.
      await until(async () => (await queueCounts(server)).queuedNow === 0, `server ${label}'s queue to empty`, 20_000);
      const after = await queueCounts(server);
      expect(after.replayed - before[i].replayed).toBeGreaterThanOrEqual(queuedAtEnd);
    }
    console.log(
      [`Redis killed for ${OUTAGE_MS / 1000} s, 100 broadcasts/s of 8 000 characters from each server:`, ...lines].join(
        '\n',
      ),
    );
  }, 120_000);
});
