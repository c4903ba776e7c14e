/**
 * Our chat sample as a real child process (`node --import tsx samples/chat/server.ts`), configured through its
 * environment (`REDIS_URL`, `REDIS_CHANNEL_PREFIX`, `CHAT_HUB_NAME`, `REDIS_ACK_TIMEOUT_MS`, …) — the way it runs in
 * production — for backplane tests with several servers. Ready once its port accepts connections; its log lines
 * (JSON) are kept for assertions; `stop()` ends it and waits for the exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { chatConfigOptions } from '../../samples/chat/app';
import { CONFIG_FILE_ENV, RESERVED_ENV_PREFIX } from '../../src/config';
import { scrape, type Metrics } from './prometheus';
import { waitForListener } from './listeners';
import { freePort } from './redis-server';
import { killOnExit } from './child-processes';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const START_TIMEOUT_MS = 30_000;
/** How many free ports a start tries when another program binds the chosen one first. */
const PORT_ATTEMPTS = 3;
const STOP_GRACE_MS = 8_000;
const OUTPUT_LIMIT = 256 * 1024;

/** Settings the sample reads; removed from the inherited environment so only what a test passes applies. */
const SAMPLE_SETTINGS = [...Object.values(chatConfigOptions).map((option) => option.env), CONFIG_FILE_ENV];

/** The environment a server process starts with: the test's own, without any setting of the sample. */
export function cleanEnvironment(): NodeJS.ProcessEnv {
  const inherited: NodeJS.ProcessEnv = { ...process.env };
  for (const name of SAMPLE_SETTINGS) delete inherited[name];
  for (const name of Object.keys(inherited)) if (name.startsWith(RESERVED_ENV_PREFIX)) delete inherited[name];
  return inherited;
}

/** How a process ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** What `/health` reports about the backplane (see `BackplaneStatus`). */
export interface BackplaneHealthReport {
  readonly state: 'connecting' | 'connected' | 'disconnected' | 'closed';
  readonly connected: boolean;
  /** The backplane's layout. */
  readonly mode: 'pubsub' | 'streams';
  readonly outages: number;
  readonly unpublishedMessages: number;
  readonly queuedMessages: number;
  readonly queuedBytes: number;
  readonly queuedMessagesTotal: number;
  readonly replayedMessages: number;
  readonly droppedMessages: number;
  readonly publishedMessages: number;
  readonly receivedMessages: number;
  readonly subscriptions: number;
  /** Sharded pub/sub (`SIGNALR_REDIS_SHARDED`), with its subscriber connections and confirmed channels. */
  readonly shardedPubSub: boolean;
  readonly shardConnections?: number;
  readonly shardedSubscriptions?: number;
  readonly channelPrefix: string;
  /** Where Redis is (endpoints or sentinels, TLS, user; never a password). */
  readonly redis: string;
  readonly hubs: { readonly path: string; readonly name: string; readonly serverName: string }[];
}

