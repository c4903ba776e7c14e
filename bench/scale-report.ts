/**
 * The scale curve's report (`bench/results/scale-curve.md`), its chart (SVG, one line per Redis topology over 1 to 8
 * servers) and the fleet model fitted to it, for a run of `bench/scale-curve.ts`.
 */
import {
  costModel,
  fitWorkload,
  fleetLoad,
  serversNeeded,
  type CellCosts,
  type CellCounts,
  type CostModel,
  type FleetWorkload,
  type RedisLayout,
} from './lib/scale-model';
import { median } from './lib/stats';

/** One measured cell: a topology, a workload, a number of servers. */
export interface ScaleCell extends CellCounts, CellCosts {
  readonly topology: RedisLayout;
  readonly workload: 'broadcast' | 'groups';
  readonly servers: number;
  readonly connections: number;
  readonly deliveriesPerMessage: number;
  /** Servers subscribed to each message's channel (measured with `PUBSUB NUMSUB` for groups). */
  readonly subscribersPerMessage: number;
  readonly seconds: number;
  /** Cores all Redis processes used idle, before any server connected (taken off the window's Redis CPU). */
  readonly redisIdleCores: number;
  readonly missing: number;
  readonly otherCores: number;
  readonly loadAverage: number;
}

/** A whole run, as written to `scale-curve.json`. */
export interface ScaleRun {
  readonly date: string;
  readonly quick: boolean;
  readonly rounds: number;
  readonly durationSeconds: number;
  readonly machine: {
    readonly cpu: string;
    readonly node: string;
    readonly redis: string;
    readonly placement: string;
    readonly loadAverageAtStart: number;
    readonly loadAverageAtEnd: number;
  };
  readonly settings: {
    readonly broadcast: { connections: number; rate: number; seconds: number };
    readonly groups: { groups: number; members: number; connections: number; rate: number; seconds: number };
    readonly senders: number;
    readonly serverCounts: number[];
  };
  readonly notRun: Partial<Record<RedisLayout, string>>;
  /** Every round's cells. */
  readonly cells: ScaleCell[];
  /** The median over the rounds of each cell. */
  readonly summary: ScaleCell[];
}

const LABELS: Record<RedisLayout, string> = {
  single: 'one Redis',
  cluster: '3-master cluster, classic pub/sub',
  sharded: '3-master cluster, sharded pub/sub',
};
const COLORS: Record<RedisLayout, string> = { single: '#2563eb', cluster: '#dc2626', sharded: '#16a34a' };
const LAYOUTS: RedisLayout[] = ['single', 'cluster', 'sharded'];

/** The fleet docs/scaling.md sizes: a million connections. */
export const FLEET = {
  connections: 1_000_000,
  groupSize: 10,
  /** Messages per second per group (a busy chat room). */
  groupRate: 1,
  /** Broadcasts per second to every connection. */
  broadcastRate: 1,
  /** CPU one server may spend (a core each, half of it kept for bursts, reconnection storms and GC). */
  serverCoreBudget: 0.5,
  /** Connections one server may hold (memory: about 6 KiB each idle, measured in the main benchmark). */
  maximumConnectionsPerServer: 50_000,
  /** The share of its one command thread a Redis node may spend before it is called saturated. */
  redisCoreBudget: 0.7,
};

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const ratio = (a: number, b: number) =>
  Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '–';
const count = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '∞');

function find(cells: readonly ScaleCell[], topology: RedisLayout, workload: ScaleCell['workload'], servers: number) {
  return cells.find((cell) => cell.topology === topology && cell.workload === workload && cell.servers === servers);
}

/** The two fleet workloads of docs/scaling.md. */
export function fleetWorkloads(): { name: string; workload: FleetWorkload }[] {
  return [
    {
      name: `${count(FLEET.connections / FLEET.groupSize)} groups of ${FLEET.groupSize}, ${FLEET.groupRate} message/s each`,
      workload: {
        kind: 'groups',
        connections: FLEET.connections,
        messagesPerSecond: (FLEET.connections / FLEET.groupSize) * FLEET.groupRate,
        recipients: FLEET.groupSize,
        channels: FLEET.connections / FLEET.groupSize,
      },
    },
    {
      name: `${FLEET.broadcastRate} broadcast/s to all ${count(FLEET.connections)}`,
      workload: {
        kind: 'broadcast',
        connections: FLEET.connections,
        messagesPerSecond: FLEET.broadcastRate,
        recipients: FLEET.connections,
        channels: 1,
      },
    },
  ];
}

