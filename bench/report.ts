/**
 * Turns one run's results into the markdown report (`bench/results/*.md`) and the README's performance section.
 * Every comparison is a ratio of figures measured in the same run; absolute figures are printed beside them only
 * so the ratios can be checked.
 */
import type { Pauses } from './lib/pauses';
import type {
  Cell,
  ConnectMeasure,
  FanoutCell,
  HttpTransport,
  Peer,
  PeerId,
  Results,
  ScaleCell,
  Scenario,
  Settings,
} from './run';

/** Everything a report is made from (also written as JSON beside the markdown). */
export interface Report {
  date: string;
  quick: boolean;
  durationSeconds: number;
  /** The largest share of a core used outside the measured processes during a measurement window. */
  otherLoad: number;
  /** Measurements that other work still disturbed after their last attempt, with its share of a core. */
  disturbed: string[];
  machine: {
    cpu: string;
    memoryGiB: number;
    os: string;
    node: string;
    dotnet: string | null;
    redis: string | null;
    placement: string;
  };
  settings: Settings;
  peers: readonly Peer[];
  scenarios: readonly Scenario[];
  results: Results;
}

/** One target of the issue, evaluated. */
export interface Target {
  readonly name: string;
  readonly goal: string;
  /** Measured ratio, or null when a side was not measured. */
  readonly ratio: number | null;
  readonly met: boolean | null;
  readonly note: string;
}

// -- formatting --------------------------------------------------------------------------------------------------

/** 152345 → "152k", 1234 → "1,234", 12.3 → "12.3". */
export function count(value: number): string {
  if (!Number.isFinite(value)) return '–';
  if (Math.abs(value) >= 100_000) return `${Math.round(value / 1000)}k`;
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(1);
}

export function ratio(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '–' : `${value.toFixed(2)}×`;
}

function ms(value: number): string {
  return Number.isFinite(value) ? value.toFixed(value < 10 ? 2 : 1) : '–';
}

function kib(bytes: number): string {
  return Number.isFinite(bytes) ? (bytes / 1024).toFixed(1) : '–';
}

function percent(value: number): string {
  return `${Math.round(value * 100)}%`;
}

function value<T>(cell: Cell<T> | undefined): T | undefined {
  return cell?.ok === true ? cell.value : undefined;
}

function why<T>(cell: Cell<T> | undefined): string {
  if (cell === undefined) return 'not selected';
  return cell.ok ? '' : cell.reason;
}

function labelOf(report: Report, id: PeerId): string {
  return report.peers.find((peer) => peer.id === id)?.label ?? id;
}

function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

// -- the figures the targets compare -----------------------------------------------------------------------------

/**
 * A server's best step: the one with the most delivered messages per server CPU-second. Each server is compared at
 * its own best, so a peer whose cost per message is lowest at a fixed rate (a plain `ws` server writes one frame per
 * message, which saturation does not help) is not judged at a worse point.
 */
export function bestStep(cell: FanoutCell): FanoutCell['saturation'] {
  return cell.steps.reduce((best, step) => (step.deliveredPerCpuSecond > best.deliveredPerCpuSecond ? step : best));
}

function fanoutPerCpu(results: Results, id: PeerId): number | undefined {
  const cell = value(results.fanout[id]);
  return cell === undefined ? undefined : bestStep(cell).deliveredPerCpuSecond;
}

/**
 * Delivered messages per server CPU-second across two servers on one Redis ÷ the same server alone, for every
 * offered rate (0: saturation) both ran.
 */
function backplaneByStep(results: Results, id: PeerId): Array<{ offered: number; ratio: number }> {
  const backplane = value(results.backplane[id]);
  const alone = value(results.fanout[id]);
  if (backplane === undefined || alone === undefined) return [];
  return backplane.steps.flatMap((step) => {
    const single = alone.steps.find((candidate) => candidate.offered === step.offered);
    return single === undefined || single.deliveredPerCpuSecond === 0
      ? []
      : [{ offered: step.offered, ratio: step.deliveredPerCpuSecond / single.deliveredPerCpuSecond }];
  });
}

/**
 * Our backplane ÷ ASP.NET Core's (two servers each on one Redis, the same offered rates): delivered messages per
 * server CPU-second at every step both ran, and delivered messages per second at saturation.
 */
