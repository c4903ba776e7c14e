/**
 * Starting and stopping what a benchmark run measures: the servers (Node peers, the ASP.NET Core reference server,
 * Redis) and the load-generator processes, each optionally pinned to a CPU with `taskset` so the server's core is
 * not shared with the generators. Every child is killed when the orchestrator exits, however it exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import Redis from 'ioredis';
import type { Command, Reply } from '../generator';
import type { Pauses } from './pauses';

/** Repository root (this file is compiled to `bench/.build/bench/lib/`). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..', '..');
/** Compiled benchmark sources. */
export const BUILD_DIR = path.resolve(__dirname, '..', '..');

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => process.exit(130));
}

/** CPU placement: `null` leaves scheduling to the kernel. */
export interface Placement {
  readonly server: string | null;
  readonly load: string | null;
  /** Niceness of every process the run starts, or `null` to inherit. */
  readonly nice: number | null;
}

/** Whether `taskset` can pin processes here. */
export function tasksetAvailable(): boolean {
  return spawnSync('taskset', ['-c', '0', 'true']).status === 0;
}

/** Whether processes may be started at niceness `nice` (a negative one needs the right to raise priority). */
export function niceAvailable(nice: number): boolean {
  return spawnSync('nice', ['-n', String(nice), 'true']).status === 0;
}

/** The niceness every spawned process gets; set once by the orchestrator. */
let niceness: number | null = null;

export function setNiceness(value: number | null): void {
  niceness = value;
}