/** The cost model of each topology that ran (both workloads, at least two server counts each). */
export function fittedModels(run: ScaleRun): Partial<Record<RedisLayout, CostModel>> {
  const models: Partial<Record<RedisLayout, CostModel>> = {};
  for (const layout of LAYOUTS) {
    const fits = (['broadcast', 'groups'] as const).map((workload) => {
      const cells = run.summary.filter(
        (cell) => cell.topology === layout && cell.workload === workload && cell.missing === 0,
      );
      if (new Set(cells.map((cell) => cell.subscribersPerMessage)).size < 2) return undefined;
      return fitWorkload(
        median(cells.map((cell) => cell.deliveriesPerMessage)),
        cells.map((cell) => ({
          subscribers: cell.subscribersPerMessage,
          serverMicrosPerMessage: cell.serverMicrosPerMessage,
          redisMicrosPerMessage: cell.redisMicrosPerMessage,
        })),
      );
    });
    if (fits[0] !== undefined && fits[1] !== undefined) models[layout] = costModel(fits[0], fits[1]);
  }
  return models;
}

function cellTable(run: ScaleRun, workload: ScaleCell['workload']): string[] {
  const rows = [
    '| Redis | servers | servers per message (subscribers) | servers µs per delivered | vs 1 server | Redis µs per delivered | Redis µs per message | busiest Redis node µs per message | Redis vs one Redis | Redis idle cores | other work, cores |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const layout of LAYOUTS) {
    if (run.notRun[layout] !== undefined) {
      rows.push(`| ${LABELS[layout]} | – | not run: ${run.notRun[layout]} | | | | | | | | |`);
      continue;
    }
    const one = find(run.summary, layout, workload, 1);
    for (const servers of run.settings.serverCounts) {
      const cell = find(run.summary, layout, workload, servers);
      if (cell === undefined) continue;
      const single = find(run.summary, 'single', workload, servers);
      rows.push(
        `| ${LABELS[layout]} | ${servers} | ${fixed(cell.subscribersPerMessage, 2)} | ${fixed(cell.serverMicrosPerDelivered, 2)} | ` +
          `${ratio(cell.serverMicrosPerDelivered, one?.serverMicrosPerDelivered ?? NaN)} | ${fixed(cell.redisMicrosPerDelivered, 3)} | ` +
          `${fixed(cell.redisMicrosPerMessage, 1)} | ${fixed(cell.busiestRedisMicrosPerMessage, 1)} | ` +
          `${ratio(cell.redisMicrosPerMessage, single?.redisMicrosPerMessage ?? NaN)} | ` +
          `${fixed(cell.redisIdleCores, 3)} | ${fixed(cell.otherCores, 2)}` +
          `${cell.missing > 0 ? ` (${cell.missing} deliveries missing)` : ''} |`,
      );
    }
  }
  return rows;
}

/** The README's table: servers µs per delivered message and Redis µs per message, at 1, 2, 4 and 8 servers. */
export function readmeTable(run: ScaleRun): string {
  const counts = run.settings.serverCounts;
  const rows = [
    `| workload | Redis | servers µs per delivered (${counts.join(' / ')} servers) | Redis µs per message, all nodes (${counts.join(' / ')}) | busiest node µs per message at ${counts[counts.length - 1]} |`,
    '| --- | --- | --- | --- | --- |',
  ];
  for (const workload of ['broadcast', 'groups'] as const) {
    for (const layout of LAYOUTS) {
      const name = workload === 'broadcast' ? 'broadcast to all' : '1,000 groups of 10';
      if (run.notRun[layout] !== undefined) {
        rows.push(`| ${name} | ${LABELS[layout]} | not run | | |`);
        continue;
      }
      const cells = counts.map((servers) => find(run.summary, layout, workload, servers));
      rows.push(
        `| ${name} | ${LABELS[layout]} | ${cells.map((cell) => fixed(cell?.serverMicrosPerDelivered ?? NaN, 2)).join(' / ')} | ` +
          `${cells.map((cell) => fixed(cell?.redisMicrosPerMessage ?? NaN, 1)).join(' / ')} | ` +
          `${fixed(cells[cells.length - 1]?.busiestRedisMicrosPerMessage ?? NaN, 1)} |`,
      );
    }
  }
  return rows.join('\n');
}