function backplaneVsDotnet(
  results: Results,
  id: PeerId,
): { steps: Array<{ offered: number; ratio: number }>; saturation: number | null } {
  const ours = value(results.backplane[id]);
  const dotnet = value(results.backplane.aspnetcore);
  if (ours === undefined || dotnet === undefined) return { steps: [], saturation: null };
  const steps = ours.steps.flatMap((step) => {
    const theirs = dotnet.steps.find((candidate) => candidate.offered === step.offered);
    return theirs === undefined || theirs.deliveredPerCpuSecond === 0
      ? []
      : [{ offered: step.offered, ratio: step.deliveredPerCpuSecond / theirs.deliveredPerCpuSecond }];
  });
  return { steps, saturation: divide(ours.saturation.deliveredPerSecond, dotnet.saturation.deliveredPerSecond) };
}

/** Connections the scale scenario held (fewer than asked where the open-file limit capped one server). */
export function scaleCount(report: Report): number {
  const cells = Object.values(report.results.scale ?? {}).flatMap((cell) => (cell?.ok === true ? [cell.value] : []));
  return cells.length === 0 ? report.settings.scaleConnections : Math.max(...cells.map((cell) => cell.connections));
}

function stepName(offered: number): string {
  return offered === 0 ? 'saturation' : `${offered}/s`;
}

/** p99 latencies of `id` by rate. */
function echoP99(results: Results, id: PeerId): Map<number, number> {
  return new Map((value(results.echo[id])?.rates ?? []).map((entry) => [entry.rate, entry.result.p99]));
}

function divide(a: number | undefined, b: number | undefined): number | null {
  return a === undefined || b === undefined || b === 0 ? null : a / b;
}

