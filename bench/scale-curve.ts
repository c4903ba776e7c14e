/**
 * The scale curve: what a delivered message costs the servers and Redis as a fleet grows from 1 to 8 servers, on one
 * Redis, on a 3-master Redis Cluster with classic pub/sub, and on the same cluster with sharded pub/sub
 * (`redis.shardedPubSub`).
 *
 *   npm run bench:scale -- [--quick] [--only single,cluster,sharded] [--no-pin] [--render FILE.json]
 *
 * Two workloads on the same servers: broadcast to all (every connection receives every `SendMessage`), and many
 * groups (1,000 groups of 10 members, each connection in several, members placed at random over the servers; each
 * `SendToRoom` goes to a random group). The senders are ordinary connections spread over the servers, at a fixed
 * offered rate. A cell's CPU is counted from the first send until every expected delivery has arrived, so a cost
 * per delivered message is exact whatever the backlog; CPU is read from `/proc` for every server and
 * every Redis process (`/proc/<pid>/stat`'s 10 ms ticks are too coarse for Redis's microseconds per message, so
 * the nanoseconds of each thread's `schedstat` are summed; `lib/proc.ts`). The cost figures are fitted to a per-message model (`lib/scale-model.ts`) from which
 * docs/scaling.md sizes a fleet.
 *
 * This 2-core machine runs a scale model, not a fleet: servers share CPU 0, Redis and the load generators CPU 1
 * (`taskset`), so absolute throughput means nothing here and is not reported; costs per message and their ratios
 * are the figures. Nothing here asserts a time.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import * as path from 'node:path';
import Redis from 'ioredis';
import { RedisClusterTopology, Scratch } from '../test/support/redis-topology';
import type { PaceResult } from './generator';
import { svgToPng } from './lib/png';
import { cpuSeconds, machineBusySeconds, preciseCpuSeconds } from './lib/proc';
import {
  Generator,
  REPO_ROOT,
  ServerExitedError,
  redisVersion,
  startNodeServer,
  startRedis,
  tasksetAvailable,
  type RunningServer,
} from './lib/processes';
import { median } from './lib/stats';
import { cellCosts, type CellCosts, type CellCounts } from './lib/scale-model';
import { renderScaleReport, type ScaleCell, type ScaleRun } from './scale-report';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1].split(',') : undefined;
const PIN = !argv.includes('--no-pin') && cpus().length >= 2 && tasksetAvailable();
const SERVER_CPUS = PIN ? '0' : null;
const LOAD_CPUS = PIN ? '1' : null;

export const TOPOLOGIES = ['single', 'cluster', 'sharded'] as const;
export type Topology = (typeof TOPOLOGIES)[number];
const SERVER_COUNTS = [1, 2, 4, 8];
/** Exit code of `servers/ours.ts` when this build lacks the backplane option it was given. */
const BACKPLANE_MISSING_EXIT = 3;

/** Broadcast: connections, offered broadcasts per second, measured seconds. */
const BROADCAST = { connections: QUICK ? 250 : 500, rate: 200, seconds: QUICK ? 3 : 8 };
/** Many groups: groups × members, connections (each in members·groups/connections groups), sends per second. */
const GROUPS = { groups: 1000, members: 10, connections: QUICK ? 1000 : 2000, rate: 1000, seconds: QUICK ? 3 : 8 };
/** Sender connections, the first of each generator's, spread over the servers. */
const SENDERS = 8;
const GENERATORS = 2;
const ROUNDS = QUICK ? 1 : 2;
/**
 * Seconds of the idle reading of each Redis deployment, before any server connects: Redis uses some CPU with
 * nothing sent (its timers, the cluster bus's gossip: a few thousandths of a core per node), which is no message's
 * cost; that rate times each window is taken off the window's Redis CPU. The servers' idle rate (timers, pings) is
 * smaller still against what they spend per window and is left in.
 */
const IDLE_SECONDS = QUICK ? 1 : 2;
/** The hub's name on Redis (the chat sample's class name): channels are `ChatHub:group:{name}`. */
const HUB = 'ChatHub';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (line: string) => process.stderr.write(`${line}\n`);

/** A Redis deployment under test: where servers connect and which processes to count. */
interface Deployment {
  readonly pids: number[];
  /** The `--redis…` arguments of server `index` (cluster seeds rotated, so subscribers spread over the nodes). */
  serverArgs(index: number): string[];
  /** Ports of the master nodes, for the subscription counts. */
  readonly ports: number[];
  /** CPU cores each Redis process uses idle (read once, before any server connects). */
  idleCores: number[];
  stop(): Promise<void>;
}

