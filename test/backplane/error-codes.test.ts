/**
 * Stable error codes of the Redis backplane, observed as an application meets them on a real redis-server: a
 * startup that gives up, a group change nobody acknowledges (on a server and on an emitter), and a wait cut short
 * by the server closing. The names and texts stay .NET's where they are .NET's (`TaskCanceledException: A task was
 * canceled.`, `RedisConnectionException`). The codes without Redis are in `test/unit/error-codes.test.ts`.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import Redis from 'ioredis';
import {
  createEmitter,
  fastifySignalR,
  Hub,
  isSignalRError,
  type HubEmitter,
  type SignalRErrorCode,
} from '../../src/index';
import { freePort, RedisServer } from '../support/redis-server';

class EchoHub extends Hub {
  echo(value: string): string {
    return value;
  }
}

const silentLogger = { error() {}, warn() {}, info() {}, debug() {} };

let redis: RedisServer;
const apps: FastifyInstance[] = [];
const emitters: HubEmitter[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});

afterEach(async () => {
  await Promise.all([
    ...apps.splice(0).map((app) => app.close()),
    ...emitters.splice(0).map((emitter) => emitter.close()),
  ]);
});

afterAll(async () => {
  await redis?.stop();
});

/** What `promise` rejects with. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** The code, name and message, and whether `isSignalRError` recognises the code. */
function seen(error: unknown): { code: unknown; name: unknown; message: unknown; recognised: boolean } {
  const { code, name, message } = error as { code?: unknown; name?: unknown; message?: unknown };
  return { code, name, message, recognised: isSignalRError(error, code as SignalRErrorCode) };
}

async function serve(ackTimeoutMs: number): Promise<FastifyInstance> {
  const app = Fastify();
  apps.push(app);
  await app.register(fastifySignalR, {
    hubs: [{ path: '/echo', hub: EchoHub }],
    redis: { url: redis.url, ackTimeoutMs },
  });
  await app.ready();
  return app;
}

test('a backplane that cannot reach Redis with abortConnect: SIGNALR_ERR_REDIS_STARTUP', async () => {
  const port = await freePort();
  const emitter = createEmitter({
    hub: 'EchoHub',
    redis: `127.0.0.1:${port},abortConnect=true,connectTimeout=500`,
    logger: silentLogger,
  });
  emitters.push(emitter);
  const error = await rejection(emitter.ready());
  expect(seen(error)).toMatchObject({
    code: 'SIGNALR_ERR_REDIS_STARTUP',
    name: 'RedisBackplaneStartupError',
    recognised: true,
  });
});

test("a group change no server acknowledges, on a server: SIGNALR_ERR_GROUP_ACK_TIMEOUT as .NET's TaskCanceledException", async () => {
  const app = await serve(300);
  const error = await rejection(app.signalr.hub(EchoHub).groups.addToGroup('nobody-owns-this-id', 'team'));
  expect(seen(error)).toEqual({
    code: 'SIGNALR_ERR_GROUP_ACK_TIMEOUT',
    name: 'TaskCanceledException',
    message: 'A task was canceled.',
    recognised: true,
  });
});

test('a group change no server acknowledges, on an emitter: SIGNALR_ERR_GROUP_ACK_TIMEOUT', async () => {
  const emitter = createEmitter({ hub: 'EchoHub', redis: redis.url, ackTimeoutMs: 300, logger: silentLogger });
  emitters.push(emitter);
  await emitter.ready();
  const error = await rejection(emitter.groups.addToGroup('nobody-owns-this-id', 'team'));
  expect(seen(error)).toMatchObject({
    code: 'SIGNALR_ERR_GROUP_ACK_TIMEOUT',
    name: 'GroupCommandTimeoutError',
    recognised: true,
  });
});

test('a group change still waiting for its ack when the server closes: SIGNALR_ERR_BACKPLANE_UNAVAILABLE', async () => {
  const app = await serve(60_000);
  // Watch the command reach Redis, so the server closes while it waits for the ack, not while it publishes.
  const watcher = new Redis(redis.url);
  try {
    await watcher.psubscribe('*:internal:groups');
    const published = new Promise((resolve) => watcher.once('pmessage', resolve));
    const waiting = rejection(app.signalr.hub(EchoHub).groups.addToGroup('nobody-owns-this-id', 'team'));
    await published;
    await app.close();
    expect(seen(await waiting)).toEqual({
      code: 'SIGNALR_ERR_BACKPLANE_UNAVAILABLE',
      name: 'RedisConnectionException',
      message: 'The server is shutting down.',
      recognised: true,
    });
  } finally {
    watcher.disconnect();
  }
});