/** The issue's targets, measured. */
export function evaluateTargets(report: Report): Target[] {
  const { results } = report;
  const targets: Target[] = [];
  const atLeast = (name: string, goal: number, measured: number | null, note: string): Target => ({
    name,
    goal: `≥ ${goal}×`,
    ratio: measured,
    met: measured === null ? null : measured >= goal,
    note,
  });
  const atMost = (name: string, goal: number, measured: number | null, note: string): Target => ({
    name,
    goal: `≤ ${goal}×`,
    ratio: measured,
    met: measured === null ? null : measured <= goal,
    note,
  });

  const oursFanout = fanoutPerCpu(results, 'ours-json');
  const msgpackFanout = fanoutPerCpu(results, 'ours-msgpack');
  const msgpackNote = (other: PeerId) => {
    const r = divide(msgpackFanout, fanoutPerCpu(results, other));
    return r === null ? '' : `MessagePack: ${ratio(r)}`;
  };
  targets.push(
    atLeast(
      'Fan-out, delivered messages per server CPU-second: ours ÷ raw ws',
      0.8,
      divide(oursFanout, fanoutPerCpu(results, 'ws')),
      msgpackNote('ws') || why(results.fanout.ws),
    ),
  );
  targets.push(
    atLeast(
      'Fan-out, delivered messages per server CPU-second: admin page registered (none open) ÷ not registered',
      0.95,
      divide(fanoutPerCpu(results, 'ours-admin'), oursFanout),
      why(results.fanout['ours-admin']) ||
        'no page open: one more observer call per invocation, one null check per message',
    ),
  );
  targets.push(
    atLeast(
      'Fan-out, delivered messages per server CPU-second: ours ÷ Socket.IO',
      2,
      divide(oursFanout, fanoutPerCpu(results, 'socketio')),
      msgpackNote('socketio') || why(results.fanout.socketio),
    ),
  );

  // Echo: the worst ratio over the rates both servers ran.
  const ours = echoP99(results, 'ours-json');
  const dotnet = echoP99(results, 'aspnetcore');
  const perRate = [...ours.entries()]
    .filter(([rate]) => dotnet.has(rate))
    .map(([rate, p99]) => ({ rate, r: p99 / dotnet.get(rate)! }));
  const worst = perRate.length === 0 ? null : Math.max(...perRate.map((entry) => entry.r));
  targets.push(
    atMost(
      'Echo p99 latency at the same rate: ours ÷ ASP.NET Core',
      1,
      worst,
      perRate.length === 0
        ? why(results.echo.aspnetcore) || why(results.echo['ours-json'])
        : perRate.map((entry) => `${entry.rate}/s: ${ratio(entry.r)}`).join(', '),
    ),
  );

  targets.push(
    atMost(
      'Idle memory per connection: ours ÷ raw ws',
      1.3,
      divide(value(results.idle['ours-json'])?.bytesPerConnection, value(results.idle.ws)?.bytesPerConnection),
      why(results.idle.ws) || why(results.idle['ours-json']),
    ),
  );

  // Connect rate: the goal is set on WebSockets (what the official clients pick first); the HTTP transports are
  // reported beside it.
  const connectRatio = (transport?: HttpTransport) =>
    divide(
      connectMeasure(results, 'ours-json', transport)?.perCpuSecond,
      connectMeasure(results, 'aspnetcore', transport)?.perCpuSecond,
    );
  const httpRatios = HTTP_TRANSPORT_NAMES.map(([transport, name]) => {
    const r = connectRatio(transport);
    return r === null ? '' : `${name}: ${ratio(r)}`;
  }).filter(Boolean);
  targets.push(
    atLeast(
      'Connect rate (negotiate + WebSocket + handshake), connections per server CPU-second: ours ÷ ASP.NET Core',
      1.2,
      connectRatio(),
      why(results.connect.aspnetcore) || why(results.connect['ours-json']) || httpRatios.join(', '),
    ),
  );

  // Backplane: the cost of a delivered message with and without Redis, at the same offered load. The saturation
  // step is shown in the notes but not judged: the one sender's invocations run one at a time and each waits for
  // Redis's reply to its PUBLISH, so broadcasts arrive one by one and none share a frame (bench/README.md).
  const oursBackplane = backplaneByStep(results, 'ours-json');
  const fixed = oursBackplane.filter((entry) => entry.offered !== 0);
  const worstFixed = fixed.length === 0 ? null : Math.min(...fixed.map((entry) => entry.ratio));
  const socketBackplane = backplaneByStep(results, 'socketio').filter((entry) => entry.offered !== 0);
  targets.push(
    atLeast(
      'Backplane fan-out, two servers on one Redis ÷ one server, per server CPU-second at the same offered rate',
      0.7,
      worstFixed,
      [
        why(results.backplane['ours-json']) ||
          (oursBackplane.length > 0 && fixed.length === 0 ? 'no fixed-rate step ran' : ''),
        oursBackplane.map((entry) => `${stepName(entry.offered)}: ${ratio(entry.ratio)}`).join(', '),
        socketBackplane.length === 0
          ? ''
          : `Socket.IO + redis-adapter: ${ratio(Math.min(...socketBackplane.map((entry) => entry.ratio)))}`,
      ]
        .filter(Boolean)
        .join('; '),
    ),
  );

  const versusDotnet = backplaneVsDotnet(results, 'ours-json');
  const msgpackVersusDotnet = backplaneVsDotnet(results, 'ours-msgpack');
  targets.push(
    atLeast(
      "Backplane fan-out per server CPU-second, ours ÷ ASP.NET Core's backplane, every step",
      1.5,
      versusDotnet.steps.length === 0 ? null : Math.min(...versusDotnet.steps.map((entry) => entry.ratio)),
      [
        why(results.backplane.aspnetcore) || why(results.backplane['ours-json']),
        versusDotnet.steps.map((entry) => `${stepName(entry.offered)}: ${ratio(entry.ratio)}`).join(', '),
        msgpackVersusDotnet.steps.length === 0
          ? ''
          : `MessagePack: ${msgpackVersusDotnet.steps.map((entry) => `${stepName(entry.offered)}: ${ratio(entry.ratio)}`).join(', ')}`,
      ]
        .filter(Boolean)
        .join('; '),
    ),
  );
  targets.push(
    atLeast(
      "Backplane saturation, delivered messages per second: ours ÷ ASP.NET Core's backplane",
      1,
      versusDotnet.saturation,
      why(results.backplane.aspnetcore) ||
        why(results.backplane['ours-json']) ||
        (msgpackVersusDotnet.saturation === null ? '' : `MessagePack: ${ratio(msgpackVersusDotnet.saturation)}`),
    ),
  );

  if (report.scenarios.includes('scale')) {
    // The full count over several servers where one process could not hold it (`--scale-fleet`), else one server.
    const fleet = results.scaleFleet ?? {};
    const cells = value(fleet['ours-json']) !== undefined ? fleet : (results.scale ?? {});
    const ours = value(cells['ours-json']);
    const dotnet = value(cells.aspnetcore);
    const held = ours === undefined ? scaleCount(report) : ours.connections;
    targets.push(
      atMost(
        `Memory per connection at ${count(held)} connections${(ours?.servers ?? 1) > 1 ? ` (${ours!.servers} servers)` : ''} ÷ 6 KiB`,
        1,
        ours === undefined ? null : ours.bytesPerConnection / 6144,
        ours === undefined
          ? why(cells['ours-json'])
          : `${kib(ours.bytesPerConnection)} KiB` +
              (dotnet === undefined
                ? `; ASP.NET Core: ${why(cells.aspnetcore)}`
                : `; ASP.NET Core ${kib(dotnet.bytesPerConnection)} KiB (${ratio(ours.bytesPerConnection / dotnet.bytesPerConnection)})`),
      ),
    );
  }
  return targets;
}

