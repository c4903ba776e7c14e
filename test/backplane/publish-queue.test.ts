/**
 * Nothing this server sends is lost when Redis blips, in the layout .NET's backplane uses (plain pub/sub): two
 * server processes of ours on one real redis-server, 100 messages/s from a client on each (broadcasts, group sends,
 * user sends in turn), while Redis is killed and restarted, stays down for a long while, or has one server's
 * subscriber connection killed. Each test asserts the losses it claims (zero for what our servers publish, within
 * the queue bounds; the measured window for what another server published while our subscriber was gone), the order
 * of arrival, and the `/metrics` counts (queued, replayed, dropped); the queue bounds are tested with small ones.
 * The figures are printed for the README's loss table.
 */
import { ClientPool, delay, eventually } from '../support/clients';
import { connectClient, texts } from '../support/backplane-exchange';
import { Traffic, queueCounts, type Crossing, type Cut } from '../support/publish-traffic';
import { RedisServer } from '../support/redis-server';
import { command, until } from '../support/redis-topology';
import { ServerProcess, startConnected, stopAll } from '../support/server-process';

/** The longest outage run by default; `PUBLISH_QUEUE_LONG_OUTAGE_MS=30000` runs the README's 30 s row. */
const LONG_OUTAGE_MS = Number(process.env.PUBLISH_QUEUE_LONG_OUTAGE_MS ?? 10_000);

async function startPair(
  redis: RedisServer,
  hub: string,
  extra: Record<string, string> = {},
): Promise<[ServerProcess, ServerProcess]> {
  const env = (label: string) => ({
    REDIS_URL: `127.0.0.1:${redis.port},abortConnect=False,name=server-${label}`,
    CHAT_HUB_NAME: hub,
    METRICS_ENABLED: 'true',
    LOG_LEVEL: 'info',
    ...extra,
  });
  const [a, b] = await startConnected(['A', 'B'], env);
  return [a, b];
}

const describeCrossing = (name: string, crossing: Crossing) =>
  `${name}: ${crossing.sent} sent, ${crossing.lost} lost, ${crossing.duplicates} twice, ${crossing.inOrder ? 'in order' : 'OUT OF ORDER'}`;

/** When Redis died in a test: what the receivers had then (`Traffic.cut`) and when the process had exited. */
interface Death {
  readonly cut: Cut;
  readonly diedAt: number;
}

/**
 * Every message each server's sender made reached both receivers it was meant for, once each, in order. With
 * `death`, messages still on their way when Redis died (see `Traffic.duringFault`, a few milliseconds' worth)
 * may be lost with the process, or arrive twice (Redis delivered a publish whose reply died with it, and the server
 * sent it again: pub/sub payloads are .NET's and carry no number a receiver could tell a repeat by); every other one
 * must arrive once, and the counts are printed.
 */
function expectNothingLost(traffic: Traffic, death?: Death): string[] {
  const lines: string[] = [];
  for (const [from, to] of [
    ['a', 'a'],
    ['a', 'b'],
    ['b', 'a'],
    ['b', 'b'],
  ] as const) {
    const crossing = traffic.measure(from, to);
    const inFlight = death && traffic.duringFault(from, to, death.cut, death.diedAt);
    lines.push(
      describeCrossing(`${from.toUpperCase()}→${to.toUpperCase()}`, crossing) +
        (inFlight
          ? ` (${inFlight.inside.sent} in flight when Redis died, ${inFlight.inside.lost} of them lost, ${inFlight.inside.duplicates} twice)`
          : ''),
    );
    expect({
      route: `${from}→${to}`,
      lost: inFlight ? inFlight.lostOutside.slice(0, 5) : crossing.lostTexts.slice(0, 5),
      duplicates: inFlight ? inFlight.duplicatesOutside : crossing.duplicates,
      inOrder: crossing.inOrder,
      failedCalls: crossing.failedCalls,
    }).toEqual({ route: `${from}→${to}`, lost: [], duplicates: 0, inOrder: true, failedCalls: 0 });
  }
  return lines;
}

