/**
 * The package as its users get it. The repository's files (what a clone holds: tracked and not ignored) are copied
 * into an empty directory and packed there with `npm pack`, whose `prepack` builds them, so nothing of this working
 * tree's `dist/` can leak in. The tarball must hold the build and its declarations, README, LICENSE and CHANGELOG,
 * and nothing else; `publint` and `@arethetypeswrong/cli` must find no problem; the built API must match the
 * checked-in report. Then the tarball is installed into an empty application with production dependencies only,
 * where a CommonJS app (`require`), an ES module app (`import`) and the README's "Your own hub" example compiled
 * as strict TypeScript (`nodenext`) serve the official client on every supported Node.js LTS line, and the README's
 * examples, typed hubs and the typed emitter included, type-check against the shipped declarations (`nodenext` and
 * `bundler`). Workers of both module kinds send through `fastify-signalr/emitter` without loading Fastify.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as signalR from '@microsoft/signalr';
import Redis from 'ioredis';
import { decodeRedisInvocation } from '../../protocol/redis';
import { killOnExit, userEnvironment } from '../support/child-processes';
import { ltsNodes, type LtsNode } from '../support/node-lts';
import { RedisServer, freePort, waitForPort } from '../support/redis-server';

jest.setTimeout(120_000);

const execFileAsync = promisify(execFile);
const REPO = path.resolve(__dirname, '../..');
const BIN = path.join(REPO, 'node_modules/.bin');

let work: string;
let source: string;
let tarball: string;
let packedFiles: string[];
let app: string;
const children = new Set<ChildProcess>();
let redis: RedisServer | undefined;

/**
 * A worker using `fastify-signalr/emitter` (CommonJS `require` or ESM `import`): it broadcasts one message and
 * prints which modules of the app's `node_modules` it loaded, so the test can check that Fastify is not among them.
 */
function emitterWorker(kind: 'commonjs' | 'module'): string {
  const imports =
    kind === 'commonjs'
      ? `const { createEmitter } = require('fastify-signalr/emitter');\nconst loaded = () => Object.keys(require.cache);`
      : `import { createRequire } from 'node:module';\nimport { createEmitter } from 'fastify-signalr/emitter';\n` +
        `const loaded = () => Object.keys(createRequire(import.meta.url).cache);`;
  const body = `
const hub = createEmitter({ redis: process.env.REDIS_URL, hub: 'ChatHub' });
await hub.clients.all.send('Notify', process.env.TEXT);
await hub.close();
const packages = new Set(loaded().map((file) => /node_modules\\/((@[^/]+\\/)?[^/]+)/.exec(file)?.[1]).filter(Boolean));
console.log(JSON.stringify([...packages].sort()));
`;
  return kind === 'commonjs' ? `${imports}\n(async () => {${body}})();\n` : `${imports}\n${body}`;
}

/** Runs a program to its end; rejects with its output if it fails. */
async function run(program: string, args: readonly string[], cwd: string, env = userEnvironment()): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync(program, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
    return stdout + stderr;
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${program} ${args.join(' ')} failed:\n${failure.stdout ?? ''}${failure.stderr ?? failure.message}`,
      { cause: error },
    );
  }
}

/** The first ```ts block after `heading` in the README. */
function readmeExample(heading: string): string {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`README has no "${heading}" section`);
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(start));
  if (block === null) throw new Error(`README's "${heading}" has no ts block`);
  return block[1];
}

/** The README's "Your own hub" example, listening where the test says instead of on port 5000. */
function ownHubExample(): string {
  const example = readmeExample('## Your own hub');
  const listen = 'await app.listen({ port: 5000 });';
  expect(example.split(listen)).toHaveLength(2);
  return example.replace(listen, "await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });");
}

