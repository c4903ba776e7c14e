/**
 * Stable error codes: the errors the server raises towards the application and the operator carry the code
 * `errorCodes` lists for them, observed through the public API as an application meets them, and the README's
 * Errors table lists exactly that catalogue. (The codes whose errors need Redis are in
 * `test/backplane/error-codes.test.ts`.)
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  createEmitter,
  errorCodes,
  fastifySignalR,
  Hub,
  integerOption,
  isSignalRError,
  loadConfig,
  type SignalRErrorCode,
} from '../../src/index';

class EchoHub extends Hub {
  echo(value: string): string {
    return value;
  }
}

/** Whatever `run` throws or rejects with. */
async function caught(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

/** The code, name and whether `isSignalRError` recognises it — what an application matching on errors sees. */
function seen(error: unknown): { code: unknown; name: unknown; recognised: boolean } {
  const { code, name } = error as { code?: unknown; name?: unknown };
  return { code, name, recognised: isSignalRError(error, code as SignalRErrorCode) };
}

const silentLogger = { error() {}, warn() {}, info() {}, debug() {} };

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function serve(options: object): Promise<FastifyInstance> {
  const app = Fastify();
  apps.push(app);
  await app.register(fastifySignalR, options as never);
  await app.ready();
  return app;
}

test('invalid plugin options: SIGNALR_ERR_OPTIONS', async () => {
  const error = await caught(() => serve({ hubs: [{ path: '/echo', hub: EchoHub }], keepAliveIntervalMs: -1 }));
  expect(seen(error)).toEqual({ code: 'SIGNALR_ERR_OPTIONS', name: 'SignalROptionsError', recognised: true });
});

test('an invalid configuration value: SIGNALR_ERR_CONFIG', async () => {
  const table = { port: integerOption('PORT', 'TCP port.', 5000, { min: 1, max: 65535 }) };
  const error = await caught(() => loadConfig(table, { env: { PORT: 'eighty' } }));
  expect(seen(error)).toEqual({ code: 'SIGNALR_ERR_CONFIG', name: 'ConfigError', recognised: true });
});

test('a hub class that cannot be served: SIGNALR_ERR_HUB_DEFINITION', async () => {
  class NotAHub {
    echo(): void {}
  }
  const error = await caught(() => serve({ hubs: [{ path: '/echo', hub: NotAHub }] }));
  expect(seen(error)).toEqual({ code: 'SIGNALR_ERR_HUB_DEFINITION', name: 'HubDefinitionError', recognised: true });
});

test('the hub context of a hub no registration serves: SIGNALR_ERR_UNKNOWN_HUB', async () => {
  const app = await serve({ hubs: [{ path: '/echo', hub: EchoHub }] });
  const error = await caught(() => app.signalr.hub('/elsewhere'));
  expect(seen(error)).toEqual({ code: 'SIGNALR_ERR_UNKNOWN_HUB', name: 'Error', recognised: true });
});

test('a client result of a connection that does not exist: SIGNALR_ERR_CLIENT_RESULT_CONNECTION, named as .NET names it', async () => {
  const app = await serve({ hubs: [{ path: '/echo', hub: EchoHub }] });
  const error = await caught(() => app.signalr.hub(EchoHub).clients.client('no-such-connection').invoke('GetAnswer'));
  expect(seen(error)).toEqual({ code: 'SIGNALR_ERR_CLIENT_RESULT_CONNECTION', name: 'IOException', recognised: true });
  expect((error as Error).message).toBe("Connection 'no-such-connection' does not exist.");
});

test('a malformed Redis connection string: SIGNALR_ERR_REDIS_CONFIGURATION', async () => {
  const error = await caught(() => createEmitter({ hub: 'EchoHub', redis: { connectionString: ',,' } }));
  expect(seen(error)).toEqual({
    code: 'SIGNALR_ERR_REDIS_CONFIGURATION',
    name: 'RedisConfigurationError',
    recognised: true,
  });
});

test('a user-level group on a server without fleet presence: SIGNALR_ERR_USER_GROUPS_NEED_PRESENCE', async () => {
  const app = await serve({ hubs: [{ path: '/echo', hub: EchoHub }] });
  const error = await caught(() => app.signalr.hub(EchoHub).groups.addUserToGroup('alice', 'team'));
  expect(seen(error)).toEqual({ code: 'SIGNALR_ERR_USER_GROUPS_NEED_PRESENCE', name: 'Error', recognised: true });
});

test('invalid management options: SIGNALR_ERR_MANAGEMENT_OPTIONS', async () => {
  const management = { accessKey: 'Endpoint=https://signalr.example;AccessKey=;Version=1.0;' };
  const error = await caught(() => serve({ hubs: [{ path: '/echo', hub: EchoHub }], management }));
  expect(seen(error)).toEqual({
    code: 'SIGNALR_ERR_MANAGEMENT_OPTIONS',
    name: 'ManagementOptionsError',
    recognised: true,
  });
});

test('an emitter used after close: SIGNALR_ERR_EMITTER_CLOSED', async () => {
  // Nothing listens on port 1: the emitter never connects, which closing does not need.
  const emitter = createEmitter({ hub: 'EchoHub', redis: 'redis://127.0.0.1:1', logger: silentLogger });
  await emitter.close();
  const error = await caught(() => emitter.clients.all.send('Echo', 'late'));
  expect(seen(error)).toEqual({ code: 'SIGNALR_ERR_EMITTER_CLOSED', name: 'EmitterClosedError', recognised: true });
});

test('isSignalRError matches the code asked for, and only the catalogue', () => {
  const error = Object.assign(new Error('x'), { code: 'SIGNALR_ERR_OPTIONS' });
  expect(isSignalRError(error)).toBe(true);
  expect(isSignalRError(error, 'SIGNALR_ERR_CONFIG')).toBe(false);
  expect(isSignalRError(Object.assign(new Error('x'), { code: 'FST_ERR_NOT_FOUND' }))).toBe(false);
  expect(isSignalRError({ code: 'SIGNALR_ERR_OPTIONS' })).toBe(false);
});

test('the README lists every error code with its error names and when it is raised, and no other', () => {
  const readme = readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of readme.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    if (cells.length === 5 && /^`SIGNALR_ERR_[A-Z_]+`$/.test(cells[1]))
      rows.set(cells[1].slice(1, -1), cells.slice(2, 4));
  }
  const expected = new Map(
    Object.entries(errorCodes).map(([code, entry]) => [
      code,
      [entry.names.map((name) => `\`${name}\``).join(', '), entry.when],
    ]),
  );
  expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(expected));
});
