/**
 * Sharded pub/sub (`SIGNALR_REDIS_SHARDED=true`) through the faults of a Redis Cluster (three masters, a replica
 * each), with the loss-table traffic of `publish-queue.test.ts` (a client on each of two server processes sending
 * 100 messages/s: a broadcast, a send to a group, a send to a user on the other server, in turn):
 * - the slot of the busy group's channel moves to another master (`CLUSTER SETSLOT … IMPORTING/MIGRATING/NODE`, as
 *   `redis-cli --cluster reshard` moves a slot without keys) while traffic flows: the old owner unsubscribes both
 *   servers (`sunsubscribe` push), each subscribes the channel again on the new owner;
 * - the master that owns that channel's slot is killed and its replica promoted (`CLUSTER FAILOVER TAKEOVER`);
 * - that master (with no replica left) is killed and started again: it keeps its slots, both servers reconnect to it.
 * Asserted: each server's own clients get all of its messages; across servers nothing is lost outside the fault's
 * window, each channel's order holds, no hub call fails; inside the window the loss is measured, printed and held
 * to a bound. Channels on different shards travel different connections, so order is asserted per kind (channel).
 */
import { availableParallelism, loadavg } from 'node:os';
import { delay } from '../support/clients';
import { clusterNodes, keySlot, migrateSlot, ownerOf, shardSubscribers } from '../support/cluster-admin';
import { KINDS, Traffic, queueCounts, type Crossing, type Cut } from '../support/publish-traffic';
import { RedisClusterTopology, Scratch, command, until } from '../support/redis-topology';
import { ServerProcess, startConnected, stopAll } from '../support/server-process';

const HUB = 'Sharded.Faults.ChatHub';
const GROUP_CHANNEL = `${HUB}:group:loss-room`;
const RECOVERY_BOUND_MS = 15_000;
/**
 * The most messages of the other server one server's clients may lose inside a fault's window: what one sender makes
 * in 0.75 s (75 messages, a third of them to the group). Measured: 0–1 (the README's table), so a layout that lost
 * the channel for the whole window — the busy group's messages until the next slot refresh — fails it.
 */
const LOSS_BOUND = 75;

const cpus = availableParallelism();
const scratch = new Scratch();
const cluster = new RedisClusterTopology(scratch);
let a: ServerProcess | undefined;
let b: ServerProcess | undefined;

beforeAll(async () => {
  await cluster.start(3, 1);
  const [n0, n1, n2] = cluster.nodes;
  const seeds: Record<string, string> = {
    A: `127.0.0.1:${n0.port}`,
    B: `127.0.0.1:${n1.port},127.0.0.1:${n2.port}`,
  };
  [a, b] = await startConnected(
    ['A', 'B'],
    (label) => ({
      REDIS_URL: `${seeds[label]},abortConnect=False,name=sharded-${label}`,
      SIGNALR_REDIS_SHARDED: 'true',
      CHAT_HUB_NAME: HUB,
      LOG_LEVEL: 'info',
      METRICS_ENABLED: 'true',
    }),
    20_000,
  );
}, 90_000);

afterAll(async () => {
  await stopAll(a, b);
  await cluster.stop();
  scratch.remove();
}, 30_000);

const line = (name: string, crossing: Crossing) =>
  `${name}: ${crossing.sent} sent, ${crossing.lost} lost, ${crossing.duplicates} twice`;

/** A live node to ask. */
const anyLive = () => cluster.nodes.find((node) => node.pid !== undefined)!;

interface FaultReport {
  readonly lines: string[];
  /** Called after the lines are printed, so a failing run still shows its figures. */
  readonly assert: () => void;
}

/**
 * The claims for traffic through a fault caused at `cut` and over at `endedAt` (both servers subscribed again), the
 * window closing `settleMs` later: the lines to print, and the assertions.
 */
