/**
 * The loss-table rows in streams mode (`SIGNALR_REDIS_MODE=streams`): two server processes of ours, 100 messages/s
 * from a client on each (broadcasts, group sends, user sends in turn), while Redis is killed and restarted, stays
 * down for a long while, has one server's reading connection killed (`CLIENT KILL`), fails over under Sentinel, or
 * loses the Redis Cluster master of a stream. Each row asserts that nothing is lost — what the other server published
 * during a reader's gap included, since the reader goes on from its last entry — nothing arrives twice, no hub call
 * fails, and order holds (per channel on a cluster, where a fleet's channels are spread over several streams). The
 * figures are printed for the README's loss table.
 */
import { delay } from '../support/clients';
import { KINDS, Traffic, queueCounts, type Crossing, type Cut, type Kind } from '../support/publish-traffic';
import { RedisServer } from '../support/redis-server';
import { RedisClusterTopology, Scratch, SentinelTopology, command, until } from '../support/redis-topology';
import { ServerProcess, startConnected, stopAll } from '../support/server-process';

/** The longest outage run by default; `PUBLISH_QUEUE_LONG_OUTAGE_MS=30000` runs the README's 30 s row. */
const LONG_OUTAGE_MS = Number(process.env.PUBLISH_QUEUE_LONG_OUTAGE_MS ?? 10_000);
const RECOVERY_BOUND_MS = 20_000;
const ROUTES = [
  ['a', 'a'],
  ['a', 'b'],
  ['b', 'a'],
  ['b', 'b'],
] as const;

async function startPair(env: (label: string) => Record<string, string>): Promise<[ServerProcess, ServerProcess]> {
  const [a, b] = await startConnected(['A', 'B'], env);
  return [a, b];
}

const streamsEnv = (label: string, where: string, hub: string) => ({
  REDIS_URL: `${where},abortConnect=False,name=server-${label}`,
  CHAT_HUB_NAME: hub,
  SIGNALR_REDIS_MODE: 'streams',
  METRICS_ENABLED: 'true',
  LOG_LEVEL: 'info',
});

const describeCrossing = (name: string, crossing: Crossing) =>
  `${name}: ${crossing.sent} sent, ${crossing.lost} lost, ${crossing.duplicates} twice, ${crossing.inOrder ? 'in order' : 'OUT OF ORDER'}`;

/**
 * A fault in a test: what the receivers had when it was caused (`Traffic.cut`), when it was over (a killed process
 * had exited; a failover had both servers on the new master) and what to call it in the printed lines.
 */
interface Fault {
  readonly cut: Cut;
  readonly endedAt: number;
  readonly name: string;
}

/**
 * Every message each sender made reached both receivers it was meant for, once each, with no failed call, in the
 * order sent — across all kinds (one stream: one order), or per kind (`perKind`: several streams, one per channel).
 * With `fault`, entries on their way or written to a node whose data is then lost (see `Traffic.duringFault`: a
 * few milliseconds' worth for a kill, the failover itself for a failover) may be lost; every other one must arrive,
 * and the count is printed.
 */
function expectNothingLost(traffic: Traffic, perKind = false, fault?: Fault): string[] {
  const lines: string[] = [];
  for (const [from, to] of ROUTES) {
    const crossing = traffic.measure(from, to);
    const inFlight = fault && traffic.duringFault(from, to, fault.cut, fault.endedAt);
    lines.push(
      describeCrossing(`${from.toUpperCase()}→${to.toUpperCase()}`, crossing) +
        (inFlight ? ` (${inFlight.inside.sent} ${fault!.name}, ${inFlight.inside.lost} of them lost)` : ''),
    );
    const inOrder = perKind
      ? KINDS.every((kind: Kind) => traffic.measure(from, to, 0, Infinity, kind).inOrder)
      : crossing.inOrder;
    expect({
      route: `${from}→${to}`,
      lost: inFlight ? inFlight.lostOutside.slice(0, 5) : crossing.lostTexts.slice(0, 5),
      duplicates: crossing.duplicates,
      inOrder,
      failedCalls: crossing.failedCalls,
    }).toEqual({ route: `${from}→${to}`, lost: [], duplicates: 0, inOrder: true, failedCalls: 0 });
  }
  return lines;
}

/** Waits until `server` has seen a disconnection more than `outagesBefore` and is connected again. */
async function backAfterOutage(server: ServerProcess, outagesBefore: number): Promise<number> {
  for (;;) {
    const health = await server.backplane();
    if (health.outages > outagesBefore && health.connected) return Date.now();
    await delay(5);
  }
}

