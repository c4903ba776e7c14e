/**
 * Streams mode beyond routing: the retention (entries beyond `REDIS_STREAM_MAX_LENGTH`, and older than
 * `REDIS_STREAM_MAX_AGE_MS`, are trimmed; a server away longer logs how many it missed), presence across a
 * streams-mode fleet, the ACL the README documents, and the mixed-fleet guard — a server in streams mode does not
 * start beside a server in pub/sub mode (ours, or the ASP.NET Core reference server) on the same Redis and channel
 * prefix, a server of ours in pub/sub mode does not start beside servers in streams mode, nor does a server whose
 * stream count differs from the fleet's; a running streams server logs a .NET server that starts beside it.
 */
import Redis from 'ioredis';
import { decodeRedisInvocation } from '../../protocol/redis';
import { ClientPool, eventually } from '../support/clients';
import {
  describeWithDotnet,
  startBackplaneReferenceServer,
  type BackplaneReferenceServer,
} from '../support/dotnet-reference';
import { RedisServer } from '../support/redis-server';
import { ServerProcess, stopAll } from '../support/server-process';

const STREAM = '{signalr:stream:0}';
const MARKER = 'signalr:backplane-mode';

let redis: RedisServer;
let admin: Redis;
const servers: ServerProcess[] = [];
const pools: ClientPool[] = [];

beforeEach(async () => {
  redis = await RedisServer.start();
  admin = new Redis(redis.url);
});

afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.stopAll()));
  await stopAll(...servers.splice(0));
  admin.disconnect();
  await redis.stop();
}, 30_000);

async function start(label: string, env: Record<string, string> = {}, hub = 'Guard.ChatHub'): Promise<ServerProcess> {
  const server = await ServerProcess.start(label, { REDIS_URL: redis.url, CHAT_HUB_NAME: hub, ...env });
  servers.push(server);
  await server.waitForBackplane('connected');
  return server;
}

const streams = { SIGNALR_REDIS_MODE: 'streams' };

/** Sends `count` broadcasts `<tag>-<i>` from one client, one after the other. */
async function broadcast(server: ServerProcess, tag: string, count: number): Promise<void> {
  const pool = new ClientPool(() => server.hubUrl);
  pools.push(pool);
  const client = await pool.connect({}, ['ReceiveMessage']);
  for (let i = 0; i < count; i++) await client.connection.invoke('SendMessage', 'sender', `${tag}-${i}`);
}

/** The text a stream entry's broadcast carries (its JSON message). */
function textOf(fields: Buffer[]): string {
  const payload = fields[fields.findIndex((field) => field.toString() === 'payload') + 1];
  const json = Buffer.from(decodeRedisInvocation(payload).messages.get('json')!).toString('utf8');
  return (JSON.parse(json.slice(0, -1)) as { arguments: string[] }).arguments[1];
}

describe('retention', () => {
  test('entries beyond the maximum length are trimmed (approximately), the newest kept', async () => {
    const server = await start('A', { ...streams, REDIS_STREAM_MAX_LENGTH: '100' });
    await broadcast(server, 'len', 600);
    const length = await admin.xlen(STREAM);
    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThan(200);
    const [first] = (await admin.xrangeBuffer(STREAM, '-', '+', 'COUNT', 1)) as [Buffer, Buffer[]][];
    const [last] = (await admin.xrevrangeBuffer(STREAM, '+', '-', 'COUNT', 1)) as [Buffer, Buffer[]][];
    expect(Number(textOf(first[1]).split('-')[1])).toBeGreaterThanOrEqual(400);
    expect(textOf(last[1])).toBe('len-599');
  }, 60_000);

  test('entries older than the maximum age are trimmed once a later publish comes', async () => {
    const server = await start('A', { ...streams, REDIS_STREAM_MAX_AGE_MS: '1000' });
    await broadcast(server, 'old', 200);
    expect(await admin.xlen(STREAM)).toBeGreaterThanOrEqual(200);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await broadcast(server, 'new', 1);
    // The trim goes right after the publish it rides on.
    let length = await admin.xlen(STREAM);
    for (let tries = 0; length >= 50 && tries < 50; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      length = await admin.xlen(STREAM);
    }
    expect(length).toBeLessThan(50);
    const [last] = (await admin.xrevrangeBuffer(STREAM, '+', '-', 'COUNT', 1)) as [Buffer, Buffer[]][];
    expect(textOf(last[1])).toBe('new-0');
  }, 60_000);
});