function pin(pid: number, cpuList: string | null): void {
  if (cpuList !== null) execFileSync('taskset', ['-a', '-p', '-c', cpuList, String(pid)], { stdio: 'ignore' });
}

/** Reads the deployment's idle rate per Redis process. */
async function readIdle(deployment: Deployment): Promise<Deployment> {
  const started = performance.now();
  const before = deployment.pids.map((pid) => preciseCpuSeconds(pid));
  await sleep(IDLE_SECONDS * 1000);
  const seconds = (performance.now() - started) / 1000;
  deployment.idleCores = deployment.pids.map((pid, i) => (preciseCpuSeconds(pid) - before[i]) / seconds);
  return deployment;
}

async function deploy(topology: Topology): Promise<Deployment> {
  if (topology === 'single') {
    const redis = await startRedis(LOAD_CPUS);
    return {
      pids: [redis.pid],
      ports: [redis.port],
      idleCores: [],
      serverArgs: () => ['--redis', redis.url],
      stop: () => redis.stop(),
    };
  }
  const scratch = new Scratch();
  const cluster = new RedisClusterTopology(scratch);
  try {
    await cluster.start(3, 0);
  } catch (error) {
    await cluster.stop();
    scratch.remove();
    throw error;
  }
  for (const node of cluster.nodes) pin(node.pid!, LOAD_CPUS);
  const seeds = cluster.nodes.map((node) => `127.0.0.1:${node.port}`);
  return {
    pids: cluster.nodes.map((node) => node.pid!),
    ports: cluster.nodes.map((node) => node.port),
    idleCores: [],
    serverArgs: (index) => [
      '--redis-connection-string',
      [...seeds.slice(index % seeds.length), ...seeds.slice(0, index % seeds.length)].join(','),
      ...(topology === 'sharded' ? ['--redis-sharded'] : []),
    ],
    stop: async () => {
      await cluster.stop();
      scratch.remove();
    },
  };
}

/** Why a topology cannot run with this build (sharded pub/sub not there yet), else rethrows. */
function notRunReason(error: unknown): string {
  if (error instanceof ServerExitedError && error.code === BACKPLANE_MISSING_EXIT) {
    const line = error.message.split('\n').find((text) => text.includes('no Redis backplane as asked'));
    return `this build rejects the option: ${(line ?? error.message).slice(0, 300)}`;
  }
  throw error;
}

/** Group `g` of the groups workload. */
const groupName = (index: number) => `g${index}`;

/**
 * Each connection's groups: every group gets `members` distinct connections, every connection the same number of
 * groups (give or take one), chosen at random (a seeded shuffle, so every cell has the same layout).
 */
function groupLayout(connections: number, groups: number, members: number): number[][] {
  let seed = 0x5eed;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  const slots = Array.from({ length: groups * members }, (_, i) => i % connections);
  for (let i = slots.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [slots[i], slots[j]] = [slots[j], slots[i]];
  }
  const of: number[][] = Array.from({ length: connections }, () => []);
  for (let group = 0; group < groups; group++) {
    const chosen = new Set<number>();
    for (let k = 0; k < members; k++) {
      // A connection drawn twice for one group trades places with the next slot (of a later group) that is not.
      const index = group * members + k;
      let swap = index;
      while (chosen.has(slots[swap]) && swap < slots.length - 1) swap++;
      [slots[index], slots[swap]] = [slots[swap], slots[index]];
      if (chosen.has(slots[index])) continue;
      chosen.add(slots[index]);
      of[slots[index]].push(group);
    }
  }
  return of;
}

/** Connections per generator and the servers they connect to (rotated per generator, so senders spread). */
async function startLoad(servers: RunningServer[], connections: number): Promise<Generator[]> {
  const generators = Array.from({ length: GENERATORS }, () => Generator.start(LOAD_CPUS));
  const targets = servers.map((server) => ({ host: '127.0.0.1', port: server.port }));
  await Promise.all(
    generators.map(async (generator, g) => {
      const shift = Math.floor((g * servers.length) / GENERATORS);
      const rotated = [...targets.slice(shift), ...targets.slice(0, shift)];
      const result = await generator.call<{ connected: number; failed: number; firstError?: string }>({
        op: 'connect',
        dialect: g % 2 === 0 ? 'signalr-json' : 'signalr-msgpack',
        targets: rotated,
        count: connections / GENERATORS,
        concurrency: 16,
        localAddresses: ['127.0.0.1'],
      });
      if (result.failed > 0) throw new Error(`${result.failed} connections failed: ${result.firstError}`);
    }),
  );
  return generators;
}

