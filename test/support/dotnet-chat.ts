/**
 * The ASP.NET Core chat server of `samples/scale-out/dotnet-chat` as a real child process, for fleet tests that mix
 * it with our servers: built from NuGet packages into `.tmp/dotnet-chat/` once per change of its sources, started
 * on a given (or free) loopback port with its environment, ready once the port accepts connections, stopped by pid.
 *
 * @packageDocumentation
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { killOnExit } from './child-processes';
import { DOTNET_CLI_ENV, runDotnet } from './dotnet-client';
import { freePort, waitForPort } from './redis-server';
import type { Exit } from './server-process';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const PROJECT_DIR = path.join(REPO_ROOT, 'samples', 'scale-out', 'dotnet-chat');
const STATE_DIR = path.join(REPO_ROOT, '.tmp', 'dotnet-chat');
const DLL = path.join(STATE_DIR, 'bin', 'DotnetChat', 'release', 'DotnetChat.dll');
const STAMP = path.join(STATE_DIR, 'build.stamp');
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const OUTPUT_LIMIT = 256 * 1024;

function sourceHash(): string {
  const hash = createHash('sha256');
  for (const file of fs
    .readdirSync(PROJECT_DIR)
    .filter((name) => /\.(cs|csproj|config)$/.test(name))
    .sort()) {
    hash
      .update(file)
      .update('\0')
      .update(fs.readFileSync(path.join(PROJECT_DIR, file)))
      .update('\0');
  }
  return hash.digest('hex');
}

let build: Promise<string> | undefined;

/** Builds the sample unless a build of its current sources exists; resolves with the path of `DotnetChat.dll`. */
export function buildDotnetChat(): Promise<string> {
  build ??= (async () => {
    const hash = sourceHash();
    if (fs.existsSync(STAMP) && fs.readFileSync(STAMP, 'utf8').trim() === hash && fs.existsSync(DLL)) return DLL;
    fs.mkdirSync(STATE_DIR, { recursive: true });
    fs.rmSync(STAMP, { force: true });
    await runDotnet(
      [
        'build',
        '-c',
        'Release',
        '--nologo',
        '--disable-build-servers',
        '-v',
        'quiet',
        '-clp:NoSummary;ErrorsOnly',
        '--artifacts-path',
        STATE_DIR,
      ],
      PROJECT_DIR,
    );
    if (!fs.existsSync(DLL)) throw new Error(`dotnet build did not produce ${DLL}`);
    fs.writeFileSync(STAMP, `${hash}\n`);
    return DLL;
  })();
  build.catch(() => (build = undefined));
  return build;
}

/** A running ASP.NET Core chat server. */
export class DotnetChatServer {
  private output = '';
  /** Resolves with the exit code and signal once the process ended. */
  readonly exited: Promise<Exit>;
  /** When each connection started, by id (the hub logs `connection <id> started`). */
  readonly connections = new Map<string, number>();

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly label: string,
  ) {
    this.exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const collect = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      this.output = (this.output + text).slice(-OUTPUT_LIMIT);
      for (const match of text.matchAll(/connection (\S+) started/g)) this.connections.set(match[1], Date.now());
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
  }

  /**
   * Builds (if needed) and starts the server on 127.0.0.1 with `env` (`REDIS_URL`, `REDIS_CHANNEL_PREFIX`,
   * `CHAT_PAGE_DIR`, `SIGNALR_CLIENT_JS`; see the sample's Program.cs), on `port` or a free one.
   */
  static async start(label: string, env: Record<string, string>, port?: number): Promise<DotnetChatServer> {
    const dll = await buildDotnetChat();
    const listenPort = port ?? (await freePort());
    const inherited = { ...process.env };
    for (const name of Object.keys(inherited))
      if (name.startsWith('ASPNETCORE_') || name.startsWith('Logging__')) delete inherited[name];
    const child = spawn('dotnet', [dll], {
      cwd: PROJECT_DIR,
      env: { ...inherited, ...DOTNET_CLI_ENV, ...env, PORT: String(listenPort), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killOnExit(child);
    const server = new DotnetChatServer(child, listenPort, label);
    try {
      await waitForPort(listenPort, START_TIMEOUT_MS, () => child.exitCode !== null || child.signalCode !== null);
    } catch (error) {
      await server.stop();
      throw new Error(`.NET server ${label} did not start: ${(error as Error).message}\n${server.output}`, {
        cause: error,
      });
    }
    return server;
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** What the server printed, for diagnosing a failure. */
  get log(): string {
    return this.output;
  }

  /** Sends a signal (SIGTERM stops the host gracefully) without waiting for the exit. */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
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