describe('a server away longer than the retention', () => {
  test('logs that entries after its position were trimmed before it read them', async () => {
    const env = (label: string) => ({
      ...streams,
      REDIS_URL: `127.0.0.1:${redis.port},name=server-${label}`,
      REDIS_STREAM_MAX_LENGTH: '100',
      LOG_LEVEL: 'info',
    });
    const a = await start('A', env('A'));
    const b = await start('B', env('B'));
    // B stands still (SIGSTOP) while A writes far more than the stream keeps; its reading connection is cut meanwhile.
    process.kill(b.pid, 'SIGSTOP');
    try {
      await broadcast(a, 'gap', 400);
      const list = String(await admin.call('CLIENT', 'LIST'));
      const id = list
        .split('\n')
        .find((line) => / name=server-B:read /.test(line))
        ?.match(/^id=(\d+) /)?.[1];
      expect(id).toBeDefined();
      expect(await admin.call('CLIENT', 'KILL', 'ID', id!)).toBe(1);
    } finally {
      process.kill(b.pid, 'SIGCONT');
    }
    await eventually(
      () => /were trimmed before it read them/.test(b.log),
      "B's log line about the trimmed entries",
      15_000,
    );
    // A wrote 400 entries; the stream kept about 100 of them, and B had read at most the first few.
    const lost = Number(/"lost":(\d+)/.exec(b.log)?.[1]);
    expect(lost).toBeGreaterThanOrEqual(200);
    expect(lost).toBeLessThanOrEqual(400);
    expect(a.log).not.toMatch(/were trimmed before it read them/);
  }, 60_000);
});

describe('presence in streams mode', () => {
  test('a connection on one server is listed, and its events seen, on the other', async () => {
    const env = { ...streams, SIGNALR_PRESENCE: 'true' };
    const a = await start('A', env);
    const b = await start('B', env);
    const pool = new ClientPool(() => b.hubUrl);
    pools.push(pool);
    const client = await pool.connect({ query: 'user=zed' }, ['ReceiveMessage']);
    await client.connection.invoke('JoinRoom', 'presence-room');
    const id = client.connection.connectionId!;
    const get = async (path: string) => (await fetch(`${a.url}${path}`)).json() as Promise<Record<string, unknown>>;
    const listed = await get(`/presence/connections/${id}`);
    expect(listed).toMatchObject({ scope: 'fleet', connection: { connectionId: id, userId: 'zed' } });
    let events: { e?: string; type?: string; connectionId?: string }[] = [];
    for (let tries = 0; tries < 100; tries++) {
      events = (await get('/presence/events')).events as typeof events;
      if (events.length >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'connected', connectionId: id }),
        expect.objectContaining({ type: 'joined', connectionId: id, group: 'presence-room' }),
      ]),
    );
  }, 60_000);
});