function faultClaims(
  traffic: Traffic,
  cut: Cut,
  endedAt: number,
  settleMs: number,
  { assertOrder = true } = {},
): FaultReport {
  const lines: string[] = [];
  const checks: (() => void)[] = [];
  for (const [from, to] of [
    ['a', 'a'],
    ['b', 'b'],
    ['a', 'b'],
    ['b', 'a'],
  ] as const) {
    const all = traffic.measure(from, to);
    const window = traffic.duringFault(from, to, cut, endedAt + settleMs);
    const [startedAt, inside, outside] = [window.began, window.inside, window.lostOutside.length];
    const perKindOrder = KINDS.every((kind) => traffic.measure(from, to, 0, Infinity, kind).inOrder);
    // A server's own publishes of the window reach its clients either through their echo or, once the channel is
    // lost, directly: a late echo can put one behind a later message. Across servers order holds throughout; on a
    // server's own clients it is asserted outside the window, and printed for the whole run.
    const orderAsserted =
      from !== to
        ? perKindOrder
        : KINDS.every(
            (kind) =>
              traffic.measure(from, to, 0, startedAt, kind).inOrder &&
              traffic.measure(from, to, endedAt + settleMs, Infinity, kind).inOrder,
          );
    lines.push(
      `${line(`${from.toUpperCase()}→${to.toUpperCase()}`, all)}; inside the window ${inside.lost} lost of ` +
        `${inside.sent} (${inside.lostTexts.slice(0, 8).join(' ')}${inside.lost > 8 ? ' …' : ''})` +
        `${perKindOrder ? '' : '; one of the window out of order'}`,
    );
    checks.push(() => {
      expect({
        route: `${from}→${to}`,
        inOrderPerChannel: assertOrder ? orderAsserted : true,
        failedCalls: all.failedCalls,
        lostOutsideFault: outside,
        lostInsideWithinBound: inside.lost <= LOSS_BOUND,
      }).toEqual({
        route: `${from}→${to}`,
        inOrderPerChannel: true,
        failedCalls: 0,
        lostOutsideFault: 0,
        lostInsideWithinBound: true,
      });
      // A server's own clients get its messages directly or through its own subscription: never lost.
      if (from === to) expect({ route: `${from}→${to}`, lost: all.lost }).toEqual({ route: `${from}→${to}`, lost: 0 });
    });
  }
  return { lines, assert: () => checks.forEach((check) => check()) };
}

test('the slot of a busy group channel moves to another master while traffic flows', async () => {
  const port = anyLive().port;
  const slot = await keySlot(port, GROUP_CHANNEL);
  const source = await ownerOf(port, slot);
  const target = (await clusterNodes(port)).find((node) => node.master && !node.failed && node.id !== source.id)!;
  const traffic = await Traffic.connect(a!, b!);
  try {
    expect(await shardSubscribers(source.port, GROUP_CHANNEL)).toBe(2);
    traffic.start('migrate');
    await delay(1500);
    const cut = traffic.cut();
    await migrateSlot(cluster.nodes, slot, target);
    const movedAt = Date.now();
    // Over once both servers hold the channel on its new owner and are connected.
    await until(
      async () =>
        (await shardSubscribers(target.port, GROUP_CHANNEL)) === 2 &&
        (await a!.backplane()).connected &&
        (await b!.backplane()).connected,
      'both servers subscribed on the new owner',
      RECOVERY_BOUND_MS,
    );
    const endedAt = Date.now();
    expect(await shardSubscribers(source.port, GROUP_CHANNEL)).toBe(0);
    // Each server saw the old owner's unsolicited sunsubscribe and opened that connection again.
    const reopened = (server: ServerProcess) =>
      server.logLines().filter((entry) => /shard subscriber connection to .* opened again/.test(entry.msg)).length;
    await delay(3000);
    await traffic.stop();
    await traffic.settle();
    const report = faultClaims(traffic, cut, endedAt, 500);
    console.log(
      [
        `Slot ${slot} (${GROUP_CHANNEL}) moved from :${source.port} to :${target.port}; both servers subscribed ` +
          `there ${endedAt - cut.at} ms after the first SETSLOT (${endedAt - movedAt} ms after the last); the ` +
          `connection to the old owner opened again by A ${reopened(a!)}, by B ${reopened(b!)} time(s); ` +
          `load average ${loadavg()[0].toFixed(1)} on ${cpus} cores:`,
        ...report.lines,
      ].join('\n'),
    );
    report.assert();
    expect({ a: reopened(a!) >= 1, b: reopened(b!) >= 1 }).toEqual({ a: true, b: true });
  } finally {
    await traffic.stop();
    await traffic.close();
  }
}, 90_000);