/** The README's "Your own hub" hub written in plain JavaScript: imports (CommonJS or ESM) around the same body. */
function javaScriptApp(kind: 'commonjs' | 'module'): string {
  const imports =
    kind === 'commonjs'
      ? `const Fastify = require('fastify');
const { z } = require('zod');
const { fastifySignalR, Hub, HubException } = require('fastify-signalr');`
      : `import Fastify from 'fastify';
import { z } from 'zod';
import { fastifySignalR, Hub, HubException } from 'fastify-signalr';`;
  const body = `
class ChatHub extends Hub {
  static schemas = { sendMessage: [z.string(), z.string().max(500)] };
  async sendMessage(user, message) { await this.clients.all.send('ReceiveMessage', user, message); }
  async joinRoom(room) { await this.groups.addToGroup(this.context.connectionId, room); }
  whoAmI() { return this.context.userIdentifier ?? null; }
  withdraw(amount) { if (amount > 100) throw new HubException('Limit exceeded'); }
  async onConnected() { await this.clients.caller.send('Welcome', this.context.connectionId); }
}

const app = Fastify();
await app.register(fastifySignalR, { hubs: [{ path: '/chathub', hub: ChatHub }] });
app.post('/broadcast', async (request) => {
  await app.signalr.hub(ChatHub).clients.all.send('ReceiveMessage', 'server', String(request.body));
  return { ok: true };
});
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
`;
  // CommonJS has no top-level await: the same statements run in an async function.
  return kind === 'commonjs' ? `${imports}\n(async () => {${body}})();\n` : `${imports}\n${body}`;
}

/** The README's typed-hub example made a whole file, with lines the declarations must refuse. */
function typedHubExample(): string {
  return `import Fastify from 'fastify';
import { fastifySignalR, Hub, type HubCallerContext } from 'fastify-signalr';
const app = Fastify();
${readmeExample('### Typed hubs').replace(/^app\.signalr/m, 'void app.signalr')}
await app.register(fastifySignalR, { hubs: [{ path: '/typed', hub: ChatHub }] });

class CheckedHub extends Hub<ChatClient> {
  async misuse(context: HubCallerContext) {
    // @ts-expect-error a client method the interface does not name
    await this.clients.all.send('ReceiveMesage', 'a', 'b');
    // @ts-expect-error a wrong argument type
    await this.clients.all.send('ReceiveMessage', 'a', 42);
    // @ts-expect-error Confirm's result is a boolean
    const answer: string = await this.clients.caller.invoke('Confirm', 'sure?');
    return [answer, context.connectionId];
  }
}
await app.register(fastifySignalR, { hubs: [{ path: '/checked', hub: CheckedHub }] });
`;
}

/** The README's emitter example (a queue worker), with lines the typed emitter must refuse. */
function emitterExample(): string {
  return `${readmeExample('### The emitter (`fastify-signalr/emitter`)')}
export async function misuse(): Promise<void> {
  // @ts-expect-error a client method ChatClient does not name
  await hub.clients.all.send('Notfy', 'x');
  // @ts-expect-error a wrong argument type
  await hub.clients.user('u').send('Notify', 42);
  // @ts-expect-error Confirm's result is a boolean
  const answer: string = await hub.clients.client('c').invoke('Confirm', 'sure?');
  void answer;
}
`;
}

