/**
 * Redis killed and restarted under two running server processes of ours. The servers stay up and keep serving
 * their own clients, the health flag shows the outage, every channel still needed is subscribed again once Redis
 * is back, what the servers sent meanwhile was queued and reaches the other server afterwards (in order), and the
 * group add and client result started during the outage complete once Redis is back.
 */
import { HttpTransportType } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import Redis from 'ioredis';
import { ClientPool, delay, eventually, type TestClient } from '../support/clients';
import { RedisServer } from '../support/redis-server';
import { ServerProcess, stopAll } from '../support/server-process';

const HUB = 'Outage.ChatHub';
const SETTLE_MS = 300;
const BEFORE = 20;
const DURING = 5;
/** Redis stays down at least this long, so the servers' reconnection attempts have backed off to their longest. */
const OUTAGE_MS = 3000;

let redis: RedisServer | undefined;
let a: ServerProcess | undefined;
let b: ServerProcess | undefined;
const poolA = new ClientPool(() => a!.hubUrl);
const poolB = new ClientPool(() => b!.hubUrl);

beforeAll(async () => {
  redis = await RedisServer.start();
  const env = { REDIS_URL: redis.url, CHAT_HUB_NAME: HUB };
  const results = await Promise.allSettled([ServerProcess.start('A', env), ServerProcess.start('B', env)]);
  [a, b] = results.map((result) => (result.status === 'fulfilled' ? result.value : undefined));
  const failed = results.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  await Promise.all([a!.waitForBackplane('connected'), b!.waitForBackplane('connected')]);
}, 60_000);

afterAll(async () => {
  await Promise.all([poolA.stopAll(), poolB.stopAll()]);
  await stopAll(a, b);
  await redis?.stop();
}, 30_000);

async function connect(pool: ClientPool, user: string, msgpack = false): Promise<TestClient> {
  const client = await pool.connect(
    {
      transport: HttpTransportType.WebSockets,
      query: `user=${user}`,
      handlers: { GetAnswer: (q: unknown) => `answer to ${String(q)}` },
      ...(msgpack && { protocol: new MessagePackHubProtocol() }),
    },
    ['ReceiveMessage'],
  );
  await client.connection.invoke('WhoAmI');
  return client;
}

/** The texts of the messages a client received. */
const texts = (client: TestClient): string[] => client.inbox('ReceiveMessage').items.map(([, text]) => text as string);

