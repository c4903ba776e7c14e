/**
 * The benchmark suite: every scenario against fastify-signalr and its peers in one run, so every figure can be
 * read as a ratio to the others measured on the same machine minutes apart.
 *
 * Run it with `npm run bench` (or `npm run bench -- --quick`); `bench/bench.sh` raises the file limit, compiles
 * this folder and the server sources, and starts this file. Options:
 *
 * - `--quick`: shorter windows, fewer connections, saturation only (under two minutes);
 * - `--only fanout,echo,idle,backplane,connect,scale`: a subset of the scenarios (`scale`: 100,000 connections on one
 *   server; 10,000 in quick mode);
 * - `--peers ours-json,ours-msgpack,aspnetcore,socketio,ws`: a subset of the servers;
 * - `--no-pin`: leave CPU placement to the kernel (by default the servers run on CPU 0, everything else on CPU 1);
 * - `--no-nice`: start everything at the default priority (by default at nice -10 where allowed, so other programs
 *   on a shared machine disturb the measurements less);
 * - `--update-readme`: replace the README's performance section with this run's summary;
 * - `--render FILE.json`: measure nothing; write the report, chart (and with `--update-readme` the README section)
 *   again from a saved run, after a change to how results are shown;
 * - `--scale-fleet`: after each one-server scale cell, the full count again over as many servers on one Redis as
 *   the open-file limit needs (one box; at least two);
 * - `--cpu-prof`: write a V8 CPU profile of every run of our server to `bench/results/profiles/` (open it in
 *   Chrome DevTools); the figures of such a run are not comparable.
 *
 * Output: `bench/results/<date>[-quick].md`, `latest[-quick].md`, `<date>[-quick].json`, and the chart
 * `chart[-quick].png` (+ `.svg`); a run narrowed with `--only` or `--peers` writes the same names with `-partial`
 * added (ignored by git), leaving the last complete results in place.
 */
import { cpus, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Dialect, SignalRTransport, Target } from './lib/dialects';
import type { ConnectResult, EchoResult } from './generator';
import type { Pauses } from './lib/pauses';
import {
  cpuSeconds,
  machineBusySeconds,
  residentBytes,
  runQueueWaitBetween,
  runQueueWaits,
  totalCpuSeconds,
} from './lib/proc';
import { svgToPng as renderPng } from './lib/png';
import {
  Generator,
  prepareDotnet,
  redisVersion,
  REPO_ROOT,
  ServerExitedError,
  startDotnetServer,
  startNodeServer,
  niceAvailable,
  setNiceness,
  startRedis,
  tasksetAvailable,
  type Placement,
  type RunningServer,
} from './lib/processes';
import { count, renderReport, renderReadmeSection, type Report } from './report';
import { renderChart } from './chart';

// -- what is measured --------------------------------------------------------------------------------------------

export type Scenario = 'fanout' | 'echo' | 'idle' | 'backplane' | 'connect' | 'scale';
export type PeerId = 'ours-json' | 'ours-msgpack' | 'ours-admin' | 'aspnetcore' | 'socketio' | 'ws';

export interface Peer {
  readonly id: PeerId;
  readonly label: string;
  readonly dialect: Dialect;
  readonly server: 'ours' | 'dotnet' | 'socketio' | 'ws';
  /** Arguments of its server beyond the port. */
  readonly serverArgs?: readonly string[];
  /** Measured in the fan-out only: a variant of another peer whose other figures would say nothing new. */
  readonly fanoutOnly?: boolean;
}

export const PEERS: readonly Peer[] = [
  { id: 'ours-json', label: 'fastify-signalr, JSON', dialect: 'signalr-json', server: 'ours' },
  { id: 'ours-msgpack', label: 'fastify-signalr, MessagePack', dialect: 'signalr-msgpack', server: 'ours' },
  {
    id: 'ours-admin',
    label: 'fastify-signalr, JSON, admin page registered (none open)',
    dialect: 'signalr-json',
    server: 'ours',
    serverArgs: ['--admin'],
    fanoutOnly: true,
  },
  { id: 'aspnetcore', label: 'ASP.NET Core 10, JSON', dialect: 'signalr-json', server: 'dotnet' },
  { id: 'socketio', label: 'Socket.IO 4', dialect: 'socketio', server: 'socketio' },
  { id: 'ws', label: 'raw ws, pre-framed', dialect: 'ws', server: 'ws' },
];

export const SCENARIOS: readonly Scenario[] = ['fanout', 'echo', 'idle', 'backplane', 'connect', 'scale'];

/** Sizes and durations of one mode. */
export interface Settings {
  readonly fanoutConnections: number;
  /** Offered broadcasts per second of the fixed-rate steps, before the saturation step. */
  readonly fanoutRates: readonly number[];
  /** Broadcasts in flight at saturation (and the cap of the fixed-rate steps). */
  readonly fanoutWindow: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly echoConnections: number;
  /** Echo invocations per second over all connections. */
  readonly echoRates: readonly number[];
  /**
   * Unmeasured echo traffic first, at the highest rate: .NET's thread pool and tiered JIT need a couple of seconds
   * under load before their latency is steady, and the Node servers get the same.
   */
  readonly echoWarmupMs: number;
  /** Calls per second during the warm-up: enough calls that every server's compiled code is warm when measured. */
  readonly echoWarmupRate: number;
  readonly idleConnections: number;
  readonly connectCount: number;
  readonly connectConcurrency: number;
  /** Connections held open on one server in the scale scenario (the sender's not counted). */
  readonly scaleConnections: number;
  /** Groups the scale scenario's connections are spread over, evenly. */
  readonly scaleGroups: number;
  /** Single broadcasts (and rounds of one message per group) timed at that scale. */
  readonly scaleSends: number;
  /** Whether the SignalR servers' connect rate is measured over Server-Sent Events and long polling too. */
  readonly connectHttpTransports: boolean;
}