async function delivered(generators: Generator[]): Promise<number> {
  const counts = await Promise.all(generators.map((generator) => generator.call<number>({ op: 'delivered' })));
  return counts.reduce((sum, count) => sum + count, 0);
}

/** Waits until `target` deliveries have arrived in all; false after `timeoutMs`. */
async function awaitDelivered(generators: Generator[], target: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while ((await delivered(generators)) < target) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/** Subscribers (servers) summed over the nodes for each group channel, as Redis counts them. */
async function serversPerGroup(deployment: Deployment, topology: Topology, groups: number): Promise<number> {
  const channels = Array.from({ length: groups }, (_, i) => `${HUB}:group:${groupName(i)}`);
  let total = 0;
  for (const port of deployment.ports) {
    const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      const reply = (await redis.call('PUBSUB', topology === 'sharded' ? 'SHARDNUMSUB' : 'NUMSUB', ...channels)) as (
        string | number
      )[];
      for (let i = 1; i < reply.length; i += 2) total += Number(reply[i]);
    } finally {
      redis.disconnect();
    }
  }
  return total / groups;
}

interface Window {
  /** CPU counted (Redis's less its idle rate). */
  readonly counts: CellCounts;
  /** Cores of other work on the machine meanwhile (busy time beyond the measured processes and generators). */
  readonly otherCores: number;
  readonly seconds: number;
  /** Deliveries expected and not arrived within a minute after the last send (0 unless something was lost). */
  readonly missing: number;
}

/** Sends the workload at its rate and counts CPU until every expected delivery is in. */
async function measure(
  generators: Generator[],
  servers: RunningServer[],
  deployment: Deployment,
  send: (generator: Generator, share: number) => Promise<PaceResult>,
  expected: (results: PaceResult[]) => number,
): Promise<Window> {
  const serverPids = servers.map((server) => server.pid);
  const readServers = () => serverPids.reduce((sum, pid) => sum + preciseCpuSeconds(pid), 0);
  const readRedis = () => deployment.pids.map((pid) => preciseCpuSeconds(pid));
  const everything = () =>
    [...serverPids, ...deployment.pids, ...generators.map((g) => g.pid), process.pid].reduce(
      (sum, pid) => sum + cpuSeconds(pid),
      0,
    );
  const before = await delivered(generators);
  const serverBefore = readServers();
  const redisBefore = readRedis();
  const ownBefore = everything();
  const machineBefore = machineBusySeconds();
  const started = performance.now();
  const results = await Promise.all(generators.map((generator) => send(generator, 1 / generators.length)));
  const target = before + expected(results);
  const complete = await awaitDelivered(generators, target, 60_000);
  const seconds = (performance.now() - started) / 1000;
  const redisUsed = readRedis().map((value, i) => value - redisBefore[i] - deployment.idleCores[i] * seconds);
  const counts: CellCounts = {
    messages: results.reduce((sum, result) => sum + result.sent, 0),
    delivered: (await delivered(generators)) - before,
    serverCpuSeconds: readServers() - serverBefore,
    redisCpuSeconds: redisUsed.reduce((sum, value) => sum + value, 0),
    busiestRedisCpuSeconds: Math.max(...redisUsed),
  };
  const other = machineBusySeconds() - machineBefore - (everything() - ownBefore);
  return {
    counts,
    otherCores: Math.max(0, other) / seconds,
    seconds,
    missing: complete ? 0 : target - (await delivered(generators)),
  };
}

/** Every connection receives one broadcast (all servers subscribed), tried until one reaches them all. */
async function primeBroadcast(generators: Generator[], connections: number): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const before = await delivered(generators);
    await generators[0].call({ op: 'prime', kind: 'all', senders: 1, groups: [] });
    if (await awaitDelivered(generators, before + connections, 1000)) {
      // Let any late copy of an earlier attempt land before counting starts.
      await sleep(200);
      return;
    }
  }
  throw new Error('no broadcast reached every connection');
}

