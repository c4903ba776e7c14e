/**
 * A real `redis-server` (Debian's package; `.ci/run` installs it) for backplane tests: a non-daemonized child on a
 * free loopback port, nothing saved to disk, ready once a TCP connect succeeds. Its pid is always known, so a test
 * can kill it mid-run (a crash) and start it again on the same port, and `stop()` in `afterAll` always ends it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { killOnExit } from './child-processes';

const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;
const OUTPUT_LIMIT = 16 * 1024;

/** Asks the OS for a free loopback port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not determine a free port'));
      });
    });
  });
}

/** Resolves once a TCP connection to `port` succeeds; rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, isDead: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const connected = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (connected) return;
    if (isDead()) throw new Error(`the process meant to listen on port ${port} exited`);
    if (Date.now() > deadline) throw new Error(`nothing listened on port ${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** How to start a server: `redis-server` (default) or `redis-sentinel`, and what to add to its command line. */
export interface RedisServerOptions {
  /** The port it listens on (a free one when absent); with TLS, the TLS port. */
  readonly port?: number;
  /** `redis-sentinel` runs a sentinel from the config file `configFile` (which it rewrites). */
  readonly command?: 'redis-server' | 'redis-sentinel';
  /** A config file put first on the command line (a sentinel needs one it can write). */
  readonly configFile?: (port: number) => string;
  /** More `--option value` arguments, for example TLS, ACL users, cluster or replica settings. */
  readonly args?: (port: number) => string[];
  /** The port is a TLS port: `--port 0 --tls-port <port>` instead of `--port <port>`. */
  readonly tls?: boolean;
}

/** A redis-server the test controls. */
export class RedisServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';

  private constructor(
    readonly port: number,
    private readonly options: RedisServerOptions = {},
  ) {}

  /** `redis://127.0.0.1:<port>` */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The running process's id, if it runs. */
  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  /** Starts redis-server on a free port (or `port`), or a server described by `options`. */
  static async start(port?: number | RedisServerOptions): Promise<RedisServer> {
    const options = typeof port === 'object' ? port : { port };
    const server = new RedisServer(options.port ?? (await freePort()), options);
    await server.start();
    return server;
  }

  /** What the process printed (for diagnosing a failure). */
  get log(): string {
    return this.output;
  }

  /** Starts (again) on this server's port; no-op when running. */
  async start(): Promise<void> {
    if (this.pid !== undefined) return;
    const { command = 'redis-server', configFile, args, tls = false } = this.options;
    const portArgs = tls ? ['--port', '0', '--tls-port', String(this.port)] : ['--port', String(this.port)];
    const child = spawn(
      command,
      [
        ...(configFile !== undefined ? [configFile(this.port)] : []),
        ...portArgs,
        '--bind',
        '127.0.0.1',
        '--daemonize',
        'no',
        '--loglevel',
        'warning',
        ...(command === 'redis-server' ? ['--save', '', '--appendonly', 'no'] : []),
        ...(args?.(this.port) ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    killOnExit(child);
    this.child = child;
    const collect = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    let dead = false;
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        dead = true;
        resolve();
      });
      child.once('error', (error) => {
        dead = true;
        this.output += `\n[harness] cannot run redis-server: ${error.message}`;
        resolve();
      });
    });
    try {
      await waitForPort(this.port, START_TIMEOUT_MS, () => dead);
    } catch (error) {
      await this.stop();
      throw new Error(`${(error as Error).message}\n${this.output}`, { cause: error });
    }
  }

  /** Kills the process at once (a crash: no shutdown, no goodbye to clients) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || this.pid === undefined) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  /** Stops the process (SIGTERM, SIGKILL after a grace period) and waits for it to exit. Idempotent. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    if (this.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
    child.stdout?.destroy();
    child.stderr?.destroy();
  }
}
