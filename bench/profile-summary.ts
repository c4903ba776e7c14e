/**
 * Prints where a V8 CPU profile (`--cpu-prof`, e.g. from `npm run bench -- --cpu-prof`) spent its time: self time
 * by function, and inclusive time by source file, so a hot path shows without opening DevTools.
 *
 * Run: `node bench/.build/bench/profile-summary.js <file.cpuprofile> [rows] [from to]`. With `from` and `to`
 * (microseconds on the monotonic clock, as `connect-ab.js --cpu-prof` prints a measured window) only the samples of
 * that window count and idle time is left out, so start-up, warm-up and shutdown do not blur the shares.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function main(): void {
  const file = process.argv[2];
  const rows = Number(process.argv[3] ?? 30);
  const from = process.argv[4] === undefined ? -Infinity : Number(process.argv[4]);
  const to = process.argv[5] === undefined ? Infinity : Number(process.argv[5]);
  const windowed = process.argv[4] !== undefined;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfTime = new Map<number, number>();
  let total = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    at += delta;
    if (at < from || at > to) return;
    if (windowed && byId.get(id)!.callFrame.functionName === '(idle)') return;
    selfTime.set(id, (selfTime.get(id) ?? 0) + delta);
    total += delta;
  });
  const short = (url: string) =>
    url
      .replace(/^file:\/\//, '')
      .replace(/^.*\/node_modules\//, '~/')
      .replace(/^.*\/\.build\//, '');
  const label = (node: ProfileNode) =>
    `${node.callFrame.functionName || '(anonymous)'} ${short(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;
  const self = new Map<string, number>();
  const inclusiveByFile = new Map<string, number>();
  for (const [id, time] of selfTime) {
    const node = byId.get(id)!;
    self.set(label(node), (self.get(label(node)) ?? 0) + time);
    // Each file once per sample stack.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const url = short(byId.get(at)!.callFrame.url) || byId.get(at)!.callFrame.functionName;
      if (seen.has(url)) continue;
      seen.add(url);
      inclusiveByFile.set(url, (inclusiveByFile.get(url) ?? 0) + time);
    }
  }
  const print = (title: string, map: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [name, time] of [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, rows)) {
      console.log(`${((time / total) * 100).toFixed(1).padStart(5)}%  ${name}`);
    }
  };
  console.log(`${(total / 1e6).toFixed(2)} s sampled${windowed ? ' (busy, in the window)' : ''}`);
  print('self time by function', self);
  print('inclusive time by file', inclusiveByFile);
}

main();