describe('default bounds, two servers at 100 messages/s each', () => {
  let redis: RedisServer | undefined;
  let a: ServerProcess | undefined;
  let b: ServerProcess | undefined;
  let traffic: Traffic | undefined;

  beforeAll(async () => {
    redis = await RedisServer.start();
    [a, b] = await startPair(redis, 'Loss.ChatHub');
  }, 60_000);

  afterEach(async () => {
    await traffic?.stop();
    await traffic?.close();
    traffic = undefined;
  });

  afterAll(async () => {
    await stopAll(a, b);
    await redis?.stop();
  }, 30_000);

  /** Runs traffic through an outage of `outageMs`; asserts nothing our servers sent was lost. */
  async function throughOutage(tag: string, outageMs: number): Promise<string[]> {
    traffic = await Traffic.connect(a!, b!);
    const before = await Promise.all([queueCounts(a!), queueCounts(b!)]);
    traffic.start(tag);
    await delay(1000);
    const cut = traffic.cut();
    const killedAt = cut.at;
    await redis!.kill();
    const diedAt = Date.now();
    await delay(outageMs);
    await redis!.start();
    const restartedAt = Date.now();
    await Promise.all([a!.waitForBackplane('connected', 20_000), b!.waitForBackplane('connected', 20_000)]);
    const reconnectedMs = Date.now() - restartedAt;
    // Some traffic after the backlog went out (held 2.5 s after a server is back), then everything must have arrived.
    await delay(4000);
    await traffic.stop();
    await traffic.settle();

    const lines = expectNothingLost(traffic, { cut, diedAt });
    const after = await Promise.all([queueCounts(a!), queueCounts(b!)]);
    const queued = after.map((count, i) => count.queued - before[i].queued);
    const replayed = after.map((count, i) => count.replayed - before[i].replayed);
    for (const [i, count] of after.entries()) {
      // Every queued publish was sent once Redis was back; none was dropped; none waits any more.
      expect({ queuedNow: count.queuedNow, dropped: count.dropped - before[i].dropped, replayed: replayed[i] }).toEqual(
        { queuedNow: 0, dropped: 0, replayed: queued[i] },
      );
      // At least what each sender made while Redis was down was queued.
      expect(queued[i]).toBeGreaterThanOrEqual(traffic.sentBy(i === 0 ? 'a' : 'b', killedAt + 200, restartedAt));
    }
    return [
      `Redis killed for ${outageMs} ms (SIGKILL, restarted empty); both servers connected and subscribed ${reconnectedMs} ms after the restart;`,
      `queued and replayed: A ${queued[0]}, B ${queued[1]}; dropped 0;`,
      ...lines,
    ];
  }

  test('Redis killed for 3 s and restarted: nothing the servers sent is lost, order kept', async () => {
    console.log((await throughOutage('short', 3000)).join('\n'));
  }, 60_000);

  test(
    `Redis killed for ${LONG_OUTAGE_MS / 1000} s: nothing lost within the default bounds`,
    async () => {
      console.log((await throughOutage('long', LONG_OUTAGE_MS)).join('\n'));
    },
    LONG_OUTAGE_MS + 60_000,
  );

  test("CLIENT KILL of one server's subscriber: its own sends are kept; the other server's sends in the gap are lost", async () => {
    traffic = await Traffic.connect(a!, b!);
    traffic.start('client-kill');
    await delay(1000);
    const outagesBefore = (await a!.backplane()).outages;
    let id: string | undefined;
    await until(
      async () => {
        const list = String(await command(redis!.port, ['CLIENT', 'LIST']));
        id = list
          .split('\n')
          .find((entry) => / name=server-A:sub /.test(entry))
          ?.match(/^id=(\d+) /)?.[1];
        return id !== undefined;
      },
      "A's subscriber connection to be listed",
      10_000,
    );
    const cut = traffic.cut();
    const killedAt = cut.at;
    expect(await command(redis!.port, ['CLIENT', 'KILL', 'ID', id!])).toBe(1);
    for (;;) {
      const health = await a!.backplane();
      if (health.outages > outagesBefore && health.connected) break;
      await delay(5);
    }
    const backAt = Date.now();
    await delay(4000);
    await traffic.stop();
    await traffic.settle();

    // What A sent reached both receivers (A's own at once, B's once A's subscriptions were back), in order.
    const aToA = traffic.measure('a', 'a');
    const aToB = traffic.measure('a', 'b');
    const bToB = traffic.measure('b', 'b');
    for (const crossing of [aToA, aToB, bToB]) {
      expect({ lost: crossing.lost, duplicates: crossing.duplicates, inOrder: crossing.inOrder }).toEqual({
        lost: 0,
        duplicates: 0,
        inOrder: true,
      });
    }
    // What B published while A's subscriber was gone never reached A: pub/sub keeps nothing for an absent
    // subscriber. Only messages of that window are lost, and the rest arrived in order.
    const bToA = traffic.measure('b', 'a');
    // The gap opens at the first of B's messages still on its way to A when the subscriber was killed.
    const gapBeganAt = traffic.faultBeganAt('b', 'a', cut);
    const inGap = traffic.sentBy('b', gapBeganAt, backAt + 50);
    const lostOutsideGap = traffic.measure('b', 'a', 0, gapBeganAt).lost + traffic.measure('b', 'a', backAt + 50).lost;
    expect({ lostOutsideGap, inOrder: bToA.inOrder, duplicates: bToA.duplicates }).toEqual({
      lostOutsideGap: 0,
      inOrder: true,
      duplicates: 0,
    });
    expect(bToA.lost).toBeLessThanOrEqual(inGap);
    console.log(
      [
        `CLIENT KILL of A's subscriber connection; A subscribed again ${backAt - killedAt} ms later (by polling):`,
        describeCrossing('A→A', aToA),
        describeCrossing('A→B', aToB),
        describeCrossing('B→B', bToB),
        `${describeCrossing('B→A', bToA)} (B made ${inGap} messages during A's gap)`,
      ].join('\n'),
    );
  }, 60_000);
});