function verdict(target: Target): string {
  return target.met === null ? 'not measured' : target.met ? 'met' : 'missed';
}

function targetsTable(report: Report): string {
  return table(
    ['target', 'goal', 'measured', 'result', 'notes'],
    evaluateTargets(report).map((target) => [
      target.name,
      target.goal,
      ratio(target.ratio),
      verdict(target),
      target.note,
    ]),
  );
}

// -- the scenario tables -----------------------------------------------------------------------------------------

function fanoutTable(report: Report, cells: Results['fanout'], baseline?: Results['fanout']): string {
  const ws = fanoutPerCpu(report.results, 'ws');
  const sio = fanoutPerCpu(report.results, 'socketio');
  const peers = baseline === undefined ? report.peers : report.peers.filter((peer) => peer.fanoutOnly !== true);
  const rows = peers.map((peer) => {
    const cell = value(cells[peer.id]);
    if (cell === undefined) return [peer.label, '–', '–', '–', '–', '–', '–', '–', why(cells[peer.id])];
    const s = bestStep(cell);
    const alone = baseline === undefined ? undefined : value(baseline[peer.id]);
    const single = alone?.steps.find((step) => step.offered === s.offered)?.deliveredPerCpuSecond;
    return [
      peer.label,
      stepName(s.offered),
      count(s.deliveredPerSecond),
      percent(s.serverCpu),
      count(s.deliveredPerCpuSecond),
      baseline === undefined
        ? ratio(divide(s.deliveredPerCpuSecond, ws))
        : ratio(divide(s.deliveredPerCpuSecond, single)),
      baseline === undefined
        ? ratio(divide(s.deliveredPerCpuSecond, sio))
        : cell.redisCpu === undefined
          ? '–'
          : percent(cell.redisCpu),
      `${Math.round(cell.rssBytes / 2 ** 20)}`,
      '',
    ];
  });
  const header =
    baseline === undefined
      ? [
          'server',
          'best step',
          'delivered msg/s',
          'server CPU',
          'delivered per server CPU-s',
          '× raw ws',
          '× Socket.IO',
          'RSS MiB',
          'notes',
        ]
      : [
          'server',
          'best step',
          'delivered msg/s',
          'CPU of both servers',
          'delivered per server CPU-s',
          '× same server alone, same step',
          'Redis CPU',
          'RSS MiB (both)',
          'notes',
        ];
  return table(header, rows);
}

function fanoutSteps(report: Report, cells: Results['fanout']): string {
  const rates = [...report.settings.fanoutRates, 0];
  const header = [
    'server',
    ...rates.map((rate) =>
      rate === 0 ? `saturation (${report.settings.fanoutWindow} in flight)` : `${rate} broadcasts/s`,
    ),
  ];
  const rows = report.peers
    .filter((peer) => value(cells[peer.id]) !== undefined)
    .map((peer) => [
      peer.label,
      ...value(cells[peer.id])!.steps.map(
        (step) =>
          `${count(step.deliveredPerSecond)}/s · CPU ${percent(step.serverCpu)} · ${count(step.deliveredPerCpuSecond)}/CPU-s`,
      ),
    ]);
  return table(header, rows);
}