function modelTable(models: Partial<Record<RedisLayout, CostModel>>): string[] {
  const rows = [
    '| Redis | servers: f, sender µs per message | servers: d, µs per delivery | servers: e, µs per receiving server (broadcast / groups) | Redis: a, µs per message (broadcast / groups) | Redis: b, µs per subscribed server (broadcast / groups) |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const layout of LAYOUTS) {
    const model = models[layout];
    if (model === undefined) continue;
    const both = (pick: (fit: CostModel['groups']) => number, digits: number) =>
      `${fixed(pick(model.broadcast), digits)} / ${fixed(pick(model.groups), digits)}`;
    rows.push(
      `| ${LABELS[layout]} | ${fixed(model.senderMicros, 1)} | ${fixed(model.perDeliveryMicros, 2)} | ` +
        `${both((fit) => fit.server.slope, 1)} | ${both((fit) => fit.redis.intercept, 1)} | ${both((fit) => fit.redis.slope, 2)} |`,
    );
  }
  return rows;
}

function fleetTable(models: Partial<Record<RedisLayout, CostModel>>): string[] {
  const rows = [
    '| workload | Redis | masters | servers | servers per message | cores per server | busiest Redis node, cores | Redis saturates at messages/s |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const { name, workload } of fleetWorkloads()) {
    const base = models.single ?? models.cluster ?? models.sharded;
    if (base === undefined) continue;
    const servers = serversNeeded(base, workload, FLEET.serverCoreBudget, FLEET.maximumConnectionsPerServer);
    for (const layout of LAYOUTS) {
      const model = models[layout];
      if (model === undefined) continue;
      for (const nodes of layout === 'single' ? [1] : [3, 6, 12]) {
        const load = fleetLoad(
          model,
          workload,
          Number.isFinite(servers) ? servers : 1,
          layout,
          nodes,
          FLEET.redisCoreBudget,
        );
        rows.push(
          `| ${name} | ${LABELS[layout].replace('3-master ', '')} | ${nodes} | ${count(servers)} | ${fixed(load.subscribers, 1)} | ${fixed(load.coresPerServer, 2)} | ` +
            `${fixed(load.coresBusiestRedisNode, 2)} | ${count(load.redisSaturationMessagesPerSecond)} |`,
        );
      }
    }
  }
  return rows;
}

// -- chart -------------------------------------------------------------------------------------------------------