describe('queue bounds', () => {
  const PADDING = 'x'.repeat(1000);
  let redis: RedisServer | undefined;
  let servers: ServerProcess[] = [];
  const pools: ClientPool[] = [];

  beforeEach(async () => {
    redis = await RedisServer.start();
  });

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.stopAll()));
    await stopAll(...servers.splice(0));
    await redis?.stop();
  }, 30_000);

  async function clients(a: ServerProcess, b: ServerProcess) {
    const poolA = new ClientPool(() => a.hubUrl);
    const poolB = new ClientPool(() => b.hubUrl);
    pools.push(poolA, poolB);
    const local = await connectClient(poolA, 'local', false);
    const remote = await connectClient(poolB, 'remote', true);
    return { local, remote };
  }

  test('the byte bound: what passes it is dropped, counted and logged once; the rest is sent in order; memory stays flat', async () => {
    const bound = 64 * 1024;
    const [a, b] = await startPair(redis!, 'Loss.Bytes.ChatHub', { REDIS_MAX_QUEUED_PUBLISH_BYTES: String(bound) });
    servers = [a, b];
    const { local, remote } = await clients(a, b);
    await redis!.kill();
    await a.waitForBackplane('disconnected');
    const heapBefore = (await a.metrics()).sum('nodejs_heap_size_used_bytes');
    // About 30 MB of messages (each published in two protocols) against a 64 KiB bound.
    const big = 'y'.repeat(15_000);
    const SENT = 1000;
    let maxQueuedBytes = 0;
    for (let i = 0; i < SENT; i++) {
      await local.connection.invoke('SendMessage', 'local', `bytes-${i} ${i < 100 ? PADDING : big}`);
      if (i % 100 === 99) maxQueuedBytes = Math.max(maxQueuedBytes, (await queueCounts(a)).queuedBytes);
    }
    const heapAfter = (await a.metrics()).sum('nodejs_heap_size_used_bytes');
    const during = await queueCounts(a);
    expect(during.queuedBytes).toBeLessThanOrEqual(bound);
    expect(maxQueuedBytes).toBeLessThanOrEqual(bound);
    expect(during.dropped).toBe(SENT - during.queuedNow);
    expect(during.dropped).toBeGreaterThan(0);
    // The sender's own client got every message at once.
    expect(texts(local)).toHaveLength(SENT);

    await redis!.start();
    await Promise.all([a.waitForBackplane('connected'), b.waitForBackplane('connected')]);
    const kept = during.queuedNow;
    await eventually(() => texts(remote).length >= kept, 'the queued messages to reach the other server', 10_000);
    await delay(500);
    // The other server got the messages that fitted — the first ones, in order — and nothing else.
    expect(texts(remote).map((text) => text.split(' ')[0])).toEqual(
      Array.from({ length: kept }, (_, i) => `bytes-${i}`),
    );
    const after = await queueCounts(a);
    expect(after).toMatchObject({ queuedNow: 0, queuedBytes: 0, replayed: kept, dropped: SENT - kept, queued: kept });
    // Logged once when the first was dropped, and the count when Redis was back.
    const lines = a.logLines();
    expect(lines.filter((line) => line.event === 'signalr.backplane.publish_dropped')).toHaveLength(1);
    expect(
      lines.some((line) => line.event === 'signalr.backplane.reconnected' && line.droppedMessages === SENT - kept),
    ).toBe(true);
    console.log(
      `Byte bound ${bound} B, Redis down, ${SENT} broadcasts (${Math.round((100 * 1000 + 900 * 15_000) / 1e6)} MB of text): ` +
        `${kept} kept and sent after the restart in order, ${SENT - kept} dropped and counted; queued bytes at most ` +
        `${maxQueuedBytes}; heap used ${Math.round(heapBefore / 1e6)} MB before, ${Math.round(heapAfter / 1e6)} MB after`,
    );
    // Memory flat: the heap did not grow by anything like what was sent (30 MB in each of two protocols).
    expect(heapAfter - heapBefore).toBeLessThan(20e6);
  }, 90_000);

  test('the age bound: publishes older than it are dropped while Redis is down; younger ones are sent', async () => {
    // Longer than a reconnection (up to 1 s) and the 2.5 s the backlog is held after it, so the young ones survive.
    const maxAge = 6000;
    const [a, b] = await startPair(redis!, 'Loss.Age.ChatHub', { REDIS_MAX_QUEUED_PUBLISH_AGE_MS: String(maxAge) });
    servers = [a, b];
    const { local, remote } = await clients(a, b);
    await redis!.kill();
    await a.waitForBackplane('disconnected');
    for (let i = 0; i < 10; i++) await local.connection.invoke('SendMessage', 'local', `old-${i}`);
    // Dropped while Redis is still down, by the age bound alone.
    for (;;) {
      if ((await queueCounts(a)).dropped === 10) break;
      await delay(100);
    }
    for (let i = 0; i < 5; i++) await local.connection.invoke('SendMessage', 'local', `young-${i}`);
    await redis!.start();
    await Promise.all([a.waitForBackplane('connected'), b.waitForBackplane('connected')]);
    await eventually(() => texts(remote).length >= 5, 'the young messages to reach the other server', 10_000);
    await delay(500);
    expect(texts(remote)).toEqual(['young-0', 'young-1', 'young-2', 'young-3', 'young-4']);
    expect(texts(local)).toHaveLength(15);
    expect(await queueCounts(a)).toMatchObject({ queuedNow: 0, queued: 15, replayed: 5, dropped: 10 });
    expect(a.logLines().filter((line) => line.event === 'signalr.backplane.publish_dropped')).toHaveLength(1);
  }, 60_000);

  test('a group add for another server waits for Redis within its ack timeout; a client result within its signal', async () => {
    const [a, b] = await startPair(redis!, 'Loss.Commands.ChatHub', { REDIS_ACK_TIMEOUT_MS: '8000' });
    servers = [a, b];
    const { local, remote } = await clients(a, b);
    await redis!.kill();
    await a.waitForBackplane('disconnected');
    const add = local.connection.invoke('AddToRoom', remote.connection.connectionId, 'waited-room');
    const ask = local.connection.invoke('AskClient', remote.connection.connectionId);
    await delay(1000);
    await redis!.start();
    // Both went out once Redis was back, and were answered.
    await add;
    expect(await ask).toBe("remote's answer to question");
    await local.connection.invoke('SendToRoom', 'waited-room', 'local', 'to the waited room');
    await eventually(() => texts(remote).includes('to the waited room'), 'the group send to reach the added member');
    // Past its ack timeout the add fails with the timeout's error and is never sent late.
    await redis!.kill();
    await a.waitForBackplane('disconnected');
    const started = Date.now();
    await expect(local.connection.invoke('AddToRoom', remote.connection.connectionId, 'late-room')).rejects.toThrow(
      "An unexpected error occurred invoking 'AddToRoom' on the server.",
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(7500);
    await redis!.start();
    await Promise.all([a.waitForBackplane('connected'), b.waitForBackplane('connected')]);
    await delay(2500);
    await local.connection.invoke('SendToRoom', 'late-room', 'local', 'to the late room');
    await delay(500);
    expect(texts(remote)).not.toContain('to the late room');
  }, 60_000);
});