const FULL: Settings = {
  fanoutConnections: 1000,
  fanoutRates: [25, 50, 100],
  fanoutWindow: 8,
  warmupMs: 1000,
  measureMs: 4000,
  echoConnections: 100,
  echoRates: [1000, 4000],
  echoWarmupMs: 3000,
  echoWarmupRate: 4000,
  idleConnections: 10_000,
  connectCount: 3000,
  connectConcurrency: 32,
  scaleConnections: 100_000,
  scaleGroups: 10,
  scaleSends: 5,
  connectHttpTransports: true,
};

const QUICK: Settings = {
  fanoutConnections: 1000,
  // One fixed rate, so the backplane's cost can be compared with one server's at the same load.
  fanoutRates: [100],
  fanoutWindow: 8,
  warmupMs: 500,
  measureMs: 1500,
  echoConnections: 100,
  echoRates: [1000],
  echoWarmupMs: 1000,
  echoWarmupRate: 4000,
  idleConnections: 2000,
  connectCount: 400,
  connectConcurrency: 32,
  scaleConnections: 10_000,
  scaleGroups: 10,
  scaleSends: 3,
  // Four more cells (two servers, two transports) would take quick mode past two minutes.
  connectHttpTransports: false,
};

/** Priority of every process a run starts: ahead of other programs on a shared machine. */
const RUN_NICENESS = -10;

/** Connections opened, and kept, before the idle scenario's baseline is read. */
const IDLE_WARMUP_CONNECTIONS = 1000;