test('Redis killed and restarted: servers stay up, serve their own clients, recover, and deliver again', async () => {
  const alice = await connect(poolA, 'alice');
  const bob = await connect(poolB, 'bob', true);
  const serverNames = [await a!.serverName(), await b!.serverName()];

  // Before: every send is acknowledged (the hub call returned) before the next, the last one just before the kill.
  for (let i = 1; i <= BEFORE; i++) await bob.connection.invoke('SendMessage', 'bob', `before-${i}`);
  const killedAt = Date.now();
  await redis!.kill();

  // Nothing acknowledged before the outage was lost.
  const before = Array.from({ length: BEFORE }, (_, i) => `before-${i + 1}`);
  await eventually(
    () => texts(alice).length >= BEFORE && texts(bob).length >= BEFORE,
    'the messages sent before the kill',
  );
  expect(texts(alice)).toEqual(before);
  expect(texts(bob)).toEqual(before);

  // The health flag shows the outage on both servers.
  const [healthA] = await Promise.all([a!.waitForBackplane('disconnected'), b!.waitForBackplane('disconnected')]);
  const detectedMs = Date.now() - killedAt;
  expect(healthA.connected).toBe(false);

  // During: the servers serve their own clients. Calls that need no other server work; sends reach local clients.
  expect(await alice.connection.invoke('Echo', 'during')).toBe('during');
  for (let i = 1; i <= DURING; i++) await alice.connection.invoke('SendMessage', 'alice', `during-a-${i}`);
  await bob.connection.invoke('SendMessage', 'bob', 'during-b-1');
  // A client connecting during the outage is served, and joins a group (subscribed once Redis is back).
  const carol = await connect(poolA, 'carol', true);
  await carol.connection.invoke('JoinRoom', 'room');
  await carol.connection.invoke('SendToRoom', 'room', 'carol', 'during-room');
  // What needs another server waits for Redis (within the ack timeout, and the call's own signal).
  const add = alice.connection.invoke('AddToRoom', bob.connection.connectionId, 'room');
  // From carol: one client's invocations run one after the other, and alice's waits for its ack.
  const ask = carol.connection.invoke('AskClient', bob.connection.connectionId);
  await delay(SETTLE_MS);
  const during = Array.from({ length: DURING }, (_, i) => `during-a-${i + 1}`);
  expect(texts(alice).slice(BEFORE)).toEqual(during);
  expect(texts(bob).slice(BEFORE)).toEqual(['during-b-1']);
  expect(texts(carol)).toEqual(['during-room']);
  const [duringA, duringB] = [await a!.backplane(), await b!.backplane()];
  // Queued — A: 5 broadcasts, the room send, the group command and the client-result invocation; B: 1 broadcast.
  expect([duringA.queuedMessages, duringB.queuedMessages]).toEqual([DURING + 3, 1]);
  expect([duringA.unpublishedMessages, duringB.unpublishedMessages]).toEqual([0, 0]);

  // Redis comes back (empty: no subscriptions survive a restart).
  await delay(OUTAGE_MS - (Date.now() - killedAt));
  const outageMs = Date.now() - killedAt;
  await redis!.start();
  const restartedAt = Date.now();
  await Promise.all([a!.waitForBackplane('connected'), b!.waitForBackplane('connected')]);
  const recoveredMs = Date.now() - restartedAt;

  // Every channel still needed is subscribed again: server channels, connections, users, the group.
  const admin = new Redis(redis!.url);
  try {
    const channels = ((await admin.call('PUBSUB', 'CHANNELS', `${HUB}:*`)) as string[]).sort();
    const ids = [alice, bob, carol].map((client) => client.connection.connectionId!);
    expect(channels).toEqual(
      [
        ...serverNames.flatMap((name) => [`${HUB}:internal:ack:${name}`, `${HUB}:internal:return:${name}`]),
        `${HUB}:all`,
        `${HUB}:internal:groups`,
        ...ids.map((id) => `${HUB}:connection:${id}`),
        `${HUB}:user:alice`,
        `${HUB}:user:bob`,
        `${HUB}:user:carol`,
        `${HUB}:group:room`,
      ].sort(),
    );
  } finally {
    admin.disconnect();
  }

  // The queued messages crossed; the group add and the client result went out and were answered.
  await add;
  expect(await ask).toBe('answer to question');
  await eventually(
    () => texts(bob).includes(`during-a-${DURING}`) && texts(alice).includes('during-b-1'),
    'the queued messages',
  );

  // After: delivery across servers again, group commands and client results too.
  await bob.connection.invoke('SendMessage', 'bob', 'after');
  await bob.connection.invoke('SendToRoom', 'room', 'bob', 'after-room');
  await alice.connection.invoke('AddToRoom', bob.connection.connectionId, 'room');
  await alice.connection.invoke('SendToRoom', 'room', 'alice', 'after-room-2');
  expect(await alice.connection.invoke('AskClient', bob.connection.connectionId)).toBe('answer to question');
  await eventually(
    () => texts(carol).length >= 5 && texts(bob).length >= BEFORE + DURING + 4,
    'deliveries after the outage',
  );
  await delay(SETTLE_MS);
  // Each server's own clients got its messages at once, the other's after the outage, in order, none twice. Bob
  // joined the room after carol's room send went out, so that one is not his.
  expect(texts(alice).slice(BEFORE + DURING)).toEqual(['during-b-1', 'after']);
  expect(texts(bob).slice(BEFORE + 1)).toEqual([...during, 'after', 'after-room', 'after-room-2']);
  expect(texts(carol)).toEqual(['during-room', 'during-b-1', 'after', 'after-room', 'after-room-2']);

  // The health flag and the log tell the story.
  const health = await a!.backplane();
  expect(health).toMatchObject({
    state: 'connected',
    connected: true,
    outages: 1,
    unpublishedMessages: 0,
    queuedMessages: 0,
    queuedMessagesTotal: DURING + 3,
    replayedMessages: DURING + 3,
    droppedMessages: 0,
  });
  const logA = a!.logLines();
  expect(logA.some((line) => line.level === 50 && /Redis backplane disconnected/.test(line.msg))).toBe(true);
  expect(
    logA.some(
      (line) => /connected again/.test(line.msg) && line.queuedMessages === DURING + 3 && line.droppedMessages === 0,
    ),
  ).toBe(true);
  expect(a!.log).not.toMatch(/Unhandled|uncaught/i);

  console.log(
    [
      `Redis outage of ${outageMs} ms (killed with SIGKILL, restarted empty on the same port):`,
      `- detected by both servers within ${detectedMs} ms; both connected and resubscribed ${recoveredMs} ms after the restart;`,
      `- acknowledged before the kill: ${BEFORE}/${BEFORE} delivered on both servers;`,
      `- sent during the outage: ${DURING + 1} broadcasts reached the clients of the sending server at once and the ` +
        "other server's after the restart, in order; a group send reached the local member; the remote group add and " +
        'the remote client result waited for Redis and completed;',
      '- after the restart: broadcasts, group sends (including the group joined during the outage), remote group adds',
      '  and client results work again.',
    ].join('\n'),
  );
}, 60_000);