describe('streams mode on one Redis server, two servers at 100 messages/s each', () => {
  let redis: RedisServer | undefined;
  let a: ServerProcess | undefined;
  let b: ServerProcess | undefined;
  let traffic: Traffic | undefined;

  beforeAll(async () => {
    redis = await RedisServer.start();
    [a, b] = await startPair((label) => streamsEnv(label, `127.0.0.1:${redis!.port}`, 'StreamsLoss.ChatHub'));
  }, 60_000);

  afterEach(async () => {
    await traffic?.stop();
    await traffic?.close();
    traffic = undefined;
  });

  afterAll(async () => {
    if (process.env.STREAMS_DEBUG) console.log(a?.log.slice(-6000), b?.log.slice(-6000));
    await stopAll(a, b);
    await redis?.stop();
  }, 30_000);

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
    await Promise.all([
      a!.waitForBackplane('connected', RECOVERY_BOUND_MS),
      b!.waitForBackplane('connected', RECOVERY_BOUND_MS),
    ]);
    const reconnectedMs = Date.now() - restartedAt;
    await delay(3000);
    await traffic.stop();
    await traffic.settle();

    const lines = expectNothingLost(traffic, false, { cut, endedAt: diedAt, name: 'in flight when Redis died' });
    const after = await Promise.all([queueCounts(a!), queueCounts(b!)]);
    const queued = after.map((count, i) => count.queued - before[i].queued);
    for (const [i, count] of after.entries()) {
      expect({
        queuedNow: count.queuedNow,
        dropped: count.dropped - before[i].dropped,
        replayed: count.replayed - before[i].replayed,
      }).toEqual({ queuedNow: 0, dropped: 0, replayed: queued[i] });
      expect(queued[i]).toBeGreaterThanOrEqual(traffic.sentBy(i === 0 ? 'a' : 'b', killedAt + 200, restartedAt));
    }
    return [
      `streams: Redis killed for ${outageMs} ms (SIGKILL, restarted empty); both servers connected ${reconnectedMs} ms after the restart;`,
      `queued and replayed: A ${queued[0]}, B ${queued[1]}; dropped 0;`,
      ...lines,
    ];
  }

  test('Redis killed for 3 s and restarted: nothing lost, order kept', async () => {
    console.log((await throughOutage('short', 3000)).join('\n'));
  }, 60_000);

  test(
    `Redis killed for ${LONG_OUTAGE_MS / 1000} s: nothing lost within the default bounds`,
    async () => {
      console.log((await throughOutage('long', LONG_OUTAGE_MS)).join('\n'));
    },
    LONG_OUTAGE_MS + 60_000,
  );

  test("CLIENT KILL of one server's reading connection: what the other server published in the gap is read after it", async () => {
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
          .find((entry) => / name=server-A:read /.test(entry))
          ?.match(/^id=(\d+) /)?.[1];
        return id !== undefined;
      },
      "A's reading connection to be listed",
      10_000,
    );
    const cut = traffic.cut();
    expect(await command(redis!.port, ['CLIENT', 'KILL', 'ID', id!])).toBe(1);
    const backAt = await backAfterOutage(a!, outagesBefore);
    await delay(3000);
    await traffic.stop();
    await traffic.settle();

    const lines = expectNothingLost(traffic);
    // The gap held messages of B's for A: pub/sub would have lost them (see publish-queue.test.ts).
    const gapBeganAt = traffic.faultBeganAt('b', 'a', cut);
    const inGap = traffic.sentBy('b', gapBeganAt, backAt);
    expect(inGap).toBeGreaterThan(0);
    console.log(
      [
        `streams: CLIENT KILL of A's reading connection; A reading again ${backAt - cut.at} ms later, B made ${inGap} messages in the gap:`,
        ...lines,
      ].join('\n'),
    );
  }, 60_000);
});

describe('streams mode through a Sentinel failover', () => {
  const scratch = new Scratch();
  const topology = new SentinelTopology('streams-loss');
  let a: ServerProcess | undefined;
  let b: ServerProcess | undefined;
  let traffic: Traffic | undefined;

  beforeAll(async () => {
    await topology.start(scratch);
    [a, b] = await startPair((label) =>
      streamsEnv(
        label,
        `127.0.0.1:${topology.sentinel.port},serviceName=${topology.name}`,
        'StreamsLoss.Sentinel.ChatHub',
      ),
    );
  }, 90_000);

  afterAll(async () => {
    await traffic?.stop();
    await traffic?.close();
    await stopAll(a, b);
    await topology.stop();
    scratch.remove();
  }, 30_000);

  test('SENTINEL FAILOVER at 100 messages/s from each server: nothing lost outside the failover, order kept', async () => {
    traffic = await Traffic.connect(a!, b!);
    traffic.start('sentinel');
    await delay(1000);
    const cut = traffic.cut();
    const startedAt = cut.at;
    expect(await command(topology.sentinel.port, ['SENTINEL', 'FAILOVER', topology.name])).toBe('OK');
    await until(
      async () => (await topology.masterPort()) === topology.replica.port,
      'the sentinel to switch masters',
      RECOVERY_BOUND_MS,
    );
    await until(
      async () =>
        (await a!.backplane()).connected &&
        (await b!.backplane()).connected &&
        /name=server-A:read/.test(String(await command(topology.replica.port, ['CLIENT', 'LIST']))) &&
        /name=server-B:read/.test(String(await command(topology.replica.port, ['CLIENT', 'LIST']))),
      'both servers to read from the new master',
      RECOVERY_BOUND_MS,
    );
    const endedAt = Date.now();
    await delay(3000);
    await traffic.stop();
    await traffic.settle();
    // Replication is asynchronous and Sentinel promotes the replica before it demotes the old master: an entry the
    // old master took in between is dropped with its data when it follows the new one.
    const lines = expectNothingLost(traffic, false, {
      cut,
      endedAt: endedAt + 100,
      name: 'made or in flight during the failover',
    });
    console.log(
      [
        `streams: SENTINEL FAILOVER; both servers reading from the new master ${endedAt - startedAt} ms after the command:`,
        ...lines,
      ].join('\n'),
    );
  }, 90_000);
});

