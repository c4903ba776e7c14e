/**
 * The container image without a container engine: the Dockerfile's own instructions, read from the file and carried
 * out in temporary directories (test/support/dockerfile.ts). The build stage compiles the package (its dependency
 * install is stood in for by this repository's installed `node_modules`, which it would reproduce); the runtime stage
 * runs for real — a production-only install from the registry into an empty directory, the compiled files copied
 * from the build stage — and its ENTRYPOINT + CMD start, with its ENV, as an unprivileged user. What starts must
 * answer `/health`, the image's HEALTHCHECK command and a real client; a user's entry file given as the argument
 * must work the same way; SIGTERM (the STOPSIGNAL) must end it cleanly. Every step runs on the Node.js release of
 * the image's base (the newest LTS line, installed by scripts/provision.sh), whichever Node runs jest.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as signalR from '@microsoft/signalr';
import { parseDockerfile, runStage, type Stage, type StageResult } from '../support/dockerfile';
import { ltsNodes } from '../support/node-lts';
import { freePort, waitForPort } from '../support/redis-server';

jest.setTimeout(180_000);

const REPO = path.resolve(__dirname, '../..');
/** The user the image runs as is `node` (uid 1000 in the Node images); here any unprivileged user shows the same. */
const UNPRIVILEGED = { uid: 65534, gid: 65534 };

/** The Node.js the image is built on: the newest LTS line the suite has. */
const IMAGE_NODE = ltsNodes()[0];
/** The base image's environment: its `node` (and the npm it runs) first on PATH. */
const IMAGE_PATH = `${IMAGE_NODE.binDirectory}:${process.env.PATH}`;

let stages: Stage[];
let build: StageResult | undefined;
let runtime: StageResult | undefined;
const children = new Set<ChildProcess>();

/** Starts the image's command (or `args` in place of CMD, as `docker run image args…` does) on a free port. */
async function startImage(
  args?: readonly string[],
): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const image = runtime!;
  const port = await freePort();
  const [program, ...entryArgs] = image.entrypoint;
  expect(program).toBe('node');
  const child = spawn(IMAGE_NODE.binary, [...entryArgs, ...(args ?? image.cmd)], {
    cwd: image.directory,
    // A container's environment: the image's ENV, `-e PORT=… -e HOST=…`, nothing of the test runner's.
    env: { PATH: IMAGE_PATH, ...image.env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(process.getuid?.() === 0 ? UNPRIVILEGED : {}),
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await waitForPort(port, 20_000, () => child.exitCode !== null);
  } catch (error) {
    throw new Error(`the image's command did not start: ${(error as Error).message}\n${output}`, { cause: error });
  }
  return { child, url: `http://127.0.0.1:${port}`, output: () => output };
}

async function stopImage(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  child.kill((runtime!.stopSignal ?? 'SIGTERM') as NodeJS.Signals);
  return exited;
}

beforeAll(async () => {
  stages = parseDockerfile(readFileSync(path.join(REPO, 'Dockerfile'), 'utf8'));
  const earlier = new Map<string, StageResult>();
  build = await runStage(stages[0], {
    context: REPO,
    earlier,
    imageEnv: { PATH: IMAGE_PATH },
    // The build stage's full install (TypeScript, test tools, browsers' drivers) takes minutes; this repository's
    // own node_modules is that install already.
    replaceRun: (command, _stage, directory) => {
      if (!command.startsWith('npm ci')) return undefined;
      symlinkSync(path.join(REPO, 'node_modules'), path.join(directory, 'node_modules'));
      return "the repository's installed node_modules";
    },
  });
  earlier.set(build.name!, build);
  runtime = await runStage(stages[1], { context: REPO, earlier, imageEnv: { PATH: IMAGE_PATH } });
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const stage of [build, runtime])
    if (stage !== undefined) rmSync(stage.directory, { recursive: true, force: true });
});

test('the Dockerfile has a build stage and a runtime stage on the newest Node.js LTS line, the one its steps ran on', () => {
  expect(stages.map((stage) => stage.name)).toEqual(['build', undefined]);
  for (const stage of stages) expect(stage.image).toBe(`node:${IMAGE_NODE.major}-bookworm-slim`);
  // Every RUN of the runtime stage ran as written; only the build stage's dependency install was stood in for.
  expect(build!.runs.filter((run) => run.replacedBy !== undefined).map((run) => run.command)).toEqual([
    expect.stringMatching(/^npm ci /),
  ]);
  expect(runtime!.runs.every((run) => run.replacedBy === undefined)).toBe(true);
});

test('the runtime stage holds production dependencies only, the compiled server and the page, and runs unprivileged', () => {
  const modules = path.join(runtime!.directory, 'node_modules');
  for (const dependency of ['fastify', '@fastify/websocket', 'ioredis', 'prom-client', 'zod']) {
    expect({ dependency, installed: existsSync(path.join(modules, dependency)) }).toEqual({
      dependency,
      installed: true,
    });
  }
  for (const tool of ['typescript', 'jest', 'playwright-core', 'tsx', '@microsoft/signalr']) {
    expect({ tool, installed: existsSync(path.join(modules, tool)) }).toEqual({ tool, installed: false });
  }
  expect(existsSync(path.join(runtime!.directory, 'src'))).toBe(false);
  expect(existsSync(path.join(runtime!.directory, 'dist/samples/chat/server.js'))).toBe(true);
  expect(runtime!.user).toBe('node');
  expect(runtime!.env).toMatchObject({ NODE_ENV: 'production' });
  expect(runtime!.healthcheck).toBeDefined();
});