const PANEL_WIDTH = 470;
const PANEL_HEIGHT = 260;
const MARGIN = { left: 60, right: 20, top: 34, bottom: 40 };

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function panel(
  run: ScaleRun,
  x0: number,
  y0: number,
  title: string,
  workload: ScaleCell['workload'],
  pick: (cell: ScaleCell) => number,
): string[] {
  const out: string[] = [];
  const counts = run.settings.serverCounts;
  const series = LAYOUTS.map((layout) => ({
    layout,
    points: counts.flatMap((servers) => {
      const cell = find(run.summary, layout, workload, servers);
      const value = cell === undefined ? NaN : pick(cell);
      return Number.isFinite(value) ? [{ servers, value }] : [];
    }),
  }));
  const max = Math.max(1e-9, ...series.flatMap((line) => line.points.map((point) => point.value))) * 1.1;
  const width = PANEL_WIDTH - MARGIN.left - MARGIN.right;
  const height = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const left = x0 + MARGIN.left;
  const top = y0 + MARGIN.top;
  const xOf = (servers: number) => left + (Math.log2(servers) / Math.log2(counts[counts.length - 1])) * width;
  const yOf = (value: number) => top + height - (value / max) * height;
  out.push(`<text x="${x0 + 10}" y="${y0 + 18}" font-size="13" font-weight="bold">${escape(title)}</text>`);
  out.push(
    `<line x1="${left}" y1="${top + height}" x2="${left + width}" y2="${top + height}" stroke="#9ca3af"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + height}" stroke="#9ca3af"/>`,
  );
  for (let i = 0; i <= 4; i++) {
    const value = (max * i) / 4;
    const y = yOf(value);
    out.push(
      `<line x1="${left}" y1="${y.toFixed(1)}" x2="${left + width}" y2="${y.toFixed(1)}" stroke="#e5e7eb"/>`,
      `<text x="${left - 6}" y="${(y + 4).toFixed(1)}" font-size="11" text-anchor="end">${value < 10 ? value.toFixed(2) : value.toFixed(0)}</text>`,
    );
  }
  for (const servers of counts) {
    out.push(
      `<text x="${xOf(servers).toFixed(1)}" y="${top + height + 16}" font-size="11" text-anchor="middle">${servers}</text>`,
    );
  }
  out.push(
    `<text x="${left + width / 2}" y="${top + height + 32}" font-size="11" text-anchor="middle" fill="#4b5563">servers</text>`,
  );
  for (const line of series) {
    if (line.points.length === 0) continue;
    const path = line.points.map((point) => `${xOf(point.servers).toFixed(1)},${yOf(point.value).toFixed(1)}`);
    out.push(
      `<polyline points="${path.join(' ')}" fill="none" stroke="${COLORS[line.layout]}" stroke-width="2"/>`,
      ...line.points.map(
        (point) =>
          `<circle cx="${xOf(point.servers).toFixed(1)}" cy="${yOf(point.value).toFixed(1)}" r="3" fill="${COLORS[line.layout]}"/>`,
      ),
    );
  }
  return out;
}

function renderChart(run: ScaleRun): string {
  const out: string[] = [];
  const width = PANEL_WIDTH * 2 + 20;
  out.push(
    `<text x="20" y="26" font-size="18" font-weight="bold">Scale curve: CPU per message, 1 to 8 servers, ${escape(run.date.slice(0, 10))}${run.quick ? ' (quick)' : ''}</text>`,
    `<text x="20" y="46" font-size="12" fill="#4b5563">${escape(`${run.machine.cpu}, Node ${run.machine.node}, Redis ${run.machine.redis}; ${run.machine.placement};`)}</text>`,
    `<text x="20" y="62" font-size="12" fill="#4b5563">${escape(`load average ${run.machine.loadAverageAtStart.toFixed(1)} → ${run.machine.loadAverageAtEnd.toFixed(1)}; median of ${run.rounds} round(s). A scale model: compare lines, not absolute values.`)}</text>`,
  );
  let legendX = 20;
  for (const layout of LAYOUTS) {
    const label = run.notRun[layout] !== undefined ? `${LABELS[layout]} (not run)` : LABELS[layout];
    out.push(
      `<rect x="${legendX}" y="74" width="14" height="4" fill="${COLORS[layout]}"/>`,
      `<text x="${legendX + 20}" y="80" font-size="12">${escape(label)}</text>`,
    );
    legendX += 20 + label.length * 6.6 + 24;
  }
  const y0 = 90;
  out.push(
    ...panel(
      run,
      10,
      y0,
      'Broadcast: servers µs per delivered message',
      'broadcast',
      (c) => c.serverMicrosPerDelivered,
    ),
    ...panel(
      run,
      10 + PANEL_WIDTH,
      y0,
      "Broadcast: busiest Redis node's µs per broadcast",
      'broadcast',
      (c) => c.busiestRedisMicrosPerMessage,
    ),
    ...panel(
      run,
      10,
      y0 + PANEL_HEIGHT,
      'Groups: servers µs per delivered message',
      'groups',
      (c) => c.serverMicrosPerDelivered,
    ),
    ...panel(
      run,
      10 + PANEL_WIDTH,
      y0 + PANEL_HEIGHT,
      "Groups: busiest Redis node's µs per group message",
      'groups',
      (c) => c.busiestRedisMicrosPerMessage,
    ),
  );
  const height = y0 + PANEL_HEIGHT * 2 + 10;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">\n` +
    `<rect width="${width}" height="${height}" fill="#ffffff"/>\n${out.join('\n')}\n</svg>\n`
  );
}