/** One log line of the server (pino JSON). */
export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** A chat server process. */
export class ServerProcess {
  private output = '';
  /** Resolves with the exit code and signal once the process ended. */
  readonly exited: Promise<Exit>;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly label: string,
  ) {
    this.exited = new Promise<Exit>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null)
        resolve({ code: child.exitCode, signal: child.signalCode });
      child.once('exit', (code, signal) => {
        resolve({ code, signal });
      });
    });
    const collect = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
  }

  /**
   * Starts the chat sample on a free port with `env` (e.g. `{ REDIS_URL, CHAT_HUB_NAME }`); resolves once it
   * listens. A process that fails to start is killed before the promise rejects.
   */
  static async start(label: string, env: Record<string, string>): Promise<ServerProcess> {
    // A port free when chosen may be taken by another program before the child binds it: then try another one.
    for (let attempt = 1; ; attempt++) {
      try {
        return await ServerProcess.startOnce(label, env);
      } catch (error) {
        if (attempt >= PORT_ATTEMPTS || !/EADDRINUSE/.test((error as Error).message)) throw error;
      }
    }
  }

  private static async startOnce(label: string, env: Record<string, string>): Promise<ServerProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'samples/chat/server.ts'], {
      cwd: REPO_ROOT,
      env: {
        ...cleanEnvironment(),
        LOG_LEVEL: 'warn',
        METRICS_ENABLED: 'false',
        ...env,
        PORT: String(port),
        HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killOnExit(child);
    const server = new ServerProcess(child, port, label);
    try {
      // The child itself must hold the listening socket, not whoever else may have bound the port meanwhile.
      await waitForListener(
        child.pid!,
        port,
        START_TIMEOUT_MS,
        () => child.exitCode !== null || child.signalCode !== null,
      );
    } catch (error) {
      await server.stop();
      throw new Error(`server ${label} did not start: ${(error as Error).message}\n${server.output}`, { cause: error });
    }
    return server;
  }

  /** The process id (to signal it). */
  get pid(): number {
    return this.child.pid!;
  }

  /** Sends a signal to the process (SIGTERM starts the graceful shutdown) without waiting for it to end. */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** The server's Prometheus metrics (started with `METRICS_ENABLED: 'true'`). */
  metrics(): Promise<Metrics> {
    return scrape(this.url);
  }

  /**
   * Runs the chat sample with `env` when it is expected not to start: resolves with its exit code and output once
   * it exits; kills it and rejects if it is still running (or listening) after `timeoutMs`.
   */
  static async startupFailure(
    label: string,
    env: Record<string, string>,
    timeoutMs = 20_000,
  ): Promise<{ code: number | null; output: string }> {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'samples/chat/server.ts'], {
      cwd: REPO_ROOT,
      env: { ...cleanEnvironment(), LOG_LEVEL: 'warn', ...env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killOnExit(child);
    const server = new ServerProcess(child, port, label);
    // 'close', not 'exit': the output is complete only once the pipes are closed.
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await closed;
    clearTimeout(timer);
    if (child.signalCode === 'SIGKILL')
      throw new Error(`server ${label} was still running after ${timeoutMs} ms:\n${server.output}`);
    return { code: child.exitCode, output: server.output };
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The chat hub's URL. */
  get hubUrl(): string {
    return `${this.url}/chathub`;
  }

  /** What the server printed (stdout and stderr), for diagnosing a failure. */
  get log(): string {
    return this.output;
  }

  /** The server's JSON log lines. */
  logLines(): LogLine[] {
    const lines: LogLine[] = [];
    for (const line of this.output.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {
        // a line cut by the output limit
      }
    }
    return lines;
  }

  /** The backplane part of `/health`. */
  async backplane(): Promise<BackplaneHealthReport> {
    const response = await fetch(`${this.url}/health`);
    const body = (await response.json()) as { backplane: BackplaneHealthReport | null };
    if (body.backplane === null) throw new Error(`server ${this.label} has no backplane`);
    return body.backplane;
  }

  /** This server's backplane name for the chat hub (in its ack and return channels). */
  async serverName(): Promise<string> {
    return (await this.backplane()).hubs[0].serverName;
  }

  /** Polls `/health` until the backplane is in `state`. */
  async waitForBackplane(state: BackplaneHealthReport['state'], timeoutMs = 10_000): Promise<BackplaneHealthReport> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const report = await this.backplane();
      if (report.state === state) return report;
      if (Date.now() > deadline) {
        throw new Error(`server ${this.label}: backplane ${report.state}, not ${state}, after ${timeoutMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Stops the server (SIGTERM, SIGKILL after a grace period) and waits for the exit. Idempotent. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
    child.stdout?.destroy();
    child.stderr?.destroy();
  }
}

/**
 * Runs the chat sample with `env` expecting it to stop by itself (a configuration it refuses); resolves with how it
 * exited and what it printed. Killed after `timeoutMs` if it does not exit.
 */
export async function runUntilExit(
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<Exit & { output: string; listened: boolean }> {
  const port = env.PORT ?? String(await freePort());
  const child = spawn(process.execPath, ['--import', 'tsx', 'samples/chat/server.ts'], {
    cwd: REPO_ROOT,
    env: { ...cleanEnvironment(), HOST: '127.0.0.1', ...env, PORT: port },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  // 'close', not 'exit': the output is complete only once the pipes are closed.
  const exit = await new Promise<Exit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  clearTimeout(timer);
  return { ...exit, output, listened: output.includes('Server listening at') };
}

/** Stops every server given, even when some are missing (a partial setup). */
/**
 * Starts one server of ours per label, all at once, with `env(label)`, and waits until each one's backplane is
 * connected; should any of that fail, stops every server that started before rethrowing, so a failed `beforeAll`
 * leaves no process behind.
 */
export async function startConnected(
  labels: readonly string[],
  env: (label: string) => Record<string, string>,
  backplaneTimeoutMs = 10_000,
): Promise<ServerProcess[]> {
  const results = await Promise.allSettled(labels.map((label) => ServerProcess.start(label, env(label))));
  const started = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  try {
    const failed = results.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    await Promise.all(started.map((server) => server.waitForBackplane('connected', backplaneTimeoutMs)));
    return started;
  } catch (error) {
    await stopAll(...started);
    throw error;
  }
}

export async function stopAll(...servers: (ServerProcess | undefined)[]): Promise<void> {
  await Promise.all(servers.map((server) => server?.stop()));
}
