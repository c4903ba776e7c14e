/**
 * Connect rate of two or more builds of our server side by side, for profile-driven work on the connect path: the
 * builds (and optionally ASP.NET Core) take turns, round after round, each round a fresh server pinned to CPU 0 and
 * a generator on CPU 1, so a change of a few percent shows through the noise of a shared machine as a shift of the
 * medians. Not part of `npm run bench`.
 *
 * Run after `npx tsc -p bench/tsconfig.json` in each build's checkout:
 * `node bench/.build/bench/connect-ab.js ROUNDS COUNT NAME=CHECKOUT[@NODE] … [aspnetcore]` — `CHECKOUT` is a
 * checkout whose `bench/.build/` is compiled, `@NODE` a `node` binary to run that build on (default: this one).
 * `--transport ServerSentEvents|LongPolling` connects over that transport; `--cpu-prof DIR` profiles our servers
 * and prints each measured window, for `profile-summary.js FILE ROWS FROM TO`.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type { ConnectResult } from './generator';
import type { SignalRTransport } from './lib/dialects';
import { cpuSeconds, machineBusySeconds } from './lib/proc';
import { Generator, setNiceness, startDotnetServer } from './lib/processes';

interface Server {
  readonly pid: number;
  readonly port: number;
  stop(): Promise<void>;
}

const SOURCE_ADDRESSES = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 2}`);

/** Our benchmark server of another checkout, pinned to CPU 0. */
function startBuild(checkout: string, node: string, flags: readonly string[]): Promise<Server> {
  const script = path.join(checkout, 'bench', '.build', 'bench', 'servers', 'ours.js');
  const child = spawn('nice', ['-n', '-10', 'taskset', '-c', '0', node, ...flags, script, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  return new Promise((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const ready = /BENCH-READY (\d+)/.exec(output);
      if (ready === null) return;
      child.stdout!.resume();
      resolve({
        pid: child.pid!,
        port: Number(ready[1]),
        stop: () => new Promise<void>((done) => (child.once('exit', () => done()), child.kill('SIGTERM'))),
      });
    });
    child.once('exit', (code) => reject(new Error(`${script} exited (${code})`)));
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const option = (name: string) => {
    const at = argv.indexOf(`--${name}`);
    return at < 0 ? undefined : argv.splice(at, 2)[1];
  };
  const transport = option('transport') as SignalRTransport | undefined;
  const profileDir = option('cpu-prof');
  const [rounds, count] = argv.slice(0, 2).map(Number);
  const contenders = argv.slice(2).map((spec) => {
    const [name, where = ''] = spec.split('=');
    const [checkout, node = process.execPath] = where.split('@');
    return { name, checkout, node };
  });
  setNiceness(-10);
  const perCpuSecond = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++) {
    for (const { name, checkout, node } of contenders) {
      const flags = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, name)}`];
      const server: Server =
        name === 'aspnetcore' ? await startDotnetServer('0') : await startBuild(checkout, node, flags);
      const generator = Generator.start('1');
      const base = {
        op: 'connect' as const,
        dialect: 'signalr-json' as const,
        targets: [{ host: '127.0.0.1', port: server.port }],
        localAddresses: SOURCE_ADDRESSES,
        concurrency: 32,
        ...(transport !== undefined && { transport }),
      };
      await generator.call<ConnectResult>({ ...base, count: 200 });
      const from = process.hrtime.bigint() / 1000n;
      const busy0 = machineBusySeconds();
      const cpu0 = cpuSeconds(server.pid);
      const load0 = cpuSeconds(generator.pid);
      const result = await generator.call<ConnectResult>({ ...base, count });
      const to = process.hrtime.bigint() / 1000n;
      const wall = result.elapsedMs / 1000;
      const cpu = cpuSeconds(server.pid) - cpu0;
      const other = (machineBusySeconds() - busy0 - cpu - (cpuSeconds(generator.pid) - load0)) / wall;
      await generator.stop();
      await server.stop();
      const rate = result.connected / cpu;
      perCpuSecond.set(name, [...(perCpuSecond.get(name) ?? []), rate]);
      console.log(
        `round ${round + 1} ${name}: ${Math.round(result.connected / wall)}/s, server CPU ${Math.round((cpu / wall) * 100)}%, ` +
          `${Math.round(rate)} per CPU-s, other work ${Math.round(other * 100)}% of a core, ${result.failed} failed` +
          (profileDir === undefined ? '' : `, window ${from} ${to}`),
      );
    }
  }
  for (const [name, rates] of perCpuSecond) {
    const sorted = [...rates].sort((a, b) => a - b);
    console.log(
      `${name}: median ${Math.round(sorted[Math.floor(sorted.length / 2)])} per CPU-s [${rates.map(Math.round).join(', ')}]`,
    );
  }
}

void main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
    process.exit(1);
  },
);