async function broadcastCell(servers: RunningServer[], deployment: Deployment): Promise<Omit<ScaleCell, 'topology'>> {
  const { connections, rate, seconds } = BROADCAST;
  const generators = await startLoad(servers, connections);
  try {
    await primeBroadcast(generators, connections);
    const window = await measure(
      generators,
      servers,
      deployment,
      (generator, share) =>
        generator.call<PaceResult>({
          op: 'pace',
          kind: 'all',
          rate: rate * share,
          durationMs: seconds * 1000,
          senders: SENDERS / GENERATORS,
          groups: [],
        }),
      (results) => results.reduce((sum, result) => sum + result.sent, 0) * connections,
    );
    return summarize(
      'broadcast',
      servers.length,
      connections,
      servers.length,
      connections,
      window,
      deployment.idleCores,
    );
  } finally {
    await Promise.all(generators.map((generator) => generator.stop()));
  }
}

async function groupsCell(
  servers: RunningServer[],
  deployment: Deployment,
  topology: Topology,
): Promise<Omit<ScaleCell, 'topology'>> {
  const { groups, members, connections, rate, seconds } = GROUPS;
  const layout = groupLayout(connections, groups, members);
  const generators = await startLoad(servers, connections);
  try {
    const perGenerator = connections / GENERATORS;
    // Generator g holds connections g·perGenerator … ; its i-th connection is layout[g·perGenerator + i].
    await Promise.all(
      generators.map((generator, g) =>
        generator.call({
          op: 'join',
          groups: layout.slice(g * perGenerator, (g + 1) * perGenerator).map((list) => list.map(groupName)),
        }),
      ),
    );
    const sizes = new Array<number>(groups).fill(0);
    for (const list of layout) for (const group of list) sizes[group]++;
    const names = sizes.map((_, i) => groupName(i));
    // One message to every group, until one round reaches every member (every server subscribed).
    const memberships = sizes.reduce((sum, size) => sum + size, 0);
    for (let attempt = 0; ; attempt++) {
      const before = await delivered(generators);
      await generators[0].call({ op: 'prime', kind: 'group', senders: SENDERS / GENERATORS, groups: names });
      if (await awaitDelivered(generators, before + memberships, 3000)) break;
      if (attempt === 10) throw new Error('group messages did not reach every member');
    }
    await sleep(200);
    const subscribers = await serversPerGroup(deployment, topology, groups);
    const window = await measure(
      generators,
      servers,
      deployment,
      (generator, share) =>
        generator.call<PaceResult>({
          op: 'pace',
          kind: 'group',
          rate: rate * share,
          durationMs: seconds * 1000,
          senders: SENDERS / GENERATORS,
          groups: names,
        }),
      (results) =>
        results.reduce(
          (sum, result) => sum + result.perGroup.reduce((total, count, i) => total + count * sizes[i], 0),
          0,
        ),
    );
    return summarize(
      'groups',
      servers.length,
      memberships / groups,
      subscribers,
      connections,
      window,
      deployment.idleCores,
    );
  } finally {
    await Promise.all(generators.map((generator) => generator.stop()));
  }
}

function summarize(
  workload: ScaleCell['workload'],
  servers: number,
  deliveriesPerMessage: number,
  subscribersPerMessage: number,
  connections: number,
  window: Window,
  idleCores: readonly number[],
): Omit<ScaleCell, 'topology'> {
  const costs: CellCosts = cellCosts(window.counts);
  return {
    workload,
    servers,
    connections,
    deliveriesPerMessage,
    subscribersPerMessage,
    ...window.counts,
    ...costs,
    seconds: window.seconds,
    redisIdleCores: idleCores.reduce((sum, value) => sum + value, 0),
    missing: window.missing,
    otherCores: window.otherCores,
    loadAverage: loadavg()[0],
  };
}

/** Writes the JSON, the report, the chart's SVG and PNG of a run. */
async function writeOutputs(run: ScaleRun, suffix: string): Promise<string> {
  const directory = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(directory, { recursive: true });
  writeFileSync(path.join(directory, `scale-curve${suffix}.json`), `${JSON.stringify(run, null, 2)}\n`);
  const { markdown, svg } = renderScaleReport(run, `scale-curve${suffix}.png`);
  writeFileSync(path.join(directory, `scale-curve${suffix}.svg`), svg);
  const failure = await svgToPng(svg, path.join(directory, `scale-curve${suffix}.png`));
  if (failure !== null) log(`no PNG chart (${failure}); the SVG is written`);
  const text = failure === null ? markdown : markdown.replace(`scale-curve${suffix}.png`, `scale-curve${suffix}.svg`);
  writeFileSync(path.join(directory, `scale-curve${suffix}.md`), text);
  return text;
}