/** Starts an app of the installed package with `node` on a free port. */
async function startApp(
  node: LtsNode,
  entry: string,
): Promise<{ url: string; child: ChildProcess; output: () => string }> {
  const port = await freePort();
  const child = spawn(node.binary, [entry], {
    cwd: app,
    env: userEnvironment({ PORT: String(port) }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await waitForPort(port, 20_000, () => child.exitCode !== null);
  } catch (error) {
    throw new Error(`${entry} on Node.js ${node.version} did not start: ${(error as Error).message}\n${output}`, {
      cause: error,
    });
  }
  return { url: `http://127.0.0.1:${port}`, child, output: () => output };
}

async function stopApp(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** What a user of the README's chat hub sees with the official client. */
async function expectChatHubServes(url: string): Promise<void> {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(`${url}/chathub`)
    .configureLogging(signalR.LogLevel.None)
    .build();
  const welcomed = new Promise<string>((resolve) => connection.on('Welcome', resolve));
  const received: string[][] = [];
  let onReceived = (): void => {};
  connection.on('ReceiveMessage', (user: string, message: string) => {
    received.push([user, message]);
    onReceived();
  });
  const nextMessage = (): Promise<void> => new Promise((resolve) => (onReceived = resolve));
  try {
    await connection.start();
    expect(await welcomed).toBe(connection.connectionId);

    let heard = nextMessage();
    await connection.invoke('SendMessage', 'ana', 'hello');
    await heard;
    await connection.invoke('JoinRoom', 'lobby');
    expect(await connection.invoke('WhoAmI')).toBeNull();
    await expect(connection.invoke('Withdraw', 500)).rejects.toThrow(/HubException: Limit exceeded/);
    // The schema refuses a message over 500 characters with .NET's binding error.
    await expect(connection.invoke('SendMessage', 'ana', 'x'.repeat(501))).rejects.toThrow(
      /Failed to invoke 'SendMessage'/,
    );

    heard = nextMessage();
    const broadcast = await fetch(`${url}/broadcast`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'from http',
    });
    expect({ status: broadcast.status, body: await broadcast.json() }).toEqual({ status: 200, body: { ok: true } });
    await heard;
    expect(received).toEqual([
      ['ana', 'hello'],
      ['server', 'from http'],
    ]);
  } finally {
    await connection.stop();
  }
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'package-test-'));
  // What a clone holds: tracked files and new ones not ignored, as they are in the working tree.
  source = path.join(work, 'clone');
  const listed = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], REPO);
  for (const file of new Set(listed.split('\0').filter((name) => name !== ''))) {
    const from = path.join(REPO, file);
    if (!existsSync(from)) continue; // deleted in the working tree
    mkdirSync(path.dirname(path.join(source, file)), { recursive: true });
    cpSync(from, path.join(source, file));
  }
  // `npm ci` would install what this repository's node_modules already holds.
  symlinkSync(path.join(REPO, 'node_modules'), path.join(source, 'node_modules'));

  const packs = path.join(work, 'packs');
  mkdirSync(packs);
  const packed = JSON.parse(await run('npm', ['pack', '--json', '--silent', '--pack-destination', packs], source)) as {
    filename: string;
    files: { path: string }[];
  }[];
  tarball = path.join(packs, packed[0].filename);
  packedFiles = packed[0].files.map((file) => file.path).sort();

  // An empty application installing the tarball as its users would: `npm install fastify-signalr fastify`, plus
  // zod, which the README's example validates with. Production dependencies only; the local npm cache first.
  app = path.join(work, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'package-test-app', private: true }, null, 2));
  await run(
    'npm',
    ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--silent', tarball, 'fastify', 'zod'],
    app,
  );
}, 300_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await redis?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('the tarball', () => {
  test('holds the compiled JavaScript with its declarations, README, LICENSE and CHANGELOG, and nothing else', () => {
    // `emitter/package.json` points resolvers without `exports` support (TypeScript's `node10`) at the subpath.
    const allowed =
      /^(dist\/(src|protocol)\/[\w/.-]+\.(js|d\.ts)|dist\/admin-page\/[\w/.-]+\.(html|js|css)|README\.md|LICENSE|CHANGELOG\.md|package\.json|emitter\/package\.json)$/;
    expect(packedFiles.filter((file) => !allowed.test(file))).toEqual([]);
    for (const file of [
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/emitter/index.js',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
    ]) {
      expect({ file, packed: packedFiles.includes(file) }).toEqual({ file, packed: true });
    }
    // Every compiled module has its declarations.
    const modules = packedFiles.filter((file) => file.endsWith('.js') && !file.startsWith('dist/admin-page/'));
    expect(modules.filter((file) => !packedFiles.includes(file.replace(/\.js$/, '.d.ts')))).toEqual([]);
    expect(readFileSync(path.join(app, 'node_modules/fastify-signalr/LICENSE'), 'utf8')).toMatch(
      /^MIT License\n\nCopyright \(c\) 2026 the fastify-signalr contributors\n/,
    );
  });

  test('publint and @arethetypeswrong/cli find no problems', async () => {
    expect(await run(path.join(BIN, 'publint'), ['run', '--strict', tarball], work)).toContain('All good!');
    expect(await run(path.join(BIN, 'attw'), ['--format', 'table-flipped', tarball], work)).toContain(
      'No problems found',
    );
  });

  test('the built API matches the checked-in report (npm run api:update records a deliberate change)', async () => {
    // api-extractor compares the clone's fresh build with the clone's api/fastify-signalr.api.md and fails on any
    // difference; `--local` is what writes the report instead.
    const output = await run(path.join(BIN, 'api-extractor'), ['run'], source).catch((error: Error) => error.message);
    expect(output).toContain('API Extractor completed successfully');
  });

  test('installs with production dependencies only', () => {
    const modules = path.join(app, 'node_modules');
    for (const dependency of ['fastify-signalr', 'fastify', '@fastify/websocket', 'ioredis', 'zod']) {
      expect({ dependency, installed: existsSync(path.join(modules, dependency)) }).toEqual({
        dependency,
        installed: true,
      });
    }
    for (const tool of ['typescript', 'jest', '@microsoft/signalr', 'tsx']) {
      expect({ tool, installed: existsSync(path.join(modules, tool)) }).toEqual({ tool, installed: false });
    }
  });
});