describe('the ACL the README documents for streams mode', () => {
  test('two servers exchange messages as a user with exactly those permissions; Redis denies nothing', async () => {
    await admin.call(
      'ACL',
      'SETUSER',
      'streams-backplane',
      'on',
      '>streams-secret',
      'resetkeys',
      'resetchannels',
      '~{signalr:stream:*}',
      '~signalr:backplane-mode',
      '-@all',
      '+xadd',
      '+xread',
      '+xinfo|stream',
      '+xtrim',
      '+get',
      '+set',
      '+pubsub|numsub',
      '+client|setname',
      '+cluster|slots',
    );
    await admin.call('ACL', 'LOG', 'RESET');
    const env = (label: string) => ({
      ...streams,
      REDIS_URL: `127.0.0.1:${redis.port},user=streams-backplane,password=streams-secret,name=server-${label}`,
    });
    const a = await start('A', env('A'));
    const b = await start('B', env('B'));
    const pool = new ClientPool(() => b.hubUrl);
    pools.push(pool);
    const receiver = await pool.connect({}, ['ReceiveMessage']);
    await receiver.connection.invoke('WhoAmI');
    await broadcast(a, 'acl', 3);
    await eventually(() => receiver.inbox('ReceiveMessage').items.length === 3, 'the three broadcasts to cross');
    expect(await admin.call('ACL', 'LOG')).toEqual([]);
  }, 60_000);
});

describe('the mixed-fleet guard', () => {
  test('a server in streams mode does not start beside one of ours in pub/sub mode', async () => {
    await start('P');
    const failure = await ServerProcess.startupFailure('S', {
      REDIS_URL: redis.url,
      CHAT_HUB_NAME: 'Guard.ChatHub',
      ...streams,
    });
    expect(failure.code).not.toBe(0);
    expect(failure.output).toContain('a server in pub/sub mode');
    expect(failure.output).toContain("subscribed to 'Guard.ChatHub:all'");
  }, 60_000);

  test('a server of ours in pub/sub mode does not start beside servers in streams mode', async () => {
    await start('S', streams);
    expect(await admin.get(MARKER)).toBe('streams:1');
    expect(await admin.pttl(MARKER)).toBeGreaterThan(0);
    const failure = await ServerProcess.startupFailure('P', { REDIS_URL: redis.url, CHAT_HUB_NAME: 'Guard.ChatHub' });
    expect(failure.code).not.toBe(0);
    expect(failure.output).toContain('servers in streams mode');
  }, 60_000);

  test('a server whose stream count differs from the fleet marker does not start', async () => {
    await admin.set(MARKER, 'streams:4', 'PX', 30_000);
    const failure = await ServerProcess.startupFailure('S', {
      REDIS_URL: redis.url,
      CHAT_HUB_NAME: 'Guard.ChatHub',
      ...streams,
    });
    expect(failure.code).not.toBe(0);
    expect(failure.output).toContain('use 4 streams');
  }, 60_000);

  test('fleets on different channel prefixes do not see each other', async () => {
    await start('P', { REDIS_CHANNEL_PREFIX: 'pubsub-fleet:' });
    await start('S', { ...streams, REDIS_CHANNEL_PREFIX: 'streams-fleet:' });
    expect(await admin.get(`streams-fleet:${MARKER}`)).toBe('streams:1');
  }, 60_000);
});

describeWithDotnet('the mixed-fleet guard and ASP.NET Core', () => {
  let dotnet: BackplaneReferenceServer | undefined;

  afterEach(async () => {
    await dotnet?.stop();
    dotnet = undefined;
  }, 30_000);

  test('a server in streams mode does not start beside a .NET server on the same hub and prefix', async () => {
    dotnet = await startBackplaneReferenceServer({ redisPort: redis.port });
    const failure = await ServerProcess.startupFailure('S', {
      REDIS_URL: redis.url,
      CHAT_HUB_NAME: 'WebAPI.ChatHub',
      ...streams,
    });
    expect(failure.code).not.toBe(0);
    expect(failure.output).toContain("subscribed to 'WebAPI.ChatHub:all'");
  }, 180_000);

  test('a running server in streams mode logs a .NET server that starts beside it (which cannot read streams)', async () => {
    const server = await start('S', { ...streams, LOG_LEVEL: 'info' }, 'WebAPI.ChatHub');
    dotnet = await startBackplaneReferenceServer({ redisPort: redis.port });
    await eventually(
      () => server.log.includes('a server in pub/sub mode'),
      'the streams server to log the .NET server',
      20_000,
    );
  }, 180_000);
});