async function main(): Promise<void> {
  // `--render FILE.json` writes the report and chart of a saved run again (after a change to them).
  if (argv.includes('--render')) {
    const file = argv[argv.indexOf('--render') + 1];
    const run = JSON.parse(readFileSync(file, 'utf8')) as ScaleRun;
    process.stdout.write(await writeOutputs(run, path.basename(file, '.json').replace(/^scale-curve/, '')));
    return;
  }
  const topologies = TOPOLOGIES.filter((topology) => only === undefined || only.includes(topology));
  const cells: ScaleCell[] = [];
  const notRun: Partial<Record<Topology, string>> = {};
  const runStarted = Date.now();
  const loadAtStart = loadavg()[0];
  for (let round = 0; round < ROUNDS; round++) {
    for (const topology of topologies) {
      if (notRun[topology] !== undefined) continue;
      const deployment = await readIdle(await deploy(topology));
      try {
        for (const count of SERVER_COUNTS) {
          // Started together (quicker); any that failed leaves the others stopped.
          const started = await Promise.allSettled(
            Array.from({ length: count }, (_, i) => startNodeServer('ours.js', deployment.serverArgs(i), SERVER_CPUS)),
          );
          const servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
          const failed = started.find((result) => result.status === 'rejected');
          if (failed !== undefined) {
            await Promise.all(servers.map((server) => server.stop()));
            notRun[topology] = notRunReason(failed.reason);
            log(`${topology}: not run: ${notRun[topology]}`);
            break;
          }
          try {
            for (const cell of [
              await broadcastCell(servers, deployment),
              await groupsCell(servers, deployment, topology),
            ]) {
              cells.push({ topology, ...cell });
              log(
                `round ${round + 1} ${topology} ${count} server(s) ${cell.workload}: ` +
                  `servers ${cell.serverMicrosPerDelivered.toFixed(2)} µs, Redis ${cell.redisMicrosPerDelivered.toFixed(3)} µs ` +
                  `per delivered; Redis ${cell.redisMicrosPerMessage.toFixed(1)} µs per message ` +
                  `(${cell.subscribersPerMessage.toFixed(1)} subscribers); other work ${cell.otherCores.toFixed(2)} cores, ` +
                  `load ${cell.loadAverage.toFixed(1)}${cell.missing > 0 ? `; ${cell.missing} MISSING` : ''}`,
              );
            }
          } finally {
            await Promise.all(servers.map((server) => server.stop()));
          }
        }
      } finally {
        await deployment.stop();
      }
    }
  }
  const run: ScaleRun = {
    date: new Date().toISOString(),
    quick: QUICK,
    rounds: ROUNDS,
    durationSeconds: Math.round((Date.now() - runStarted) / 1000),
    machine: {
      cpu: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown'}`,
      node: process.version,
      redis: redisVersion() ?? 'unknown',
      placement: PIN ? 'servers pinned to CPU 0, Redis and load generators to CPU 1 (taskset)' : 'no CPU pinning',
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: loadavg()[0],
    },
    settings: { broadcast: BROADCAST, groups: GROUPS, senders: SENDERS, serverCounts: SERVER_COUNTS },
    notRun,
    cells,
    summary: summarizeCells(cells),
  };
  const suffix = `${QUICK ? '-quick' : ''}${only !== undefined ? '-partial' : ''}`;
  process.stdout.write(`${await writeOutputs(run, suffix)}\n`);
}

/** The median of each cell's figures over the rounds. */
function summarizeCells(cells: readonly ScaleCell[]): ScaleCell[] {
  const keys = new Map<string, ScaleCell[]>();
  for (const cell of cells) {
    const key = `${cell.topology}/${cell.workload}/${cell.servers}`;
    keys.set(key, [...(keys.get(key) ?? []), cell]);
  }
  return [...keys.values()].map((group) => {
    const first = group[0];
    const pick = (key: keyof ScaleCell) => median(group.map((cell) => cell[key] as number));
    const numeric = Object.fromEntries(
      Object.entries(first)
        .filter(([, value]) => typeof value === 'number')
        .map(([key]) => [key, pick(key as keyof ScaleCell)]),
    );
    return { ...first, ...numeric, missing: Math.max(...group.map((cell) => cell.missing)) } as ScaleCell;
  });
}

void main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
    process.exit(1);
  },
);
