/**
 * Builds and runs the ASP.NET Core SignalR reference server in `test/dotnet-reference/` for jest tests.
 *
 * The server is built once per source change (`dotnet build -c Release`, offline) and every test file that needs
 * it starts its own process on a free loopback port. Parallel jest workers share one build through a lock
 * directory under `.tmp/dotnet-reference/`; a stamp of the sources' hash lets later runs skip the build.
 *
 * @packageDocumentation
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import Redis from 'ioredis';
import { killOnExit } from './child-processes';

/** Folder of the C# reference server project. */
export const REFERENCE_PROJECT_DIR = path.resolve(__dirname, '..', 'dotnet-reference');

/** The assembly that `dotnet build -c Release` produces and {@link startReferenceServer} runs. */
export const REFERENCE_SERVER_DLL = path.join(
  REFERENCE_PROJECT_DIR,
  'bin',
  'Release',
  'net10.0',
  'ReferenceServer.dll',
);

/** Path of the hub on the reference server. */
export const REFERENCE_HUB_PATH = '/chathub';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const STATE_DIR = path.join(REPO_ROOT, '.tmp', 'dotnet-reference');
const LOCK_DIR = path.join(STATE_DIR, 'build.lock');
const STAMP_FILE = path.join(STATE_DIR, 'build.stamp');

/** Printed by the server once Kestrel is listening (see Program.cs). */
const READY_LINE = 'Reference server listening on';

const BUILD_TIMEOUT_MS = 5 * 60_000;
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
/** A lock older than this is taken to be left over from a killed run. */
const STALE_LOCK_MS = BUILD_TIMEOUT_MS + 60_000;
const OUTPUT_LIMIT = 64 * 1024;

/**
 * Environment variables the server reads (see `test/dotnet-reference/README.md`). They are removed from the
 * inherited environment so only what a test passes applies.
 */
const SERVER_SETTINGS = [
  'PORT',
  'KEEP_ALIVE_MS',
  'CLIENT_TIMEOUT_MS',
  'HANDSHAKE_TIMEOUT_MS',
  'MAX_MESSAGE_SIZE',
  'DETAILED_ERRORS',
  'MAX_PARALLEL_INVOCATIONS',
  'STREAM_BUFFER_CAPACITY',
  'ALLOW_STATEFUL_RECONNECTS',
  'TRANSPORTS',
  'LONG_POLL_TIMEOUT_MS',
  'DISCONNECT_TIMEOUT_MS',
  'CORS_ORIGINS',
  'MESSAGEPACK',
  'REDIS',
  'REDIS_CHANNEL_PREFIX',
  'EXIT_ON_STDIN_EOF',
];

/** Keeps the .NET CLI quiet, offline and free of lingering build-server processes. */
const DOTNET_ENV: Record<string, string> = {
  DOTNET_NOLOGO: '1',
  DOTNET_CLI_TELEMETRY_OPTOUT: '1',
  DOTNET_SKIP_FIRST_TIME_EXPERIENCE: '1',
  DOTNET_CLI_WORKLOAD_UPDATE_NOTIFY_DISABLE: 'true',
  DOTNET_GENERATE_ASPNET_CERTIFICATE: 'false',
  DOTNET_CLI_USE_MSBUILD_SERVER: '0',
  MSBUILDDISABLENODEREUSE: '1',
  UseSharedCompilation: 'false',
};

/** A running reference server. */
export interface ReferenceServer {
  /** Base address, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  readonly url: string;
  /** The loopback port it listens on. */
  readonly port: number;
  /** Address of the `ChatHub` hub: `${url}/chathub`. */
  readonly hubUrl: string;
  /** Process id of the `dotnet` process. */
  readonly pid: number;
  /** What the server printed so far (stdout and stderr, last 64 KiB), for diagnosing a failure. */
  output(): string;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
}

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...DOTNET_ENV };
  for (const name of SERVER_SETTINGS) delete env[name];
  for (const name of Object.keys(env)) {
    // Hosting settings from the caller's shell (ASPNETCORE_URLS, ASPNETCORE_ENVIRONMENT, Logging__…) would change
    // what the server does; the reference must be the same everywhere.
    if (name.startsWith('ASPNETCORE_') || name.startsWith('Logging__') || name === 'DOTNET_URLS') delete env[name];
  }
  return { ...env, ...extra };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Hash of every source file of the project (everything but `bin/`, `obj/` and Markdown). */
function sourceHash(): string {
  const hash = createHash('sha256');
  const walk = (dir: string): void => {
    const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'bin' && entry.name !== 'obj') walk(full);
      } else if (entry.isFile() && !entry.name.endsWith('.md')) {
        hash.update(path.relative(REFERENCE_PROJECT_DIR, full)).update('\0').update(fs.readFileSync(full)).update('\0');
      }
    }
  };
  walk(REFERENCE_PROJECT_DIR);
  return hash.digest('hex');
}