// -- report ------------------------------------------------------------------------------------------------------

/** The markdown report (linking `chartFile`) and the chart's SVG. */
export function renderScaleReport(run: ScaleRun, chartFile: string): { markdown: string; svg: string } {
  const { broadcast, groups, senders } = run.settings;
  const models = fittedModels(run);
  const lines = [
    `# Scale curve, ${run.date.slice(0, 10)}${run.quick ? ' (quick)' : ''}`,
    '',
    `${run.machine.cpu}, Node ${run.machine.node}, Redis ${run.machine.redis}; ${run.machine.placement}. ` +
      `Load average ${run.machine.loadAverageAtStart.toFixed(1)} at the start, ${run.machine.loadAverageAtEnd.toFixed(1)} at the end ` +
      `(2 cores; other work during each window in the last column); median of ${run.rounds} round(s); ${run.durationSeconds} s.`,
    '',
    `Broadcast: ${broadcast.connections} connections, ${broadcast.rate} broadcasts/s offered for ${broadcast.seconds} s. ` +
      `Groups: ${groups.groups} groups of ${groups.members}, ${groups.connections} connections each in ` +
      `${(groups.groups * groups.members) / groups.connections} groups, members placed at random over the servers, ` +
      `${groups.rate} messages/s to random groups for ${groups.seconds} s. ${senders} sending connections spread over ` +
      'the servers; half the connections JSON, half MessagePack. CPU from the first send until every delivery arrived, ' +
      "Redis's less its idle rate (timers, cluster gossip) read before any server connected; summed over every thread " +
      'of every server and Redis process (schedstat, ns).',
    '',
    `![scale curve](${chartFile})`,
    '',
    '## Broadcast to all',
    '',
    ...cellTable(run, 'broadcast'),
    '',
    '## 1,000 groups of 10',
    '',
    ...cellTable(run, 'groups'),
    '',
    '## The per-message model',
    '',
    'Least-squares lines over 1 to 8 servers, per workload: servers µs per published message = f + d·D + e·k, ' +
      'Redis µs per published message = a + b·k (k: servers subscribed to the channel, D: deliveries per message); ' +
      "the two workloads' server intercepts give f and d. On the classic cluster a is the sum over the three nodes, " +
      'each of which carries every message.',
    '',
    ...modelTable(models),
    '',
    `## A fleet of ${count(FLEET.connections)} connections, by this model`,
    '',
    `Servers: the fewest that keep each under ${FLEET.serverCoreBudget} core and ${count(FLEET.maximumConnectionsPerServer)} ` +
      `connections (by the one-Redis fit). A Redis node is saturated at ${FLEET.redisCoreBudget} of its command thread. ` +
      'Clusters of 6 and 12 masters are extrapolated from the 3-master measurement (see docs/scaling.md).',
    '',
    ...fleetTable(models),
    '',
    '## What this model cannot show',
    '',
    '- Network: every process talks over loopback; real links add latency, bandwidth limits and packet costs ' +
      '(softirq time is charged to no process and is not counted).',
    '- Multi-core contention: all servers share one core and Redis nodes and load generators the other, so the ' +
      'absolute throughput of a fleet, and what many cores or NUMA do to one server, are not measured.',
    '- Replicas: the cluster has masters only. Classic pub/sub also reaches every replica over the cluster bus; sharded ' +
      "pub/sub reaches the shard's replicas.",
    '- Larger clusters: 6 or 12 masters are extrapolated from 3. Connections beyond a few thousand, slow clients, ' +
      'reconnection storms and failovers are measured elsewhere (the main benchmark and the failover tests).',
  ];
  return { markdown: `${lines.join('\n')}\n`, svg: renderChart(run) };
}