/** A process's stalls in a window: event-loop delay p99 and maximum, and its longest GC pause, ms. */
function stalls(pauses: Pauses | undefined): string {
  return pauses === undefined
    ? '–'
    : `${pauses.loopDelayP99Ms.toFixed(1)} / ${pauses.loopDelayMaxMs.toFixed(1)}, GC ${pauses.gcMaxMs.toFixed(1)}`;
}

function echoTable(report: Report): string {
  const dotnet = echoP99(report.results, 'aspnetcore');
  const rows: string[][] = [];
  for (const peer of report.peers.filter((candidate) => candidate.fanoutOnly !== true)) {
    const cell = value(report.results.echo[peer.id]);
    if (cell === undefined) {
      rows.push([peer.label, '–', '–', '–', '–', '–', '–', '–', '–', why(report.results.echo[peer.id])]);
      continue;
    }
    for (const entry of cell.rates) {
      const lost = entry.result.sent - entry.result.received;
      rows.push([
        peer.label,
        `${entry.rate}/s`,
        ms(entry.result.p50),
        ms(entry.result.p99),
        ratio(dotnet.has(entry.rate) ? entry.result.p99 / dotnet.get(entry.rate)! : null),
        entry.cpuMicrosPerCall.toFixed(1),
        percent(entry.serverCpu),
        stalls(entry.result.generatorPauses),
        stalls(entry.serverPauses),
        lost > 0 ? `${lost} of ${entry.result.sent} unanswered within 1 s` : '',
      ]);
    }
  }
  return table(
    [
      'server',
      'rate',
      'p50 ms',
      'p99 ms',
      'p99 × ASP.NET Core',
      'server CPU µs per call',
      'server CPU',
      'generator stalls: loop delay p99 / max, longest GC (ms)',
      'server stalls (Node servers)',
      'notes',
    ],
    rows,
  );
}

function idleTable(report: Report): string {
  const ws = value(report.results.idle.ws)?.bytesPerConnection;
  const rows = report.peers
    .filter((peer) => peer.id !== 'ours-msgpack' && peer.fanoutOnly !== true)
    .map((peer) => {
      const cell = value(report.results.idle[peer.id]);
      if (cell === undefined) return [peer.label, '–', '–', '–', '–', why(report.results.idle[peer.id])];
      return [
        peer.label,
        count(cell.connections),
        kib(cell.bytesPerConnection),
        ratio(divide(cell.bytesPerConnection, ws)),
        `${Math.round(cell.rssBeforeBytes / 2 ** 20)} → ${Math.round(cell.rssAfterBytes / 2 ** 20)}`,
        '',
      ];
    });
  return table(
    ['server', 'connections', 'RSS KiB per connection', '× raw ws', 'RSS MiB before → after', 'notes'],
    rows,
  );
}

function connectTable(report: Report): string {
  const dotnet = value(report.results.connect.aspnetcore)?.perCpuSecond;
  const rows = report.peers
    .filter((peer) => peer.id !== 'ours-msgpack' && peer.fanoutOnly !== true)
    .map((peer) => {
      const cell = value(report.results.connect[peer.id]);
      if (cell === undefined) return [peer.label, '–', '–', '–', '–', why(report.results.connect[peer.id])];
      return [
        peer.label,
        count(cell.perSecond),
        percent(cell.serverCpu),
        count(cell.perCpuSecond),
        ratio(divide(cell.perCpuSecond, dotnet)),
        peer.server === 'ws'
          ? 'WebSocket upgrade only'
          : peer.server === 'socketio'
            ? 'upgrade + Engine.IO open + CONNECT'
            : 'negotiate + upgrade + handshake',
      ];
    });
  return table(
    [
      'server',
      'connections/s',
      'server CPU',
      'connections per server CPU-s',
      '× ASP.NET Core',
      'what one connection is',
    ],
    rows,
  );
}