test('the master owning the busy group channel is killed and its replica takes over while traffic flows', async () => {
  const port = anyLive().port;
  const slot = await keySlot(port, GROUP_CHANNEL);
  const owner = await ownerOf(port, slot);
  const node = cluster.nodes.find((candidate) => candidate.port === owner.port)!;
  const replica = (await clusterNodes(port)).find((candidate) => !candidate.master && candidate.masterId === owner.id);
  expect(replica).toBeDefined();
  const traffic = await Traffic.connect(a!, b!);
  try {
    traffic.start('failover');
    await delay(1500);
    const cut = traffic.cut();
    await node.kill();
    expect(await command(replica!.port, ['CLUSTER', 'FAILOVER', 'TAKEOVER'])).toBe('OK');
    await until(
      async () => {
        const role = String(await command(replica!.port, ['ROLE']));
        const info = String(await command(replica!.port, ['CLUSTER', 'INFO']));
        return role.startsWith('master') && /cluster_state:ok/.test(info);
      },
      'the replica to take over',
      RECOVERY_BOUND_MS,
    );
    await until(
      async () =>
        (await shardSubscribers(replica!.port, GROUP_CHANNEL)) === 2 &&
        (await a!.backplane()).connected &&
        (await b!.backplane()).connected,
      'both servers subscribed on the promoted replica',
      RECOVERY_BOUND_MS,
    );
    const endedAt = Date.now();
    await delay(4000);
    await traffic.stop();
    await traffic.settle();
    // As in the classic cluster row: a replica promoted by TAKEOVER is known as master to the other nodes only once
    // they take its new epoch, so the window closes one second after both servers hold the channel there.
    const report = faultClaims(traffic, cut, endedAt, 1000);
    console.log(
      [
        `Master :${owner.port} (slot ${slot}, ${GROUP_CHANNEL}) killed, replica :${replica!.port} promoted; both ` +
          `servers subscribed there and connected ${endedAt - cut.at} ms after the kill; ` +
          `load average ${loadavg()[0].toFixed(1)} on ${cpus} cores:`,
        ...report.lines,
      ].join('\n'),
    );
    report.assert();
  } finally {
    await traffic.stop();
    await traffic.close();
  }
}, 90_000);

test('the master owning the busy group channel is restarted (killed and started again) while traffic flows', async () => {
  const port = anyLive().port;
  const slot = await keySlot(port, GROUP_CHANNEL);
  const owner = await ownerOf(port, slot);
  const node = cluster.nodes.find((candidate) => candidate.port === owner.port)!;
  const traffic = await Traffic.connect(a!, b!);
  try {
    const queuedBefore = await Promise.all([queueCounts(a!), queueCounts(b!)]);
    traffic.start('restart');
    await delay(1500);
    const cut = traffic.cut();
    await node.kill();
    await node.start();
    await until(
      async () => {
        const serving = await ownerOf(anyLive().port, slot);
        return (
          (await shardSubscribers(serving.port, GROUP_CHANNEL)) === 2 &&
          (await a!.backplane()).connected &&
          (await b!.backplane()).connected
        );
      },
      'both servers subscribed again on the restarted node',
      RECOVERY_BOUND_MS,
    );
    const endedAt = Date.now();
    await delay(3000);
    await traffic.stop();
    await traffic.settle();
    // Order is printed, not asserted, here: when the node comes back, a publish ioredis held for it can be sent
    // after publishes the server's queue replayed, so one message may arrive behind later ones (README, "Sharded
    // pub/sub", known limit). Loss, repeats and the queue's counts are asserted.
    const report = faultClaims(traffic, cut, endedAt, 500, { assertOrder: false });
    // What a server published while its subscriptions were not all back waited in its queue and was sent once they
    // were (none may have had to: a sender whose SPUBLISH ioredis holds for the node's return makes nothing meanwhile).
    const queued = (await Promise.all([queueCounts(a!), queueCounts(b!)])).map((after, i) => ({
      queued: after.queued - queuedBefore[i].queued,
      replayed: after.replayed - queuedBefore[i].replayed,
      dropped: after.dropped - queuedBefore[i].dropped,
    }));
    console.log(
      [
        `publish queue during the restart: A ${JSON.stringify(queued[0])}, B ${JSON.stringify(queued[1])}`,
        `Master :${owner.port} (slot ${slot}) killed and restarted (it keeps its slots: no replica is left to ` +
          `promote); both servers subscribed there again ${endedAt - cut.at} ms after the kill; ` +
          `load average ${loadavg()[0].toFixed(1)} on ${cpus} cores:`,
        ...report.lines,
      ].join('\n'),
    );
    report.assert();
    for (const counts of queued) expect(counts).toEqual({ queued: counts.queued, replayed: counts.queued, dropped: 0 });
  } finally {
    await traffic.stop();
    await traffic.close();
  }
}, 90_000);