function spawnPinned(cpus: string | null, command: string, args: string[], options: Parameters<typeof spawn>[2]) {
  // `nice` and `taskset` exec what they run, so the child's pid is the measured process's.
  const prefix = [
    ...(niceness === null ? [] : ['nice', '-n', String(niceness)]),
    ...(cpus === null ? [] : ['taskset', '-c', cpus]),
  ];
  const child =
    prefix.length === 0
      ? spawn(command, args, options)
      : spawn(prefix[0], [...prefix.slice(1), command, ...args], options);
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** A running server. */
export interface RunningServer {
  readonly pid: number;
  readonly port: number;
  /** Asks a Node server for a full garbage collection; resolves at once for servers that cannot. */
  collectGarbage(): Promise<void>;
  /** A Node server's stalls since the last call (or its start); undefined for servers that do not report them. */
  pauses?(): Promise<Pauses>;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
}

/** Error of a server that exited before it was ready; `code` is its exit code. */
export class ServerExitedError extends Error {
  constructor(
    message: string,
    readonly code: number | null,
  ) {
    super(message);
  }
}

/** Waits for a line matching `ready` on the child's stdout; returns the first capture group, if any. */
function waitForLine(child: ChildProcess, ready: RegExp, what: string, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => reject(new Error(`${what} did not start in ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-8192);
      const match = ready.exec(output);
      if (match !== null) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve(match[1] ?? '');
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-8192);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new ServerExitedError(`${what} exited (${signal ?? code}) before it was ready:\n${output.trim()}`, code));
    });
  });
}

/** Starts a compiled Node server script of `bench/servers/`; `nodeFlags` go to `node` (e.g. `--cpu-prof`). */
export async function startNodeServer(
  script: string,
  args: string[],
  cpus: string | null,
  nodeFlags: readonly string[] = [],
): Promise<RunningServer> {
  const child = spawnPinned(
    cpus,
    process.execPath,
    ['--expose-gc', ...nodeFlags, path.join(BUILD_DIR, 'bench', 'servers', script), '--port', '0', ...args],
    { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...process.env, NODE_ENV: 'production' } },
  );
  const port = Number(await waitForLine(child, /BENCH-READY (\d+)/, script));
  // Keep draining output so a chatty server never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    pid: child.pid!,
    port,
    collectGarbage: () =>
      new Promise((resolve) => {
        const onMessage = (message: unknown) => {
          if (message !== 'gc-done') return;
          child.off('message', onMessage);
          resolve();
        };
        child.on('message', onMessage);
        child.send('gc');
      }),
    pauses: () =>
      new Promise((resolve) => {
        const onMessage = (message: unknown) => {
          if (typeof message !== 'object' || message === null || !('pauses' in message)) return;
          child.off('message', onMessage);
          resolve((message as { pauses: Pauses }).pauses);
        };
        child.on('message', onMessage);
        child.send('pauses');
      }),
    stop: stopper(child),
  };
}

/** A free TCP port on 127.0.0.1 (for servers that must be told their port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address() as net.AddressInfo;
      probe.close(() => resolve(address.port));
    });
  });
}

// -- ASP.NET Core ------------------------------------------------------------------------------------------------

/** The reference server project and the assembly its Release build produces. */
export const DOTNET_PROJECT = path.join(REPO_ROOT, 'test', 'dotnet-reference');
const DOTNET_DLL = path.join(DOTNET_PROJECT, 'bin', 'Release', 'net10.0', 'ReferenceServer.dll');

const DOTNET_ENV = {
  DOTNET_NOLOGO: '1',
  DOTNET_CLI_TELEMETRY_OPTOUT: '1',
  DOTNET_SKIP_FIRST_TIME_EXPERIENCE: '1',
  DOTNET_CLI_USE_MSBUILD_SERVER: '0',
  MSBUILDDISABLENODEREUSE: '1',
  UseSharedCompilation: 'false',
};

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'bin' && entry.name !== 'obj') newest = Math.max(newest, newestSource(full));
    } else if (!entry.name.endsWith('.md')) {
      newest = Math.max(newest, statSync(full).mtimeMs);
    }
  }
  return newest;
}

/**
 * Builds the reference server (`dotnet build -c Release`) unless its assembly is newer than its sources.
 * @returns why it is unavailable, or `null` when it is ready
 */
export function prepareDotnet(): string | null {
  if (spawnSync('dotnet', ['--version']).status !== 0) return 'no `dotnet` on PATH';
  if (existsSync(DOTNET_DLL) && statSync(DOTNET_DLL).mtimeMs > newestSource(DOTNET_PROJECT)) return null;
  const build = spawnSync(
    'dotnet',
    ['build', '-c', 'Release', '--nologo', '--disable-build-servers', '-v', 'quiet', '-clp:NoSummary;ErrorsOnly'],
    { cwd: DOTNET_PROJECT, env: { ...process.env, ...DOTNET_ENV }, encoding: 'utf8', timeout: 300_000 },
  );
  if (build.status !== 0 || !existsSync(DOTNET_DLL))
    return `dotnet build failed: ${(build.stdout + build.stderr).trim().slice(-400)}`;
  return null;
}

/** The reference hub's name on Redis (its full type name); its servers' ack channels start with it. */
const DOTNET_ACK_CHANNELS = 'WebAPI.ChatHub:internal:ack:*';

/** How many ASP.NET Core servers have subscribed their ack channel on the Redis at `redisUrl`. */
async function dotnetServersOn(redisUrl: string): Promise<number> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    return ((await redis.call('PUBSUB', 'CHANNELS', DOTNET_ACK_CHANNELS)) as string[]).length;
  } finally {
    redis.disconnect();
  }
}

/**
 * Starts the ASP.NET Core reference server (JSON protocol only) with .NET's default options; with `redisUrl`, on
 * its StackExchangeRedis backplane, resolving once it has subscribed its channels there.
 */
export async function startDotnetServer(cpus: string | null, redisUrl?: string): Promise<RunningServer> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, ...DOTNET_ENV, PORT: String(port), EXIT_ON_STDIN_EOF: 'true' };
  for (const name of Object.keys(env))
    if (name.startsWith('ASPNETCORE_') || name.startsWith('Logging__')) delete env[name];
  for (const name of ['MESSAGEPACK', 'REDIS', 'REDIS_CHANNEL_PREFIX']) delete env[name];
  const before = redisUrl === undefined ? 0 : await dotnetServersOn(redisUrl);
  if (redisUrl !== undefined) {
    const { hostname, port: redisPort } = new URL(redisUrl);
    env.REDIS = `${hostname}:${redisPort},abortConnect=false`;
  }
  const child = spawnPinned(cpus, 'dotnet', [DOTNET_DLL], {
    cwd: DOTNET_PROJECT,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  await waitForLine(child, /Reference server listening on/, 'ASP.NET Core reference server');
  child.stdout?.resume();
  child.stderr?.resume();
  const stop = stopper(child);
  if (redisUrl !== undefined) {
    // Servers start one after another, so one more ack channel is this server's.
    const deadline = Date.now() + 30_000;
    while ((await dotnetServersOn(redisUrl)) <= before) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error('the ASP.NET Core server did not subscribe its Redis channels within 30 s');
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { pid: child.pid!, port, collectGarbage: async () => undefined, stop };
}

// -- Redis -------------------------------------------------------------------------------------------------------

/** Version of `redis-server`, or `null` when it is not installed. */
export function redisVersion(): string | null {
  const result = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (result.status !== 0) return null;
  return /v=(\S+)/.exec(result.stdout)?.[1] ?? 'unknown';
}

/** Starts a throwaway Redis (no persistence) on a free port, or on `port` (to start it again where servers expect it). */
export async function startRedis(cpus: string | null, port?: number): Promise<RunningServer & { url: string }> {
  port ??= await freePort();
  const child = spawnPinned(
    cpus,
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // With loglevel warning Redis prints nothing when ready; poll the port instead.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('redis-server did not start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    pid: child.pid!,
    port,
    url: `redis://127.0.0.1:${port}`,
    collectGarbage: async () => undefined,
    stop: stopper(child),
  };
}

// -- load generators ---------------------------------------------------------------------------------------------

/** A load-generator process driven over IPC. */
export class Generator {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (reply: Reply) => {
      const pending = this.waiting.get(reply.id);
      if (pending === undefined) return;
      this.waiting.delete(reply.id);
      if (reply.error !== undefined) pending.reject(new Error(reply.error));
      else pending.resolve(reply.result);
    });
    child.once('exit', (code) => {
      for (const pending of this.waiting.values()) pending.reject(new Error(`load generator exited (${code})`));
      this.waiting.clear();
    });
  }

  /** Starts a generator process, pinned to `cpus` when given. */
  static start(cpus: string | null): Generator {
    const child = spawnPinned(cpus, process.execPath, [path.join(BUILD_DIR, 'bench', 'generator.js')], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Generator(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Sends a command and resolves with its result. */
  call<T = unknown>(command: Command): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ id, ...command });
    });
  }

  /** Closes its connections and waits for the process to end. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.call({ op: 'close' }).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}