function scaleTable(report: Report, cells: NonNullable<Results['scale']>): string {
  const dotnet = value(cells.aspnetcore);
  const rows = report.peers
    .filter((peer) => peer.id !== 'ours-msgpack' && peer.fanoutOnly !== true)
    .map((peer) => {
      const cell: ScaleCell | undefined = value(cells[peer.id]);
      if (cell === undefined) return [peer.label, ...Array<string>(10).fill('–'), why(cells[peer.id])];
      const sends = (entry: ScaleCell['broadcast']) =>
        `${entry.medianMs.toFixed(0)} (${entry.deliveryMs.map((v) => v.toFixed(0)).join(', ')})`;
      return [
        peer.label,
        count(cell.connections),
        kib(cell.bytesPerConnection),
        ratio(divide(cell.bytesPerConnection, dotnet?.bytesPerConnection)),
        `${Math.round(cell.rssBeforeBytes / 2 ** 20)} → ${Math.round(cell.rssAfterBytes / 2 ** 20)} → ${Math.round(cell.rssWithGroupsBytes / 2 ** 20)}`,
        sends(cell.broadcast),
        sends(cell.groupSends),
        `${cell.broadcast.cpuMicrosPerDelivered.toFixed(2)} / ${cell.groupSends.cpuMicrosPerDelivered.toFixed(2)}`,
        cell.broadcast.serverWaitMsPerSend === undefined
          ? '–'
          : `${cell.broadcast.serverWaitMsPerSend.toFixed(0)} / ${cell.groupSends.serverWaitMsPerSend!.toFixed(0)}`,
        `${percent(cell.broadcast.loadCpu)} / ${percent(cell.groupSends.loadCpu)}`,
        count(cell.connectsPerSecond),
        '',
      ];
    });
  return table(
    [
      'server',
      'connections',
      'RSS KiB per connection',
      '× ASP.NET Core',
      'RSS MiB: warm → all connected → in groups',
      'broadcast to all: ms to the last (each send)',
      `one message to each of ${report.settings.scaleGroups} groups: ms to the last`,
      'server CPU µs per delivered, background taken out: broadcast / groups',
      'servers waited for a CPU, ms per send (all their threads, summed): broadcast / groups',
      'load generators CPU during the sends',
      'connects/s while building',
      'notes',
    ],
    rows,
  );
}

/** The HTTP transports of the connect scenario, with the names the tables use. */
const HTTP_TRANSPORT_NAMES: ReadonlyArray<readonly [HttpTransport, string]> = [
  ['ServerSentEvents', 'Server-Sent Events'],
  ['LongPolling', 'long polling'],
];

/** A peer's connect figures on WebSockets, or on `transport`. */
function connectMeasure(results: Results, id: PeerId, transport?: HttpTransport): ConnectMeasure | undefined {
  const cell = value(results.connect[id]);
  return transport === undefined ? cell : value(cell?.http?.[transport]);
}

/** Connect rate over Server-Sent Events and long polling, for the SignalR servers that were measured on them. */
function connectHttpTable(report: Report): string | null {
  const peers = report.peers.filter((peer) => value(report.results.connect[peer.id])?.http !== undefined);
  if (peers.length === 0) return null;
  const rows = HTTP_TRANSPORT_NAMES.flatMap(([transport, name]) => {
    const dotnet = connectMeasure(report.results, 'aspnetcore', transport)?.perCpuSecond;
    return peers.map((peer) => {
      const cell = value(report.results.connect[peer.id])!.http![transport];
      const measure = value(cell);
      if (measure === undefined) return [peer.label, name, '–', '–', '–', '–', why(cell)];
      return [
        peer.label,
        name,
        count(measure.perSecond),
        percent(measure.serverCpu),
        count(measure.perCpuSecond),
        ratio(divide(measure.perCpuSecond, dotnet)),
        transport === 'LongPolling'
          ? 'negotiate + first poll + handshake POST + the poll bringing its answer'
          : 'negotiate + event stream + handshake POST + its answer on the stream',
      ];
    });
  });
  return table(
    [
      'server',
      'transport',
      'connections/s',
      'server CPU',
      'connections per server CPU-s',
      '× ASP.NET Core',
      'what one connection is',
    ],
    rows,
  );
}

function machineLine(report: Report): string {
  const m = report.machine;
  return (
    `${m.cpu}, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}` +
    (m.dotnet !== null ? `, .NET SDK ${m.dotnet}` : '') +
    (m.redis !== null ? `, Redis ${m.redis}` : '') +
    `; ${m.placement}`
  );
}

