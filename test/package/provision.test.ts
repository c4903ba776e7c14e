/**
 * `npm test` provisions what the suite needs before any test starts (scripts/provision.sh): Debian packages when
 * it may install them, the pinned Node.js LTS binaries always. Without root and without the packages it must stop
 * at once, with one line naming what to install, and run nothing. The "missing" case is made real on this machine
 * by pointing the script's program lookup (PROVISION_SEARCH_PATH) at an empty folder and running as an
 * unprivileged user, who cannot install anything.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { killOnExit, userEnvironment } from '../support/child-processes';
import { ltsNodes } from '../support/node-lts';

jest.setTimeout(60_000);

const REPO = path.resolve(__dirname, '../..');
/** `nobody`: when the suite runs as root, the unprivileged case is run as this user. */
const UNPRIVILEGED = { uid: 65534, gid: 65534 };

let work: string;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'provision-test-'));
  // Readable and writable by the unprivileged user: its HOME and npm cache live here.
  chmodSync(work, 0o777);
  mkdirSync(path.join(work, 'no-programs'), { mode: 0o755 });
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs a command in the repository, as `nobody` when the suite runs as root; resolves when it exits. */
function runUnprivileged(program: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Outcome> {
  return runCommand(program, args, env, process.getuid?.() === 0 ? UNPRIVILEGED : {});
}

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runCommand(
  program: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  user: { uid?: number; gid?: number },
): Promise<Outcome> {
  const child = spawn(program, args, {
    cwd: REPO,
    env: userEnvironment({ HOME: work, npm_config_cache: path.join(work, 'npm-cache'), ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...user,
  });
  killOnExit(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const PACKAGES = ['redis-server', 'redis-sentinel', 'openssl', 'chromium', 'haproxy', 'nginx'];

test('without root and without the Debian packages, the script stops with one line naming every package to install', async () => {
  const result = await runUnprivileged('bash', ['scripts/provision.sh'], {
    PROVISION_SEARCH_PATH: path.join(work, 'no-programs'),
  });
  expect(result.code).toBe(1);
  expect(result.stdout).toBe('');
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(`apt-get install ${PACKAGES.join(' ')}`);
  // dotnet is not a Debian package: the same line says what else is missing.
  expect(lines[0]).toContain('.NET 10 SDK');
});

test('npm test stops there too, before any test runs', async () => {
  const result = await runUnprivileged('npm', ['test'], { PROVISION_SEARCH_PATH: path.join(work, 'no-programs') });
  expect(result.code).not.toBe(0);
  const provisionLines = result.stderr.split('\n').filter((line) => line.startsWith('provision:'));
  expect(provisionLines).toHaveLength(1);
  expect(provisionLines[0]).toContain(`apt-get install ${PACKAGES.join(' ')}`);
  // jest never started: none of its output.
  expect(result.stdout + result.stderr).not.toMatch(/Test Suites:|PASS |FAIL /);
});

test('with one package missing, only that one is named', async () => {
  // A lookup folder holding every program the tests start except nginx.
  const some = path.join(work, 'some-programs');
  mkdirSync(some, { mode: 0o755 });
  for (const program of [...PACKAGES.filter((name) => name !== 'nginx'), 'dotnet']) {
    const found = execFileSync('bash', ['-c', `PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v ${program}`])
      .toString()
      .trim();
    symlinkSync(found, path.join(some, program));
  }
  const result = await runUnprivileged('bash', ['scripts/provision.sh'], { PROVISION_SEARCH_PATH: some });
  expect(result.code).toBe(1);
  expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/apt-get install nginx$/)]);
});

test('on a provisioned machine it prints nothing, and the pinned Node.js LTS binaries answer with their versions', async () => {
  // As the repository's user (it writes .tmp/node): a first run installs whatever is missing, the second must find
  // everything in place.
  await runCommand('bash', ['scripts/provision.sh'], {}, {});
  const result = await runCommand('bash', ['scripts/provision.sh'], {}, {});
  expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
  const nodes = ltsNodes();
  expect(nodes.map((node) => node.major)).toEqual([24, 22]);
  for (const node of nodes) {
    const version = await runCommand(node.binary, ['--version'], {}, {});
    expect(version.stdout.trim()).toBe(`v${node.version}`);
  }
});
