/**
 * Real load balancers for tests — Debian's `haproxy` and `nginx` (`.ci/run` installs them) — running the sample
 * configurations of `samples/scale-out` unchanged, on free loopback ports, in the foreground as children whose pid
 * is known, so `stop()` in `afterAll` always ends them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { freePort, waitForPort } from './redis-server';
import { killOnExit } from './child-processes';

/** Debian installs both in /usr/sbin, which a non-root PATH may lack. */
function executable(name: string): string {
  const sbin = `/usr/sbin/${name}`;
  return existsSync(sbin) ? sbin : name;
}

const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;
const OUTPUT_LIMIT = 256 * 1024;

/** A load balancer process listening on `port`. */
export class LoadBalancer {
  private spawnError = '';
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly label: string,
    private readonly directory: string,
  ) {
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        resolve();
      });
      child.once('error', (error) => {
        this.spawnError = `\n[harness] cannot run ${label}: ${error.message}`;
        resolve();
      });
    });
  }

  /**
   * Starts `command` with its output in a file of `directory`: the configurations log to /dev/stdout, which a
   * process cannot open when its stdout is a socket (as Node's pipes are), but can when it is a file (or a
   * container's pipe).
   */
  private static async spawn(
    label: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    port: number,
    directory: string,
  ): Promise<LoadBalancer> {
    const output = openSync(path.join(directory, 'output.log'), 'a');
    const child = spawn(command, args, { env, stdio: ['ignore', output, output] });
    closeSync(output);
    killOnExit(child);
    const balancer = new LoadBalancer(child, port, label, directory);
    try {
      await waitForPort(port, START_TIMEOUT_MS, () => child.exitCode !== null || child.signalCode !== null);
    } catch (error) {
      const log = balancer.log;
      await balancer.stop();
      throw new Error(`${label} did not start: ${(error as Error).message}\n${log}`, { cause: error });
    }
    return balancer;
  }

  /**
   * HAProxy with `config` (samples/scale-out/haproxy.cfg), its addresses given through the environment as the
   * file expects: `LB_BIND`, `CHAT1_ADDR`, `CHAT2_ADDR`.
   */
  static async haproxy(config: string, backends: readonly [string, string]): Promise<LoadBalancer> {
    const port = await freePort();
    const env = {
      ...process.env,
      LB_BIND: `127.0.0.1:${port}`,
      CHAT1_ADDR: backends[0],
      CHAT2_ADDR: backends[1],
    };
    // -db: foreground, no daemon; the pid is the child's.
    return LoadBalancer.spawn(
      'haproxy',
      executable('haproxy'),
      ['-db', '-f', config],
      env,
      port,
      mkdtempSync(path.join(tmpdir(), 'haproxy-')),
    );
  }

  /**
   * nginx with `template` (samples/scale-out/nginx.conf.template) rendered as envsubst would, for exactly the
   * variables the file documents; run in the foreground with its pid file in a temporary prefix.
   */
  static async nginx(template: string, backends: readonly [string, string]): Promise<LoadBalancer> {
    const port = await freePort();
    const values: Record<string, string> = {
      LISTEN: `127.0.0.1:${port}`,
      CHAT1_ADDR: backends[0],
      CHAT2_ADDR: backends[1],
    };
    const rendered = readFileSync(template, 'utf8').replace(
      /\$\{(LISTEN|CHAT1_ADDR|CHAT2_ADDR)\}/g,
      (_, name: string) => values[name],
    );
    const prefix = mkdtempSync(path.join(tmpdir(), 'nginx-'));
    const config = path.join(prefix, 'nginx.conf');
    writeFileSync(config, rendered);
    return LoadBalancer.spawn(
      'nginx',
      executable('nginx'),
      ['-p', prefix, '-c', config, '-e', 'stderr', '-g', `daemon off; pid ${path.join(prefix, 'nginx.pid')};`],
      process.env,
      port,
      prefix,
    );
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** What the process printed (its access log included), for diagnosing a failure. */
  get log(): string {
    let text = '';
    try {
      text = readFileSync(path.join(this.directory, 'output.log'), 'utf8');
    } catch {
      // removed by stop()
    }
    return text.slice(-OUTPUT_LIMIT) + this.spawnError;
  }

  /** Stops the process (SIGTERM, SIGKILL after a grace period) and waits for it to exit. Idempotent. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.directory, { recursive: true, force: true });
  }
}