/** Type-checks `files` in a folder of the app with a strict tsconfig of the given module system, emitting to `out/`. */
async function typeCheck(name: string, module: 'nodenext' | 'bundler', files: Record<string, string>): Promise<string> {
  const directory = path.join(app, name);
  mkdirSync(directory);
  for (const [file, text] of Object.entries(files)) writeFileSync(path.join(directory, file), text);
  const compilerOptions = {
    strict: true,
    target: 'ES2022',
    lib: ['ES2022'],
    ...(module === 'nodenext'
      ? { module: 'nodenext', moduleResolution: 'nodenext' }
      : { module: 'esnext', moduleResolution: 'bundler' }),
    types: ['node'],
    typeRoots: [path.join(REPO, 'node_modules/@types')],
    noImplicitOverride: true,
    // The package's own declarations are checked as well (dependencies' are theirs to check).
    skipLibCheck: false,
    skipDefaultLibCheck: true,
    outDir: 'out',
  };
  writeFileSync(
    path.join(directory, 'tsconfig.json'),
    JSON.stringify({ compilerOptions, files: Object.keys(files) }, null, 2),
  );
  return run(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], directory);
}

let nodenextBuild: Promise<string> | undefined;
/** The README's examples compiled once with `nodenext`; resolves with the compiled "Your own hub" app. */
function compiledOwnHubExample(): Promise<string> {
  nodenextBuild ??= typeCheck('ts-nodenext', 'nodenext', {
    'chat.mts': ownHubExample(),
    'typed.mts': typedHubExample(),
    'emitter.mts': emitterExample(),
  }).then(() => path.join(app, 'ts-nodenext/out/chat.mjs'));
  return nodenextBuild;
}

describe('type declarations', () => {
  test("the README's examples compile as strict TypeScript with module and moduleResolution nodenext", async () => {
    expect(existsSync(await compiledOwnHubExample())).toBe(true);
  });

  test("the README's examples compile as strict TypeScript with moduleResolution bundler", async () => {
    await typeCheck('ts-bundler', 'bundler', {
      'chat.ts': ownHubExample(),
      'typed.ts': typedHubExample(),
      'emitter.ts': emitterExample(),
    });
  });

  test('a mistake against the shipped declarations fails to compile', async () => {
    const wrong = `import { fastifySignalR, Hub } from 'fastify-signalr';
import Fastify from 'fastify';
class ChatHub extends Hub<{ ReceiveMessage(text: string): void }> {
  async send() { await this.clients.all.send('ReceiveMessage', 1); }
}
await Fastify().register(fastifySignalR, { hubs: [{ path: '/chathub', hub: ChatHub }], keepAliveIntervalMs: 'fast' });
`;
    const failure = await typeCheck('ts-wrong', 'nodenext', { 'wrong.mts': wrong }).then(
      () => '',
      (error: Error) => error.message,
    );
    expect(failure).toMatch(/wrong\.mts\(4,\d+\): error TS2345/);
    expect(failure).toMatch(
      /wrong\.mts\(6,\d+\): error TS2769: No overload matches this call\.[\s\S]*Type 'string' is not assignable to type 'number'/,
    );
  });
});