/** The full markdown report of one run. */
export function renderReport(report: Report, chartFile: string): string {
  const s = report.settings;
  const has = (scenario: Scenario) => report.scenarios.includes(scenario);
  const parts: string[] = [
    `# Benchmark results, ${report.date}${report.quick ? ' (quick mode)' : ''}`,
    '',
    `Machine: ${machineLine(report)}. Our server runs compiled (\`tsc\`, \`node\`), default options. ` +
      `The run took ${report.durationSeconds} s. Load comes from separate processes speaking each wire protocol over raw ` +
      'sockets; server cost is read from `/proc/<pid>/stat` (user + system time of all its threads). ' +
      'Compare ratios, not absolute figures: those move between runs and machines. ' +
      'A measurement during which other programs took over 30% of a core is taken again; in the accepted ' +
      `measurements they took at most ` +
      `${percent(report.otherLoad)} of a core.`,
    '',
    ...(report.disturbed.length > 0
      ? [
          `Disturbed by other work ${report.quick ? '(quick mode measures once)' : 'after 3 attempts'} (share of a core outside the measured ` +
            `processes): ${report.disturbed.join(', ')}. Treat those cells with care.`,
          '',
        ]
      : []),
    `![benchmark chart](${chartFile})`,
    '',
    '## Targets',
    '',
    targetsTable(report),
  ];
  if (has('fanout')) {
    parts.push(
      '',
      `## 1. Broadcast fan-out: ${count(s.fanoutConnections)} connections, one sender, 32-byte payloads`,
      '',
      "Every connection, the sender's too, receives each broadcast. Each server at its best step (most delivered " +
        `messages per server CPU-second; saturation = the sender keeps ${s.fanoutWindow} broadcasts in flight):`,
      '',
      fanoutTable(report, report.results.fanout),
      '',
      s.fanoutRates.length > 0
        ? 'Each step (fixed offered rates, then saturation):\n\n' + fanoutSteps(report, report.results.fanout)
        : '',
    );
  }
  if (has('echo')) {
    parts.push(
      '',
      `## 2. Echo: invocations with results from ${s.echoConnections} connections at a fixed total rate`,
      '',
      'Open loop: calls leave on schedule whether or not earlier ones were answered; latency is measured from the send.',
      '',
      echoTable(report),
    );
  }
  if (has('idle')) {
    parts.push(
      '',
      `## 3. Idle connections: memory per connection at ${count(s.idleConnections)} connections`,
      '',
      'Resident memory growth divided by the connections, read after a full garbage collection on the Node servers ' +
        '(`--expose-gc`); .NET is read as it stands.',
      '',
      idleTable(report),
    );
  }
  if (has('backplane')) {
    parts.push(
      '',
      `## 4. Backplane: the fan-out across two servers on one Redis`,
      '',
      'Receivers are split evenly over the two servers; the sender broadcasts through the first and its window closes on a ' +
        'connection of the second, so every broadcast in flight crosses Redis. Server CPU is that of both servers.',
      '',
      fanoutTable(report, report.results.backplane, report.results.fanout),
    );
  }
  if (has('connect')) {
    parts.push(
      '',
      `## 5. Connect rate: ${count(s.connectCount)} connections, ${s.connectConcurrency} at a time`,
      '',
      connectTable(report),
    );
    const httpTable = connectHttpTable(report);
    if (httpTable !== null) {
      parts.push(
        '',
        'The SignalR servers over the HTTP transports, each on a fresh server (× ASP.NET Core on the same transport):',
        '',
        httpTable,
      );
    }
  }
  if (has('scale')) {
    const connections = count(scaleCount(report));
    parts.push(
      '',
      `## 6. Scale: ${connections} WebSocket connections on one server`,
      '',
      `${connections} connections from ${4} load-generator processes over 16 loopback source addresses, each ` +
        'sending keep-alives as a client does; memory is resident growth per connection after a warm batch of ' +
        `1,000 and a full collection (Node servers). Then every connection joins one of ${s.scaleGroups} groups, and ` +
        `${s.scaleSends} single broadcasts to everyone, then ${s.scaleSends} rounds of one message to each group, ` +
        'are timed from the send to the arrival at the last connection (all generators share one core: when their ' +
        'CPU is near 100% the receiving side set the pace).',
      '',
      scaleTable(report, report.results.scale ?? {}),
      ...(scaleCount(report) < s.scaleConnections
        ? [
            '',
            `Fewer than the ${count(s.scaleConnections)} asked for: the open-file limit let one process hold no more ` +
              '(`bench.sh` raises the hard limit where it may; see bench/README.md, "Scale").',
          ]
        : []),
    );
  }
  const fleet = report.results.scaleFleet ?? {};
  const fleetCells = Object.values(fleet).flatMap((cell) => (cell?.ok === true ? [cell.value] : []));
  if (has('scale') && Object.keys(fleet).length > 0) {
    const servers = fleetCells[0]?.servers ?? 0;
    parts.push(
      '',
      `### The same on one box over several servers on one Redis (\`--scale-fleet\`)`,
      '',
      `${count(s.scaleConnections)} connections spread evenly over ${servers > 0 ? servers : 'several'} servers ` +
        '(as many as the open-file limit needs, all pinned to the same core) on one Redis; the sender is on the first, ' +
        'so every message crosses the backplane. Memory and CPU are those of all the servers together.',
      '',
      scaleTable(report, fleet),
    );
  }
  parts.push('', '## Reproduce', '', '```sh', `npm run bench${report.quick ? ' -- --quick' : ''}`, '```', '');
  return parts.join('\n');
}

