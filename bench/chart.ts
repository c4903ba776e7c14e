/**
 * The results at a glance: one horizontal bar panel per scenario, one bar per server, written as SVG (and turned
 * into PNG by `run.ts` with headless Chromium). Hand-written SVG keeps the benchmark free of charting packages.
 */
import { count, figures, type Report } from './report';
import type { PeerId } from './run';

const COLORS: Record<PeerId, string> = {
  'ours-json': '#2563eb',
  'ours-msgpack': '#60a5fa',
  'ours-admin': '#93c5fd',
  aspnetcore: '#7c3aed',
  socketio: '#16a34a',
  ws: '#9ca3af',
};

interface Bar {
  readonly id: PeerId;
  readonly label: string;
  readonly value: number;
  readonly text: string;
}

interface Panel {
  readonly title: string;
  readonly bars: Bar[];
  /** Servers whose cell did not run, with why: shown as text rows so a gap is not mistaken for a result. */
  readonly missing?: ReadonlyArray<{ label: string; reason: string }>;
}

const WIDTH = 1000;
const LABEL_WIDTH = 250;
const BAR_HEIGHT = 22;
const GAP = 6;

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function panels(report: Report): Panel[] {
  const { results } = report;
  const { value } = figures;
  const result: Panel[] = [];
  const bars = (pick: (id: PeerId) => number | undefined, format: (v: number) => string): Bar[] =>
    report.peers.flatMap((peer) => {
      const v = pick(peer.id);
      return v === undefined || !Number.isFinite(v)
        ? []
        : [{ id: peer.id, label: peer.label, value: v, text: format(v) }];
    });
  const has = (scenario: Report['scenarios'][number]) => report.scenarios.includes(scenario);
  if (has('fanout')) {
    result.push({
      title: `Fan-out to ${count(report.settings.fanoutConnections)} connections: delivered messages per server CPU-second, best step (higher is better)`,
      bars: bars((id) => figures.fanoutPerCpu(results, id), count),
    });
  }
  if (has('echo')) {
    const top = report.settings.echoRates[report.settings.echoRates.length - 1];
    result.push({
      title: `Echo at ${top} calls/s from ${report.settings.echoConnections} connections: p99 latency, ms (lower is better)`,
      bars: bars(
        (id) => figures.echoP99(results, id).get(top),
        (v) => v.toFixed(2),
      ),
    });
  }
  if (has('idle')) {
    result.push({
      title: `Idle: resident KiB per connection at ${count(report.settings.idleConnections)} connections (lower is better)`,
      bars: bars(
        (id) => value(results.idle[id])?.bytesPerConnection,
        (v) => (v / 1024).toFixed(1),
      ).map((bar) => ({
        ...bar,
        value: bar.value / 1024,
      })),
    });
  }
  if (has('backplane')) {
    result.push({
      title: 'Backplane fan-out, two servers on one Redis: delivered messages per server CPU-second (higher is better)',
      missing: report.peers.flatMap((peer) => {
        const cell = results.backplane[peer.id];
        return cell !== undefined && !cell.ok ? [{ label: peer.label, reason: `not run: ${cell.reason}` }] : [];
      }),
      bars: bars((id) => {
        const cell = value(results.backplane[id]);
        return cell === undefined ? undefined : figures.bestStep(cell).deliveredPerCpuSecond;
      }, count),
    });
  }
  if (has('connect')) {
    result.push({
      title: 'Connect (negotiate + WebSocket + handshake): connections per server CPU-second (higher is better)',
      bars: bars((id) => value(results.connect[id])?.perCpuSecond, count),
    });
  }
  if (has('scale')) {
    const cells = results.scale ?? {};
    const missing = report.peers.flatMap((peer) => {
      const cell = cells[peer.id];
      return cell !== undefined && !cell.ok ? [{ label: peer.label, reason: `not run: ${cell.reason}` }] : [];
    });
    result.push({
      title: `Scale: resident KiB per connection at ${count(figures.scaleCount(report))} connections (lower is better)`,
      missing,
      bars: bars(
        (id) => value(cells[id])?.bytesPerConnection,
        (v) => (v / 1024).toFixed(1),
      ).map((bar) => ({ ...bar, value: bar.value / 1024 })),
    });
    result.push({
      title: `Scale: ms from one broadcast to its arrival at the last of ${count(figures.scaleCount(report))} (lower is better)`,
      bars: bars(
        (id) => value(cells[id])?.broadcast.medianMs,
        (v) => v.toFixed(0),
      ),
    });
  }
  return result;
}

/** The chart as an SVG document. */
export function renderChart(report: Report): string {
  const out: string[] = [];
  let y = 20;
  out.push(
    `<text x="20" y="${y + 14}" font-size="20" font-weight="bold">fastify-signalr benchmarks, ${escape(report.date)}` +
      `${report.quick ? ' (quick)' : ''}</text>`,
  );
  y += 30;
  out.push(
    `<text x="20" y="${y + 12}" font-size="12" fill="#4b5563">${escape(
      `${report.machine.cpu}, Node ${report.machine.node}; ${report.machine.placement}. Ratios matter, not absolute values.`,
    )}</text>`,
  );
  y += 30;
  for (const panel of panels(report)) {
    out.push(`<text x="20" y="${y + 14}" font-size="14" font-weight="bold">${escape(panel.title)}</text>`);
    y += 24;
    if (panel.bars.length === 0) {
      out.push(`<text x="${LABEL_WIDTH}" y="${y + 14}" font-size="12" fill="#6b7280">not measured in this run</text>`);
      y += BAR_HEIGHT + GAP;
    }
    const max = Math.max(...panel.bars.map((bar) => bar.value), 1e-9);
    const scale = (WIDTH - LABEL_WIDTH - 90) / max;
    for (const bar of panel.bars) {
      const width = Math.max(1, bar.value * scale);
      out.push(
        `<text x="${LABEL_WIDTH - 8}" y="${y + 15}" font-size="13" text-anchor="end">${escape(bar.label)}</text>`,
        `<rect x="${LABEL_WIDTH}" y="${y}" width="${width.toFixed(1)}" height="${BAR_HEIGHT}" fill="${COLORS[bar.id]}" rx="2"/>`,
        `<text x="${(LABEL_WIDTH + width + 6).toFixed(1)}" y="${y + 15}" font-size="13">${escape(bar.text)}</text>`,
      );
      y += BAR_HEIGHT + GAP;
    }
    for (const gap of panel.missing ?? []) {
      out.push(
        `<text x="${LABEL_WIDTH - 8}" y="${y + 15}" font-size="13" text-anchor="end">${escape(gap.label)}</text>`,
        `<text x="${LABEL_WIDTH}" y="${y + 15}" font-size="12" fill="#6b7280">${escape(gap.reason.slice(0, 100))}</text>`,
      );
      y += BAR_HEIGHT + GAP;
    }
    y += 16;
  }
  const height = y + 10;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ` +
    `font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">\n` +
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>\n${out.join('\n')}\n</svg>\n`
  );
}