describe.each(ltsNodes().map((node) => [`Node.js ${node.version}`, node] as const))('on %s', (_name, node) => {
  test('a CommonJS app that requires the package serves the official client', async () => {
    const entry = `cjs-${node.major}.cjs`;
    writeFileSync(path.join(app, entry), javaScriptApp('commonjs'));
    const started = await startApp(node, entry);
    try {
      await expectChatHubServes(started.url);
    } finally {
      await stopApp(started.child);
    }
  });

  test('an ES module app that imports the package serves the official client', async () => {
    const entry = `esm-${node.major}.mjs`;
    writeFileSync(path.join(app, entry), javaScriptApp('module'));
    const started = await startApp(node, entry);
    try {
      await expectChatHubServes(started.url);
    } finally {
      await stopApp(started.child);
    }
  });

  test('the admin page and its browser bundles are served from the package, without dev dependencies', async () => {
    const entry = `admin-${node.major}.cjs`;
    writeFileSync(
      path.join(app, entry),
      `const Fastify = require('fastify');
const { fastifySignalR, Hub } = require('fastify-signalr');
class ChatHub extends Hub {}
(async () => {
  const app = Fastify();
  await app.register(fastifySignalR, { hubs: [{ path: '/chathub', hub: ChatHub }], admin: { authorize: () => true } });
  await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
})();
`,
    );
    const started = await startApp(node, entry);
    try {
      for (const [file, expected] of [
        ['/signalr-admin/', '<title>SignalR admin</title>'],
        ['/signalr-admin/admin.js', "withUrl('hub'"],
        ['/signalr-admin/lib/signalr.min.js', 'HubConnectionBuilder'],
        ['/signalr-admin/lib/uPlot.iife.min.js', 'uPlot'],
        ['/signalr-admin/lib/uPlot.min.css', '.uplot'],
      ]) {
        const response = await fetch(`${started.url}${file}`);
        expect({ file, status: response.status, found: (await response.text()).includes(expected) }).toEqual({
          file,
          status: 200,
          found: true,
        });
      }
    } finally {
      await stopApp(started.child);
    }
  });

  test.each(['commonjs', 'module'] as const)(
    'a %s worker sends through fastify-signalr/emitter without loading Fastify',
    async (kind) => {
      redis ??= await RedisServer.start();
      const entry = `emitter-${kind}-${node.major}.${kind === 'commonjs' ? 'cjs' : 'mjs'}`;
      writeFileSync(path.join(app, entry), emitterWorker(kind));
      const subscriber = new Redis(redis.url);
      try {
        const received = new Promise<Buffer>((resolve) =>
          subscriber.on('messageBuffer', (_channel: Buffer, payload: Buffer) => resolve(payload)),
        );
        await subscriber.subscribe('ChatHub:all');
        const text = `from a ${kind} worker on Node.js ${node.version}`;
        const output = await run(node.binary, [entry], app, userEnvironment({ REDIS_URL: redis.url, TEXT: text }));
        const packages = JSON.parse(output.trim().split('\n').pop()!) as string[];
        expect(packages).toContain('fastify-signalr');
        expect(
          packages.filter((name) => /fastify|^pino|^avvio|^find-my-way/.test(name) && name !== 'fastify-signalr'),
        ).toEqual([]);
        // What the servers of the hub receive: the invocation framed in both protocols, the JSON one readable here.
        const invocation = decodeRedisInvocation(await received);
        expect([...invocation.messages.keys()]).toEqual(['json', 'messagepack']);
        const json = Buffer.from(invocation.messages.get('json')!).toString('utf8');
        expect(json.endsWith('\u001e')).toBe(true);
        expect(JSON.parse(json.slice(0, -1))).toEqual({
          type: 1,
          target: 'Notify',
          arguments: [text],
        });
      } finally {
        subscriber.disconnect();
      }
    },
  );

  test("the README's example compiled from TypeScript (nodenext) serves the official client", async () => {
    const compiled = await compiledOwnHubExample();
    const started = await startApp(node, compiled);
    try {
      await expectChatHubServes(started.url);
      // The README's app logs with Fastify's logger: JSON lines on stdout.
      expect(started.output()).toContain('"msg":"Server listening at http://127.0.0.1:');
    } finally {
      await stopApp(started.child);
    }
  });
});