/** Loopback source addresses the generators spread their connections over (ephemeral ports per address). */
const SOURCE_ADDRESSES = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 2}`);

// -- results -----------------------------------------------------------------------------------------------------

export interface FanoutStep {
  /** Offered broadcasts per second, or 0 for the saturation step. */
  offered: number;
  deliveredPerSecond: number;
  /** Server CPU seconds per wall second (1 = one core busy). */
  serverCpu: number;
  deliveredPerCpuSecond: number;
}
export interface FanoutCell {
  connections: number;
  steps: FanoutStep[];
  /** The saturation step. */
  saturation: FanoutStep;
  rssBytes: number;
  /** Redis CPU seconds per wall second (backplane only). */
  redisCpu?: number;
  servers: number;
}
export interface EchoCell {
  rates: Array<{
    rate: number;
    result: EchoResult;
    cpuMicrosPerCall: number;
    serverCpu: number;
    /** Our servers' stalls in the same window (the generator's are in `result`). */
    serverPauses?: Pauses;
  }>;
}
export interface IdleCell {
  connections: number;
  bytesPerConnection: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
}
export interface ConnectMeasure {
  connections: number;
  perSecond: number;
  perCpuSecond: number;
  serverCpu: number;
}
/** Sends timed at scale: from the send to the last of its messages arriving. */
export interface ScaleSends {
  /** Messages delivered by each send (every receiver once). */
  deliveredEach: number;
  /** Milliseconds from the send to the last arrival, each send. */
  deliveryMs: number[];
  medianMs: number;
  /**
   * Server CPU over all the sends (from each send to its last arrival) per delivered message, less the CPU the
   * servers spent at the same rate in the second before each send with nothing sent (keep-alives, heartbeat rounds).
   */
  cpuMicrosPerDelivered: number;
  /** The same without taking the background out. */
  grossCpuMicrosPerDelivered?: number;
  deliveredPerCpuSecond: number;
  /** The load generators' CPU over the same windows, per wall second: near 1 means the receiving side set the pace. */
  loadCpu: number;
  /**
   * Time the servers' threads waited for a CPU over the same windows, per send, ms: on a shared machine, how much of
   * the delivery time was spent waiting for a core rather than working.
   */
  serverWaitMsPerSend?: number;
}
export interface ScaleCell {
  connections: number;
  /** Connections opened per second while the scale was built (negotiate, upgrade, handshake), 128 at a time. */
  connectsPerSecond: number;
  bytesPerConnection: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  /** Resident memory once every connection has joined its group. */
  rssWithGroupsBytes: number;
  groups: number;
  broadcast: ScaleSends;
  groupSends: ScaleSends;
  /** Server processes holding the connections (on one Redis when more than one). */
  servers?: number;
}
/** The WebSocket figures (every peer), and for SignalR servers those of the two HTTP transports. */
export interface ConnectCell extends ConnectMeasure {
  http?: Partial<Record<HttpTransport, Cell<ConnectMeasure>>>;
}
/** The SignalR transports besides WebSockets, each measured on a fresh server of its own. */
export type HttpTransport = Exclude<SignalRTransport, 'WebSockets'>;
export const HTTP_TRANSPORTS: readonly HttpTransport[] = ['ServerSentEvents', 'LongPolling'];
export type Cell<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface Results {
  fanout: Partial<Record<PeerId, Cell<FanoutCell>>>;
  echo: Partial<Record<PeerId, Cell<EchoCell>>>;
  idle: Partial<Record<PeerId, Cell<IdleCell>>>;
  backplane: Partial<Record<PeerId, Cell<FanoutCell>>>;
  connect: Partial<Record<PeerId, Cell<ConnectCell>>>;
  scale?: Partial<Record<PeerId, Cell<ScaleCell>>>;
  /** `--scale-fleet`: the scale scenario's full count over as many servers on one Redis as the open-file limit needs. */
  scaleFleet?: Partial<Record<PeerId, Cell<ScaleCell>>>;
}

// -- helpers -----------------------------------------------------------------------------------------------------

/**
 * The largest share of a core, over the accepted measurement windows, that neither the servers nor the generators
 * used: other programs on the machine (network softirq time is left out: it is mostly the benchmark's own traffic).
 * Reported so a noisy run shows as one.
 */
let otherLoadMax = 0;

/**
 * A window in which work outside the measured processes took more than this share of a core is measured again
 * (other programs share this machine; on two cores they take CPU from the server or the generators).
 */
const OTHER_LOAD_LIMIT = 0.3;
/** Attempts per measurement: 3 in full mode, 1 in quick mode, which must stay under two minutes (set in `main`). */
let measureAttempts = 3;
/** Measurements still disturbed after the last attempt, for the report. */
const disturbed: string[] = [];

/**
 * Runs the measurement `body`, watching how busy the machine was outside `pids` meanwhile, and runs it again (up to
 * `measureAttempts` times) when other work disturbed it; the least disturbed attempt is kept.
 */
async function measureQuietly<T>(what: string, pids: () => readonly number[], body: () => Promise<T>): Promise<T> {
  let best: { result: T; other: number } | undefined;
  for (let attempt = 1; attempt <= measureAttempts; attempt++) {
    const busy0 = machineBusySeconds();
    const own0 = totalCpuSeconds(pids());
    const start = performance.now();
    const result = await body();
    const wall = (performance.now() - start) / 1000;
    const other = (machineBusySeconds() - busy0 - (totalCpuSeconds(pids()) - own0)) / wall;
    if (process.env.BENCH_DEBUG) log(`  ${what}: other work ${Math.round(other * 100)}% of a core`);
    if (best === undefined || other < best.other) best = { result, other };
    if (other <= OTHER_LOAD_LIMIT) break;
    if (attempt < measureAttempts)
      log(`  ${what}: other work took ${Math.round(other * 100)}% of a core meanwhile; measuring again`);
  }
  otherLoadMax = Math.max(otherLoadMax, best!.other);
  if (best!.other > OTHER_LOAD_LIMIT) disturbed.push(`${what} (${Math.round(best!.other * 100)}%)`);
  return best!.result;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Time a run may spend waiting for a quiet machine before its cells: 120 s in full mode, 5 s in quick mode. */
let quietBudgetMs = 120_000;
/** How long one look at the machine's load lasts: 1 s in full mode; 300 ms in quick mode, which has 20 cells. */
let quietSampleMs = 1000;

/**
 * Between cells nothing of ours runs: waits (samples of `quietSampleMs`, within the run's budget) until other work takes
 * less than {@link OTHER_LOAD_LIMIT} of a core, so a cell does not start in the middle of someone else's build.
 */
async function awaitQuietMachine(): Promise<void> {
  let announced = false;
  while (quietBudgetMs > 0) {
    const busy0 = machineBusySeconds();
    const start = performance.now();
    await sleep(quietSampleMs);
    const elapsed = performance.now() - start;
    const busy = (machineBusySeconds() - busy0) / (elapsed / 1000);
    if (busy <= OTHER_LOAD_LIMIT) return;
    quietBudgetMs -= elapsed;
    if (!announced) log(`  waiting for other work to settle (${Math.round(busy * 100)}% of a core)`);
    announced = true;
  }
}

function log(message: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);
}

interface Context {
  readonly settings: Settings;
  readonly placement: Placement;
  readonly dotnetUnavailable: string | null;
  readonly redisUnavailable: string | null;
  /** Extra `node` flags for our server (profiling). */
  readonly oursNodeFlags: readonly string[];
}

/** Starts the server of `peer`; a `--redis` URL asks for its backplane. */
async function startServer(peer: Peer, context: Context, redisUrl?: string): Promise<RunningServer> {
  const cpusFor = context.placement.server;
  const redis = redisUrl === undefined ? [] : ['--redis', redisUrl];
  switch (peer.server) {
    case 'ours':
      return startNodeServer('ours.js', [...redis, ...(peer.serverArgs ?? [])], cpusFor, context.oursNodeFlags);
    case 'socketio':
      return startNodeServer('socketio-server.js', redis, cpusFor);
    case 'ws':
      return startNodeServer('ws-server.js', [], cpusFor);
    case 'dotnet':
      return startDotnetServer(cpusFor, redisUrl);
  }
}

function targetOf(server: RunningServer): Target {
  return { host: '127.0.0.1', port: server.port };
}

async function deliveredSoFar(generators: readonly Generator[]): Promise<number> {
  const counts = await Promise.all(generators.map((generator) => generator.call<number>({ op: 'delivered' })));
  return counts.reduce((a, b) => a + b, 0);
}

/** One measurement window: deliveries and server CPU over `ms` of wall time. */
async function measureDeliveries(
  what: string,
  generators: readonly Generator[],
  serverPids: readonly number[],
  ms: number,
  redisPid?: number,
): Promise<{ delivered: number; cpu: number; wall: number; redisCpu: number; loadCpu: number }> {
  const pids = [
    ...serverPids,
    ...generators.map((generator) => generator.pid),
    ...(redisPid === undefined ? [] : [redisPid]),
  ];
  return measureQuietly(
    what,
    () => pids,
    async () => {
      const delivered0 = await deliveredSoFar(generators);
      const load0 = totalCpuSeconds(generators.map((generator) => generator.pid));
      const cpu0 = totalCpuSeconds(serverPids);
      const redis0 = redisPid === undefined ? 0 : cpuSeconds(redisPid);
      const start = performance.now();
      await sleep(ms);
      const delivered1 = await deliveredSoFar(generators);
      const cpu1 = totalCpuSeconds(serverPids);
      const redis1 = redisPid === undefined ? 0 : cpuSeconds(redisPid);
      const load1 = totalCpuSeconds(generators.map((generator) => generator.pid));
      const wall = (performance.now() - start) / 1000;
      return {
        delivered: delivered1 - delivered0,
        cpu: cpu1 - cpu0,
        wall,
        redisCpu: redis1 - redis0,
        loadCpu: load1 - load0,
      };
    },
  );
}

async function withGenerators<T>(
  count: number,
  context: Context,
  run: (generators: Generator[]) => Promise<T>,
): Promise<T> {
  const generators = Array.from({ length: count }, () => Generator.start(context.placement.load));
  try {
    return await run(generators);
  } finally {
    await Promise.all(generators.map((generator) => generator.stop()));
  }
}

function ensureConnected(result: ConnectResult, what: string): void {
  if (result.failed > 0)
    throw new Error(`${result.failed} of ${result.connected + result.failed} ${what} failed: ${result.firstError}`);
}

// -- scenarios ---------------------------------------------------------------------------------------------------

/**
 * Broadcast fan-out: `connections` WebSockets (the sender's among them), one sender broadcasting 32-byte payloads
 * at each fixed rate in turn, then as fast as a window of broadcasts in flight allows. With several servers the
 * receivers are spread over them and the sender's window closes on a connection of the last server, so it spans
 * the backplane.
 */
async function fanout(peer: Peer, context: Context, servers: RunningServer[], redisPid?: number): Promise<FanoutCell> {
  const { settings } = context;
  const targets = servers.map(targetOf);
  const senderConnections = servers.length > 1 ? 2 : 1;
  return withGenerators(2, context, async ([receivers, sender]) => {
    ensureConnected(
      await receivers.call<ConnectResult>({
        op: 'connect',
        dialect: peer.dialect,
        targets,
        count: settings.fanoutConnections - senderConnections,
        concurrency: 50,
        localAddresses: SOURCE_ADDRESSES,
      }),
      'receivers',
    );
    await sender.call({
      op: 'sender',
      dialect: peer.dialect,
      sendTarget: targets[0],
      ackTarget: targets[targets.length - 1],
      localAddress: SOURCE_ADDRESSES[0],
    });
    const steps: FanoutStep[] = [];
    let redisCpu: number | undefined;
    const rates = [...settings.fanoutRates, 0];
    for (const rate of rates) {
      await sender.call({ op: 'send', rate, window: rate === 0 ? settings.fanoutWindow : 64 });
      await sleep(settings.warmupMs);
      const window = await measureDeliveries(
        `${peer.id} ${servers.length > 1 ? 'backplane ' : ''}${rate === 0 ? 'saturation' : `${rate}/s`}`,
        [receivers, sender],
        servers.map((s) => s.pid),
        settings.measureMs,
        redisPid,
      );
      const step: FanoutStep = {
        offered: rate,
        deliveredPerSecond: window.delivered / window.wall,
        serverCpu: window.cpu / window.wall,
        deliveredPerCpuSecond: window.delivered / window.cpu,
      };
      steps.push(step);
      log(
        `  ${peer.id} ${rate === 0 ? 'saturation' : `${rate}/s`}: ${Math.round(step.deliveredPerSecond)} delivered/s, ` +
          `server CPU ${(step.serverCpu * 100).toFixed(0)}%, ${Math.round(step.deliveredPerCpuSecond)} per CPU-s, ` +
          `load CPU ${((window.loadCpu / window.wall) * 100).toFixed(0)}%` +
          (redisPid !== undefined ? `, redis CPU ${((window.redisCpu / window.wall) * 100).toFixed(0)}%` : ''),
      );
      if (rate === 0 && redisPid !== undefined) redisCpu = window.redisCpu / window.wall;
    }
    await sender.call({ op: 'send', rate: 0, window: 0 });
    const rssBytes = servers.reduce((sum, server) => sum + residentBytes(server.pid), 0);
    const saturation = steps[steps.length - 1];
    return {
      connections: settings.fanoutConnections,
      steps,
      saturation,
      rssBytes,
      servers: servers.length,
      redisCpu,
    };
  });
}

/** Echo: `Echo(payload)` invocations with results over 100 connections at each fixed total rate. */
async function echo(peer: Peer, context: Context, server: RunningServer): Promise<EchoCell> {
  const { settings } = context;
  return withGenerators(1, context, async ([generator]) => {
    ensureConnected(
      await generator.call<ConnectResult>({
        op: 'connect',
        dialect: peer.dialect,
        targets: [targetOf(server)],
        count: settings.echoConnections,
        concurrency: 20,
        localAddresses: SOURCE_ADDRESSES,
      }),
      'connections',
    );
    // Warm the server's code paths up before the first measured rate.
    await generator.call({ op: 'echo', rate: settings.echoWarmupRate, durationMs: settings.echoWarmupMs });
    const rates: EchoCell['rates'] = [];
    for (const rate of settings.echoRates) {
      const { result, wall, cpu, serverPauses } = await measureQuietly(
        `${peer.id} ${rate}/s`,
        () => [server.pid, generator.pid],
        async () => {
          await server.pauses?.();
          const cpu0 = cpuSeconds(server.pid);
          const start = performance.now();
          const result = await generator.call<EchoResult>({ op: 'echo', rate, durationMs: settings.measureMs });
          const serverPauses = await server.pauses?.();
          return { result, wall: (performance.now() - start) / 1000, cpu: cpuSeconds(server.pid) - cpu0, serverPauses };
        },
      );
      rates.push({
        rate,
        result,
        cpuMicrosPerCall: (cpu * 1e6) / Math.max(1, result.received),
        serverCpu: cpu / wall,
        ...(serverPauses !== undefined && { serverPauses }),
      });
      const stalls = (label: string, pauses: Pauses | undefined) =>
        pauses === undefined
          ? ''
          : `; ${label} GC ${pauses.gcMs.toFixed(1)} ms (longest ${pauses.gcMaxMs.toFixed(1)}), ` +
            `loop delay p99 ${pauses.loopDelayP99Ms.toFixed(1)} ms (max ${pauses.loopDelayMaxMs.toFixed(1)})`;
      log(
        `  ${peer.id} ${rate}/s: p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, ` +
          `${result.received}/${result.sent} answered, ${((cpu * 1e6) / Math.max(1, result.received)).toFixed(1)} µs CPU per call` +
          stalls('generator', result.generatorPauses) +
          stalls('server', serverPauses),
      );
    }
    return { rates };
  });
}

/**
 * Idle connections: resident memory growth per connection, after a full collection on Node servers. A first
 * batch of connections, left open, warms every one-time cost (compiled code, caches, pools) into the baseline so
 * the figure is the cost of one more connection.
 */
async function idle(peer: Peer, context: Context, server: RunningServer): Promise<IdleCell> {
  const { settings } = context;
  return withGenerators(1, context, async ([generator]) => {
    const batch = (count: number) =>
      generator.call<ConnectResult>({
        op: 'connect',
        dialect: peer.dialect,
        targets: [targetOf(server)],
        count,
        concurrency: 64,
        localAddresses: SOURCE_ADDRESSES,
      });
    ensureConnected(await batch(IDLE_WARMUP_CONNECTIONS), 'warm-up connections');
    await sleep(300);
    await server.collectGarbage();
    await sleep(300);
    const rssBeforeBytes = residentBytes(server.pid);
    ensureConnected(await batch(settings.idleConnections), 'connections');
    // Let the accept backlog, handshakes and any deferred allocation settle, then collect.
    await sleep(1000);
    await server.collectGarbage();
    await sleep(500);
    const rssAfterBytes = residentBytes(server.pid);
    const bytesPerConnection = (rssAfterBytes - rssBeforeBytes) / settings.idleConnections;
    log(
      `  ${peer.id}: ${(bytesPerConnection / 1024).toFixed(1)} KiB per connection (RSS ${(rssAfterBytes / 2 ** 20).toFixed(0)} MiB)`,
    );
    return { connections: settings.idleConnections, bytesPerConnection, rssBeforeBytes, rssAfterBytes };
  });
}

/**
 * Connect rate: negotiate + transport + handshake (or the peer's equivalent), `connectConcurrency` at a time, on
 * WebSockets unless `transport` names another SignalR transport.
 */
async function connectRate(
  peer: Peer,
  context: Context,
  server: RunningServer,
  transport: SignalRTransport = 'WebSockets',
): Promise<ConnectMeasure> {
  const { settings } = context;
  return withGenerators(1, context, async ([generator]) => {
    const base = {
      op: 'connect' as const,
      dialect: peer.dialect,
      targets: [targetOf(server)],
      localAddresses: SOURCE_ADDRESSES,
      ...(transport !== 'WebSockets' && { transport }),
    };
    const what = transport === 'WebSockets' ? `${peer.id} connect` : `${peer.id} connect ${transport}`;
    ensureConnected(
      await generator.call<ConnectResult>({ ...base, count: 200, concurrency: settings.connectConcurrency }),
      'warm-up',
    );
    const { result, cpu } = await measureQuietly(
      what,
      () => [server.pid, generator.pid],
      async () => {
        const cpu0 = cpuSeconds(server.pid);
        const result = await generator.call<ConnectResult>({
          ...base,
          count: settings.connectCount,
          concurrency: settings.connectConcurrency,
        });
        return { result, cpu: cpuSeconds(server.pid) - cpu0 };
      },
    );
    ensureConnected(result, 'connections');
    const wall = result.elapsedMs / 1000;
    const measure = {
      connections: result.connected,
      perSecond: result.connected / wall,
      perCpuSecond: result.connected / cpu,
      serverCpu: cpu / wall,
    };
    log(
      `  ${what}: ${Math.round(measure.perSecond)} connections/s, ${Math.round(measure.perCpuSecond)} per server CPU-s`,
    );
    return measure;
  });
}

/** Load-generator processes holding the scale scenario's connections, at least (the sender has one of its own). */
const SCALE_GENERATORS = 4;
/** Descriptors a process keeps beside its connections (Node's own, IPC, negotiate's HTTP sockets, listeners). */
const DESCRIPTOR_MARGIN = 1000;

/** This process's open-file limit (its children inherit it): what caps one server's connections. */
function openFileLimit(): number {
  const line = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
  return line === null || line[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(line[1]);
}

/**
 * Connections the scale scenario opens on its one server: `scaleConnections`, or fewer when the open-file limit
 * (which `bench.sh` raises as far as it is allowed to) would not let one process hold them.
 */
function scaleConnectionsAllowed(settings: Settings): number {
  return Math.min(settings.scaleConnections, openFileLimit() - DESCRIPTOR_MARGIN);
}

/** Servers on one box that hold `scaleConnections` within the open-file limit (`--scale-fleet`). */
function scaleServersNeeded(settings: Settings): number {
  return Math.max(2, Math.ceil(settings.scaleConnections / (openFileLimit() - DESCRIPTOR_MARGIN)));
}
/** Connection attempts in flight per scale generator. */
const SCALE_CONCURRENCY = 32;
/** How often each scale connection sends its keep-alive: well inside the 30 s after which SignalR servers close it. */
const SCALE_KEEPALIVE_MS = 10_000;
/** How long one timed send may take to reach everyone before the cell fails. */
const SCALE_SEND_TIMEOUT_MS = 60_000;

/**
 * Scale: `scaleConnections` WebSockets on one server (a warm batch first, then the rest from several generator
 * processes, each connection sending keep-alives as a client does), then resident memory growth per connection
 * after a full collection, then every connection joins one of `scaleGroups` groups, and single broadcasts to all
 * and rounds of one message to each group are timed from the send to the last arrival, with the server's CPU.
 * With several servers (one box, on one Redis: where one process may not hold them all), the connections are
 * spread evenly over them, the sender's messages cross the backplane, and memory and CPU are those of all servers.
 */
async function scale(peer: Peer, context: Context, servers: RunningServer[]): Promise<ScaleCell> {
  const { settings } = context;
  const connections = servers.length > 1 ? settings.scaleConnections : scaleConnectionsAllowed(settings);
  const targets = servers.map(targetOf);
  const serverPids = servers.map((server) => server.pid);
  const rss = () => servers.reduce((sum, server) => sum + residentBytes(server.pid), 0);
  const collectGarbage = () => Promise.all(servers.map((server) => server.collectGarbage()));
  const generatorCount = Math.max(SCALE_GENERATORS, Math.ceil(connections / (openFileLimit() - DESCRIPTOR_MARGIN)));
  return withGenerators(generatorCount + 1, context, async (generators) => {
    const receivers = generators.slice(0, generatorCount);
    const sender = generators[generatorCount];
    const pids = () => [...serverPids, ...generators.map((generator) => generator.pid)];
    await Promise.all(
      generators.map((generator) => generator.call({ op: 'keepAlive', intervalMs: SCALE_KEEPALIVE_MS })),
    );
    const connect = (generator: Generator, count: number, addresses: string[]) =>
      generator.call<ConnectResult>({
        op: 'connect',
        dialect: peer.dialect,
        targets,
        count,
        concurrency: SCALE_CONCURRENCY,
        localAddresses: addresses,
      });
    ensureConnected(await connect(receivers[0], IDLE_WARMUP_CONNECTIONS, SOURCE_ADDRESSES), 'warm-up connections');
    await sleep(300);
    await collectGarbage();
    await sleep(300);
    const rssBeforeBytes = rss();
    // The rest split evenly; each generator has source addresses of its own so no two bind the same ports.
    const rest = connections - IDLE_WARMUP_CONNECTIONS;
    const started = performance.now();
    const results = await Promise.all(
      receivers.map((generator, index) =>
        connect(
          generator,
          Math.floor(rest / generatorCount) + (index < rest % generatorCount ? 1 : 0),
          SOURCE_ADDRESSES.filter((_, address) => address % generatorCount === index % SOURCE_ADDRESSES.length),
        ),
      ),
    );
    const connectSeconds = (performance.now() - started) / 1000;
    for (const result of results) ensureConnected(result, 'connections');
    log(`  ${peer.id}: ${connections} connections in ${connectSeconds.toFixed(0)} s`);
    await sleep(1000);
    await collectGarbage();
    await sleep(500);
    const rssAfterBytes = rss();
    const bytesPerConnection = (rssAfterBytes - rssBeforeBytes) / rest;
    log(
      `  ${peer.id}: ${(bytesPerConnection / 1024).toFixed(1)} KiB per connection (RSS ${(rssAfterBytes / 2 ** 20).toFixed(0)} MiB)`,
    );

    await sender.call({
      op: 'sender',
      dialect: peer.dialect,
      sendTarget: targets[0],
      ackTarget: targets[0],
      localAddress: SOURCE_ADDRESSES[0],
    });
    await Promise.all(
      receivers.map((generator) =>
        generator.call({ op: 'joinEvenly', groups: settings.scaleGroups, concurrency: 256 }),
      ),
    );
    const rssWithGroupsBytes = rss();
    const perGenerator = [IDLE_WARMUP_CONNECTIONS + results[0].connected, ...results.slice(1).map((r) => r.connected)];

    /** Times `settings.scaleSends` sends, one after another: a broadcast (`groups` 0) or one message per group. */
    const timeSends = async (groups: number): Promise<ScaleSends> => {
      const what = groups === 0 ? 'broadcast to all' : `one message to each of ${groups} groups`;
      const deliveryMs: number[] = [];
      let cpu = 0;
      let loadCpu = 0;
      let wall = 0;
      let waited = 0;
      let background = 0;
      for (let send = 0; send < settings.scaleSends; send++) {
        // The servers' CPU with nothing sent (keep-alives both ways, the heartbeat's rounds), to take out of the send's.
        const idle0 = totalCpuSeconds(serverPids);
        const idleStart = performance.now();
        await sleep(1000);
        const idleRate = (totalCpuSeconds(serverPids) - idle0) / ((performance.now() - idleStart) / 1000);
        const arrivals = receivers.map((generator, index) =>
          generator.call<number>({ op: 'expect', count: perGenerator[index] }),
        );
        // Commands to one generator are handled in order: once this answers, its expectation is set.
        await deliveredSoFar(receivers);
        const cpu0 = totalCpuSeconds(serverPids);
        const wait0 = serverPids.map(runQueueWaits);
        const load0 = totalCpuSeconds(generators.map((generator) => generator.pid));
        const start = performance.now();
        const sentAt = await sender.call<number>({ op: 'sendOnce', groups });
        let timer: NodeJS.Timeout | undefined;
        const lastArrival = Math.max(
          ...(await Promise.race([
            Promise.all(arrivals),
            new Promise<never>((_, reject) => {
              timer = setTimeout(
                () => reject(new Error(`a ${what} did not reach every connection in ${SCALE_SEND_TIMEOUT_MS} ms`)),
                SCALE_SEND_TIMEOUT_MS,
              );
            }),
          ])),
        );
        clearTimeout(timer);
        const sendWall = (performance.now() - start) / 1000;
        wall += sendWall;
        cpu += totalCpuSeconds(serverPids) - cpu0;
        background += idleRate * sendWall;
        waited += serverPids.reduce((sum, pid, i) => sum + runQueueWaitBetween(wait0[i], runQueueWaits(pid)), 0);
        loadCpu += totalCpuSeconds(generators.map((generator) => generator.pid)) - load0;
        deliveryMs.push(lastArrival - sentAt);
      }
      const delivered = connections * settings.scaleSends;
      const sorted = [...deliveryMs].sort((a, b) => a - b);
      const result: ScaleSends = {
        deliveredEach: connections,
        deliveryMs,
        medianMs: sorted[Math.floor(sorted.length / 2)],
        cpuMicrosPerDelivered: (Math.max(0, cpu - background) * 1e6) / delivered,
        deliveredPerCpuSecond: delivered / Math.max(0, cpu - background),
        grossCpuMicrosPerDelivered: (cpu * 1e6) / delivered,
        loadCpu: loadCpu / wall,
        serverWaitMsPerSend: (waited * 1000) / settings.scaleSends,
      };
      log(
        `  ${peer.id} ${what}: ${deliveryMs.map((value) => value.toFixed(0)).join(', ')} ms to the last of ` +
          `${count(connections)}, ${result.cpuMicrosPerDelivered.toFixed(2)} µs server CPU per delivered ` +
          `(${result.grossCpuMicrosPerDelivered!.toFixed(2)} with the background), ` +
          `load CPU ${(result.loadCpu * 100).toFixed(0)}%, servers' threads waited for a CPU ${result.serverWaitMsPerSend!.toFixed(0)} ms per send`,
      );
      return result;
    };
    const broadcast = await measureQuietly(`${peer.id} scale broadcast`, pids, () => timeSends(0));
    const groupSends = await measureQuietly(`${peer.id} scale groups`, pids, () => timeSends(settings.scaleGroups));
    return {
      connections,
      connectsPerSecond: rest / connectSeconds,
      bytesPerConnection,
      rssBeforeBytes,
      rssAfterBytes,
      rssWithGroupsBytes,
      groups: settings.scaleGroups,
      broadcast,
      groupSends,
    };
  });
}

