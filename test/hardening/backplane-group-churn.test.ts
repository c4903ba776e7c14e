/**
 * Group churn cannot get the backplane's subscriber killed by Redis. A client of server A joins 1,500 groups with
 * 30,000-character names (the bounds on groups lifted for the attack) and disconnects: A unsubscribes 45 MB of
 * channel names at once, and Redis repeats each name in its reply. Against a suite-started redis-server with its
 * default `client-output-buffer-limit pubsub 32mb 8mb 60`, A's subscriber connection must survive (the same client
 * in CLIENT LIST, no outage in `/health`), and messages server B publishes to a group meanwhile must all reach A's
 * member.
 */
import Redis from 'ioredis';
import { ClientPool } from '../support/clients';
import { RedisServer } from '../support/redis-server';
import { ServerProcess, stopAll } from '../support/server-process';

const GROUPS = 1_500;
const NAME_LENGTH = 30_000;
const MESSAGES = 60;

let redis: RedisServer;
let admin: Redis;
let serverA: ServerProcess;
let serverB: ServerProcess;
const poolA = new ClientPool(() => serverA.hubUrl);
const poolB = new ClientPool(() => serverB.hubUrl);

beforeAll(async () => {
  redis = await RedisServer.start();
  admin = new Redis(redis.url);
  [serverA, serverB] = await Promise.all([
    ServerProcess.start('A', {
      REDIS_URL: redis.url,
      SIGNALR_MAXIMUM_GROUP_NAME_LENGTH: 'none',
      SIGNALR_MAXIMUM_GROUPS_PER_CONNECTION: 'none',
    }),
    ServerProcess.start('B', { REDIS_URL: redis.url }),
  ]);
  await Promise.all([serverA.waitForBackplane('connected'), serverB.waitForBackplane('connected')]);
}, 60_000);

afterAll(async () => {
  await poolA.stopAll();
  await poolB.stopAll();
  await stopAll(serverA, serverB);
  admin?.disconnect();
  await redis?.stop();
});

/** Ids of Redis's pub/sub clients (one subscriber connection per server). */
async function subscriberIds(): Promise<string[]> {
  const list = (await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
  return list
    .split('\n')
    .map((line) => /(?:^|\s)id=(\d+)/.exec(line)?.[1])
    .filter((id): id is string => id !== undefined)
    .sort();
}

test('1,500 long-named groups left at once: the subscriber survives and every message from another server arrives', async () => {
  const member = await poolA.connect();
  await member.connection.invoke('JoinRoom', 'room');
  const sender = await poolB.connect();
  const subscribersBefore = await subscriberIds();
  expect(subscribersBefore).toHaveLength(2);

  const attacker = await poolA.connect();
  for (let start = 0; start < GROUPS; start += 20) {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        attacker.connection.invoke('JoinRoom', `${start + i}:`.padEnd(NAME_LENGTH, 'x')),
      ),
    );
  }
  expect((await serverA.backplane()).subscriptions).toBeGreaterThanOrEqual(GROUPS);

  // The attacker leaves: every one of its groups is unsubscribed. B publishes to the room meanwhile and after.
  const leaving = attacker.connection.stop();
  for (let i = 0; i < MESSAGES; i++) {
    await sender.connection.invoke('SendToRoom', 'room', 'B', `message ${i}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  await leaving;

  const received = await member.inbox('ReceiveMessage').waitFor(MESSAGES, 20_000);
  expect(received.map(([, text]) => text)).toEqual(Array.from({ length: MESSAGES }, (_, i) => `message ${i}`));
  const health = await serverA.backplane();
  expect(health.outages).toBe(0);
  expect(health.state).toBe('connected');
  expect(redis.log).not.toContain('overcoming of output buffer limits');
  expect(await subscriberIds()).toEqual(subscribersBefore);
  // The groups are gone from Redis too.
  expect(
    ((await admin.call('PUBSUB', 'NUMSUB', `ChatHub:group:0:${'x'.repeat(NAME_LENGTH - 2)}`)) as unknown[])[1],
  ).toBe(0);
}, 120_000);