function isUpToDate(hash: string): boolean {
  try {
    return fs.readFileSync(STAMP_FILE, 'utf8').trim() === hash && fs.existsSync(REFERENCE_SERVER_DLL);
  } catch {
    return false;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when the lock directory belongs to a process that is gone, or is older than any build could take. */
function lockIsStale(): boolean {
  try {
    const age = Date.now() - fs.statSync(LOCK_DIR).mtimeMs;
    if (age > STALE_LOCK_MS) return true;
    const owner = Number.parseInt(fs.readFileSync(path.join(LOCK_DIR, 'pid'), 'utf8'), 10);
    return Number.isInteger(owner) && !processAlive(owner);
  } catch {
    // The owner file may not be written yet; a lock without one is stale only once it is old.
    return false;
  }
}

/** Takes the build lock, waiting while another process (a parallel jest worker) holds it. */
async function acquireLock(): Promise<void> {
  fs.mkdirSync(STATE_DIR, { recursive: true });
  const deadline = Date.now() + STALE_LOCK_MS + 60_000;
  for (;;) {
    try {
      fs.mkdirSync(LOCK_DIR);
      fs.writeFileSync(path.join(LOCK_DIR, 'pid'), String(process.pid));
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (lockIsStale()) {
      fs.rmSync(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for the reference server build lock ${LOCK_DIR}`);
    await sleep(250);
  }
}

function releaseLock(): void {
  fs.rmSync(LOCK_DIR, { recursive: true, force: true });
}

/** Runs `dotnet build -c Release` in the project folder; rejects with its output when it fails. */
function runDotnetBuild(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'dotnet',
      ['build', '-c', 'Release', '--nologo', '--disable-build-servers', '-v', 'quiet', '-clp:NoSummary;ErrorsOnly'],
      { cwd: REFERENCE_PROJECT_DIR, env: childEnv({}), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    killOnExit(child);
    let output = '';
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const timer = setTimeout(() => {
      output += `\n[harness] dotnet build exceeded ${BUILD_TIMEOUT_MS} ms; killed`;
      child.kill('SIGKILL');
    }, BUILD_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run dotnet build: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`dotnet build failed (${signal ?? `exit code ${code}`}):\n${output}`));
    });
  });
}

let buildPromise: Promise<string> | undefined;

/**
 * Builds the reference server unless a build of the current sources already exists.
 *
 * Safe to call from every test file and every parallel jest worker: one build runs at a time (a lock directory
 * under `.tmp/dotnet-reference/`), the others wait for it, and a stamp of the sources' hash makes later calls and
 * later runs skip the build. Within one process the work is done once.
 *
 * @returns the path of the built `ReferenceServer.dll`
 * @throws if `dotnet` is missing or the build fails (the error carries the compiler output)
 */
export function buildReferenceServer(): Promise<string> {
  buildPromise ??= (async () => {
    const hash = sourceHash();
    if (isUpToDate(hash)) return REFERENCE_SERVER_DLL;
    await acquireLock();
    try {
      // Another worker may have finished the same build while this one waited.
      if (!isUpToDate(hash)) {
        fs.rmSync(STAMP_FILE, { force: true });
        await runDotnetBuild();
        if (!fs.existsSync(REFERENCE_SERVER_DLL))
          throw new Error(`dotnet build did not produce ${REFERENCE_SERVER_DLL}`);
        fs.writeFileSync(STAMP_FILE, `${hash}\n`);
      }
    } finally {
      releaseLock();
    }
    return REFERENCE_SERVER_DLL;
  })();
  // A failed build may be retried by a later call.
  buildPromise.catch(() => {
    buildPromise = undefined;
  });
  return buildPromise;
}

/** Asks the OS for a free loopback port. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not determine a free port'));
      });
    });
  });
}

class PortInUseError extends Error {}

/** Spawns one server process on `port` and resolves once it prints its ready line. */
function launch(dll: string, port: number, env: Record<string, string>): Promise<ReferenceServer> {
  return new Promise((resolve, reject) => {
    const child = spawn('dotnet', [dll], {
      cwd: REFERENCE_PROJECT_DIR,
      env: childEnv({ ...env, PORT: String(port), EXIT_ON_STDIN_EOF: 'true' }),
      // stdin stays open as a lifeline: the server exits when it closes, i.e. when this process dies.
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    killOnExit(child);

    let output = '';
    let ready = false;
    let settled = false;
    const exited = new Promise<void>((done) => {
      child.once('exit', () => {
        done();
      });
    });
    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const killTimer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
          await exited;
          clearTimeout(killTimer);
        }
        child.stdin?.destroy();
      })();
      return stopping;
    };
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(startTimer);
      // Never leave a half-started child behind.
      void stop().then(
        () => reject(error),
        () => reject(error),
      );
    };
    const url = `http://127.0.0.1:${port}`;
    const onData = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
      if (!ready && output.includes(READY_LINE)) {
        ready = true;
        settled = true;
        clearTimeout(startTimer);
        resolve({
          url,
          port,
          hubUrl: `${url}${REFERENCE_HUB_PATH}`,
          pid: child.pid as number,
          output: () => output,
          stop,
        });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.stdin?.on('error', () => {
      // EPIPE once the server has exited; nothing is ever written.
    });

    const startTimer = setTimeout(
      () => fail(new Error(`reference server did not start within ${START_TIMEOUT_MS} ms:\n${output}`)),
      START_TIMEOUT_MS,
    );
    child.once('error', (error) => fail(new Error(`cannot run dotnet: ${error.message}`)));
    child.once('exit', (code, signal) => {
      if (ready) return;
      const why = `reference server exited before listening (${signal ?? `exit code ${code}`}):\n${output}`;
      fail(/address already in use/i.test(output) ? new PortInUseError(why) : new Error(why));
    });
  });
}

/**
 * Builds (if needed) and starts the reference server on a free 127.0.0.1 port.
 *
 * @param env - settings for this server, e.g. `{ DETAILED_ERRORS: 'true', KEEP_ALIVE_MS: '500' }`; the names are
 *   listed in `test/dotnet-reference/README.md`. Anything not given keeps .NET's default; the same names in the
 *   caller's own environment are ignored.
 * @returns the running server; call `stop()` in `afterAll`. A process that fails to start is killed before the
 *   promise rejects, and any still running when the test process exits are killed then.
 */
export async function startReferenceServer(env: Record<string, string> = {}): Promise<ReferenceServer> {
  const dll = await buildReferenceServer();
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await launch(dll, port, env);
    } catch (error) {
      // Another process may take the port between the probe and the server's bind; try another one.
      if (!(error instanceof PortInUseError) || attempt >= 3) throw error;
    }
  }
}

let dotnetPresence: boolean | undefined;

/** Whether the `dotnet` CLI runs on this machine (checked once per process). */
export function dotnetAvailable(): boolean {
  dotnetPresence ??=
    spawnSync('dotnet', ['--version'], { env: childEnv({}), stdio: 'ignore', timeout: 30_000 }).status === 0;
  return dotnetPresence;
}

/**
 * `describe` for tests that need the .NET SDK: where `dotnet` is missing the block is skipped with one line on
 * stderr saying why (jest also counts its tests as skipped), so a machine without .NET never passes them silently.
 */
export function describeWithDotnet(title: string, body: () => void): void {
  if (dotnetAvailable()) {
    describe(title, body);
    return;
  }
  process.stderr.write(`skipped "${title}": it runs the ASP.NET Core reference server and \`dotnet\` is not on PATH\n`);
  describe.skip(title, body);
}

/** A reference server on the Redis backplane, with the name it goes by there. */
export interface BackplaneReferenceServer extends ReferenceServer {
  /** Its RedisHubLifetimeManager's server name (`<machine>_<32 hex>`), as in its ack and return channels. */
  readonly serverName: string;
}

/** How {@link startBackplaneReferenceServer} configures the server. */
export interface BackplaneReferenceOptions {
  /** Port of the redis-server on 127.0.0.1. */
  readonly redisPort: number;
  /** StackExchange.Redis `ChannelPrefix`; none when absent. */
  readonly channelPrefix?: string;
  /** The hub's name on Redis (the hub class's full name). @default 'WebAPI.ChatHub' */
  readonly hubName?: string;
  /** More settings, as for {@link startReferenceServer}. */
  readonly env?: Record<string, string>;
}

/**
 * Starts the reference server with the JSON and MessagePack protocols on the Redis backplane and waits until it
 * has subscribed its own ack channel, which also tells its server name.
 */
export async function startBackplaneReferenceServer(
  options: BackplaneReferenceOptions,
): Promise<BackplaneReferenceServer> {
  const prefix = (options.channelPrefix ?? '') + (options.hubName ?? 'WebAPI.ChatHub') + ':internal:ack:';
  const admin = new Redis({ port: options.redisPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    const ackChannels = async () =>
      ((await admin.call('PUBSUB', 'CHANNELS', `${prefix}*`)) as string[]).map((c) => c.slice(prefix.length));
    await admin.connect();
    const before = new Set(await ackChannels());
    const server = await startReferenceServer({
      ...options.env,
      MESSAGEPACK: 'true',
      REDIS: `127.0.0.1:${options.redisPort},abortConnect=false`,
      ...(options.channelPrefix !== undefined && { REDIS_CHANNEL_PREFIX: options.channelPrefix }),
    });
    try {
      const deadline = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        const fresh = (await ackChannels()).filter((name) => !before.has(name));
        if (fresh.length === 1) return { ...server, serverName: fresh[0] };
        if (fresh.length > 1) throw new Error(`several new servers on Redis at once: ${fresh.join(', ')}`);
        if (Date.now() > deadline)
          throw new Error(`reference server did not subscribe ${prefix}<name>:\n${server.output()}`);
        await sleep(25);
      }
    } catch (error) {
      await server.stop();
      throw error;
    }
  } finally {
    admin.disconnect();
  }
}
