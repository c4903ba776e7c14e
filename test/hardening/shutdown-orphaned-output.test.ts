/**
 * A graceful shutdown ends the process even when nobody reads its output any more: the server was started by a
 * supervisor (or behind a log shipper) that has exited, so its stdout and stderr lead to a closed socket. Exit must
 * not wait on a log write; the process exits 0 within the drain and close budgets.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanEnvironment } from '../support/server-process';
import { freePort, waitForPort } from '../support/redis-server';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** The sample's drain budget (SHUTDOWN_DRAIN_TIMEOUT_MS below) plus the close budget (3 s) and the log flush (1 s). */
const DRAIN_MS = 2_000;
const BUDGET_MS = DRAIN_MS + 3_000 + 1_000;

/**
 * The supervisor: starts the server through `sh` with piped output (the shell records the server's pid and, once it
 * ends, its exit code), waits for its first log line, and exits — leaving the pipes without a reader.
 */
const SUPERVISOR = `
const { spawn } = require('node:child_process');
const [dir] = process.argv.slice(1);
const script = 'node --import tsx samples/chat/server.ts & echo $! > "' + dir + '/pid"; wait $!; echo $? > "' + dir + '/code"';
const child = spawn('sh', ['-c', script], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
child.stdout.once('data', () => process.exit(0));
setTimeout(() => process.exit(2), 60000);
`;

function readNumber(file: string): number | undefined {
  try {
    const text = readFileSync(file, 'utf8').trim();
    return text === '' ? undefined : Number(text);
  } catch {
    return undefined;
  }
}

async function waitFor<T>(read: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined || Date.now() > deadline) return value;
    await sleep(50);
  }
}

let dir: string;
let serverPid: number | undefined;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'signalr-orphan-'));
  serverPid = undefined;
});

afterEach(() => {
  if (serverPid !== undefined) {
    try {
      process.kill(serverPid, 'SIGKILL');
    } catch {
      // it exited, as it should
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

test('SIGTERM ends a server whose supervisor exited, leaving its output pipes without a reader: exit 0 within the budget', async () => {
  const port = await freePort();
  const supervisor = spawn(process.execPath, ['-e', SUPERVISOR, dir], {
    cwd: REPO_ROOT,
    // info level: the shutdown writes several lines into the dead pipe.
    env: {
      ...cleanEnvironment(),
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      SHUTDOWN_DRAIN_TIMEOUT_MS: String(DRAIN_MS),
    },
    stdio: 'ignore',
  });
  const supervisorCode = await new Promise<number | null>((resolve) => supervisor.once('exit', resolve));
  expect(supervisorCode).toBe(0);
  serverPid = await waitFor(() => readNumber(path.join(dir, 'pid')), 5_000);
  expect(serverPid).toBeDefined();
  await waitForPort(port, 30_000, () => false);

  const signalled = Date.now();
  process.kill(serverPid!, 'SIGTERM');
  const code = await waitFor(() => readNumber(path.join(dir, 'code')), BUDGET_MS + 5_000);
  const tookMs = Date.now() - signalled;
  expect(code).toBe(0);
  expect(tookMs).toBeLessThan(BUDGET_MS);
  serverPid = undefined;
}, 60_000);