/**
 * The connect cell of a peer: WebSockets, then for SignalR servers Server-Sent Events and long polling, each
 * transport on a fresh server so none inherits the others' connections.
 */
async function connectCell(peer: Peer, context: Context): Promise<ConnectCell> {
  const cell: ConnectCell = await withServer(peer, context, (server) => connectRate(peer, context, server));
  if (peer.dialect !== 'signalr-json' || !context.settings.connectHttpTransports) return cell;
  cell.http = {};
  for (const transport of HTTP_TRANSPORTS) {
    await awaitQuietMachine();
    try {
      const measure = await withServer(peer, context, (server) => connectRate(peer, context, server, transport));
      cell.http[transport] = { ok: true, value: measure };
    } catch (error) {
      const reason = String((error as Error).message ?? error).split('\n')[0];
      log(`  ${transport} ${peer.id}: failed (${reason})`);
      cell.http[transport] = { ok: false, reason };
    }
  }
  return cell;
}

// -- the run -----------------------------------------------------------------------------------------------------

function unavailable(peer: Peer, scenario: Scenario, context: Context): string | null {
  if (peer.server === 'dotnet' && context.dotnetUnavailable !== null) return context.dotnetUnavailable;
  if (scenario === 'scale' && peer.server === 'ws') return 'raw ws has no groups';
  if (scenario === 'backplane') {
    if (peer.server === 'ws') return 'raw ws has no backplane';
    if (context.redisUnavailable !== null) return context.redisUnavailable;
  }
  return null;
}