test('the image starts the chat server: /health, the HEALTHCHECK command and a real client answer; SIGTERM ends it', async () => {
  const image = await startImage();
  try {
    const health = await fetch(`${image.url}/health`);
    expect({ status: health.status, body: await health.json() }).toMatchObject({ status: 200, body: { status: 'ok' } });

    // The HEALTHCHECK runs inside the container, with the container's environment.
    const [program, ...args] = runtime!.healthcheck!;
    const check = spawnSync(program === 'node' ? IMAGE_NODE.binary : program, args, {
      env: { PATH: IMAGE_PATH, ...runtime!.env, PORT: new URL(image.url).port },
      timeout: 10_000,
    });
    expect(check.status).toBe(0);

    // The page and the official browser bundle, which the build stage copied (the package is a dev dependency).
    expect((await fetch(`${image.url}/`)).status).toBe(200);
    const bundle = await fetch(`${image.url}/lib/signalr.min.js`);
    expect(bundle.status).toBe(200);
    expect(await bundle.text()).toContain('HubConnectionBuilder');

    const connection = new signalR.HubConnectionBuilder()
      .withUrl(`${image.url}/chathub`)
      .configureLogging(signalR.LogLevel.None)
      .build();
    const heard = new Promise<string>((resolve) =>
      connection.on('ReceiveMessage', (_user: string, text: string) => resolve(text)),
    );
    await connection.start();
    await connection.invoke('SendMessage', 'docker', 'hello from the image');
    expect(await heard).toBe('hello from the image');
    await connection.stop();
  } finally {
    expect(await stopImage(image.child)).toEqual({ code: 0, signal: null });
  }
  expect(image.output()).toContain('"event":"signalr.shutdown.completed"');
});

/**
 * Writes `source` as `directory/file` inside the installed image, starts the image with it as the argument (as
 * `docker run -v "$PWD/app:/app/app:ro" fastify-signalr app/server.js` would) and checks that its `/echo` hub
 * answers a real client with `prefix` and that SIGTERM ends it cleanly.
 */
async function expectUserEntryServes(directory: string, file: string, source: string, prefix: string): Promise<void> {
  mkdirSync(path.join(runtime!.directory, directory));
  writeFileSync(path.join(runtime!.directory, directory, file), source);
  const image = await startImage([`${directory}/${file}`]);
  try {
    expect((await fetch(`${image.url}/health`)).status).toBe(200);
    const connection = new signalR.HubConnectionBuilder()
      .withUrl(`${image.url}/echo`)
      .configureLogging(signalR.LogLevel.None)
      .build();
    await connection.start();
    expect(await connection.invoke('Echo', 'hi')).toBe(`${prefix}hi`);
    // It runs on the image's Node.js.
    expect(await connection.invoke('NodeVersion')).toBe(`v${IMAGE_NODE.version}`);
    await connection.stop();
  } finally {
    expect(await stopImage(image.child)).toEqual({ code: 0, signal: null });
  }
}

test("a user's entry file given as the argument runs instead, and can require('fastify-signalr')", async () => {
  await expectUserEntryServes(
    'app',
    'server.js',
    `const Fastify = require('fastify');
const { fastifySignalR, Hub, installGracefulShutdown, loadServerConfig, signalrHealth } = require('fastify-signalr');

class EchoHub extends Hub {
  echo(text) { return 'user entry: ' + text; }
  nodeVersion() { return process.version; }
}

(async () => {
  const config = loadServerConfig();
  const app = Fastify();
  await app.register(fastifySignalR, { hubs: [{ path: '/echo', hub: EchoHub }] });
  await app.register(signalrHealth);
  installGracefulShutdown(app, { drainTimeoutMs: config.shutdownDrainTimeoutMs });
  await app.listen({ port: config.port, host: config.host });
})();
`,
    'user entry: ',
  );
});

test("an ES module entry file can import { fastifySignalR, Hub } from 'fastify-signalr'", async () => {
  await expectUserEntryServes(
    'esm-app',
    'server.mjs',
    `import Fastify from 'fastify';
import { fastifySignalR, Hub, loadServerConfig, signalrHealth } from 'fastify-signalr';

class EchoHub extends Hub {
  echo(text) { return 'esm entry: ' + text; }
  nodeVersion() { return process.version; }
}

const config = loadServerConfig();
const app = Fastify();
await app.register(fastifySignalR, { hubs: [{ path: '/echo', hub: EchoHub }] });
await app.register(signalrHealth);
process.once('SIGTERM', () => app.close().then(() => process.exit(0)));
await app.listen({ port: config.port, host: config.host });
`,
    'esm entry: ',
  );
});