/** The README's performance section: the targets, one summary table, the chart. */
export function renderReadmeSection(report: Report, chartPath: string): string {
  const r = report.results;
  const rows = report.peers
    .filter((peer) => peer.fanoutOnly !== true)
    .map((peer) => {
      const fan = value(r.fanout[peer.id]);
      const echoCell = value(r.echo[peer.id]);
      const top = echoCell?.rates[echoCell.rates.length - 1];
      const idleCell = value(r.idle[peer.id]);
      const connect = value(r.connect[peer.id]);
      const matched = backplaneByStep(r, peer.id).filter((entry) => entry.offered !== 0);
      const scaleCell = value(r.scaleFleet?.[peer.id]) ?? value(r.scale?.[peer.id]);
      const bpDotnet = backplaneVsDotnet(r, peer.id).steps;
      return [
        peer.label,
        fan === undefined ? '–' : count(bestStep(fan).deliveredPerCpuSecond),
        top === undefined ? '–' : `${ms(top.result.p99)} (${top.rate}/s)`,
        idleCell === undefined ? '–' : kib(idleCell.bytesPerConnection),
        connect === undefined ? '–' : count(connect.perCpuSecond),
        matched.length === 0 ? '–' : ratio(Math.min(...matched.map((entry) => entry.ratio))),
        peer.id === 'aspnetcore' || bpDotnet.length === 0 ? '–' : ratio(Math.min(...bpDotnet.map((e) => e.ratio))),
        scaleCell === undefined
          ? '–'
          : `${count(scaleCell.connections)}${(scaleCell.servers ?? 1) > 1 ? ` on ${scaleCell.servers} servers` : ''}: ` +
            `${kib(scaleCell.bytesPerConnection)} KiB; ${scaleCell.broadcast.medianMs.toFixed(0)} ms / ` +
            `${scaleCell.groupSends.medianMs.toFixed(0)} ms; ${scaleCell.broadcast.cpuMicrosPerDelivered.toFixed(2)} µs`,
      ];
    });
  return [
    `Measured ${report.date} on ${machineLine(report)}. Full results: [bench/results/latest.md](bench/results/latest.md).`,
    ...(report.disturbed.length > 0
      ? [
          '',
          `Other programs were using the machine during this run: ${report.disturbed.length} measurements stayed ` +
            'disturbed after their retries (listed in the full results). The ratios held across runs; the absolute ' +
            'figures did not.',
        ]
      : []),
    '',
    table(
      [
        'server',
        'fan-out: delivered msgs per server CPU-s',
        'echo p99 ms',
        'idle KiB per connection',
        'connects per server CPU-s',
        'backplane ÷ single, same offered rate',
        "backplane ÷ ASP.NET Core's, per server CPU-s, worst step",
        `scale: connections; KiB each; broadcast / ${report.settings.scaleGroups} groups to the last; CPU per delivered`,
      ],
      rows,
    ),
    '',
    targetsTable(report),
    '',
    `![benchmark chart](${chartPath})`,
  ].join('\n');
}

/** Ratio helpers shared with the chart. */
export const figures = { fanoutPerCpu, echoP99, value, labelOf, bestStep, scaleCount };
export type { FanoutCell };