describe('streams mode through a Redis Cluster master failover', () => {
  const scratch = new Scratch();
  const cluster = new RedisClusterTopology(scratch);
  let a: ServerProcess | undefined;
  let b: ServerProcess | undefined;
  let traffic: Traffic | undefined;

  beforeAll(async () => {
    await cluster.start(3, 1);
    const [n0, n1, n2] = cluster.nodes;
    [a, b] = await startPair((label) =>
      streamsEnv(
        label,
        label === 'A' ? `127.0.0.1:${n0.port}` : `127.0.0.1:${n1.port},127.0.0.1:${n2.port}`,
        'StreamsLoss.Cluster.ChatHub',
      ),
    );
  }, 90_000);

  afterAll(async () => {
    await traffic?.stop();
    await traffic?.close();
    await stopAll(a, b);
    await cluster.stop();
    scratch.remove();
  }, 30_000);

  test('the channels are spread over 8 streams on every master; one master is killed and its replica takes over', async () => {
    const holders = new Set<number>();
    traffic = await Traffic.connect(a!, b!);
    traffic.start('cluster');
    await delay(1500);
    // The traffic wrote the streams: the hash tags spread them over the slots, so several masters hold some.
    for (const node of cluster.nodes) {
      for (let index = 0; index < 8; index++) {
        const exists = await command(node.port, ['EXISTS', `{signalr:stream:${index}}`]).catch(() => 0);
        if (exists === 1) holders.add(node.port);
      }
    }
    expect(holders.size).toBeGreaterThanOrEqual(2);

    const node = cluster.nodes[0];
    expect(String(await command(node.port, ['ROLE']))).toMatch(/^master/);
    const startedAt = Date.now();
    const entries = String(await command(cluster.nodes[1].port, ['CLUSTER', 'NODES']))
      .split('\n')
      .filter(Boolean)
      .map((entry) => entry.split(' '));
    const killedId = entries.find((fields) => fields[1]?.startsWith(`127.0.0.1:${node.port}@`))?.[0];
    const replicaAddress = entries.find((fields) => fields[2]?.includes('slave') && fields[3] === killedId)?.[1];
    expect(replicaAddress).toBeDefined();
    const replicaPort = Number(/:(\d+)@/.exec(replicaAddress!)![1]);
    // Replication is asynchronous: entries the master took but had not yet passed to its replica die with it.
    const cut = traffic.cut();
    await node.kill();
    const diedAt = Date.now();
    expect(await command(replicaPort, ['CLUSTER', 'FAILOVER', 'TAKEOVER'])).toBe('OK');
    await until(
      async () => {
        const role = String(await command(replicaPort, ['ROLE']));
        const info = String(await command(cluster.nodes[1].port, ['CLUSTER', 'INFO']));
        return role.startsWith('master') && /cluster_state:ok/.test(info);
      },
      'the replica to take over',
      RECOVERY_BOUND_MS,
    );
    const tookOverAt = Date.now();
    await until(
      async () => (await a!.backplane()).connected && (await b!.backplane()).connected,
      'both servers connected',
      RECOVERY_BOUND_MS,
    );
    await delay(4000);
    await traffic.stop();
    await traffic.settle();
    const lines = expectNothingLost(traffic, true, { cut, endedAt: diedAt, name: 'in flight when the master died' });
    console.log(
      [
        `streams: cluster master killed; its replica served as master ${tookOverAt - startedAt} ms later (${holders.size} masters held streams);`,
        'order is asserted per channel (all, group, user): the channels are spread over 8 streams, read by 8 connections;',
        ...lines,
      ].join('\n'),
    );
  }, 120_000);
});