async function runCell<T>(scenario: Scenario, peer: Peer, context: Context, body: () => Promise<T>): Promise<Cell<T>> {
  const reason = unavailable(peer, scenario, context);
  if (reason !== null) {
    log(`  ${peer.id}: not run (${reason})`);
    return { ok: false, reason };
  }
  await awaitQuietMachine();
  try {
    return { ok: true, value: await body() };
  } catch (error) {
    const message =
      error instanceof ServerExitedError && error.code === 3
        ? 'this build of the plugin has no Redis backplane yet (option `redis`)'
        : String((error as Error).message ?? error).split('\n')[0];
    log(`  ${peer.id}: failed (${message})`);
    return { ok: false, reason: message };
  }
}

async function withServer<T>(peer: Peer, context: Context, body: (server: RunningServer) => Promise<T>): Promise<T> {
  const server = await startServer(peer, context);
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

function parseArguments(argv: readonly string[]) {
  const value = (name: string) => {
    const index = argv.indexOf(`--${name}`);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const list = <T extends string>(name: string, all: readonly T[]): T[] => {
    const given = value(name);
    if (given === undefined) return [...all];
    const wanted = given.split(',').map((item) => item.trim());
    for (const item of wanted)
      if (!all.includes(item as T)) throw new Error(`unknown ${name} '${item}' (one of ${all.join(', ')})`);
    return all.filter((item) => wanted.includes(item));
  };
  const narrowed = value('only') !== undefined || value('peers') !== undefined;
  if (narrowed && argv.includes('--update-readme')) {
    throw new Error('--update-readme takes a run of every scenario and peer (drop --only and --peers)');
  }
  return {
    quick: argv.includes('--quick'),
    pin: !argv.includes('--no-pin'),
    nice: !argv.includes('--no-nice'),
    updateReadme: argv.includes('--update-readme'),
    cpuProf: argv.includes('--cpu-prof'),
    scaleFleet: argv.includes('--scale-fleet'),
    render: value('render'),
    scenarios: list('only', SCENARIOS),
    peers: list(
      'peers',
      PEERS.map((peer) => peer.id),
    ),
  };
}

function describeMachine(placement: Placement): Report['machine'] {
  const pinned = placement.server !== null;
  const cpuList = cpus();
  const version = (command: string, args: string[]) => {
    try {
      return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const osRelease = (() => {
    try {
      return /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux';
    } catch {
      return 'Linux';
    }
  })();
  return {
    cpu: `${cpuList.length} × ${cpuList[0]?.model.trim() ?? 'unknown CPU'}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: osRelease,
    node: process.version,
    dotnet: version('dotnet', ['--version']),
    redis: redisVersion(),
    placement:
      (pinned ? 'servers pinned to CPU 0, load generators and Redis to CPU 1 (taskset)' : 'no CPU pinning') +
      (placement.nice !== null ? `, all at nice ${placement.nice}` : ''),
  };
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  if (args.render !== undefined) {
    const saved = JSON.parse(readFileSync(args.render, 'utf8')) as Report;
    await writeOutputs({ ...saved, disturbed: saved.disturbed ?? [] }, args.updateReadme);
    return;
  }
  const settings = args.quick ? QUICK : FULL;
  measureAttempts = args.quick ? 1 : 3;
  quietBudgetMs = args.quick ? 5_000 : 120_000;
  quietSampleMs = args.quick ? 300 : 1000;
  const pin = args.pin && cpus().length >= 2 && tasksetAvailable();
  const nice = args.nice && niceAvailable(RUN_NICENESS) ? RUN_NICENESS : null;
  setNiceness(nice);
  const placement: Placement = pin ? { server: '0', load: '1', nice } : { server: null, load: null, nice };
  const peers = PEERS.filter((peer) => args.peers.includes(peer.id));
  const started = Date.now();

  const dotnetUnavailable = peers.some((peer) => peer.server === 'dotnet') ? prepareDotnet() : 'not selected';
  if (dotnetUnavailable !== null) log(`ASP.NET Core: ${dotnetUnavailable}`);
  const redisUnavailable = redisVersion() === null ? 'no `redis-server` on PATH' : null;
  const oursNodeFlags = args.cpuProf
    ? ['--cpu-prof', `--cpu-prof-dir=${path.join(REPO_ROOT, 'bench', 'results', 'profiles')}`]
    : [];
  const context: Context = { settings, placement, dotnetUnavailable, redisUnavailable, oursNodeFlags };
  const results: Results = {
    fanout: {},
    echo: {},
    idle: {},
    backplane: {},
    connect: {},
    scale: {},
    ...(args.scaleFleet && { scaleFleet: {} }),
  };

  for (const scenario of args.scenarios) {
    log(`scenario ${scenario}`);
    if (scenario === 'scale' && scaleConnectionsAllowed(settings) < settings.scaleConnections)
      log(
        `  the open-file limit (${openFileLimit()}) lets one server hold ${scaleConnectionsAllowed(settings)} ` +
          `connections, not ${settings.scaleConnections}: measuring at that count`,
      );
    for (const peer of peers) {
      // The MessagePack variant adds nothing to the memory and connect figures beyond the JSON one.
      if ((scenario === 'idle' || scenario === 'connect' || scenario === 'scale') && peer.id === 'ours-msgpack')
        continue;
      if (scenario !== 'fanout' && peer.fanoutOnly === true) continue;
      switch (scenario) {
        case 'fanout':
          results.fanout[peer.id] = await runCell(scenario, peer, context, () =>
            withServer(peer, context, (server) => fanout(peer, context, [server])),
          );
          break;
        case 'echo':
          results.echo[peer.id] = await runCell(scenario, peer, context, () =>
            withServer(peer, context, (server) => echo(peer, context, server)),
          );
          break;
        case 'idle':
          results.idle[peer.id] = await runCell(scenario, peer, context, () =>
            withServer(peer, context, (server) => idle(peer, context, server)),
          );
          break;
        case 'connect':
          results.connect[peer.id] = await runCell(scenario, peer, context, () => connectCell(peer, context));
          break;
        case 'scale':
          results.scale![peer.id] = await runCell(scenario, peer, context, () =>
            withServer(peer, context, (server) => scale(peer, context, [server])),
          );
          if (args.scaleFleet) {
            results.scaleFleet![peer.id] = await runCell(scenario, peer, context, async () => {
              const count = scaleServersNeeded(settings);
              const redis = await startRedis(placement.load);
              const servers: RunningServer[] = [];
              try {
                for (let i = 0; i < count; i++) servers.push(await startServer(peer, context, redis.url));
                return { ...(await scale(peer, context, servers)), servers: count };
              } finally {
                await Promise.all(servers.map((server) => server.stop()));
                await redis.stop();
              }
            });
          }
          break;
        case 'backplane':
          results.backplane[peer.id] = await runCell(scenario, peer, context, async () => {
            const redis = await startRedis(placement.load);
            const servers: RunningServer[] = [];
            try {
              servers.push(await startServer(peer, context, redis.url));
              servers.push(await startServer(peer, context, redis.url));
              return await fanout(peer, context, servers, redis.pid);
            } finally {
              await Promise.all(servers.map((server) => server.stop()));
              await redis.stop();
            }
          });
          break;
      }
    }
  }

  const report: Report = {
    date: new Date().toISOString().slice(0, 10),
    quick: args.quick,
    durationSeconds: Math.round((Date.now() - started) / 1000),
    otherLoad: otherLoadMax,
    disturbed,
    machine: describeMachine(placement),
    settings,
    peers,
    scenarios: args.scenarios,
    results,
  };
  log(`done in ${report.durationSeconds} s`);
  await writeOutputs(report, args.updateReadme);
}

/** Writes the report, its JSON, the chart and (if asked) the README section of a run. */
async function writeOutputs(report: Report, updateReadmeToo: boolean): Promise<void> {
  const { date } = report;
  const outDir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  // A run of some scenarios or peers goes to files of its own, so it never replaces the last complete results.
  const partial = report.scenarios.length < SCENARIOS.length || report.peers.length < PEERS.length;
  if (partial && updateReadmeToo) log('not updating the README: this run is not of every scenario and peer');
  const suffix = `${report.quick ? '-quick' : ''}${partial ? '-partial' : ''}`;
  const chartName = `chart${suffix}`;
  const svg = renderChart(report);
  writeFileSync(path.join(outDir, `${chartName}.svg`), svg);
  const png = await svgToPng(svg, path.join(outDir, `${chartName}.png`));
  const markdown = renderReport(report, png ? `${chartName}.png` : `${chartName}.svg`);
  writeFileSync(path.join(outDir, `${date}${suffix}.md`), markdown);
  writeFileSync(path.join(outDir, `latest${suffix}.md`), markdown);
  writeFileSync(path.join(outDir, `${date}${suffix}.json`), `${JSON.stringify(report, null, 2)}\n`);
  if (updateReadmeToo && !partial)
    updateReadme(renderReadmeSection(report, `bench/results/${chartName}.${png ? 'png' : 'svg'}`));
  log(`written: bench/results/latest${suffix}.md`);
  process.stdout.write(`\n${markdown}\n`);
}

/** Renders the chart to PNG; false (and a note) when there is no Chromium. */
async function svgToPng(svg: string, file: string): Promise<boolean> {
  const failure = await renderPng(svg, file);
  if (failure !== null) log(`no PNG chart (${failure}); the SVG is written`);
  return failure === null;
}

const README_BEGIN = '<!-- bench:begin -->';
const README_END = '<!-- bench:end -->';

function updateReadme(section: string): void {
  const file = path.join(REPO_ROOT, 'README.md');
  const text = readFileSync(file, 'utf8');
  const begin = text.indexOf(README_BEGIN);
  const end = text.indexOf(README_END);
  if (begin < 0 || end < begin) {
    log('README.md has no bench markers; not updated');
    return;
  }
  writeFileSync(file, `${text.slice(0, begin + README_BEGIN.length)}\n${section}\n${text.slice(end)}`);
  log('README.md performance section updated');
}

void main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
    process.exit(1);
  },
);
